//! Command and response APDUs over PC/SC (ISO/IEC 7816-4 §5): short APDUs, command chaining for
//! inputs over 255 bytes (CLA bit 0x10, §5.1.1.1), GET RESPONSE for answers announced by `61xx`
//! and one retry on `6Cxx` (wrong Le), as SP 800-73-4 part 2 §3 expects of a PIV client.

use zeroize::Zeroizing;

use crate::reader::{exchange_error, lost_card};
use crate::CardError;

/// The most a card may answer to one command, GET RESPONSE rounds included: far above any PIV
/// object (a certificate container is a few KiB), far below anything that hurts.
pub const MAX_RESPONSE: usize = 64 * 1024;

/// GET RESPONSE rounds allowed for one command: enough for [`MAX_RESPONSE`] in 256-byte pieces
/// (a card announcing fewer bytes per round runs into the cap on size or on rounds).
const MAX_GET_RESPONSE_ROUNDS: usize = MAX_RESPONSE / 256 + 1;

const INS_GET_RESPONSE: u8 = 0xC0;
const CLA_CHAINING: u8 = 0x10;

/// Where APDUs go: a PC/SC card (inside a transaction), or a script in the unit tests.
pub trait Transmit {
    /// Sends one command APDU and returns the raw response (data and status word).
    fn transmit(&self, apdu: &[u8]) -> Result<Vec<u8>, pcsc::Error>;
}

impl Transmit for pcsc::Card {
    fn transmit(&self, apdu: &[u8]) -> Result<Vec<u8>, pcsc::Error> {
        let mut buffer = Zeroizing::new(vec![0u8; pcsc::MAX_BUFFER_SIZE_EXTENDED]);
        let response = pcsc::Card::transmit(self, apdu, &mut buffer)?;
        Ok(response.to_vec())
    }
}

/// A response: data (possibly assembled from several GET RESPONSE rounds) and the final status.
#[derive(Debug)]
pub struct Response {
    pub data: Vec<u8>,
    pub sw: u16,
}

/// Exchanges APDUs with a card inside a PC/SC transaction; knows the reader and the operation
/// for the errors it makes.
pub struct Io<'a> {
    card: &'a dyn Transmit,
    reader: &'a str,
    operation: &'a str,
}

impl<'a> Io<'a> {
    pub fn new(card: &'a dyn Transmit, reader: &'a str, operation: &'a str) -> Self {
        Io {
            card,
            reader,
            operation,
        }
    }

    pub fn reader(&self) -> &str {
        self.reader
    }

    /// Sends one command (chained when `data` exceeds 255 bytes), with `Le = 00` when an answer
    /// is expected, and collects the whole answer.
    pub fn command(
        &self,
        ins: u8,
        p1: u8,
        p2: u8,
        data: &[u8],
        expect_data: bool,
    ) -> Result<Response, CardError> {
        let mut chunks: Vec<&[u8]> = data.chunks(255).collect();
        if chunks.is_empty() {
            chunks.push(&[]);
        }
        let last = chunks.len() - 1;
        for (i, chunk) in chunks.into_iter().enumerate() {
            let is_last = i == last;
            let cla = if is_last { 0x00 } else { CLA_CHAINING };
            // The command may hold a PIN or a key: wiped when dropped.
            let mut apdu = Zeroizing::new(Vec::with_capacity(chunk.len() + 6));
            apdu.extend_from_slice(&[cla, ins, p1, p2]);
            if !chunk.is_empty() {
                apdu.push(chunk.len() as u8);
                apdu.extend_from_slice(chunk);
            }
            if is_last && expect_data {
                apdu.push(0x00);
            }
            let (mut body, mut sw) = self.transmit(&apdu)?;
            if !is_last {
                if sw != 0x9000 {
                    // The card refused a link of the chain: its status is the answer.
                    return Ok(Response { data: body, sw });
                }
                continue;
            }
            if sw >> 8 == 0x6C && expect_data {
                // Wrong Le: send the same command again with the length the card asks for.
                if let Some(le) = apdu.last_mut() {
                    *le = (sw & 0xFF) as u8;
                }
                (body, sw) = self.transmit(&apdu)?;
            }
            return self.collect(body, sw);
        }
        Err(self.bad("no command was sent"))
    }

    /// Follows `61xx` with GET RESPONSE until the card has said everything, within bounds.
    fn collect(&self, mut data: Vec<u8>, mut sw: u16) -> Result<Response, CardError> {
        let mut rounds = 0;
        while sw >> 8 == 0x61 {
            rounds += 1;
            if rounds > MAX_GET_RESPONSE_ROUNDS {
                return Err(self.bad(format!(
                    "still announcing more data after {MAX_GET_RESPONSE_ROUNDS} GET RESPONSE rounds"
                )));
            }
            let (more, next) =
                self.transmit(&[0x00, INS_GET_RESPONSE, 0x00, 0x00, (sw & 0xFF) as u8])?;
            data.extend_from_slice(&more);
            if data.len() > MAX_RESPONSE {
                return Err(self.bad(format!("answer longer than {MAX_RESPONSE} bytes")));
            }
            sw = next;
        }
        Ok(Response { data, sw })
    }

    /// One SCardTransmit: the response split into data and status word.
    fn transmit(&self, apdu: &[u8]) -> Result<(Vec<u8>, u16), CardError> {
        let response = self
            .card
            .transmit(apdu)
            .map_err(|e| exchange_error(e, self.reader, self.operation))?;
        match response.as_slice() {
            [data @ .., sw1, sw2] => Ok((data.to_vec(), u16::from_be_bytes([*sw1, *sw2]))),
            // vpcd answers nothing when the card's connection drops mid-command; a real reader
            // says "removed", but a short answer is checked the same way either way.
            _ => Err(lost_card(self.reader, self.operation).unwrap_or_else(|| {
                self.bad(format!(
                    "a response of {} bytes has no status word",
                    response.len()
                ))
            })),
        }
    }

    /// The data of a response with status 9000, or the card's refusal.
    pub fn ok(&self, response: Response) -> Result<Vec<u8>, CardError> {
        if response.sw == 0x9000 {
            Ok(response.data)
        } else {
            Err(self.status_error(response.sw))
        }
    }

    /// The card refused the operation with `sw`.
    pub fn status_error(&self, sw: u16) -> CardError {
        CardError::CardStatus {
            reader: self.reader.to_string(),
            operation: self.operation.to_string(),
            sw,
            meaning: status_meaning(sw),
        }
    }

    /// The card's answer to the operation is malformed.
    pub fn bad(&self, reason: impl ToString) -> CardError {
        CardError::BadResponse {
            operation: format!("{} (reader {:?})", self.operation, self.reader),
            reason: reason.to_string(),
        }
    }
}

/// What a status word means, in the words of ISO/IEC 7816-4 §5.1.3 and SP 800-73-4 part 2
/// Table 6, with the PIV reading where it helps.
pub fn status_meaning(sw: u16) -> String {
    let fixed = match sw {
        0x9000 => "success",
        0x6281 => "part of the returned data may be corrupted",
        0x6300 => "verification failed",
        0x6581 => "memory failure",
        0x6700 => "wrong length",
        0x6881 => "logical channel not supported",
        0x6882 => "secure messaging not supported",
        0x6883 => "last command of the chain expected",
        0x6884 => "command chaining not supported",
        0x6982 => {
            "security status not satisfied: the PIN or the management key must be presented first"
        }
        0x6983 => "authentication method blocked",
        0x6984 => "reference data not usable",
        0x6985 => "conditions of use not satisfied",
        0x6986 => "command not allowed",
        0x6A80 => "incorrect data in the command",
        0x6A81 => "function not supported",
        0x6A82 => "data object or application not found",
        0x6A84 => "not enough memory on the card",
        0x6A86 => {
            "incorrect parameters P1-P2 (an algorithm or key reference the card does not support)"
        }
        0x6A88 => "referenced key or data not found",
        0x6B00 => "wrong parameters P1-P2",
        0x6D00 => "instruction not supported",
        0x6E00 => "class not supported",
        0x6F00 => "no precise diagnosis (internal card error)",
        _ => "",
    };
    if !fixed.is_empty() {
        return fixed.to_string();
    }
    match sw >> 8 {
        0x61 => format!("{} more bytes available", sw & 0xFF),
        0x63 if sw & 0xF0 == 0xC0 => format!("verification failed, {} tries left", sw & 0x0F),
        0x6C => format!("wrong Le, the card has {} bytes", sw & 0xFF),
        0x62 | 0x63 => "warning".to_string(),
        0x64..=0x66 => "execution error".to_string(),
        _ => "unknown status".to_string(),
    }
}

/// A scripted card for unit tests: hostile or broken answers no emulator gives.
#[cfg(test)]
pub mod script {
    use std::cell::RefCell;
    use std::collections::VecDeque;

    use super::Transmit;

    /// Answers from a script, then repeats `forever` (if any), recording the commands.
    pub struct Script {
        answers: RefCell<VecDeque<Vec<u8>>>,
        forever: Option<Vec<u8>>,
        pub sent: RefCell<Vec<Vec<u8>>>,
    }

    impl Script {
        pub fn new(answers: &[&[u8]], forever: Option<&[u8]>) -> Script {
            Script {
                answers: RefCell::new(answers.iter().map(|a| a.to_vec()).collect()),
                forever: forever.map(<[u8]>::to_vec),
                sent: RefCell::new(Vec::new()),
            }
        }
    }

    impl Transmit for Script {
        fn transmit(&self, apdu: &[u8]) -> Result<Vec<u8>, pcsc::Error> {
            self.sent.borrow_mut().push(apdu.to_vec());
            let next = self.answers.borrow_mut().pop_front();
            next.or_else(|| self.forever.clone())
                .ok_or(pcsc::Error::InternalError)
        }
    }

    pub fn with_sw(data: &[u8], sw: u16) -> Vec<u8> {
        [data, &sw.to_be_bytes()].concat()
    }
}

#[cfg(test)]
mod tests {
    use super::script::{with_sw, Script};
    use super::*;

    #[test]
    fn long_commands_are_chained_in_255_byte_links() {
        let card = Script::new(&[&[0x90, 0x00], &[0x90, 0x00], &[0x01, 0x90, 0x00]], None);
        let io = Io::new(&card, "r", "op");
        let r = io.command(0x87, 0x07, 0x9C, &[0xAB; 600], true).unwrap();
        assert_eq!((r.data, r.sw), (vec![0x01], 0x9000));
        let sent = card.sent.borrow();
        assert_eq!(sent.len(), 3);
        assert_eq!(&sent[0][..5], &[0x10, 0x87, 0x07, 0x9C, 0xFF]);
        assert_eq!(sent[0].len(), 5 + 255);
        assert_eq!(&sent[1][..5], &[0x10, 0x87, 0x07, 0x9C, 0xFF]);
        assert_eq!(&sent[2][..5], &[0x00, 0x87, 0x07, 0x9C, 90]);
        assert_eq!(sent[2].len(), 5 + 90 + 1, "the last link carries Le");
        assert_eq!(sent[2].last(), Some(&0x00));
    }

    #[test]
    fn a_refused_link_ends_the_chain() {
        let card = Script::new(&[&[0x6A, 0x80]], Some(&[0x90, 0x00]));
        let io = Io::new(&card, "r", "op");
        let r = io.command(0xDB, 0x3F, 0xFF, &[0; 600], false).unwrap();
        assert_eq!(r.sw, 0x6A80);
        assert_eq!(card.sent.borrow().len(), 1);
    }

    #[test]
    fn get_response_assembles_long_answers() {
        let first = with_sw(&[0xAA; 256], 0x6110);
        let second = with_sw(&[0xBB; 16], 0x9000);
        let card = Script::new(&[&first, &second], None);
        let io = Io::new(&card, "r", "op");
        let r = io
            .command(0xCB, 0x3F, 0xFF, &[0x5C, 0x01, 0x7E], true)
            .unwrap();
        assert_eq!(r.sw, 0x9000);
        assert_eq!(r.data.len(), 272);
        assert_eq!(card.sent.borrow()[1], vec![0x00, 0xC0, 0x00, 0x00, 0x10]);
    }

    #[test]
    fn endless_get_response_is_cut_off() {
        // 256 bytes and "more" forever: stopped by the size cap.
        let big = with_sw(&[0; 256], 0x6100);
        let card = Script::new(&[], Some(&big));
        let io = Io::new(&card, "r", "op");
        assert!(matches!(
            io.command(0xCB, 0x3F, 0xFF, &[], true),
            Err(CardError::BadResponse { .. })
        ));
        assert!(card.sent.borrow().len() <= MAX_RESPONSE / 256 + 2);

        // No data and "more" forever: stopped by the round cap.
        let card = Script::new(&[], Some(&[0x61, 0x01]));
        let io = Io::new(&card, "r", "op");
        match io.command(0xCB, 0x3F, 0xFF, &[], true) {
            Err(CardError::BadResponse { reason, .. }) => {
                assert!(reason.contains("GET RESPONSE"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(card.sent.borrow().len(), MAX_GET_RESPONSE_ROUNDS + 1);
    }

    #[test]
    fn wrong_le_is_retried_once_with_the_cards_length() {
        let card = Script::new(&[&[0x6C, 0x20]], Some(&with_sw(&[7; 0x20], 0x9000)));
        let io = Io::new(&card, "r", "op");
        let r = io
            .command(0xCB, 0x3F, 0xFF, &[0x5C, 0x01, 0x7E], true)
            .unwrap();
        assert_eq!((r.data.len(), r.sw), (0x20, 0x9000));
        let sent = card.sent.borrow();
        assert_eq!(sent.len(), 2);
        assert_eq!(sent[1].last(), Some(&0x20));

        // A card insisting on 6Cxx gets one retry, not a loop.
        let card = Script::new(&[], Some(&[0x6C, 0x20]));
        let io = Io::new(&card, "r", "op");
        assert_eq!(io.command(0xCB, 0x3F, 0xFF, &[], true).unwrap().sw, 0x6C20);
        assert_eq!(card.sent.borrow().len(), 2);
    }

    #[test]
    fn ok_turns_status_words_into_errors_with_meanings() {
        let card = Script::new(&[], None);
        let io = Io::new(&card, "Reader X", "reading things");
        let e = io
            .ok(Response {
                data: vec![],
                sw: 0x6A86,
            })
            .unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("Reader X") && text.contains("6A86") && text.contains("P1-P2"),
            "{text}"
        );
    }

    #[test]
    fn status_words_have_meanings() {
        assert!(status_meaning(0x6982).contains("security status not satisfied"));
        assert_eq!(status_meaning(0x63C2), "verification failed, 2 tries left");
        assert_eq!(
            status_meaning(0x6A82),
            "data object or application not found"
        );
        assert_eq!(status_meaning(0x6D00), "instruction not supported");
        assert_eq!(status_meaning(0x6C10), "wrong Le, the card has 16 bytes");
        assert_eq!(status_meaning(0x1234), "unknown status");
    }
}
