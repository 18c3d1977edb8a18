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
        // Bytes after the template are ignored: OpenSC 0.23's external authentication sends
        // uninitialised bytes after it (see `management_authenticate`).
        let template = match tlv::parse_one(command.data) {
            Ok((template, _)) if template.tag == 0x7C => template.value,
            _ => return Reply::status(sw::WRONG_DATA),
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
                let mut answer = tlv::encode(0x7C, &tlv::encode(0x81, &challenge));
                // OpenSC 0.23's external authentication (`piv-tool -A A:9B:03`) sizes its answer
                // as this response's length and then insists that length equals
                // len(7C{82 c}) + len(82 c): 6 + 2c bytes for a c-byte challenge. c + 2 bytes of
                // ISO/IEC 7816-4 §5.2 padding (00) after the template make it so; parsers that
                // read the 7C template are not affected.
                answer.resize(answer.len() + challenge.len() + 2, 0x00);
                self.pending_management = Some(PendingManagement::Challenge(challenge));
                Reply::data(answer)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::card::state::DEFAULT_MANAGEMENT_KEY;
    use openssl::hash::MessageDigest;
    use openssl::sign::Verifier;

    /// Sends `apdu` and returns (data, SW).
    fn send(session: &mut PivSession, state: &mut PivCardState, apdu: &[u8]) -> (Vec<u8>, u16) {
        let mut response = session.process(state, apdu).response;
        let sw2 = response.pop().unwrap();
        let sw1 = response.pop().unwrap();
        (response, u16::from_be_bytes([sw1, sw2]))
    }

    /// Sends `apdu` and collects the whole answer through GET RESPONSE.
    fn transmit(session: &mut PivSession, state: &mut PivCardState, apdu: &[u8]) -> (Vec<u8>, u16) {
        let (mut data, mut sw) = send(session, state, apdu);
        let mut rounds = 0;
        while sw >> 8 == 0x61 {
            rounds += 1;
            assert!(rounds < 100);
            let (more, next) = send(session, state, &[0x00, 0xC0, 0x00, 0x00, sw as u8]);
            data.extend(more);
            sw = next;
        }
        (data, sw)
    }

    fn apdu(cla: u8, ins: u8, p1: u8, p2: u8, data: &[u8]) -> Vec<u8> {
        let mut out = vec![cla, ins, p1, p2, data.len() as u8];
        out.extend_from_slice(data);
        out.push(0x00);
        out
    }

    fn verify_pin(pin: &[u8]) -> Vec<u8> {
        let mut padded = [0xFFu8; 8];
        padded[..pin.len()].copy_from_slice(pin);
        apdu(0x00, 0x20, 0x00, 0x80, &padded)
    }

    fn ecb(algorithm: ManagementAlgorithm, key: &[u8], input: &[u8], encrypt: bool) -> Vec<u8> {
        crypt(algorithm, key, input, encrypt).unwrap().to_vec()
    }

    /// Mutual authentication as yubico-piv-tool and `piv-tool -A M:9B:xx` do it.
    fn mutual_auth(
        session: &mut PivSession,
        state: &mut PivCardState,
        algorithm: ManagementAlgorithm,
        key: &[u8],
    ) -> u16 {
        let id = algorithm.identifier();
        let request = tlv::encode(0x7C, &tlv::encode(0x80, &[]));
        let (data, sw) = send(session, state, &apdu(0x00, 0x87, id, 0x9B, &request));
        assert_eq!(sw, sw::OK);
        let template = tlv::parse_single(&data, 0x7C).unwrap();
        let witness = tlv::parse_single(template, 0x80).unwrap();
        let challenge = vec![0x5A; algorithm.block_length()];
        let answer = [
            tlv::encode(0x80, &ecb(algorithm, key, witness, false)),
            tlv::encode(0x81, &challenge),
        ]
        .concat();
        let (data, sw) = send(
            session,
            state,
            &apdu(0x00, 0x87, id, 0x9B, &tlv::encode(0x7C, &answer)),
        );
        if sw == sw::OK {
            let template = tlv::parse_single(&data, 0x7C).unwrap();
            let response = tlv::parse_single(template, 0x82).unwrap();
            assert_eq!(response, ecb(algorithm, key, &challenge, true));
        }
        sw
    }

    /// External authentication as `piv-tool -A A:9B:03` (OpenSC 0.23) does it, trailing bytes
    /// included.
    fn external_auth(session: &mut PivSession, state: &mut PivCardState, key: &[u8]) -> u16 {
        let algorithm = ManagementAlgorithm::TripleDes;
        let request = tlv::encode(0x7C, &tlv::encode(0x81, &[]));
        let (data, sw) = send(session, state, &apdu(0x00, 0x87, 0x03, 0x9B, &request));
        assert_eq!(sw, sw::OK);
        assert_eq!(data.len(), 22, "the length OpenSC 0.23 expects");
        let (template, _padding) = tlv::parse_one(&data).unwrap();
        let challenge = tlv::parse_single(template.value, 0x81).unwrap();
        let mut answer = tlv::encode(
            0x7C,
            &tlv::encode(0x82, &ecb(algorithm, key, challenge, true)),
        );
        answer.extend_from_slice(&[0xEE; 10]);
        send(session, state, &apdu(0x00, 0x87, 0x03, 0x9B, &answer)).1
    }

    fn select(session: &mut PivSession, state: &mut PivCardState) {
        let (data, sw) = send(session, state, &apdu(0x00, 0xA4, 0x04, 0x00, &PIV_AID[..9]));
        assert_eq!(sw, sw::OK);
        assert_eq!(data.first(), Some(&0x61));
    }

    #[test]
    fn select_matches_the_piv_aid_and_its_prefixes_only() {
        let mut state = PivCardState::new();
        let mut session = PivSession::new();
        select(&mut session, &mut state);
        for aid in [&PIV_AID[..], &PIV_AID[..5]] {
            assert_eq!(
                send(&mut session, &mut state, &apdu(0, 0xA4, 4, 0, aid)).1,
                sw::OK
            );
        }
        let other = [0xA0, 0x00, 0x00, 0x05, 0x27, 0x20, 0x01];
        assert_eq!(
            send(&mut session, &mut state, &apdu(0, 0xA4, 4, 0, &other)).1,
            sw::NOT_FOUND
        );
        assert_eq!(
            send(
                &mut session,
                &mut state,
                &apdu(0, 0xA4, 4, 0, &PIV_AID[..4])
            )
            .1,
            sw::NOT_FOUND
        );
        assert_eq!(
            send(&mut session, &mut state, &[0x00, 0x99, 0, 0]).1,
            sw::INS_NOT_SUPPORTED
        );
        assert_eq!(
            send(&mut session, &mut state, &[0x80, 0xA4, 4, 0]).1,
            sw::CLA_NOT_SUPPORTED
        );
    }

    #[test]
    fn get_data_answers_objects_and_6a82_for_absent_ones() {
        let mut state = PivCardState::new();
        let mut session = PivSession::new();
        let get = |tag: &[u8]| apdu(0, 0xCB, 0x3F, 0xFF, &tlv::encode(0x5C, tag));
        let (chuid, sw) = send(&mut session, &mut state, &get(&[0x5F, 0xC1, 0x02]));
        assert_eq!(sw, sw::OK);
        assert_eq!(chuid, state.objects[&0x5FC102]);
        let (discovery, sw) = send(&mut session, &mut state, &get(&[0x7E]));
        assert_eq!((discovery.as_slice(), sw), (&DISCOVERY_OBJECT[..], sw::OK));
        assert_eq!(
            send(&mut session, &mut state, &get(&[0x5F, 0xC1, 0x0A])).1,
            sw::NOT_FOUND
        );
        assert_eq!(
            send(&mut session, &mut state, &get(&[0x5F, 0xC1, 0x0C])).1,
            sw::NOT_FOUND
        );
        assert_eq!(
            send(&mut session, &mut state, &get(&[0x01, 0x02])).1,
            sw::WRONG_DATA
        );
        assert_eq!(
            send(
                &mut session,
                &mut state,
                &apdu(0, 0xCB, 0x00, 0x00, &tlv::encode(0x5C, &[0x7E]))
            )
            .1,
            sw::INCORRECT_P1P2
        );
    }

    #[test]
    fn verify_counts_down_blocks_and_the_puk_unblocks() {
        let mut state = PivCardState::new();
        let mut session = PivSession::new();
        let status = [0x00, 0x20, 0x00, 0x80];
        assert_eq!(send(&mut session, &mut state, &status).1, 0x63C3);
        assert_eq!(
            send(&mut session, &mut state, &verify_pin(b"654321")).1,
            0x63C2
        );
        assert_eq!(
            send(&mut session, &mut state, &verify_pin(b"123456")).1,
            sw::OK
        );
        assert_eq!(
            state.pin_tries_left(),
            3,
            "a correct PIN resets the counter"
        );
        assert_eq!(send(&mut session, &mut state, &status).1, sw::OK);
        for expected in [0x63C2, 0x63C1, 0x63C0] {
            assert_eq!(
                send(&mut session, &mut state, &verify_pin(b"000000")).1,
                expected
            );
        }
        assert_eq!(send(&mut session, &mut state, &status).1, sw::AUTH_BLOCKED);
        assert_eq!(
            send(&mut session, &mut state, &verify_pin(b"123456")).1,
            sw::AUTH_BLOCKED
        );
        assert!(!session.is_pin_verified());
        // Wrong PUK counts down too; the right one sets a new PIN and unblocks.
        let unblock = |puk: &[u8], pin: &[u8]| {
            let mut data = [0xFFu8; 16];
            data[..puk.len()].copy_from_slice(puk);
            data[8..8 + pin.len()].copy_from_slice(pin);
            apdu(0x00, 0x2C, 0x00, 0x80, &data)
        };
        assert_eq!(
            send(&mut session, &mut state, &unblock(b"87654321", b"111111")).1,
            0x63C2
        );
        assert_eq!(
            send(&mut session, &mut state, &unblock(b"12345678", b"11a111")).1,
            sw::WRONG_DATA
        );
        assert_eq!(
            send(&mut session, &mut state, &unblock(b"12345678", b"111111")).1,
            sw::OK
        );
        assert_eq!((state.pin_tries_left(), state.puk_tries_left()), (3, 3));
        assert_eq!(
            send(&mut session, &mut state, &verify_pin(b"111111")).1,
            sw::OK
        );
        // CHANGE REFERENCE DATA with the current PIN.
        let mut change = [0xFFu8; 16];
        change[..6].copy_from_slice(b"111111");
        change[8..16].copy_from_slice(b"24682468");
        assert_eq!(
            send(&mut session, &mut state, &apdu(0, 0x24, 0, 0x80, &change)).1,
            sw::OK
        );
        assert_eq!(
            send(&mut session, &mut state, &verify_pin(b"24682468")).1,
            sw::OK
        );
        assert_eq!(
            send(&mut session, &mut state, &verify_pin(b"1234")).1,
            0x63C2
        );
        assert_eq!(
            send(&mut session, &mut state, &apdu(0, 0x20, 0, 0x80, b"12")).1,
            sw::WRONG_DATA
        );
        session.reset();
        assert_eq!(
            send(&mut session, &mut state, &status).1,
            0x63C2,
            "power cycle forgets the PIN"
        );
    }

    #[test]
    fn management_key_authenticates_mutually_and_externally_and_refuses_a_wrong_key() {
        let mut state = PivCardState::new();
        let mut session = PivSession::new();
        let triple_des = ManagementAlgorithm::TripleDes;
        let mut wrong = DEFAULT_MANAGEMENT_KEY;
        wrong[0] ^= 0x02;
        assert_eq!(
            mutual_auth(&mut session, &mut state, triple_des, &wrong),
            sw::SECURITY_STATUS
        );
        assert!(!session.management_authenticated);
        assert_eq!(
            external_auth(&mut session, &mut state, &wrong),
            sw::SECURITY_STATUS
        );
        assert_eq!(
            mutual_auth(
                &mut session,
                &mut state,
                triple_des,
                &DEFAULT_MANAGEMENT_KEY
            ),
            sw::OK
        );
        assert!(session.management_authenticated);
        session.reset();
        assert_eq!(
            external_auth(&mut session, &mut state, &DEFAULT_MANAGEMENT_KEY),
            sw::OK
        );
        assert!(session.management_authenticated);
        // A response without a challenge handed out first is refused.
        let mut fresh = PivSession::new();
        let answer = tlv::encode(0x7C, &tlv::encode(0x82, &[0u8; 8]));
        assert_eq!(
            send(&mut fresh, &mut state, &apdu(0, 0x87, 3, 0x9B, &answer)).1,
            sw::CONDITIONS_NOT_SATISFIED
        );
        // AES keys, and the algorithm in P1 must be the key's.
        for (algorithm, length) in [
            (ManagementAlgorithm::Aes128, 16),
            (ManagementAlgorithm::Aes192, 24),
            (ManagementAlgorithm::Aes256, 32),
        ] {
            let key: Vec<u8> = (0..length as u8).collect();
            state.set_management_key(algorithm, &key);
            let mut session = PivSession::new();
            assert_eq!(
                mutual_auth(&mut session, &mut state, algorithm, &key),
                sw::OK
            );
            let request = tlv::encode(0x7C, &tlv::encode(0x80, &[]));
            assert_eq!(
                send(&mut session, &mut state, &apdu(0, 0x87, 3, 0x9B, &request)).1,
                sw::INCORRECT_P1P2
            );
        }
    }

    #[test]
    fn put_data_and_key_generation_need_the_management_key() {
        let mut state = PivCardState::new();
        let mut session = PivSession::new();
        let certificate = vec![0x30; 1500];
        state.set_certificate(PivSlot::KeyManagement, &certificate);
        let object = state.objects.remove(&0x5FC10B).unwrap();
        let put = [tlv::encode(0x5C, &[0x5F, 0xC1, 0x0B]), object.clone()].concat();
        let generate = apdu(
            0,
            0x47,
            0,
            0x9D,
            &tlv::encode(0xAC, &tlv::encode(0x80, &[0x11])),
        );
        assert_eq!(
            send(&mut session, &mut state, &generate).1,
            sw::SECURITY_STATUS
        );
        // Command chaining in 255-byte parts, as OpenSC sends it.
        let chained = |session: &mut PivSession, state: &mut PivCardState| {
            let parts: Vec<&[u8]> = put.chunks(255).collect();
            let mut last = 0;
            for (i, part) in parts.iter().enumerate() {
                let cla = if i + 1 < parts.len() { 0x10 } else { 0x00 };
                let mut command = vec![cla, 0xDB, 0x3F, 0xFF, part.len() as u8];
                command.extend_from_slice(part);
                last = send(session, state, &command).1;
                if cla == 0x10 {
                    assert_eq!(last, sw::OK);
                }
            }
            last
        };
        assert_eq!(chained(&mut session, &mut state), sw::SECURITY_STATUS);
        assert_eq!(state.certificate(PivSlot::KeyManagement), None);
        assert_eq!(
            mutual_auth(
                &mut session,
                &mut state,
                ManagementAlgorithm::TripleDes,
                &DEFAULT_MANAGEMENT_KEY
            ),
            sw::OK
        );
        assert_eq!(chained(&mut session, &mut state), sw::OK);
        assert_eq!(state.certificate(PivSlot::KeyManagement), Some(certificate));
        // GET DATA answers it in 256-byte parts through GET RESPONSE.
        let get = apdu(0, 0xCB, 0x3F, 0xFF, &tlv::encode(0x5C, &[0x5F, 0xC1, 0x0B]));
        let (first, sw) = send(&mut session, &mut state, &get);
        assert_eq!((first.len(), sw), (256, 0x6100));
        assert_eq!(transmit(&mut session, &mut state, &get), (object, sw::OK));
        // Key generation answers the public key of the key it keeps.
        let (public, sw) = transmit(&mut session, &mut state, &generate);
        assert_eq!(sw, sw::OK);
        let point = tlv::parse_single(tlv::parse_single(&public, 0x7F49).unwrap(), 0x86).unwrap();
        let ec = state.keys[&PivSlot::KeyManagement].key.ec_key().unwrap();
        let mut context = openssl::bn::BigNumContext::new().unwrap();
        let expected = ec
            .public_key()
            .to_bytes(
                ec.group(),
                openssl::ec::PointConversionForm::UNCOMPRESSED,
                &mut context,
            )
            .unwrap();
        assert_eq!(point, expected);
        let rsa = apdu(
            0,
            0x47,
            0,
            0x9A,
            &tlv::encode(0xAC, &tlv::encode(0x80, &[0x07])),
        );
        let (public, sw) = transmit(&mut session, &mut state, &rsa);
        assert_eq!(sw, sw::OK);
        let children = tlv::parse_all(tlv::parse_single(&public, 0x7F49).unwrap()).unwrap();
        let modulus = tlv::find(&children, 0x81).unwrap();
        assert_eq!(
            modulus,
            state.keys[&PivSlot::Authentication]
                .key
                .rsa()
                .unwrap()
                .n()
                .to_vec()
        );
        assert_eq!(tlv::find(&children, 0x82), Some(&[1, 0, 1][..]));
        let unknown = apdu(
            0,
            0x47,
            0,
            0x9A,
            &tlv::encode(0xAC, &tlv::encode(0x80, &[0x99])),
        );
        assert_eq!(send(&mut session, &mut state, &unknown).1, sw::WRONG_DATA);
        session.reset();
        assert_eq!(
            send(&mut session, &mut state, &generate).1,
            sw::SECURITY_STATUS,
            "reset forgets it"
        );
    }

    fn sign_request(input: &[u8]) -> Vec<u8> {
        tlv::encode(
            0x7C,
            &[tlv::encode(0x82, &[]), tlv::encode(0x81, input)].concat(),
        )
    }

    #[test]
    fn signature_key_needs_the_pin_right_before_each_signature() {
        let mut state = PivCardState::new();
        let spki = state.generate_key(PivSlot::Signature, PivAlgorithm::EcP256);
        let public = PKey::public_key_from_der(&spki).unwrap();
        let mut session = PivSession::new();
        let digest = openssl::sha::sha256(b"document");
        let sign = apdu(0, 0x87, 0x11, 0x9C, &sign_request(&digest));
        assert_eq!(send(&mut session, &mut state, &sign).1, sw::SECURITY_STATUS);
        assert_eq!(
            send(&mut session, &mut state, &verify_pin(b"123456")).1,
            sw::OK
        );
        let (data, sw) = send(&mut session, &mut state, &sign);
        assert_eq!(sw, sw::OK);
        let signature = tlv::parse_single(tlv::parse_single(&data, 0x7C).unwrap(), 0x82).unwrap();
        let signature = EcdsaSig::from_der(signature).unwrap();
        assert!(signature
            .verify(&digest, &public.ec_key().unwrap())
            .unwrap());
        assert_eq!(
            send(&mut session, &mut state, &sign).1,
            sw::SECURITY_STATUS,
            "the PIN is used up"
        );
        assert_eq!(
            send(&mut session, &mut state, &verify_pin(b"123456")).1,
            sw::OK
        );
        let wrong_algorithm = apdu(0, 0x87, 0x07, 0x9C, &sign_request(&digest));
        assert_eq!(
            send(&mut session, &mut state, &wrong_algorithm).1,
            sw::INCORRECT_P1P2
        );
        let empty_slot = apdu(0, 0x87, 0x11, 0x9A, &sign_request(&digest));
        assert_eq!(
            send(&mut session, &mut state, &empty_slot).1,
            sw::REFERENCE_NOT_FOUND
        );
    }

    #[test]
    fn rsa_key_does_the_raw_private_operation_on_a_padded_block() {
        let mut state = PivCardState::new();
        let spki = state.generate_key(PivSlot::Authentication, PivAlgorithm::Rsa2048);
        let public = PKey::public_key_from_der(&spki).unwrap();
        let mut session = PivSession::new();
        assert_eq!(
            send(&mut session, &mut state, &verify_pin(b"123456")).1,
            sw::OK
        );
        // EMSA-PKCS1-v1_5 for SHA-256, built as OpenSC builds it before sending it.
        let digest_info_prefix = hex::decode("3031300d060960864801650304020105000420").unwrap();
        let digest = openssl::sha::sha256(b"document");
        let mut block = vec![0x00, 0x01];
        block.resize(256 - digest_info_prefix.len() - digest.len() - 1, 0xFF);
        block.push(0x00);
        block.extend_from_slice(&digest_info_prefix);
        block.extend_from_slice(&digest);
        // 264 bytes of answer: chained with 61xx; the 256-byte input goes with command chaining.
        let request = sign_request(&block);
        let mut first = vec![0x10, 0x87, 0x07, 0x9A, 0xFF];
        first.extend_from_slice(&request[..255]);
        assert_eq!(send(&mut session, &mut state, &first).1, sw::OK);
        let (data, sw) = transmit(
            &mut session,
            &mut state,
            &apdu(0, 0x87, 0x07, 0x9A, &request[255..]),
        );
        assert_eq!(sw, sw::OK);
        let signature = tlv::parse_single(tlv::parse_single(&data, 0x7C).unwrap(), 0x82).unwrap();
        let mut verifier = Verifier::new(MessageDigest::sha256(), &public).unwrap();
        verifier.update(b"document").unwrap();
        assert!(verifier.verify(signature).unwrap());
        // A block of the wrong length is refused.
        let (_, sw) = transmit(
            &mut session,
            &mut state,
            &apdu(0, 0x87, 0x07, 0x9A, &sign_request(&block[..100])),
        );
        assert_eq!(sw, sw::WRONG_DATA);
    }

    #[test]
    fn key_management_key_agrees_a_secret_with_ecdh() {
        let mut state = PivCardState::new();
        let spki = state.generate_key(PivSlot::KeyManagement, PivAlgorithm::EcP256);
        let card_public = PKey::public_key_from_der(&spki).unwrap();
        let peer = PivAlgorithm::EcP256.generate();
        let ec = peer.ec_key().unwrap();
        let mut context = openssl::bn::BigNumContext::new().unwrap();
        let point = ec
            .public_key()
            .to_bytes(
                ec.group(),
                openssl::ec::PointConversionForm::UNCOMPRESSED,
                &mut context,
            )
            .unwrap();
        let mut session = PivSession::new();
        assert_eq!(
            send(&mut session, &mut state, &verify_pin(b"123456")).1,
            sw::OK
        );
        let request = tlv::encode(
            0x7C,
            &[tlv::encode(0x82, &[]), tlv::encode(0x85, &point)].concat(),
        );
        let (data, sw) = send(
            &mut session,
            &mut state,
            &apdu(0, 0x87, 0x11, 0x9D, &request),
        );
        assert_eq!(sw, sw::OK);
        let secret = tlv::parse_single(tlv::parse_single(&data, 0x7C).unwrap(), 0x82).unwrap();
        let mut deriver = Deriver::new(&peer).unwrap();
        deriver.set_peer(&card_public).unwrap();
        assert_eq!(secret, deriver.derive_to_vec().unwrap());
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_always_get_a_status_word() {
        let mut state = PivCardState::new();
        state.generate_key(PivSlot::Signature, PivAlgorithm::EcP256);
        let mut session = PivSession::new();
        // A deterministic stream of lengths and bytes, biased towards PIV's CLA and INS values.
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let instructions = [0xA4, 0xCB, 0xDB, 0x20, 0x24, 0x2C, 0x87, 0x47, 0xC0, 0x00];
        for _ in 0..20_000 {
            let length = (next() % 300) as usize;
            let mut apdu: Vec<u8> = (0..length).map(|_| next() as u8).collect();
            if let Some(cla) = apdu.get_mut(0) {
                *cla &= 0x10;
            }
            if let Some(ins) = apdu.get_mut(1) {
                *ins = instructions[(next() % instructions.len() as u64) as usize];
            }
            if apdu.len() > 6 && next() % 2 == 0 {
                apdu[5] = 0x7C;
            }
            let response = session.process(&mut state, &apdu).response;
            assert!(response.len() >= 2);
            assert!(response.len() <= 258);
        }
    }
}
