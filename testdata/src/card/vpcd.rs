//! A card in a vpcd reader (vsmartcard's virtual reader driver for pcscd): the emulator connects
//! to the reader's TCP port (= card inserted) and answers what vpcd sends until the connection
//! closes (= card removed).
//!
//! vpcd's wire protocol: every message is a 2-byte big-endian length and a payload. A 1-byte
//! payload is a control code: 0 power off, 1 power on, 2 reset (no answer), 4 "send your ATR"
//! (answered with the ATR). Any other payload is a command APDU, answered with the response APDU.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::linux::net::TcpStreamExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use super::piv::PivSession;
use super::state::PivCardState;
use super::{wait_for_card, ReaderLease};

const CONTROL_POWER_OFF: u8 = 0;
const CONTROL_POWER_ON: u8 = 1;
const CONTROL_RESET: u8 = 2;
const CONTROL_ATR: u8 = 4;

/// How long `insert` and `remove` wait for pcscd to notice (it polls vpcd readers every 400 ms).
const PRESENCE_TIMEOUT: Duration = Duration::from_secs(10);

/// The emulator's answer to reset: T=1, historical bytes "imza PIV" as pre-issuing data.
pub const ATR: [u8; 15] = atr();

const fn atr() -> [u8; 15] {
    let mut atr = [
        0x3B, 0x8A, 0x80, 0x01, 0x80, 0x68, b'i', b'm', b'z', b'a', b' ', b'P', b'I', b'V', 0x00,
    ];
    // TCK: the exclusive-or of T0 up to the last historical byte (ISO/IEC 7816-3 §8.2.5).
    let mut check = 0u8;
    let mut i = 1;
    while i < 14 {
        check ^= atr[i];
        i += 1;
    }
    atr[14] = check;
    atr
}

/// The card's persistent state and what the test asked of it, shared with the connection thread.
struct Shared {
    card: Mutex<CardData>,
}

struct CardData {
    state: PivCardState,
    persist_path: Option<PathBuf>,
    /// The INS whose next command APDU is not answered: the connection is dropped instead.
    pull_on: Option<u8>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, CardData> {
        // A panic elsewhere while holding the lock leaves consistent data: recover it.
        self.card
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

struct Connection {
    stream: TcpStream,
    thread: JoinHandle<()>,
}

/// A PIV card emulator (NIST SP 800-73-4 subset that OpenSC's PIV-II driver and imza's enrollment
/// use) inserted into a leased reader: it connects to vpcd's TCP port and answers APDUs.
///
/// Keep the [`ReaderLease`] alive as long as the card: another test leasing the reader would
/// otherwise find it occupied. Dropping the card removes it.
pub struct VirtualCard {
    reader: String,
    port: u16,
    log_tail: Box<dyn Fn() -> String + Send + Sync>,
    shared: Arc<Shared>,
    connection: Option<Connection>,
}

impl VirtualCard {
    /// Connects (= card inserted) and returns once pcscd reports the card present.
    pub fn insert(reader: &ReaderLease, state: PivCardState) -> VirtualCard {
        let lab = reader.lab_paths();
        let mut card = VirtualCard {
            reader: reader.name().to_string(),
            port: reader.port(),
            log_tail: Box::new(move || lab.log_tail()),
            shared: Arc::new(Shared {
                card: Mutex::new(CardData {
                    state,
                    persist_path: None,
                    pull_on: None,
                }),
            }),
            connection: None,
        };
        card.connect();
        card
    }

    /// Closes the connection (= card removed); returns once pcscd reports it gone. State is kept.
    pub fn remove(&mut self) {
        let Some(connection) = self.connection.take() else {
            return;
        };
        // Ends the connection thread's blocking read; an error means it is closed already.
        let _ = connection.stream.shutdown(Shutdown::Both);
        let _ = connection.thread.join();
        if let Err(e) = wait_for_card(&self.reader, false, PRESENCE_TIMEOUT) {
            panic!(
                "card removed from {} but pcscd still reports it: {e}\npcscd log:\n{}",
                self.reader,
                (self.log_tail)()
            );
        }
    }

    /// Connects again with the same state (removing the card first if it is in).
    pub fn reinsert(&mut self) {
        self.remove();
        self.connect();
    }

    /// The next command APDU with this INS is not answered: the emulator drops the connection
    /// instead (a card pulled in the middle of an operation, e.g. 0x87 GENERAL AUTHENTICATE).
    pub fn pull_on(&self, ins: u8) {
        self.shared.lock().pull_on = Some(ins);
    }

    /// From now on the state is written to `path` after every change (and `PivCardState::load`
    /// reads it). Writes it once now; panics if that fails.
    pub fn persist_to(&self, path: &Path) {
        let mut card = self.shared.lock();
        card.state
            .save(path)
            .unwrap_or_else(|e| panic!("cannot write the card state to {}: {e}", path.display()));
        card.persist_path = Some(path.to_path_buf());
    }

    /// A snapshot of the card's persistent state.
    pub fn state(&self) -> PivCardState {
        self.shared.lock().state.clone()
    }

    pub fn atr(&self) -> Vec<u8> {
        ATR.to_vec()
    }

    /// The PC/SC name of the reader the card is in.
    pub fn reader(&self) -> &str {
        &self.reader
    }

    /// True while the emulator's connection is open (false after `remove` or a `pull_on`).
    pub fn is_connected(&self) -> bool {
        self.connection
            .as_ref()
            .is_some_and(|connection| !connection.thread.is_finished())
    }

    fn connect(&mut self) {
        let stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap_or_else(|e| {
            panic!(
                "cannot connect the virtual card to {} (vpcd port {}): {e}\npcscd log:\n{}",
                self.reader,
                self.port,
                (self.log_tail)()
            )
        });
        // Without TCP_NODELAY every APDU round trip waits for the delayed-ACK timer.
        stream
            .set_nodelay(true)
            .unwrap_or_else(|e| panic!("TCP_NODELAY on the vpcd connection: {e}"));
        let thread_stream = stream
            .try_clone()
            .unwrap_or_else(|e| panic!("cloning the vpcd connection: {e}"));
        let shared = Arc::clone(&self.shared);
        let name = format!("virtual card {}", self.reader);
        let thread = std::thread::Builder::new()
            .name(name)
            .spawn(move || serve(thread_stream, &shared))
            .unwrap_or_else(|e| panic!("cannot start the virtual card thread: {e}"));
        self.connection = Some(Connection { stream, thread });
        if let Err(e) = wait_for_card(&self.reader, true, PRESENCE_TIMEOUT) {
            panic!(
                "virtual card connected to {} (port {}) but pcscd does not report it: {e}\n\
                 pcscd log:\n{}",
                self.reader,
                self.port,
                (self.log_tail)()
            );
        }
    }
}

impl Drop for VirtualCard {
    fn drop(&mut self) {
        if let Some(connection) = self.connection.take() {
            let _ = connection.stream.shutdown(Shutdown::Both);
            let _ = connection.thread.join();
            // Waiting for pcscd keeps the reader clean for the next lease; never panic in drop.
            let _ = wait_for_card(&self.reader, false, PRESENCE_TIMEOUT);
        }
    }
}

/// Answers vpcd until the connection closes or a pulled INS arrives.
fn serve(mut stream: TcpStream, shared: &Shared) {
    let mut session = PivSession::new();
    loop {
        let message = match read_message(&mut stream) {
            Ok(Some(message)) => message,
            // Closed by `remove`, by vpcd (pcscd stopped) or broken: the card is out.
            Ok(None) | Err(_) => return,
        };
        let answer = match message.as_slice() {
            [CONTROL_POWER_OFF] | [CONTROL_POWER_ON] | [CONTROL_RESET] => {
                session.reset();
                None
            }
            [CONTROL_ATR] => Some(ATR.to_vec()),
            // Unknown control codes and empty messages expect no answer.
            [] | [_] => None,
            apdu => {
                let mut card = shared.lock();
                let ins = apdu.get(1).copied();
                if ins.is_some() && card.pull_on == ins {
                    card.pull_on = None;
                    drop(card);
                    let _ = stream.shutdown(Shutdown::Both);
                    return;
                }
                let outcome = session.process(&mut card.state, apdu);
                if outcome.state_changed {
                    if let Some(path) = &card.persist_path {
                        if let Err(e) = card.state.save(path) {
                            eprintln!(
                                "virtual card: cannot save its state to {}: {e}",
                                path.display()
                            );
                        }
                    }
                }
                Some(outcome.response)
            }
        };
        if let Some(answer) = answer {
            if write_message(&mut stream, &answer).is_err() {
                return;
            }
        }
    }
}

/// Reads one message; `None` at a clean end of the connection.
///
/// vpcd sends the 2-byte length and the payload in two `send` calls on a socket without
/// TCP_NODELAY: Nagle holds the payload back until the length is acknowledged, and a delayed
/// acknowledgement costs 40 ms per message. TCP_QUICKACK (which Linux clears again after a while,
/// hence before every read) acknowledges at once.
fn read_message(stream: &mut TcpStream) -> io::Result<Option<Vec<u8>>> {
    let mut length = [0u8; 2];
    let _ = stream.set_quickack(true);
    match stream.read_exact(&mut length) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    // The length is 16 bits: a message is at most 64 KiB, so no bound beyond the type is needed.
    let mut message = vec![0u8; usize::from(u16::from_be_bytes(length))];
    let _ = stream.set_quickack(true);
    stream.read_exact(&mut message)?;
    Ok(Some(message))
}

fn write_message(stream: &mut TcpStream, payload: &[u8]) -> io::Result<()> {
    let length = u16::try_from(payload.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "vpcd message over 64 KiB"))?;
    let mut message = Vec::with_capacity(payload.len() + 2);
    message.extend_from_slice(&length.to_be_bytes());
    message.extend_from_slice(payload);
    stream.write_all(&message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atr_has_a_correct_check_byte_and_historical_bytes() {
        let check = ATR[1..].iter().fold(0u8, |acc, b| acc ^ b);
        assert_eq!(check, 0, "T0 to TCK exclusive-or to zero");
        assert_eq!(usize::from(ATR[1] & 0x0F), b"\x80\x68imza PIV".len());
    }
}
