//! The card lab through PC/SC itself (the `pcsc` crate on the lab's pcscd): cards seen going in
//! and out, state kept across removal and across processes, two cards answering at once, and
//! pcscd stopped and started by a test holding the whole lab.

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::ffi::CString;
use std::time::Duration;

use imza_testdata::card::{
    CardLab, PivAlgorithm, PivCardState, PivSlot, ReaderLease, VirtualCard, ATR,
};
use openssl::ecdsa::EcdsaSig;
use pcsc::{Context, Protocols, Scope, ShareMode, State};

const SELECT_PIV: [u8; 15] = [
    0x00, 0xA4, 0x04, 0x00, 0x09, 0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x00,
];

/// The reader's state as pcscd reports it right now.
fn reader_state(reader: &ReaderLease) -> (State, Vec<u8>) {
    let context = Context::establish(Scope::User).unwrap();
    let mut states = [pcsc::ReaderState::new(
        CString::new(reader.name()).unwrap(),
        State::UNAWARE,
    )];
    context
        .get_status_change(Duration::from_secs(1), &mut states)
        .unwrap();
    (states[0].event_state(), states[0].atr().to_vec())
}

/// Sends `apdu` and follows 61xx with GET RESPONSE; returns the data and the status word.
fn transmit(card: &pcsc::Card, apdu: &[u8]) -> (Vec<u8>, u16) {
    let mut buffer = [0u8; pcsc::MAX_BUFFER_SIZE_EXTENDED];
    let mut data = Vec::new();
    let mut command = apdu.to_vec();
    for _ in 0..64 {
        let response = card.transmit(&command, &mut buffer).unwrap();
        let (body, sw) = response.split_at(response.len() - 2);
        data.extend_from_slice(body);
        if sw[0] != 0x61 {
            return (data, u16::from_be_bytes([sw[0], sw[1]]));
        }
        command = vec![0x00, 0xC0, 0x00, 0x00, sw[1]];
    }
    panic!("endless GET RESPONSE chain");
}

fn connect(reader: &ReaderLease) -> pcsc::Card {
    let context = Context::establish(Scope::User).unwrap();
    let card = context
        .connect(
            &CString::new(reader.name()).unwrap(),
            ShareMode::Shared,
            Protocols::ANY,
        )
        .unwrap();
    let (_, sw) = transmit(&card, &SELECT_PIV);
    assert_eq!(sw, 0x9000);
    card
}

fn verify_pin(card: &pcsc::Card, pin: &[u8]) -> u16 {
    let mut apdu = vec![0x00, 0x20, 0x00, 0x80, 0x08];
    let mut padded = [0xFF; 8];
    padded[..pin.len()].copy_from_slice(pin);
    apdu.extend_from_slice(&padded);
    transmit(card, &apdu).1
}

/// Has the card sign `digest` with its 9C key (VERIFY right before it) and checks the signature
/// with `spki`.
fn sign_p256_and_check(card: &pcsc::Card, spki: &[u8], digest: &[u8; 32]) {
    assert_eq!(verify_pin(card, b"123456"), 0x9000);
    let mut apdu = vec![
        0x00, 0x87, 0x11, 0x9C, 0x26, 0x7C, 0x24, 0x82, 0x00, 0x81, 0x20,
    ];
    apdu.extend_from_slice(digest);
    apdu.push(0x00);
    let (data, sw) = transmit(card, &apdu);
    assert_eq!(sw, 0x9000);
    // 7C L 82 L signature
    let signature = &data[4..];
    let public = openssl::pkey::PKey::public_key_from_der(spki).unwrap();
    let signature = EcdsaSig::from_der(signature).unwrap();
    assert!(signature.verify(digest, &public.ec_key().unwrap()).unwrap());
}

#[test]
fn removal_and_reinsertion_are_seen_by_pcsc_with_the_atr() {
    let lab = CardLab::shared();
    let reader = lab.lease_reader();
    let (state, _) = reader_state(&reader);
    assert!(state.contains(State::EMPTY), "{state:?}");
    let mut card = VirtualCard::insert(&reader, PivCardState::new());
    let (state, atr) = reader_state(&reader);
    assert!(state.contains(State::PRESENT), "{state:?}");
    assert_eq!(atr, ATR);
    assert_eq!(card.atr(), ATR);
    card.remove();
    let (state, _) = reader_state(&reader);
    assert!(state.contains(State::EMPTY), "{state:?}");
    card.reinsert();
    let (state, _) = reader_state(&reader);
    assert!(state.contains(State::PRESENT), "{state:?}");
    let connected = connect(&reader);
    let (chuid, sw) = transmit(
        &connected,
        &[
            0x00, 0xCB, 0x3F, 0xFF, 0x05, 0x5C, 0x03, 0x5F, 0xC1, 0x02, 0x00,
        ],
    );
    assert_eq!((chuid.first(), sw), (Some(&0x53), 0x9000));
}

#[test]
fn removal_forgets_the_verified_pin_but_keeps_the_tries() {
    let lab = CardLab::shared();
    let reader = lab.lease_reader();
    let mut card = VirtualCard::insert(&reader, PivCardState::new());
    {
        let connected = connect(&reader);
        assert_eq!(verify_pin(&connected, b"000000"), 0x63C2);
        assert_eq!(verify_pin(&connected, b"123456"), 0x9000);
        assert_eq!(transmit(&connected, &[0x00, 0x20, 0x00, 0x80]).1, 0x9000);
        assert_eq!(verify_pin(&connected, b"000000"), 0x63C2);
    }
    card.reinsert();
    let connected = connect(&reader);
    assert_eq!(transmit(&connected, &[0x00, 0x20, 0x00, 0x80]).1, 0x63C2);
    assert_eq!(card.state().pin_tries_left(), 2);
}

#[test]
fn persisted_state_reloads_with_keys_and_tries_in_another_reader() {
    let lab = CardLab::shared();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("card.json");
    let mut state = PivCardState::new();
    let spki = state.generate_key(PivSlot::Signature, PivAlgorithm::EcP256);
    let digest = openssl::sha::sha256(b"persisted");
    {
        let reader = lab.lease_reader();
        let card = VirtualCard::insert(&reader, state);
        card.persist_to(&path);
        let connected = connect(&reader);
        assert_eq!(verify_pin(&connected, b"111111"), 0x63C2);
        // Written after every change: the file has the tries before the card is removed.
        assert_eq!(PivCardState::load(&path).unwrap().pin_tries_left(), 2);
        sign_p256_and_check(&connected, &spki, &digest);
    }
    let reloaded = PivCardState::load(&path).unwrap();
    assert_eq!(
        reloaded.pin_tries_left(),
        3,
        "the right PIN reset the counter"
    );
    assert_eq!(reloaded.public_key(PivSlot::Signature), Some(spki.clone()));
    let first = lab.lease_reader();
    let second = lab.lease_reader();
    let card = VirtualCard::insert(&second, reloaded);
    drop(first);
    let connected = connect(&second);
    assert_eq!(verify_pin(&connected, b"222222"), 0x63C2);
    sign_p256_and_check(&connected, &spki, &digest);
    assert_eq!(card.state().pin_tries_left(), 3);
}

#[test]
fn two_cards_in_two_readers_answer_at_once() {
    let lab = CardLab::shared();
    let workers: Vec<_> = (0..2)
        .map(|n| {
            std::thread::spawn(move || {
                let reader = lab.lease_reader();
                let mut state = PivCardState::new();
                let spki = state.generate_key(PivSlot::Signature, PivAlgorithm::EcP256);
                let card = VirtualCard::insert(&reader, state);
                let connected = connect(&reader);
                for round in 0..20u8 {
                    let digest = openssl::sha::sha256(&[n, round]);
                    sign_p256_and_check(&connected, &spki, &digest);
                }
                (reader.name().to_string(), card.state().guid())
            })
        })
        .collect();
    let results: Vec<_> = workers.into_iter().map(|w| w.join().unwrap()).collect();
    assert_ne!(results[0].0, results[1].0, "two different readers");
    assert_ne!(results[0].1, results[1].1, "two different cards");
}

#[test]
fn pcscd_stopped_under_the_exclusive_lab_is_gone_until_started_again() {
    let lab = CardLab::shared();
    let exclusive = lab.exclusive();
    let reader = exclusive.lease_reader();
    let card = VirtualCard::insert(&reader, PivCardState::new());
    drop(card);
    exclusive.stop_pcscd();
    let stopped = Context::establish(Scope::User).and_then(|c| c.list_readers_owned());
    assert!(
        matches!(
            stopped,
            Err(pcsc::Error::NoService) | Err(pcsc::Error::NoReadersAvailable)
        ),
        "{stopped:?}"
    );
    assert!(!std::path::Path::new("/run/pcscd/pcscd.comm").exists());
    exclusive.start_pcscd();
    let listed = Context::establish(Scope::User)
        .and_then(|c| c.list_readers_owned())
        .unwrap();
    assert_eq!(listed.len(), lab.reader_names().len());
    let card = VirtualCard::insert(&reader, PivCardState::new());
    let connected = connect(&reader);
    assert_eq!(transmit(&connected, &[0x00, 0x20, 0x00, 0x80]).1, 0x63C3);
    drop(connected);
    drop(card);
}
