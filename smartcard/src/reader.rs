//! PC/SC readers: list them with card presence and ATR, watch insertions and removals, connect
//! to the card in one (PC/SC 2.01 part 5 through pcsc-lite / WinSCard, via the `pcsc` crate).
//!
//! Every failure a citizen can cause or meet — no pcscd, no reader, no card, the card pulled in
//! the middle of an operation — ends in a [`CardError`] that says so; nothing here waits
//! without a bound.

use std::ffi::CString;
use std::time::{Duration, Instant};

use pcsc::{Context, Protocols, ReaderState, Scope, ShareMode, State};

use crate::CardError;

/// How long to wait, after a failed exchange, for pcscd to notice that the card is gone (it
/// polls readers every 400 ms): long enough to tell "pulled" from "broke", short enough to feel
/// immediate.
const REMOVAL_SETTLE: Duration = Duration::from_millis(2000);

/// More readers than any machine has; pcsc-lite itself stops at 16.
const MAX_READERS: usize = 64;

/// A reader as PC/SC sees it now.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ReaderStatus {
    /// The PC/SC reader name, e.g. "Cherry SmartTerminal ST-2xxx [Vendor Interface] 00 00".
    pub name: String,
    pub card_present: bool,
    /// The card's Answer To Reset, when a card is present and answered.
    pub atr: Option<Vec<u8>>,
}

impl ReaderStatus {
    fn from_state(state: &ReaderState) -> ReaderStatus {
        let present = card_present(state.event_state());
        let atr = state.atr();
        ReaderStatus {
            name: state.name().to_string_lossy().into_owned(),
            card_present: present,
            atr: (present && !atr.is_empty()).then(|| atr.to_vec()),
        }
    }
}

fn card_present(state: State) -> bool {
    state.contains(State::PRESENT) && !state.intersects(State::UNKNOWN | State::UNAVAILABLE)
}

/// Opens a PC/SC context: the one place where "pcscd is not running" is first seen.
pub(crate) fn establish() -> Result<Context, CardError> {
    Context::establish(Scope::User).map_err(|e| match e {
        pcsc::Error::NoService | pcsc::Error::ServiceStopped | pcsc::Error::CommError => {
            CardError::PcscdNotRunning
        }
        e => CardError::Pcsc(format!("cannot reach the smart card service: {e}")),
    })
}

/// The names of the attached readers; empty when none is attached.
fn reader_names(ctx: &Context) -> Result<Vec<CString>, CardError> {
    match ctx.list_readers_owned() {
        Ok(mut names) => {
            names.truncate(MAX_READERS);
            Ok(names)
        }
        Err(pcsc::Error::NoReadersAvailable) => Ok(Vec::new()),
        Err(e) => Err(service_error(e, "listing the readers")),
    }
}

/// Errors of context-level calls: the service is gone, or something we report as it is.
fn service_error(e: pcsc::Error, what: &str) -> CardError {
    match e {
        pcsc::Error::NoService
        | pcsc::Error::ServiceStopped
        | pcsc::Error::InvalidHandle
        | pcsc::Error::CommError => CardError::PcscdNotRunning,
        // libpcsclite reads a connection reset as a "security violation": the daemon's polkit
        // refusal, or the daemon gone while we waited. A fresh context tells the two apart.
        pcsc::Error::SecurityViolation
            if matches!(establish(), Err(CardError::PcscdNotRunning)) =>
        {
            CardError::PcscdNotRunning
        }
        e => CardError::Pcsc(format!("{what}: {e}")),
    }
}

/// The current state of each named reader (one non-blocking SCardGetStatusChange).
fn reader_states(ctx: &Context, names: &[CString]) -> Result<Vec<ReaderState>, CardError> {
    let mut states: Vec<ReaderState> = names
        .iter()
        .map(|n| ReaderState::new(n.clone(), State::UNAWARE))
        .collect();
    if states.is_empty() {
        return Ok(states);
    }
    match ctx.get_status_change(Duration::ZERO, &mut states) {
        // UNAWARE makes pcsc-lite answer at once; a timeout would only mean "no news".
        Ok(()) | Err(pcsc::Error::Timeout) => Ok(states),
        // A reader unplugged between listing and asking: list again next time.
        Err(pcsc::Error::UnknownReader) => Ok(Vec::new()),
        Err(e) => Err(service_error(e, "reading the readers' state")),
    }
}

/// All readers with their state; an empty list (not an error) when none is attached, and
/// [`CardError::PcscdNotRunning`] when the smart card service is not running.
pub fn list_readers() -> Result<Vec<ReaderStatus>, CardError> {
    let ctx = establish()?;
    let names = reader_names(&ctx)?;
    Ok(reader_states(&ctx, &names)?
        .iter()
        .map(ReaderStatus::from_state)
        .collect())
}

/// A change seen by [`ReaderWatcher`].
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ReaderEvent {
    CardInserted { reader: String, atr: Vec<u8> },
    CardRemoved { reader: String },
    ReaderAttached { reader: String },
    ReaderDetached { reader: String },
}

/// Watches every reader, and the reader list itself, for changes.
pub struct ReaderWatcher {
    ctx: Context,
    /// One entry per known reader, in the order PC/SC listed them, then (when the service
    /// supports it) pcsc-lite's `\\?PnP?\Notification` pseudo-reader. Kept across calls:
    /// their raw state words carry the event counters that tell a swapped card.
    states: Vec<ReaderState>,
    /// Whether the last entry of `states` is the PnP pseudo-reader.
    pnp: bool,
    /// What we last reported per reader, parallel to the readers in `states`.
    seen: Vec<Seen>,
}

/// A reader's card presence and pcsc-lite event counter as last reported.
#[derive(Clone, Copy)]
struct Seen {
    present: bool,
    count: u32,
}

impl Seen {
    fn of(state: &ReaderState) -> Seen {
        Seen {
            present: card_present(state.event_state()),
            count: state.event_count(),
        }
    }
}

impl ReaderWatcher {
    pub fn new() -> Result<Self, CardError> {
        let ctx = establish()?;
        let names = reader_names(&ctx)?;
        let mut states = reader_states(&ctx, &names)?;
        for s in &mut states {
            s.sync_current_state();
        }
        let seen = states.iter().map(Seen::of).collect();
        let mut watcher = ReaderWatcher {
            ctx,
            states,
            pnp: false,
            seen,
        };
        if let Some(pnp) = watcher.probe_pnp()? {
            watcher.states.push(pnp);
            watcher.pnp = true;
        }
        Ok(watcher)
    }

    /// Asks for the PnP pseudo-reader's state (pcsc-lite answers an UNAWARE query at once). A
    /// service without it marks the name UNKNOWN: we then notice attached and detached readers
    /// only by listing them again after each wait.
    fn probe_pnp(&self) -> Result<Option<ReaderState>, CardError> {
        let mut pnp = [ReaderState::new(pcsc::PNP_NOTIFICATION(), State::UNAWARE)];
        match self.ctx.get_status_change(Duration::ZERO, &mut pnp) {
            Ok(()) | Err(pcsc::Error::Timeout) => {}
            Err(pcsc::Error::UnknownReader) => return Ok(None),
            Err(e) => return Err(service_error(e, "watching the readers")),
        }
        let [mut pnp] = pnp;
        if pnp.event_state().contains(State::UNKNOWN) {
            return Ok(None);
        }
        pnp.sync_current_state();
        Ok(Some(pnp))
    }

    fn reader_count(&self) -> usize {
        self.states.len() - usize::from(self.pnp)
    }

    /// The readers and cards as last seen.
    pub fn current(&self) -> Vec<ReaderStatus> {
        self.states
            .iter()
            .take(self.reader_count())
            .map(ReaderStatus::from_state)
            .collect()
    }

    /// Waits up to `timeout` for changes and returns them, in the order they happened; an empty
    /// Vec when nothing changed, [`CardError::PcscdNotRunning`] if the service goes away.
    pub fn next_events(&mut self, timeout: Duration) -> Result<Vec<ReaderEvent>, CardError> {
        let deadline = Instant::now() + timeout;
        // Each round returns events, waits until the deadline, or follows a change that made no
        // visible difference; the cap keeps a misbehaving service from spinning us.
        for _ in 0..1000 {
            let wait = deadline.saturating_duration_since(Instant::now());
            let result = if self.states.is_empty() {
                // No reader and no PnP support: nothing to wait on but the clock.
                std::thread::sleep(wait.min(Duration::from_millis(500)));
                Err(pcsc::Error::Timeout)
            } else {
                self.ctx.get_status_change(wait, &mut self.states)
            };
            let mut events = Vec::new();
            match result {
                Ok(()) => self.apply_changes(&mut events),
                Err(pcsc::Error::Timeout) => {}
                // A reader vanished between two calls: the list below sorts it out.
                Err(pcsc::Error::UnknownReader) => {}
                Err(e) => return Err(service_error(e, "watching the readers")),
            }
            self.refresh_reader_list(&mut events)?;
            if !events.is_empty() || Instant::now() >= deadline {
                return Ok(events);
            }
        }
        Ok(Vec::new())
    }

    /// Compares what SCardGetStatusChange reported with what we knew.
    fn apply_changes(&mut self, events: &mut Vec<ReaderEvent>) {
        let readers = self.reader_count();
        for (i, state) in self.states.iter_mut().enumerate() {
            let now = state.event_state();
            if !now.contains(State::CHANGED) {
                continue;
            }
            if i >= readers {
                // The PnP pseudo-reader: the list refresh reports what changed.
                state.sync_current_state();
                continue;
            }
            let reader = state.name().to_string_lossy().into_owned();
            let then = self.seen.get(i).copied().unwrap_or(Seen {
                present: false,
                count: 0,
            });
            let now_present = card_present(now);
            // pcsc-lite counts insertions and removals in the upper 16 bits: a count that moved
            // by two or more with a card there both times means it was swapped between waits.
            let swaps = state.event_count().wrapping_sub(then.count) & 0xFFFF;
            let then_present = then.present;
            if now.intersects(State::UNKNOWN | State::UNAVAILABLE) {
                // Detached: the list refresh reports it.
                state.sync_current_state();
                continue;
            }
            match (then_present, now_present) {
                (true, false) => events.push(ReaderEvent::CardRemoved { reader }),
                (false, true) => events.push(ReaderEvent::CardInserted {
                    reader,
                    atr: state.atr().to_vec(),
                }),
                (true, true) if swaps >= 2 => {
                    events.push(ReaderEvent::CardRemoved {
                        reader: reader.clone(),
                    });
                    events.push(ReaderEvent::CardInserted {
                        reader,
                        atr: state.atr().to_vec(),
                    });
                }
                _ => {}
            }
            if let Some(seen) = self.seen.get_mut(i) {
                *seen = Seen::of(state);
            }
            state.sync_current_state();
        }
    }

    /// Lists the readers again: new ones are attached (with their card, if any), missing ones
    /// detached (their card removed first).
    fn refresh_reader_list(&mut self, events: &mut Vec<ReaderEvent>) -> Result<(), CardError> {
        let names = reader_names(&self.ctx)?;
        let readers = self.reader_count();
        let known: Vec<CString> = self
            .states
            .iter()
            .take(readers)
            .map(|r| r.name().to_owned())
            .collect();
        let mut keep = Vec::with_capacity(self.states.len());
        for (i, name) in known.iter().enumerate() {
            let still = names.contains(name);
            keep.push(still);
            if !still {
                let reader = name.to_string_lossy().into_owned();
                if self.seen.get(i).is_some_and(|s| s.present) {
                    events.push(ReaderEvent::CardRemoved {
                        reader: reader.clone(),
                    });
                }
                events.push(ReaderEvent::ReaderDetached { reader });
            }
        }
        keep.resize(self.states.len(), true); // the PnP entry stays
        let mut flags = keep.iter();
        self.states
            .retain(|_| flags.next().copied().unwrap_or(true));
        let mut flags = keep.iter();
        self.seen.retain(|_| flags.next().copied().unwrap_or(true));

        let added: Vec<CString> = names
            .into_iter()
            .filter(|n| !known.contains(n))
            .take(MAX_READERS.saturating_sub(self.reader_count()))
            .collect();
        if added.is_empty() {
            return Ok(());
        }
        for mut state in reader_states(&self.ctx, &added)? {
            let reader = state.name().to_string_lossy().into_owned();
            let seen = Seen::of(&state);
            events.push(ReaderEvent::ReaderAttached {
                reader: reader.clone(),
            });
            if seen.present {
                events.push(ReaderEvent::CardInserted {
                    reader,
                    atr: state.atr().to_vec(),
                });
            }
            state.sync_current_state();
            // Readers go before the PnP entry, which stays last.
            let at = self.reader_count();
            self.states.insert(at, state);
            self.seen.push(seen);
        }
        Ok(())
    }
}

/// Connects to the card in `reader` — its exact PC/SC name, or a case-insensitive part of the
/// name that matches one reader only — or, with `None`, to the only reader holding a card.
/// Returns the reader's full name and the connection (shared, T=0 or T=1).
pub fn connect(reader: Option<&str>) -> Result<(String, pcsc::Card), CardError> {
    let ctx = establish()?;
    let names = reader_names(&ctx)?;
    if names.is_empty() {
        return Err(CardError::NoReader);
    }
    let name = match reader {
        Some(wanted) => choose_reader(&names, wanted)?,
        None => only_reader_with_card(&ctx, &names)?,
    };
    let display = name.to_string_lossy().into_owned();
    match ctx.connect(&name, ShareMode::Shared, Protocols::ANY) {
        Ok(card) => Ok((display, card)),
        Err(e) => Err(match e {
            pcsc::Error::NoSmartcard | pcsc::Error::RemovedCard => {
                CardError::NoCard { reader: display }
            }
            pcsc::Error::UnknownReader | pcsc::Error::ReaderUnavailable => {
                CardError::ReaderNotFound {
                    wanted: display,
                    attached: join_names(&names),
                }
            }
            pcsc::Error::UnresponsiveCard | pcsc::Error::UnpoweredCard => {
                CardError::CardUnresponsive { reader: display }
            }
            pcsc::Error::SharingViolation => CardError::Pcsc(format!(
                "the card in reader {display:?} is in exclusive use by another program"
            )),
            e => service_error(e, &format!("connecting to the card in reader {display:?}")),
        }),
    }
}

fn join_names(names: &[CString]) -> String {
    if names.is_empty() {
        return "none".into();
    }
    names
        .iter()
        .map(|n| format!("{:?}", n.to_string_lossy()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn choose_reader(names: &[CString], wanted: &str) -> Result<CString, CardError> {
    if let Some(exact) = names.iter().find(|n| n.as_bytes() == wanted.as_bytes()) {
        return Ok(exact.clone());
    }
    let needle = wanted.to_lowercase();
    let matching: Vec<&CString> = names
        .iter()
        .filter(|n| n.to_string_lossy().to_lowercase().contains(&needle))
        .collect();
    match matching.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(CardError::ReaderNotFound {
            wanted: wanted.to_string(),
            attached: join_names(names),
        }),
        several => Err(CardError::ReaderAmbiguous {
            wanted: wanted.to_string(),
            matching: join_names(&several.iter().map(|n| (*n).clone()).collect::<Vec<_>>()),
        }),
    }
}

fn only_reader_with_card(ctx: &Context, names: &[CString]) -> Result<CString, CardError> {
    let states = reader_states(ctx, names)?;
    let with_card: Vec<CString> = states
        .iter()
        .filter(|s| card_present(s.event_state()))
        .map(|s| s.name().to_owned())
        .collect();
    match with_card.as_slice() {
        [one] => Ok(one.clone()),
        [] if names.len() == 1 => Err(CardError::NoCard {
            reader: names
                .first()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        }),
        [] => Err(CardError::NoCardInAnyReader {
            readers: join_names(names),
        }),
        several => Err(CardError::SeveralCards {
            readers: join_names(several),
        }),
    }
}

/// The card's ATR from SCardStatus (vpcd and some drivers leave the ATR attribute empty).
pub(crate) fn card_atr(card: &pcsc::Card) -> Vec<u8> {
    card.status2_owned()
        .map(|s| s.atr().to_vec())
        .unwrap_or_default()
}

/// Turns a failed exchange with the card into the error the citizen should see. When the cause
/// is unclear (a communication error), it asks pcscd whether the card is still in `reader`:
/// a card that is gone, or goes within [`REMOVAL_SETTLE`], was pulled.
pub(crate) fn exchange_error(e: pcsc::Error, reader: &str, operation: &str) -> CardError {
    let removed = || CardError::CardRemoved {
        reader: reader.to_string(),
        operation: operation.to_string(),
    };
    match e {
        pcsc::Error::RemovedCard | pcsc::Error::ResetCard => removed(),
        pcsc::Error::NoSmartcard => CardError::NoCard {
            reader: reader.to_string(),
        },
        pcsc::Error::NoService | pcsc::Error::ServiceStopped => CardError::PcscdNotRunning,
        pcsc::Error::ReaderUnavailable | pcsc::Error::UnknownReader => CardError::ReaderGone {
            reader: reader.to_string(),
            operation: operation.to_string(),
        },
        e => lost_card(reader, operation).unwrap_or_else(|| {
            CardError::Pcsc(format!(
                "{operation} on the card in reader {reader:?} failed: {e}"
            ))
        }),
    }
}

/// After an exchange went wrong without a clear PC/SC error (a communication error, or an
/// answer without a status word, as vpcd gives when the card's connection drops): the error
/// to report if the card, the reader or pcscd is gone, `None` if the card is still there.
pub(crate) fn lost_card(reader: &str, operation: &str) -> Option<CardError> {
    match card_still_present(reader) {
        Presence::Gone => Some(CardError::CardRemoved {
            reader: reader.to_string(),
            operation: operation.to_string(),
        }),
        Presence::ServiceGone => Some(CardError::PcscdNotRunning),
        Presence::ReaderGone => Some(CardError::ReaderGone {
            reader: reader.to_string(),
            operation: operation.to_string(),
        }),
        Presence::Present => None,
    }
}

enum Presence {
    Present,
    Gone,
    ReaderGone,
    ServiceGone,
}

fn card_still_present(reader: &str) -> Presence {
    let Ok(ctx) = establish() else {
        return Presence::ServiceGone;
    };
    let Ok(name) = CString::new(reader) else {
        return Presence::ReaderGone;
    };
    let mut state = [ReaderState::new(name, State::UNAWARE)];
    match ctx.get_status_change(Duration::ZERO, &mut state) {
        Ok(()) | Err(pcsc::Error::Timeout) => {}
        Err(pcsc::Error::UnknownReader) => return Presence::ReaderGone,
        Err(_) => return Presence::ServiceGone,
    }
    let classify = |now: State| {
        if now.intersects(State::UNKNOWN | State::UNAVAILABLE) {
            Presence::ReaderGone
        } else if !card_present(now) || now.contains(State::MUTE) {
            Presence::Gone
        } else {
            Presence::Present
        }
    };
    let first = classify(state[0].event_state());
    if !matches!(first, Presence::Present) {
        return first;
    }
    // Present as far as pcscd knows: give its polling a moment to notice a pull. The synced
    // state keeps pcsc-lite's event counter, so only a real change wakes us.
    state[0].sync_current_state();
    match ctx.get_status_change(REMOVAL_SETTLE, &mut state) {
        Ok(()) => classify(state[0].event_state()),
        Err(pcsc::Error::Timeout) => Presence::Present,
        Err(pcsc::Error::UnknownReader) => Presence::ReaderGone,
        Err(_) => Presence::ServiceGone,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<CString> {
        list.iter().map(|n| CString::new(*n).unwrap()).collect()
    }

    #[test]
    fn reader_chosen_by_exact_name_or_unique_part() {
        let attached = names(&["Cherry ST 00 00", "Cherry ST 00 01", "Yubico YubiKey 01 00"]);
        assert_eq!(
            choose_reader(&attached, "Cherry ST 00 01").unwrap(),
            attached[1]
        );
        assert_eq!(choose_reader(&attached, "yubikey").unwrap(), attached[2]);
        match choose_reader(&attached, "cherry") {
            Err(CardError::ReaderAmbiguous { wanted, matching }) => {
                assert_eq!(wanted, "cherry");
                assert_eq!(matching, "\"Cherry ST 00 00\", \"Cherry ST 00 01\"");
            }
            other => panic!("expected ReaderAmbiguous, got {other:?}"),
        }
        match choose_reader(&attached, "gemalto") {
            Err(CardError::ReaderNotFound { attached, .. }) => {
                assert!(attached.contains("\"Yubico YubiKey 01 00\""), "{attached}")
            }
            other => panic!("expected ReaderNotFound, got {other:?}"),
        }
    }

    #[test]
    fn exact_name_wins_over_a_longer_match() {
        let attached = names(&["Reader 00 00", "Reader 00 00 (2)"]);
        assert_eq!(
            choose_reader(&attached, "Reader 00 00").unwrap(),
            attached[0]
        );
    }
}
