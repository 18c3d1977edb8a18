//! The PIV card application (NIST SP 800-73-4 part 2 §3): the commands OpenSC's PIV-II driver,
//! OpenSC's `piv-tool` and a standard enrollment client send, answered from a [`PivCardState`].
//!
//! A [`PivSession`] is the volatile part of a card: security status (PIN verified, management key
//! authenticated), a pending management challenge, command chaining and response chaining. It is
//! lost on power off, reset and removal. Every APDU is untrusted: malformed input gets a status
//! word, never a panic.

use openssl::bn::BigNum;
use openssl::derive::Deriver;
use openssl::ec::EcPoint;
use openssl::ecdsa::EcdsaSig;
use openssl::pkey::{PKey, Public};
use openssl::rsa::Padding;
use openssl::symm::Crypter;
use zeroize::Zeroizing;

use super::state::{
    is_valid_padded_pin, ManagementAlgorithm, PivAlgorithm, PivCardState, PivSlot, SlotKey,
    DISCOVERY_OBJECT,
};
use super::tlv;

/// The PIV application identifier with its version (SP 800-73-4 part 1 §2.2).
pub const PIV_AID: [u8; 11] = [
    0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x01, 0x00,
];

/// The largest data object PUT DATA accepts (a certificate object of 800-73-4 is at most 1856
/// bytes for the four key slots; 12 KiB leaves room for RSA 4096 chains written by other tools).
pub const MAX_OBJECT_LENGTH: usize = 12 * 1024;
/// The largest command-chained data accepted: a full object and its 5C tag list.
const MAX_CHAINED_LENGTH: usize = MAX_OBJECT_LENGTH + 64;

/// ISO/IEC 7816-4 status words used here.
pub mod sw {
    pub const OK: u16 = 0x9000;
    pub const WRONG_LENGTH: u16 = 0x6700;
    pub const LAST_COMMAND_EXPECTED: u16 = 0x6883;
    pub const SECURITY_STATUS: u16 = 0x6982;
    pub const AUTH_BLOCKED: u16 = 0x6983;
    pub const CONDITIONS_NOT_SATISFIED: u16 = 0x6985;
    pub const WRONG_DATA: u16 = 0x6A80;
    pub const NOT_FOUND: u16 = 0x6A82;
    pub const NOT_ENOUGH_MEMORY: u16 = 0x6A84;
    pub const INCORRECT_P1P2: u16 = 0x6A86;
    pub const REFERENCE_NOT_FOUND: u16 = 0x6A88;
    pub const INS_NOT_SUPPORTED: u16 = 0x6D00;
    pub const CLA_NOT_SUPPORTED: u16 = 0x6E00;
    pub const UNKNOWN: u16 = 0x6F00;
}

/// A command APDU, short or extended (ISO/IEC 7816-4 §5.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command<'a> {
    pub cla: u8,
    pub ins: u8,
    pub p1: u8,
    pub p2: u8,
    pub data: &'a [u8],
    /// Ne, the most response bytes expected: 0 when no Le field, 256 for a short Le of 00.
    pub ne: usize,
}

impl<'a> Command<'a> {
    /// Parses a command APDU; `None` when the length fields do not fit the bytes.
    pub fn parse(apdu: &'a [u8]) -> Option<Command<'a>> {
        let (&[cla, ins, p1, p2], body) = apdu.split_first_chunk::<4>()?;
        let (data, ne) = match body {
            [] => (&[][..], 0),
            [le] => (&[][..], if *le == 0 { 256 } else { usize::from(*le) }),
            [0, hi, lo] => {
                let le = usize::from(u16::from_be_bytes([*hi, *lo]));
                (&[][..], if le == 0 { 65536 } else { le })
            }
            [0, hi, lo, rest @ ..] => {
                // Extended Lc: 00 Lc1 Lc2, data, optional 2-byte Le.
                let lc = usize::from(u16::from_be_bytes([*hi, *lo]));
                let data = rest.get(..lc)?;
                let ne = match &rest[lc..] {
                    [] => 0,
                    [hi, lo] => match usize::from(u16::from_be_bytes([*hi, *lo])) {
                        0 => 65536,
                        le => le,
                    },
                    _ => return None,
                };
                (data, ne)
            }
            [lc, rest @ ..] => {
                let lc = usize::from(*lc);
                let data = rest.get(..lc)?;
                let ne = match &rest[lc..] {
                    [] => 0,
                    [le] => {
                        if *le == 0 {
                            256
                        } else {
                            usize::from(*le)
                        }
                    }
                    _ => return None,
                };
                (data, ne)
            }
        };
        Some(Command {
            cla,
            ins,
            p1,
            p2,
            data,
            ne,
        })
    }
}

/// A response: data and a status word.
struct Reply {
    data: Vec<u8>,
    sw: u16,
}

impl Reply {
    fn status(sw: u16) -> Reply {
        Reply {
            data: Vec::new(),
            sw,
        }
    }

    fn data(data: Vec<u8>) -> Reply {
        Reply { data, sw: sw::OK }
    }
}

/// What an answered APDU did besides answering.
pub struct Outcome {
    /// The response APDU: data and SW1 SW2.
    pub response: Vec<u8>,
    /// True when the persistent state changed (a retry counter, a key, an object).
    pub state_changed: bool,
}

/// A management-key challenge handed out and not yet answered.
enum PendingManagement {
    /// Mutual authentication step 1 gave out this witness, encrypted.
    Witness(Zeroizing<Vec<u8>>),
    /// External authentication step 1 gave out this challenge in clear.
    Challenge(Zeroizing<Vec<u8>>),
}

/// Chained command data collected so far (CLA bit 0x10).
struct Chain {
    ins: u8,
    p1: u8,
    p2: u8,
    data: Vec<u8>,
}

/// The volatile state of a powered card.
#[derive(Default)]
pub struct PivSession {
    pin_verified: bool,
    /// Set by a successful VERIFY, used up by one signature with the 9C key (PIN-always).
    pin_always_granted: bool,
    management_authenticated: bool,
    pending_management: Option<PendingManagement>,
    chain: Option<Chain>,
    /// Response bytes GET RESPONSE has yet to hand out.
    pending_response: Vec<u8>,
}

impl PivSession {
    pub fn new() -> PivSession {
        PivSession::default()
    }

    /// Power off, power on or reset: every security status is lost.
    pub fn reset(&mut self) {
        *self = PivSession::default();
    }

    pub fn is_pin_verified(&self) -> bool {
        self.pin_verified
    }

    /// Answers one command APDU.
    pub fn process(&mut self, state: &mut PivCardState, apdu: &[u8]) -> Outcome {
        let mut changed = false;
        let reply = match Command::parse(apdu) {
            None => Reply::status(sw::WRONG_LENGTH),
            Some(command) => self.dispatch(state, &command, &mut changed),
        };
        Outcome {
            response: self.finish(reply, apdu),
            state_changed: changed,
        }
    }

    /// Splits long answers for GET RESPONSE (61xx) and appends the status word.
    fn finish(&mut self, reply: Reply, apdu: &[u8]) -> Vec<u8> {
        let ne = match Command::parse(apdu) {
            Some(command) if command.ne > 0 => command.ne,
            // No Le: answer up to 256 bytes anyway, as PIV cards do for case 3 commands.
            _ => 256,
        };
        let mut data = reply.data;
        if reply.sw == sw::OK && data.len() > ne {
            self.pending_response = data.split_off(ne);
            let remaining = self.pending_response.len();
            data.push(0x61);
            data.push(if remaining >= 256 { 0 } else { remaining as u8 });
            return data;
        }
        data.extend_from_slice(&reply.sw.to_be_bytes());
        data
    }

    fn dispatch(
        &mut self,
        state: &mut PivCardState,
        command: &Command,
        changed: &mut bool,
    ) -> Reply {
        if command.cla & !0x10 != 0x00 {
            self.chain = None;
            return Reply::status(sw::CLA_NOT_SUPPORTED);
        }
        if command.ins == 0xC0 {
            return self.get_response(command);
        }
        self.pending_response.clear();
        // Command chaining (ISO/IEC 7816-4 §5.1.1.1): collect the parts, answer the last one.
        let chained;
        let command = if command.cla & 0x10 != 0 || self.chain.is_some() {
            let same = |c: &Chain| (c.ins, c.p1, c.p2) == (command.ins, command.p1, command.p2);
            let mut chain = match self.chain.take() {
                Some(chain) if same(&chain) => chain,
                Some(_) => return Reply::status(sw::LAST_COMMAND_EXPECTED),
                None => Chain {
                    ins: command.ins,
                    p1: command.p1,
                    p2: command.p2,
                    data: Vec::new(),
                },
            };
            if chain.data.len() + command.data.len() > MAX_CHAINED_LENGTH {
                return Reply::status(sw::NOT_ENOUGH_MEMORY);
            }
            chain.data.extend_from_slice(command.data);
            if command.cla & 0x10 != 0 {
                self.chain = Some(chain);
                return Reply::status(sw::OK);
            }
            chained = chain.data;
            Command {
                cla: 0x00,
                data: &chained,
                ..command.clone()
            }
        } else {
            command.clone()
        };
        match command.ins {
            0xA4 => self.select(&command),
            0xCB => self.get_data(state, &command),
            0xDB => self.put_data(state, &command, changed),
            0x20 => self.verify(state, &command, changed),
            0x24 => self.change_reference_data(state, &command, changed),
            0x2C => self.reset_retry_counter(state, &command, changed),
            0x87 => self.general_authenticate(state, &command),
            0x47 => self.generate_key_pair(state, &command, changed),
            _ => Reply::status(sw::INS_NOT_SUPPORTED),
        }
    }

    fn get_response(&mut self, command: &Command) -> Reply {
        if command.p1 != 0 || command.p2 != 0 {
            return Reply::status(sw::INCORRECT_P1P2);
        }
        if self.pending_response.is_empty() {
            return Reply::status(sw::CONDITIONS_NOT_SATISFIED);
        }
        // `finish` splits again at Ne and keeps the rest pending.
        Reply::data(std::mem::take(&mut self.pending_response))
    }

    /// SELECT by AID (P1 04). A prefix of the PIV AID selects it, as on real cards.
    fn select(&mut self, command: &Command) -> Reply {
        if command.p1 != 0x04 {
            return Reply::status(if matches!(command.p1, 0x00..=0x03 | 0x08 | 0x09) {
                sw::NOT_FOUND
            } else {
                sw::INCORRECT_P1P2
            });
        }
        let aid = command.data;
        if aid.len() < 5 || !PIV_AID.starts_with(aid) {
            return Reply::status(sw::NOT_FOUND);
        }
        if command.p2 & 0x0C == 0x0C {
            return Reply::status(sw::OK);
        }
        Reply::data(application_property_template())
    }

    fn get_data(&mut self, state: &PivCardState, command: &Command) -> Reply {
        if (command.p1, command.p2) != (0x3F, 0xFF) {
            return Reply::status(sw::INCORRECT_P1P2);
        }
        let Some(tag) = tlv::parse_single(command.data, 0x5C).and_then(object_tag) else {
            return Reply::status(sw::WRONG_DATA);
        };
        if tag == 0x7E {
            return Reply::data(DISCOVERY_OBJECT.to_vec());
        }
        match state.objects.get(&tag) {
            Some(object) => Reply::data(object.clone()),
            None => Reply::status(sw::NOT_FOUND),
        }
    }

    /// PUT DATA (SP 800-73-4 part 2 §3.3.2): `5C tag` then the object (`53 …`, or `7F61 …` for
    /// the biometric group template). Writing an empty object deletes it.
    fn put_data(
        &mut self,
        state: &mut PivCardState,
        command: &Command,
        changed: &mut bool,
    ) -> Reply {
        if (command.p1, command.p2) != (0x3F, 0xFF) {
            return Reply::status(sw::INCORRECT_P1P2);
        }
        if !self.management_authenticated {
            return Reply::status(sw::SECURITY_STATUS);
        }
        let Ok((tag_list, object)) = tlv::parse_one(command.data) else {
            return Reply::status(sw::WRONG_DATA);
        };
        let tag = match (tag_list.tag, object_tag(tag_list.value)) {
            (0x5C, Some(tag)) if tag != 0x7E => tag,
            _ => return Reply::status(sw::WRONG_DATA),
        };
        let wrapper = if tag == 0x7F61 { 0x7F61 } else { 0x53 };
        let Some(value) = tlv::parse_single(object, wrapper) else {
            return Reply::status(sw::WRONG_DATA);
        };
        if object.len() > MAX_OBJECT_LENGTH {
            return Reply::status(sw::NOT_ENOUGH_MEMORY);
        }
        if value.is_empty() {
            state.objects.remove(&tag);
        } else {
            state.objects.insert(tag, object.to_vec());
        }
        *changed = true;
        Reply::status(sw::OK)
    }

    /// VERIFY (SP 800-73-4 part 2 §3.2.1) of the PIV PIN (key reference 80).
    fn verify(&mut self, state: &mut PivCardState, command: &Command, changed: &mut bool) -> Reply {
        if command.p2 != 0x80 {
            return Reply::status(if matches!(command.p2, 0x00 | 0x81 | 0x96 | 0x97) {
                sw::REFERENCE_NOT_FOUND
            } else {
                sw::INCORRECT_P1P2
            });
        }
        match (command.p1, command.data.len()) {
            // Reset the security status of the PIN.
            (0xFF, 0) => {
                self.pin_verified = false;
                self.pin_always_granted = false;
                Reply::status(sw::OK)
            }
            // Ask for the status: verified, or the tries left.
            (0x00, 0) => {
                if state.pin_tries_left == 0 {
                    Reply::status(sw::AUTH_BLOCKED)
                } else if self.pin_verified {
                    Reply::status(sw::OK)
                } else {
                    Reply::status(0x63C0 | u16::from(state.pin_tries_left))
                }
            }
            (0x00, 8) => {
                let sw = check_pin(state, command.data, changed);
                self.pin_verified = sw == sw::OK;
                self.pin_always_granted = sw == sw::OK;
                Reply::status(sw)
            }
            (0x00, _) => Reply::status(sw::WRONG_DATA),
            _ => Reply::status(sw::INCORRECT_P1P2),
        }
    }

    /// CHANGE REFERENCE DATA (§3.2.2): old value then new value, 8 bytes each, for the PIN (80)
    /// or the PUK (81).
    fn change_reference_data(
        &mut self,
        state: &mut PivCardState,
        command: &Command,
        changed: &mut bool,
    ) -> Reply {
        if command.p1 != 0x00 || !matches!(command.p2, 0x80 | 0x81) {
            return Reply::status(sw::INCORRECT_P1P2);
        }
        if command.data.len() != 16 {
            return Reply::status(sw::WRONG_DATA);
        }
        let (old, new) = command.data.split_at(8);
        if command.p2 == 0x80 {
            if !is_valid_padded_pin(new) {
                return Reply::status(sw::WRONG_DATA);
            }
            let sw = check_pin(state, old, changed);
            if sw == sw::OK {
                state.pin.copy_from_slice(new);
                self.pin_verified = true;
                *changed = true;
            } else {
                self.pin_verified = false;
                self.pin_always_granted = false;
            }
            Reply::status(sw)
        } else {
            let sw = check_puk(state, old, changed);
            if sw == sw::OK {
                state.puk.copy_from_slice(new);
                *changed = true;
            }
            Reply::status(sw)
        }
    }

    /// RESET RETRY COUNTER (§3.2.3): PUK then the new PIN; unblocks the PIN.
    fn reset_retry_counter(
        &mut self,
        state: &mut PivCardState,
        command: &Command,
        changed: &mut bool,
    ) -> Reply {
        if (command.p1, command.p2) != (0x00, 0x80) {
            return Reply::status(sw::INCORRECT_P1P2);
        }
        if command.data.len() != 16 {
            return Reply::status(sw::WRONG_DATA);
        }
        let (puk, new_pin) = command.data.split_at(8);
        if !is_valid_padded_pin(new_pin) {
            return Reply::status(sw::WRONG_DATA);
        }
        let sw = check_puk(state, puk, changed);
        if sw == sw::OK {
            state.pin.copy_from_slice(new_pin);
            state.pin_tries_left = state.pin_tries_max;
            self.pin_verified = false;
            self.pin_always_granted = false;
            *changed = true;
        }
        Reply::status(sw)
    }

    /// GENERAL AUTHENTICATE (§3.2.4): management key authentication with key reference 9B, or a
    /// private-key operation with a slot's key.
    fn general_authenticate(&mut self, state: &mut PivCardState, command: &Command) -> Reply {
        let Some(template) = tlv::parse_single(command.data, 0x7C) else {
            return Reply::status(sw::WRONG_DATA);
        };
        let Ok(children) = tlv::parse_all(template) else {
            return Reply::status(sw::WRONG_DATA);
        };
        if command.p2 == 0x9B {
            return self.management_authenticate(state, command.p1, &children);
        }
        let Some(slot) = PivSlot::from_key_reference(command.p2) else {
            return Reply::status(sw::REFERENCE_NOT_FOUND);
        };
        let Some(key) = state.keys.get(&slot) else {
            return Reply::status(sw::REFERENCE_NOT_FOUND);
        };
        if command.p1 != key.algorithm.identifier() {
            return Reply::status(sw::INCORRECT_P1P2);
        }
        // The response placeholder (82 00) must be there, and one input: a challenge or hash to
        // sign (81), or a peer's public point for key agreement (85).
        if tlv::find(&children, 0x82) != Some(&[]) {
            return Reply::status(sw::WRONG_DATA);
        }
        let allowed = match slot {
            PivSlot::CardAuthentication => true,
            PivSlot::Signature => std::mem::take(&mut self.pin_always_granted),
            PivSlot::Authentication | PivSlot::KeyManagement => self.pin_verified,
        };
        if !allowed {
            return Reply::status(sw::SECURITY_STATUS);
        }
        let result = match (tlv::find(&children, 0x81), tlv::find(&children, 0x85)) {
            (Some(input), None) => private_key_operation(key, input),
            (None, Some(point)) => key_agreement(key, point),
            _ => Err(sw::WRONG_DATA),
        };
        match result {
            Ok(output) => Reply::data(tlv::encode(0x7C, &tlv::encode(0x82, &output))),
            Err(sw) => Reply::status(sw),
        }
    }

    /// Card management key authentication (SP 800-73-4 part 2 Appendix A.1-A.3): mutual
    /// (`80 00` → encrypted witness; `80 witness 81 challenge` → `82 encrypted challenge`) or
    /// external (`81 00` → challenge; `82 encrypted challenge`).
    fn management_authenticate(
        &mut self,
        state: &PivCardState,
        algorithm: u8,
        children: &[tlv::Tlv],
    ) -> Reply {
        // 00 is how older clients (and OpenSC's GET CHALLENGE) name the default 3DES algorithm.
        let requested = match algorithm {
            0x00 => Some(ManagementAlgorithm::TripleDes),
            other => ManagementAlgorithm::from_identifier(other),
        };
        if requested != Some(state.management_algorithm) {
            return Reply::status(sw::INCORRECT_P1P2);
        }
        let algorithm = state.management_algorithm;
        let block = algorithm.block_length();
        let key = &state.management_key;
        let find = |tag| tlv::find(children, tag);
        let pending = self.pending_management.take();
        self.management_authenticated = false;
        match (find(0x80), find(0x81), find(0x82)) {
            (Some([]), None, None) => {
                let witness = random(block);
                match crypt(algorithm, key, &witness, true) {
                    Ok(encrypted) => {
                        self.pending_management = Some(PendingManagement::Witness(witness));
                        Reply::data(tlv::encode(0x7C, &tlv::encode(0x80, &encrypted)))
                    }
                    Err(sw) => Reply::status(sw),
                }
            }
            (Some(witness), Some(challenge), None) if challenge.len() == block => {
                let Some(PendingManagement::Witness(expected)) = pending else {
                    return Reply::status(sw::CONDITIONS_NOT_SATISFIED);
                };
                if witness.len() != expected.len() || !openssl::memcmp::eq(witness, &expected) {
                    return Reply::status(sw::SECURITY_STATUS);
                }
                match crypt(algorithm, key, challenge, true) {
                    Ok(response) => {
                        self.management_authenticated = true;
                        Reply::data(tlv::encode(0x7C, &tlv::encode(0x82, &response)))
                    }
                    Err(sw) => Reply::status(sw),
                }
            }
            (None, Some([]), None) => {
                let challenge = random(block);
                let reply = Reply::data(tlv::encode(0x7C, &tlv::encode(0x81, &challenge)));
                self.pending_management = Some(PendingManagement::Challenge(challenge));
                reply
            }
            (None, None, Some(response)) => {
                let Some(PendingManagement::Challenge(challenge)) = pending else {
                    return Reply::status(sw::CONDITIONS_NOT_SATISFIED);
                };
                match crypt(algorithm, key, &challenge, true) {
                    Ok(expected)
                        if response.len() == expected.len()
                            && openssl::memcmp::eq(response, &expected) =>
                    {
                        self.management_authenticated = true;
                        Reply::status(sw::OK)
                    }
                    Ok(_) => Reply::status(sw::SECURITY_STATUS),
                    Err(sw) => Reply::status(sw),
                }
            }
            _ => Reply::status(sw::WRONG_DATA),
        }
    }

    /// GENERATE ASYMMETRIC KEY PAIR (§3.3.2): `AC { 80 algorithm }` for slot P2; answers the
    /// public key `7F49 { 81 n, 82 e }` (RSA) or `7F49 { 86 point }` (EC).
    fn generate_key_pair(
        &mut self,
        state: &mut PivCardState,
        command: &Command,
        changed: &mut bool,
    ) -> Reply {
        let Some(slot) = PivSlot::from_key_reference(command.p2).filter(|_| command.p1 == 0) else {
            return Reply::status(sw::INCORRECT_P1P2);
        };
        if !self.management_authenticated {
            return Reply::status(sw::SECURITY_STATUS);
        }
        let algorithm = tlv::parse_single(command.data, 0xAC)
            .and_then(|template| tlv::parse_all(template).ok())
            .and_then(|children| match tlv::find(&children, 0x80) {
                Some([identifier]) => PivAlgorithm::from_identifier(*identifier),
                _ => None,
            });
        let Some(algorithm) = algorithm else {
            return Reply::status(sw::WRONG_DATA);
        };
        let key = algorithm.generate();
        let public = match public_key_template(&key) {
            Ok(public) => public,
            Err(sw) => return Reply::status(sw),
        };
        state.keys.insert(slot, SlotKey { algorithm, key });
        *changed = true;
        Reply::data(public)
    }
}

/// The application property template answered to SELECT (SP 800-73-4 part 2 §3.1.1): the PIX,
/// the coexistent tag allocation authority, a label and the supported algorithms. No cipher
/// suite for secure messaging (27, 2E) is announced: this card does not do secure messaging.
fn application_property_template() -> Vec<u8> {
    let algorithms: Vec<u8> = [0x03u8, 0x08, 0x0A, 0x0C, 0x07, 0x11, 0x14]
        .iter()
        .flat_map(|&id| tlv::encode(0x80, &[id]))
        .chain(tlv::encode(0x06, &[]))
        .collect();
    let body = [
        tlv::encode(0x4F, &PIV_AID[5..]),
        tlv::encode(0x79, &tlv::encode(0x4F, &PIV_AID[..5])),
        tlv::encode(0x50, b"imza virtual PIV"),
        tlv::encode(0xAC, &algorithms),
    ]
    .concat();
    tlv::encode(0x61, &body)
}

/// The tag a `5C` tag list names, when it is one PIV data object: 7E (discovery), 7F61, or a
/// three-byte tag in 5FC1xx (PIV) or 5FFFxx (vendor) space.
fn object_tag(tag_list: &[u8]) -> Option<u32> {
    match tag_list {
        [0x7E] => Some(0x7E),
        [0x7F, 0x61] => Some(0x7F61),
        [0x5F, middle @ (0xC1 | 0xFF), low] => {
            Some(0x5F0000 | (u32::from(*middle) << 8) | u32::from(*low))
        }
        _ => None,
    }
}

fn check_pin(state: &mut PivCardState, presented: &[u8], changed: &mut bool) -> u16 {
    check_reference_data(
        &state.pin[..],
        &mut state.pin_tries_left,
        state.pin_tries_max,
        presented,
        changed,
    )
}

fn check_puk(state: &mut PivCardState, presented: &[u8], changed: &mut bool) -> u16 {
    check_reference_data(
        &state.puk[..],
        &mut state.puk_tries_left,
        state.puk_tries_max,
        presented,
        changed,
    )
}

/// Compares a presented PIN or PUK in constant time and keeps the retry counter: 9000 and the
/// counter back to its maximum, 63Cx with x tries left, 6983 when blocked.
fn check_reference_data(
    reference: &[u8],
    tries_left: &mut u8,
    tries_max: u8,
    presented: &[u8],
    changed: &mut bool,
) -> u16 {
    if *tries_left == 0 {
        return sw::AUTH_BLOCKED;
    }
    if presented.len() == reference.len() && openssl::memcmp::eq(presented, reference) {
        if *tries_left != tries_max {
            *tries_left = tries_max;
            *changed = true;
        }
        sw::OK
    } else {
        *tries_left -= 1;
        *changed = true;
        0x63C0 | u16::from(*tries_left)
    }
}

fn random(length: usize) -> Zeroizing<Vec<u8>> {
    let mut bytes = Zeroizing::new(vec![0u8; length]);
    // OpenSSL's generator failing is not something a card can answer: an empty value makes the
    // comparison later fail instead.
    if openssl::rand::rand_bytes(&mut bytes).is_err() {
        bytes.clear();
    }
    bytes
}

/// One ECB pass of the management key over whole blocks.
fn crypt(
    algorithm: ManagementAlgorithm,
    key: &[u8],
    input: &[u8],
    encrypt: bool,
) -> Result<Zeroizing<Vec<u8>>, u16> {
    let block = algorithm.block_length();
    if input.is_empty() || !input.len().is_multiple_of(block) {
        return Err(sw::WRONG_DATA);
    }
    let mode = if encrypt {
        openssl::symm::Mode::Encrypt
    } else {
        openssl::symm::Mode::Decrypt
    };
    let mut crypter =
        Crypter::new(algorithm.ecb_cipher(), mode, key, None).map_err(|_| sw::UNKNOWN)?;
    crypter.pad(false);
    let mut output = Zeroizing::new(vec![0u8; input.len() + block]);
    let mut written = crypter
        .update(input, &mut output)
        .map_err(|_| sw::UNKNOWN)?;
    written += crypter
        .finalize(&mut output[written..])
        .map_err(|_| sw::UNKNOWN)?;
    output.truncate(written);
    Ok(output)
}

/// The private-key operation of GENERAL AUTHENTICATE: ECDSA over the given hash (answered as a
/// DER `ECDSA-Sig-Value`, as PIV cards do), or the raw RSA private operation on a block of the
/// modulus length (the client did the padding).
fn private_key_operation(key: &SlotKey, input: &[u8]) -> Result<Vec<u8>, u16> {
    match key.algorithm {
        PivAlgorithm::EcP256 | PivAlgorithm::EcP384 => {
            if input.is_empty() || input.len() > 64 {
                return Err(sw::WRONG_DATA);
            }
            let ec = key.key.ec_key().map_err(|_| sw::UNKNOWN)?;
            EcdsaSig::sign(input, &ec)
                .and_then(|signature| signature.to_der())
                .map_err(|_| sw::UNKNOWN)
        }
        PivAlgorithm::Rsa2048 => {
            let rsa = key.key.rsa().map_err(|_| sw::UNKNOWN)?;
            let size = rsa.size() as usize;
            if input.len() != size {
                return Err(sw::WRONG_DATA);
            }
            let value = BigNum::from_slice(input).map_err(|_| sw::UNKNOWN)?;
            if value >= *rsa.n() {
                return Err(sw::WRONG_DATA);
            }
            let mut output = vec![0u8; size];
            let written = rsa
                .private_decrypt(input, &mut output, Padding::NONE)
                .map_err(|_| sw::UNKNOWN)?;
            output.truncate(written);
            Ok(output)
        }
    }
}

/// ECDH with the slot's EC key and a peer's uncompressed point (§3.2.4 key establishment):
/// answers the shared secret.
fn key_agreement(key: &SlotKey, point: &[u8]) -> Result<Vec<u8>, u16> {
    let ec = key.key.ec_key().map_err(|_| sw::CONDITIONS_NOT_SATISFIED)?;
    let group = ec.group();
    let mut context = openssl::bn::BigNumContext::new().map_err(|_| sw::UNKNOWN)?;
    let peer_point = EcPoint::from_bytes(group, point, &mut context).map_err(|_| sw::WRONG_DATA)?;
    let peer: PKey<Public> = openssl::ec::EcKey::from_public_key(group, &peer_point)
        .and_then(PKey::from_ec_key)
        .map_err(|_| sw::WRONG_DATA)?;
    let mut deriver = Deriver::new(&key.key).map_err(|_| sw::UNKNOWN)?;
    deriver.set_peer(&peer).map_err(|_| sw::WRONG_DATA)?;
    deriver.derive_to_vec().map_err(|_| sw::UNKNOWN)
}

/// The public key of a freshly generated key as `7F49` (SP 800-73-4 part 2 Table 9).
fn public_key_template(key: &PKey<openssl::pkey::Private>) -> Result<Vec<u8>, u16> {
    let body = if let Ok(rsa) = key.rsa() {
        [
            tlv::encode(0x81, &rsa.n().to_vec()),
            tlv::encode(0x82, &rsa.e().to_vec()),
        ]
        .concat()
    } else {
        let ec = key.ec_key().map_err(|_| sw::UNKNOWN)?;
        let mut context = openssl::bn::BigNumContext::new().map_err(|_| sw::UNKNOWN)?;
        let point = ec
            .public_key()
            .to_bytes(
                ec.group(),
                openssl::ec::PointConversionForm::UNCOMPRESSED,
                &mut context,
            )
            .map_err(|_| sw::UNKNOWN)?;
        tlv::encode(0x86, &point)
    };
    Ok(tlv::encode(0x7F49, &body))
}
