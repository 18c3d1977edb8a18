//! The PIV emulator driven by OpenSC, through a real pcscd: OpenSC's PKCS#11 module (through
//! `pkcs11-tool`, as a citizen's machine loads it) and `piv-tool` for card administration.

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs::File;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use imza_testdata::card::{
    certificate_for, CardLab, PivAlgorithm, PivCardState, PivSlot, ReaderLease, VirtualCard,
    DEFAULT_MANAGEMENT_KEY, OPENSC_PKCS11_MODULE,
};

/// `pkcs11-tool` on OpenSC's module, limited to `reader`'s slot; `OPENSC_CONF` from the lab
/// unless `with_conf` is false.
fn pkcs11_tool(reader: &ReaderLease, with_conf: bool, args: &[&str]) -> Output {
    pkcs11_command(reader, with_conf.then(|| reader.opensc_conf()))
        .args(args)
        .output()
        .expect("pkcs11-tool (apt-get install opensc) must be installed")
}

/// A `pkcs11-tool` command on OpenSC's module and `reader`'s slot, with `conf` as OPENSC_CONF.
fn pkcs11_command(reader: &ReaderLease, conf: Option<&Path>) -> Command {
    let mut command = Command::new("pkcs11-tool");
    if let Some(conf) = conf {
        command.env("OPENSC_CONF", conf);
    }
    command.args([
        "--module",
        OPENSC_PKCS11_MODULE,
        "--slot-description",
        reader.name(),
    ]);
    command
}

/// `pkcs11-tool` signing `input` into `output` with the slot 9C key (ECDSA-SHA256, the factory
/// PIN, its context-specific login included).
fn pkcs11_sign_command(reader: &ReaderLease, conf: &Path, input: &Path, output: &Path) -> Command {
    let mut command = pkcs11_command(reader, Some(conf));
    command
        .args(["--sign", "--login", "--pin", "123456", "--id", "02"])
        .args(["--mechanism", "ECDSA-SHA256"])
        .args(["--input-file", input.to_str().unwrap()])
        .args(["--output-file", output.to_str().unwrap()]);
    command
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn write_pem_public_key(path: &Path, spki: &[u8]) {
    let key = openssl::pkey::PKey::public_key_from_der(spki).unwrap();
    std::fs::write(path, key.public_key_to_pem().unwrap()).unwrap();
}

/// Signs `data` with the 9C key through pkcs11-tool (PIN login, then the context-specific login
/// OpenSC asks for on 9C) and checks the signature with `openssl dgst -verify`.
fn sign_and_verify(reader: &ReaderLease, dir: &Path, mechanism: &str, spki: &[u8]) {
    let data = dir.join("data.txt");
    let signature = dir.join("signature.bin");
    let public = dir.join("public.pem");
    std::fs::write(&data, b"imza: a document the citizen signs").unwrap();
    write_pem_public_key(&public, spki);
    let output = pkcs11_tool(
        reader,
        true,
        &[
            "--sign",
            "--login",
            "--pin",
            "123456",
            "--id",
            "02",
            "--mechanism",
            mechanism,
            "--signature-format",
            "openssl",
            "--input-file",
            data.to_str().unwrap(),
            "--output-file",
            signature.to_str().unwrap(),
        ],
    );
    assert!(
        output.status.success(),
        "pkcs11-tool --sign: {}",
        text(&output)
    );
    let verified = Command::new("openssl")
        .args(["dgst", "-sha256", "-verify"])
        .arg(&public)
        .arg("-signature")
        .arg(&signature)
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        verified.status.success(),
        "openssl dgst -verify of the card's signature: {}",
        text(&verified)
    );
}

fn provisioned_card(reader: &ReaderLease, algorithm: PivAlgorithm) -> (VirtualCard, Vec<u8>) {
    let mut state = PivCardState::new();
    let spki = state.generate_key(PivSlot::Signature, algorithm);
    state.set_certificate(PivSlot::Signature, &certificate_for(&spki, "Test Citizen"));
    (VirtualCard::insert(reader, state), spki)
}

/// `piv-tool` on `reader` with the management key in a PIV_EXT_AUTH_KEY file (hex).
fn piv_tool(reader: &ReaderLease, dir: &Path, management_key: &[u8], args: &[&str]) -> Output {
    let key_file = dir.join("management-key.hex");
    std::fs::write(&key_file, hex::encode(management_key)).unwrap();
    Command::new("piv-tool")
        .env("OPENSC_CONF", reader.opensc_conf())
        .env("PIV_EXT_AUTH_KEY", &key_file)
        .args(["-r", reader.name()])
        .args(args)
        .output()
        .expect("piv-tool (apt-get install opensc) must be installed")
}

/// piv-tool authenticates with the management key (`admin`: A = external, M = mutual) and has
/// the card generate a key in 9C, writes a certificate for it, and pkcs11-tool signs with it.
fn generate_write_and_sign(algorithm: PivAlgorithm, admin: &str, mechanism: &str) {
    let lab = CardLab::shared();
    let reader = lab.lease_reader();
    let dir = tempfile::tempdir().unwrap();
    let card = VirtualCard::insert(&reader, PivCardState::new());
    let public_file = dir.path().join("public.der");
    let key_spec = format!("9C:{:02X}", algorithm_id(algorithm));
    let generated = piv_tool(
        &reader,
        dir.path(),
        &DEFAULT_MANAGEMENT_KEY,
        &[
            "-A",
            admin,
            "-G",
            &key_spec,
            "-o",
            public_file.to_str().unwrap(),
        ],
    );
    let state = card.state();
    assert_eq!(
        state.key_algorithm(PivSlot::Signature),
        Some(algorithm),
        "the card generated no key through piv-tool: {}",
        text(&generated)
    );
    let spki = state.public_key(PivSlot::Signature).unwrap();
    if generated.status.success() {
        let written = std::fs::read(&public_file).unwrap();
        assert_eq!(written, spki, "piv-tool's public key is the card's");
    } else {
        // OpenSC 0.23's piv-tool cannot turn the answered public key into an OpenSSL 3 key (it
        // passes a truncated curve name, and asks for a key pair from n and e): the card did
        // its part, piv-tool fails afterwards with this message.
        assert!(
            text(&generated).contains("gen_key unable to gen"),
            "piv-tool -G: {}",
            text(&generated)
        );
    }
    let certificate = certificate_for(&spki, "Enrolled Citizen");
    let pem = dir.path().join("certificate.pem");
    let x509 = openssl::x509::X509::from_der(&certificate).unwrap();
    std::fs::write(&pem, x509.to_pem().unwrap()).unwrap();
    let written = piv_tool(
        &reader,
        dir.path(),
        &DEFAULT_MANAGEMENT_KEY,
        &["-A", admin, "-C", "9C", "-i", pem.to_str().unwrap()],
    );
    assert_eq!(
        card.state().certificate(PivSlot::Signature),
        Some(certificate),
        "piv-tool -C did not write the certificate: {}",
        text(&written)
    );
    sign_and_verify(&reader, dir.path(), mechanism, &spki);
}

fn algorithm_id(algorithm: PivAlgorithm) -> u8 {
    algorithm.identifier()
}

#[test]
fn pkcs11_tool_lists_the_token_in_the_leased_reader() {
    let lab = CardLab::shared();
    let reader = lab.lease_reader();
    let (card, _) = provisioned_card(&reader, PivAlgorithm::EcP256);
    let output = pkcs11_tool(&reader, true, &["--list-slots"]);
    let listing = text(&output);
    assert!(output.status.success(), "{listing}");
    let section = listing
        .split("Slot ")
        .find(|section| section.contains(reader.name()))
        .unwrap_or_else(|| panic!("no slot for {}: {listing}", reader.name()));
    assert!(section.contains("token initialized"), "{section}");
    assert!(section.contains("piv_II"), "{section}");
    // OpenSC takes the token serial from the CHUID's GUID.
    let guid = hex::encode(card.state().guid().unwrap());
    assert!(
        section.contains(&guid[16..]),
        "serial from GUID {guid}: {section}"
    );
    let objects = pkcs11_tool(&reader, true, &["--list-objects"]);
    let listing = text(&objects);
    assert!(objects.status.success(), "{listing}");
    assert!(listing.contains("Test Citizen"), "{listing}");
}

#[test]
fn pkcs11_tool_signs_with_a_provisioned_p256_key_and_openssl_verifies() {
    let lab = CardLab::shared();
    let reader = lab.lease_reader();
    let dir = tempfile::tempdir().unwrap();
    let (_card, spki) = provisioned_card(&reader, PivAlgorithm::EcP256);
    sign_and_verify(&reader, dir.path(), "ECDSA-SHA256", &spki);
}

#[test]
fn pkcs11_tool_signs_with_a_provisioned_rsa_2048_key_and_openssl_verifies() {
    let lab = CardLab::shared();
    let reader = lab.lease_reader();
    let dir = tempfile::tempdir().unwrap();
    let (_card, spki) = provisioned_card(&reader, PivAlgorithm::Rsa2048);
    sign_and_verify(&reader, dir.path(), "SHA256-RSA-PKCS", &spki);
}

#[test]
fn piv_tool_generates_a_p256_key_after_external_management_auth_and_pkcs11_tool_signs() {
    generate_write_and_sign(PivAlgorithm::EcP256, "A:9B:03", "ECDSA-SHA256");
}

#[test]
fn piv_tool_generates_an_rsa_2048_key_after_mutual_management_auth_and_pkcs11_tool_signs() {
    generate_write_and_sign(PivAlgorithm::Rsa2048, "M:9B:03", "SHA256-RSA-PKCS");
}

#[test]
fn piv_tool_without_the_right_management_key_neither_generates_nor_writes() {
    let lab = CardLab::shared();
    let reader = lab.lease_reader();
    let dir = tempfile::tempdir().unwrap();
    let card = VirtualCard::insert(&reader, PivCardState::new());
    let mut wrong = DEFAULT_MANAGEMENT_KEY;
    wrong[23] ^= 0x10;
    for admin in ["A:9B:03", "M:9B:03"] {
        let output = piv_tool(&reader, dir.path(), &wrong, &["-A", admin, "-G", "9C:11"]);
        assert!(!output.status.success(), "{}", text(&output));
        assert!(
            text(&output).contains("admin_mode failed"),
            "{}",
            text(&output)
        );
    }
    // Without authentication the card refuses GENERATE itself (6982).
    let output = piv_tool(&reader, dir.path(), &wrong, &["-G", "9C:11"]);
    assert!(!output.status.success(), "{}", text(&output));
    let state = card.state();
    assert_eq!(state.key_algorithm(PivSlot::Signature), None);
    assert_eq!(state.certificate(PivSlot::Signature), None);
}

#[test]
fn wrong_pins_through_pkcs11_tool_count_down_and_the_third_locks_the_card() {
    let lab = CardLab::shared();
    let reader = lab.lease_reader();
    let (card, _) = provisioned_card(&reader, PivAlgorithm::EcP256);
    for left in [2u8, 1, 0] {
        let output = pkcs11_tool(
            &reader,
            true,
            &["--login", "--pin", "999999", "--list-objects"],
        );
        assert!(
            !output.status.success(),
            "a wrong PIN logged in: {}",
            text(&output)
        );
        assert_eq!(card.state().pin_tries_left(), left, "{}", text(&output));
    }
    let output = pkcs11_tool(
        &reader,
        true,
        &["--login", "--pin", "123456", "--list-objects"],
    );
    assert!(
        !output.status.success(),
        "the right PIN got past a blocked card"
    );
    assert!(
        text(&output).contains("CKR_PIN_LOCKED"),
        "a blocked PIN says so: {}",
        text(&output)
    );
    assert_eq!(card.state().pin_tries_left(), 0);
    let slots = text(&pkcs11_tool(&reader, true, &["--list-slots"]));
    assert!(slots.contains("user PIN locked"), "{slots}");
}

#[test]
fn a_card_pulled_during_general_authenticate_fails_the_signature_instead_of_hanging() {
    let lab = CardLab::shared();
    let reader = lab.lease_reader();
    let dir = tempfile::tempdir().unwrap();
    let (mut card, spki) = provisioned_card(&reader, PivAlgorithm::EcP256);
    let data = dir.path().join("data.txt");
    std::fs::write(&data, b"pulled").unwrap();
    card.pull_on(0x87);
    let mut child = pkcs11_sign_command(
        &reader,
        reader.opensc_conf(),
        &data,
        &dir.path().join("sig"),
    )
    // Files, not pipes: nobody reads a pipe while the test polls the child.
    .stdout(File::create(dir.path().join("stdout")).unwrap())
    .stderr(File::create(dir.path().join("stderr")).unwrap())
    .spawn()
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("pkcs11-tool hung after the card was pulled");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = child.wait().unwrap();
    let printed = [
        std::fs::read_to_string(dir.path().join("stdout")).unwrap(),
        std::fs::read_to_string(dir.path().join("stderr")).unwrap(),
    ]
    .concat();
    assert!(!status.success(), "signed without a card: {printed}");
    // OpenSC reports the transmit failure of GENERAL AUTHENTICATE (C_Sign), then pkcs11-tool's
    // retry fails at the context-specific login.
    assert!(printed.contains("CKR_"), "{printed}");
    assert!(!card.is_connected());
    // Put back in, it signs again.
    card.reinsert();
    sign_and_verify(&reader, dir.path(), "ECDSA-SHA256", &spki);
}

/// The median of `runs` end-to-end signatures (pkcs11-tool start to exit: module load, slot
/// enumeration, login, context login, GENERAL AUTHENTICATE).
fn median_signature_time(reader: &ReaderLease, conf: &Path, dir: &Path, runs: usize) -> Duration {
    let data = dir.join("data.txt");
    std::fs::write(&data, b"timed").unwrap();
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let started = Instant::now();
            let output = pkcs11_sign_command(reader, conf, &data, &dir.join("sig"))
                .output()
                .unwrap();
            let elapsed = started.elapsed();
            assert!(output.status.success(), "{}", text(&output));
            elapsed
        })
        .collect();
    times.sort();
    times[runs / 2]
}

#[test]
fn one_signature_end_to_end_is_timed_with_and_without_the_piv_only_conf() {
    let lab = CardLab::shared();
    let reader = lab.lease_reader();
    let dir = tempfile::tempdir().unwrap();
    let (_card, _) = provisioned_card(&reader, PivAlgorithm::EcP256);
    // Every card driver probed, as OpenSC's default does; the same slot settings so the reader
    // is visible.
    let all_drivers = dir.path().join("all-drivers.conf");
    std::fs::write(
        &all_drivers,
        "app opensc-pkcs11 {\n  pkcs11 {\n    slots_per_card = 1;\n    max_virtual_slots = 32;\n  }\n}\n",
    )
    .unwrap();
    let piv_only = median_signature_time(&reader, lab.opensc_conf(), dir.path(), 7);
    let every_driver = median_signature_time(&reader, &all_drivers, dir.path(), 7);
    eprintln!(
        "one ECDSA P-256 signature through pkcs11-tool → OpenSC → pcscd → vpcd → emulator \
         (median of 7): {piv_only:?} with OPENSC_CONF card_drivers = PIV-II, {every_driver:?} \
         with every driver"
    );
}
