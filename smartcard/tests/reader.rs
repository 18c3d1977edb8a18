//! imza's PC/SC reader code against a real pcscd with the project's virtual readers (vpcd) and
//! PIV card emulator: listing, insert/remove events, connecting, and the service going away.

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use imza_smartcard::piv::PivCard;
use imza_smartcard::reader::{self, ReaderEvent, ReaderWatcher};
use imza_smartcard::CardError;
use imza_testdata::card::{CardLab, PivCardState, VirtualCard};

/// Waits (boundedly) until the watcher reports an event about `reader` matching `wanted`;
/// events about other readers (other tests run in parallel) are skipped.
fn wait_for_event(
    watcher: &mut ReaderWatcher,
    reader: &str,
    wanted: impl Fn(&ReaderEvent) -> bool,
) -> ReaderEvent {
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        for event in watcher.next_events(Duration::from_millis(500)).unwrap() {
            let about_reader = match &event {
                ReaderEvent::CardInserted { reader: r, .. }
                | ReaderEvent::CardRemoved { reader: r }
                | ReaderEvent::ReaderAttached { reader: r }
                | ReaderEvent::ReaderDetached { reader: r } => r == reader,
            };
            if about_reader && wanted(&event) {
                return event;
            }
            seen.push(event);
        }
    }
    panic!("no matching event for {reader:?} within 15 s; saw {seen:?}");
}

#[test]
fn list_readers_shows_every_reader_and_the_inserted_cards_atr() {
    let lab = CardLab::shared();
    let lease = lab.lease_reader();
    let card = VirtualCard::insert(&lease, PivCardState::new());

    let readers = reader::list_readers().unwrap();
    for name in lab.reader_names() {
        assert!(
            readers.iter().any(|r| r.name == name),
            "{name:?} missing from {readers:?}"
        );
    }
    let ours = readers.iter().find(|r| r.name == lease.name()).unwrap();
    assert!(ours.card_present, "{ours:?}");
    assert_eq!(ours.atr.as_deref(), Some(&card.atr()[..]));

    drop(card);
    let readers = reader::list_readers().unwrap();
    let ours = readers.iter().find(|r| r.name == lease.name()).unwrap();
    assert!(!ours.card_present && ours.atr.is_none(), "{ours:?}");
}

#[test]
fn watcher_reports_removal_and_reinsertion() {
    let lab = CardLab::shared();
    let lease = lab.lease_reader();
    let mut card = VirtualCard::insert(&lease, PivCardState::new());
    let mut watcher = ReaderWatcher::new().unwrap();
    let now = watcher.current();
    let ours = now.iter().find(|r| r.name == lease.name()).unwrap();
    assert!(ours.card_present);

    card.remove();
    wait_for_event(&mut watcher, lease.name(), |e| {
        matches!(e, ReaderEvent::CardRemoved { .. })
    });
    assert!(
        !watcher
            .current()
            .iter()
            .any(|r| r.name == lease.name() && r.card_present),
        "current() still shows the card"
    );

    card.reinsert();
    let inserted = wait_for_event(&mut watcher, lease.name(), |e| {
        matches!(e, ReaderEvent::CardInserted { .. })
    });
    assert_eq!(
        inserted,
        ReaderEvent::CardInserted {
            reader: lease.name().to_string(),
            atr: card.atr()
        }
    );
}

#[test]
fn watcher_waits_out_its_timeout_when_nothing_changes() {
    // Exclusive: no other test inserts or removes cards meanwhile.
    let lab = CardLab::shared();
    let exclusive = lab.exclusive();
    let lease = exclusive.lease_reader();
    let _card = VirtualCard::insert(&lease, PivCardState::new());
    let mut watcher = ReaderWatcher::new().unwrap();
    let start = Instant::now();
    let events = watcher.next_events(Duration::from_millis(1500)).unwrap();
    let waited = start.elapsed();
    assert_eq!(events, vec![]);
    // Neither an early return (the PnP pseudo-reader reporting changes that are none) nor an
    // overlong wait.
    assert!(
        waited >= Duration::from_millis(1400) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
}

#[test]
fn connect_reports_an_empty_reader_and_unknown_names() {
    let lab = CardLab::shared();
    let lease = lab.lease_reader();

    match reader::connect(Some(lease.name())) {
        Err(CardError::NoCard { reader }) => assert_eq!(reader, lease.name()),
        other => panic!("expected NoCard, got {:?}", other.map(|(r, _)| r)),
    }
    match reader::connect(Some("no such reader anywhere")) {
        Err(e @ CardError::ReaderNotFound { .. }) => {
            let text = e.to_string();
            assert!(text.contains("no such reader anywhere"), "{text}");
            assert!(
                text.contains(lease.name()),
                "attached readers not listed: {text}"
            );
        }
        other => panic!("expected ReaderNotFound, got {:?}", other.map(|(r, _)| r)),
    }
    // "imza test reader" is part of all eight names.
    assert!(matches!(
        reader::connect(Some("IMZA TEST READER")),
        Err(CardError::ReaderAmbiguous { .. })
    ));

    let card = VirtualCard::insert(&lease, PivCardState::new());
    // A unique part of the name, in another case, finds the reader.
    let (name, connected) = reader::connect(Some(&lease.name().to_uppercase())).unwrap();
    assert_eq!(name, lease.name());
    assert_eq!(connected.status2_owned().unwrap().atr(), &card.atr()[..]);
}

#[test]
fn connect_without_a_name_needs_exactly_one_card() {
    let lab = CardLab::shared();
    let exclusive = lab.exclusive();
    let first = exclusive.lease_reader();
    let second = exclusive.lease_reader();

    assert!(
        matches!(
            reader::connect(None),
            Err(CardError::NoCardInAnyReader { .. })
        ),
        "no card inserted anywhere"
    );
    let _one = VirtualCard::insert(&first, PivCardState::new());
    let (name, _) = reader::connect(None).unwrap();
    assert_eq!(name, first.name());

    let _two = VirtualCard::insert(&second, PivCardState::new());
    match reader::connect(None) {
        Err(CardError::SeveralCards { readers }) => {
            assert!(
                readers.contains(first.name()) && readers.contains(second.name()),
                "{readers}"
            )
        }
        other => panic!("expected SeveralCards, got {:?}", other.map(|(r, _)| r)),
    }
}

#[test]
fn stopped_pcscd_is_reported_as_not_running() {
    let lab = CardLab::shared();
    let exclusive = lab.exclusive();
    let lease = exclusive.lease_reader();
    let _card = VirtualCard::insert(&lease, PivCardState::new());
    let mut watcher = ReaderWatcher::new().unwrap();
    let mut piv = PivCard::connect(Some(lease.name())).unwrap();

    exclusive.stop_pcscd();
    let start = Instant::now();
    assert!(matches!(
        reader::list_readers(),
        Err(CardError::PcscdNotRunning)
    ));
    assert!(matches!(
        ReaderWatcher::new(),
        Err(CardError::PcscdNotRunning)
    ));
    assert!(matches!(
        reader::connect(Some(lease.name())),
        Err(CardError::PcscdNotRunning)
    ));
    match watcher.next_events(Duration::from_secs(2)) {
        Err(CardError::PcscdNotRunning) => {}
        other => panic!("expected PcscdNotRunning from the watcher, got {other:?}"),
    }
    // A connection made before: its next command fails, it does not wait.
    match piv.pin_tries_left() {
        Err(CardError::PcscdNotRunning) => {}
        other => panic!("expected PcscdNotRunning, got {other:?}"),
    }
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    assert!(CardError::PcscdNotRunning.to_string().contains("pcscd"));

    exclusive.start_pcscd();
    assert!(reader::list_readers()
        .unwrap()
        .iter()
        .any(|r| r.name == lease.name()));
}
