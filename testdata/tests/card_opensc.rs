//! The PIV emulator driven by OpenSC, through a real pcscd: OpenSC's PKCS#11 module (through
//! `pkcs11-tool`, as a citizen's machine loads it) and `piv-tool` for card administration.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Instant;

use imza_testdata::card::{
    certificate_for, CardLab, PivAlgorithm, PivCardState, PivSlot, ReaderLease, VirtualCard,
    OPENSC_PKCS11_MODULE,
};

/// `pkcs11-tool` on OpenSC's module, limited to `reader`'s slot; `OPENSC_CONF` from the lab
/// unless `with_conf` is false.
fn pkcs11_tool(reader: &ReaderLease, with_conf: bool, args: &[&str]) -> Output {
    let mut command = Command::new("pkcs11-tool");
    if with_conf {
        command.env("OPENSC_CONF", reader.opensc_conf());
    }
    command
        .args([
            "--module",
            OPENSC_PKCS11_MODULE,
            "--slot-description",
            reader.name(),
        ])
        .args(args)
        .output()
        .expect("pkcs11-tool (apt-get install opensc) must be installed")
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

#[test]
fn pkcs11_tool_lists_the_token_in_the_leased_reader() {
    let lab = CardLab::shared();
    let reader = lab.lease_reader();
    let (_card, _) = provisioned_card(&reader, PivAlgorithm::EcP256);
    let output = pkcs11_tool(&reader, true, &["--list-slots"]);
    let listing = text(&output);
    assert!(output.status.success(), "{listing}");
    let section = listing
        .split("Slot ")
        .find(|section| section.contains(reader.name()))
        .unwrap_or_else(|| panic!("no slot for {}: {listing}", reader.name()));
    assert!(section.contains("token initialized"), "{section}");
    assert!(section.contains("piv_II"), "{section}");
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
    let started = Instant::now();
    sign_and_verify(&reader, dir.path(), "ECDSA-SHA256", &spki);
    eprintln!("sign+verify {:?}", started.elapsed());
}
