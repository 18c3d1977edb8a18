//! `imza demo`: builds a small national PKI in the data directory, idempotently.
//!
//! root (P-384) → citizens, organisations, infrastructure, mobile (P-256); a citizen with signing and
//! authentication certificates, a second citizen whose signing certificate is revoked, an
//! organisation seal, a TLS server and a TSA certificate; a CRL per CA; for the mobile signature
//! a relying party and a registered phone. A second run finds
//! everything in place and only prints where it is.

use std::os::unix::fs::DirBuilderExt;

use time::Duration;

use imza_ca::authority::DEFAULT_BACKDATE;
use imza_ca::services::DEFAULT_TSA_NAME;
use imza_ca::store::{ServiceKind, StatusFilter};
use imza_ca::{InitCa, InitTsa, IssueOptions, IssueRequest};
use imza_core::cert::serial_hex;
use imza_core::key::software::SoftwareKey;
use imza_core::name::parse_dn;
use imza_core::{pem, KeyAlgorithm, SigningKey};
use x509_cert::ext::pkix::CrlReason;

use crate::ca::{create_pki, Home};
use crate::output::{write_replace, CliResult, Failure};

const ORG: &str = "O=Milli Sertifikat Xidmətləri Mərkəzi,C=AZ";

/// (name, parent, common name, key)
const CAS: &[(&str, Option<&str>, &str, KeyAlgorithm)] = &[
    ("root", None, "AZ Root CA", KeyAlgorithm::EcP384),
    (
        "citizens",
        Some("root"),
        "AZ Citizens CA",
        KeyAlgorithm::EcP256,
    ),
    (
        "organisations",
        Some("root"),
        "AZ Organisations CA",
        KeyAlgorithm::EcP256,
    ),
    (
        "infrastructure",
        Some("root"),
        "AZ Infrastructure CA",
        KeyAlgorithm::EcP256,
    ),
    (
        "mobile",
        Some("root"),
        "AZ Mobile Signature CA",
        KeyAlgorithm::EcP256,
    ),
];

/// The demo's relying party of the mobile signature service.
const DEMO_RP: &str = "mygov.az";
/// The portal's relying party (the default of `imza serve`'s `[portal] mss_relying_party`).
const DEMO_PORTAL_RP: &str = "portal";
/// The demo's phone: number, FIN, given name, surname; and its signing PIN.
const DEMO_PHONE: (&str, &str, &str, &str) = ("+994501234567", "5ZK7T2Q", "Günay", "Əliyeva");
const DEMO_PHONE_PIN: &str = "12345";

/// (file stem, CA, profile, subject, subjectAltNames)
const CERTIFICATES: &[(&str, &str, &str, &str, &[&str])] = &[
    (
        "gunay-sign",
        "citizens",
        "citizen-sign",
        "CN=Əliyev Günay Şəmsi oğlu,givenName=Günay,SN=Əliyev,serialNumber=PNOAZ-5ZK7T2Q,C=AZ",
        &["email:gunay.aliyeva@mygov.az"],
    ),
    (
        "gunay-auth",
        "citizens",
        "citizen-auth",
        "CN=Əliyev Günay Şəmsi oğlu,givenName=Günay,SN=Əliyev,serialNumber=PNOAZ-5ZK7T2Q,C=AZ",
        &[],
    ),
    (
        "rashad-sign-revoked",
        "citizens",
        "citizen-sign",
        "CN=Məmmədov Rəşad İlqar oğlu,givenName=Rəşad,SN=Məmmədov,serialNumber=PNOAZ-3HQ8M1X,C=AZ",
        &[],
    ),
    (
        "asan-seal",
        "organisations",
        "org-seal",
        "CN=ASAN Xidmət e-möhür,O=ASAN Xidmət,organizationIdentifier=NTRAZ-1403012345,C=AZ",
        &[],
    ),
    (
        "e-gov-tls",
        "infrastructure",
        "tls-server",
        "CN=e-gov.az,O=Milli Sertifikat Xidmətləri Mərkəzi,C=AZ",
        &["dns:e-gov.az", "dns:www.e-gov.az"],
    ),
    (
        PORTAL_TLS,
        "infrastructure",
        "tls-server",
        "CN=localhost,O=Milli Sertifikat Xidmətləri Mərkəzi,C=AZ",
        &["dns:localhost", "ip:127.0.0.1"],
    ),
];

/// The certificate `make demo` serves the portal over HTTPS with, on localhost / 127.0.0.1:
/// `demo/certs/portal-tls-chain.pem` (with its CA) and `demo/keys/portal-tls.key.pem`.
pub const PORTAL_TLS: &str = "portal-tls";

pub fn run(home: &Home) -> CliResult {
    let data_dir = home.data_dir.as_path();
    let pki = create_pki(home)?;
    let demo = data_dir.join("demo");
    for sub in ["ca", "certs", "keys", "crl"] {
        // keys/ holds the demo citizens' private keys: the user's only, like the CA keys.
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(if sub == "keys" { 0o700 } else { 0o755 })
            .create(demo.join(sub))
            .map_err(|e| {
                let message = format!("cannot create {}: {e}", demo.join(sub).display());
                crate::output::io_class(&e, message)
            })?;
    }
    for (name, parent, cn, key) in CAS {
        if pki
            .store()
            .ca(name)
            .map_err(imza_ca::CaError::from)?
            .is_none()
        {
            pki.init_ca(InitCa {
                algorithm: *key,
                ..InitCa::new(name, &format!("CN={cn},{ORG}"), *parent)
            })?;
            println!("created CA {name}");
        }
        let record = pki.ca(name)?;
        write_replace(
            &demo.join("ca").join(format!("{name}.pem")),
            pem::encode(pem::CERTIFICATE, &record.certificate)?.as_bytes(),
        )?;
    }

    let already = !pki.list("citizens", StatusFilter::All, 1)?.is_empty();
    let cert_path = |stem: &str| demo.join("certs").join(format!("{stem}.pem"));
    for (stem, ca, profile_name, subject, sans) in CERTIFICATES {
        // A demo built by an older imza gets the certificates added since.
        if !already || !cert_path(stem).exists() {
            let authority = pki.authority(ca, None)?;
            let profile = pki.profiles().get(profile_name)?;
            let key = SoftwareKey::generate(KeyAlgorithm::EcP256)?;
            let request = IssueRequest {
                subject: parse_dn(subject)?,
                public_key: key.public_key_der()?,
                key_algorithm: KeyAlgorithm::EcP256,
                alt_names: sans.iter().map(|s| s.parse()).collect::<Result<_, _>>()?,
                asks_for_ca: false,
            };
            let options = IssueOptions {
                profile,
                validity_days: None,
                backdate: DEFAULT_BACKDATE,
            };
            let record = authority
                .issue(std::slice::from_ref(&request), &options)?
                .pop()
                .ok_or_else(|| Failure::Internal("nothing issued".into()))?;
            let key_path = demo.join("keys").join(format!("{stem}.key.pem"));
            let _ = std::fs::remove_file(&key_path);
            key.save_pem(&key_path)?;
            write_replace(
                &cert_path(stem),
                pem::encode(pem::CERTIFICATE, &record.der)?.as_bytes(),
            )?;
            if stem.ends_with("-revoked") {
                pki.revoke(ca, &record.serial, CrlReason::KeyCompromise, None)?;
                println!("issued and revoked {} ({stem})", serial_hex(&record.serial));
            } else {
                println!("issued {} ({stem})", serial_hex(&record.serial));
            }
        }
    }
    let portal_tls = std::fs::read(cert_path(PORTAL_TLS))
        .and_then(|cert| {
            Ok([
                cert,
                std::fs::read(demo.join("ca").join("infrastructure.pem"))?,
            ]
            .concat())
        })
        .map_err(|e| Failure::Internal(format!("the portal's TLS certificate: {e}")))?;
    write_replace(
        &demo.join("certs").join(format!("{PORTAL_TLS}-chain.pem")),
        &portal_tls,
    )?;
    for (name, ..) in CAS {
        let crl = match pki
            .store()
            .latest_crl(name)
            .map_err(imza_ca::CaError::from)?
        {
            Some(crl) if already => crl,
            _ => {
                pki.authority(name, None)?
                    .sign_crl(Duration::days(1), &mut |_, _| {})?
                    .record
            }
        };
        write_replace(
            &demo.join("crl").join(format!("{name}.crl")),
            pem::encode(pem::X509_CRL, &crl.der)?.as_bytes(),
        )?;
    }

    // The services `imza serve` runs: a delegated OCSP responder per CA, one TSA unit.
    for (name, ..) in CAS {
        if pki.ensure_ocsp_responder(name, None)?.issued {
            println!("issued the OCSP responder certificate of {name}");
        }
    }
    let tsa = match pki.current_service(ServiceKind::Tsa, DEFAULT_TSA_NAME)? {
        Some(unit) => unit,
        None => {
            let unit = pki.init_tsa(InitTsa {
                subject: Some(format!("CN=AZ Time-Stamping Authority,{ORG}")),
                ..InitTsa::new(DEFAULT_TSA_NAME, "infrastructure")
            })?;
            println!("created TSA {}", unit.service.name);
            unit
        }
    };
    let tsa_pem = pem::encode(pem::CERTIFICATE, &tsa.certificate.der)?;
    write_replace(&demo.join("certs").join("tsa.pem"), tsa_pem.as_bytes())?;
    let issuer_pem = pem::encode(pem::CERTIFICATE, &pki.ca(&tsa.service.ca)?.certificate)?;
    write_replace(
        &demo.join("certs").join("tsa-chain.pem"),
        format!("{tsa_pem}{issuer_pem}").as_bytes(),
    )?;

    // The mobile signature: a relying party (its API key kept in demo/mobile-rp.key, 0600) and
    // a registered phone (wallet and PIN-encrypted keys in demo/phone, PIN 12345).
    let store = crate::mobile::open_mobile_store(home)?;
    let rp_key_file = demo.join("mobile-rp.key");
    let registered = imza_mobile_sign::store::MobileStore::relying_parties(store.as_ref())
        .map_err(|e| Failure::Internal(e.to_string()))?;
    if !registered.iter().any(|rp| rp.name == DEMO_RP) {
        let key = imza_mobile_sign::store::add_relying_party(store.as_ref(), DEMO_RP, pki.now())
            .map_err(|e| Failure::Internal(e.to_string()))?;
        let _ = std::fs::remove_file(&rp_key_file);
        imza_core::key::software::write_private_file(&rp_key_file, key.as_bytes())?;
        println!("registered relying party {DEMO_RP}");
    }
    // The portal's own relying party (the phone login of /portal; `[portal]
    // mss_relying_party` of `imza serve` defaults to it): its API key in demo/portal-rp.key,
    // handed to `imza serve` in IMZA_PORTAL_MSS_API_KEY.
    let portal_key_file = demo.join("portal-rp.key");
    if !registered.iter().any(|rp| rp.name == DEMO_PORTAL_RP) {
        let key =
            imza_mobile_sign::store::add_relying_party(store.as_ref(), DEMO_PORTAL_RP, pki.now())
                .map_err(|e| Failure::Internal(e.to_string()))?;
        let _ = std::fs::remove_file(&portal_key_file);
        imza_core::key::software::write_private_file(&portal_key_file, key.as_bytes())?;
        println!("registered relying party {DEMO_PORTAL_RP} (the portal's phone login)");
    }
    // make demo serves the portal in a process of its own on https://localhost:8443; its
    // phone login asks the signature service of the other one, on port 8080.
    write_replace(
        &demo.join("portal.toml"),
        format!(
            "[portal]\norigin = \"https://localhost:8443\"\nname = \"{DEMO_RP}\"\n\
             mss_url = \"http://127.0.0.1:8080\"\nmss_relying_party = \"{DEMO_PORTAL_RP}\"\n\
             citizens = \"citizens.toml\"\n\n\
             # E-certificates: issued by ASAN Xidmət, sealed with its e-seal (a key file here;\n\
             # an HSM through pkcs11_module, pkcs11_token, pkcs11_key_label and pkcs11_pin_env in a\n\
             # deployment), time-stamped by the TSA of the services on port 8080.\n\
             [portal.seal]\nagency = \"ASAN Xidmət\"\ncertificate = \"certs/asan-seal.pem\"\n\
             chain = \"ca/organisations.pem\"\nkey = \"keys/asan-seal.key.pem\"\n\
             tsa_url = \"http://127.0.0.1:8080/tsa\"\n"
        )
        .as_bytes(),
    )?;
    write_replace(
        &demo.join("citizens.toml"),
        imza_portal::registry::DEMO_CITIZENS.as_bytes(),
    )?;
    let phone_dir = demo.join("phone");
    if !phone_dir
        .join(imza_mobile_sign::phone::WALLET_FILE)
        .exists()
    {
        crate::mobile::register_demo_phone(home, DEMO_PHONE, &phone_dir, DEMO_PHONE_PIN)?;
    }

    let audit = pki.verify_audit()?;
    println!();
    println!(
        "Demo national PKI ready{}:",
        if already {
            " (already built; nothing changed)"
        } else {
            ""
        }
    );
    println!("  store           {}", home.store);
    println!("  CA keys (0600)  {}", data_dir.join("keys").display());
    println!("  CA certificates {}", demo.join("ca").display());
    println!(
        "  certificates    {}   (keys in {})",
        demo.join("certs").display(),
        demo.join("keys").display()
    );
    println!("  CRLs            {}", demo.join("crl").display());
    println!("  audit log       {} entries, intact", audit.entries);
    println!();
    println!("Try:");
    let dd = data_dir.display();
    println!("  imza --data-dir {dd} ca list");
    println!("  imza --data-dir {dd} ca list --ca citizens");
    println!("  openssl verify -CAfile {0}/ca/root.pem -untrusted {0}/ca/citizens.pem {0}/certs/gunay-sign.pem", demo.display());
    println!("  openssl verify -crl_check -CRLfile {0}/crl/citizens.crl -CAfile {0}/ca/root.pem -untrusted {0}/ca/citizens.pem {0}/certs/rashad-sign-revoked.pem", demo.display());
    println!("  imza --data-dir {dd} audit verify");
    println!("With `imza serve` running (make demo starts it):");
    println!("  openssl ocsp -issuer {0}/ca/citizens.pem -cert {0}/certs/gunay-sign.pem -url http://127.0.0.1:8080/ocsp -CAfile {0}/ca/root.pem", demo.display());
    println!("  openssl ts -query -data README.md -sha256 -cert -out q.tsq && curl -s --data-binary @q.tsq -H 'Content-Type: application/timestamp-query' http://127.0.0.1:8080/tsa -o r.tsr");
    println!("  openssl ts -verify -in r.tsr -queryfile q.tsq -CAfile {0}/ca/root.pem -untrusted {0}/certs/tsa-chain.pem", demo.display());
    println!("  imza cert verify {0}/certs/rashad-sign-revoked.pem --trust {0}/ca/root.pem --untrusted {0}/ca/citizens.pem --network", demo.display());
    println!("  imza sign --in README.md --out readme.p7s --key {0}/keys/gunay-sign.key.pem --cert {0}/certs/gunay-sign.pem --chain {0}/ca/citizens.pem --level LT --tsa http://127.0.0.1:8080/tsa --trust {0}/ca/root.pem", demo.display());
    println!(
        "  imza verify readme.p7s --content README.md --trust {0}/ca/root.pem",
        demo.display()
    );
    println!("  openssl cms -verify -binary -inform DER -in readme.p7s -content README.md -CAfile {0}/ca/root.pem -purpose any -out /dev/null", demo.display());
    println!("The citizen portal (make demo serves it over HTTPS; trust {0}/ca/root.pem in the browser):", demo.display());
    println!("  https://localhost:8443/portal");
    println!(
        "  imza --data-dir {dd} portal code issue --national-id {}",
        DEMO_PHONE.1
    );
    println!("Mobile signature (the phone in one terminal, the relying party in another):");
    println!(
        "  DEMO_PIN={DEMO_PHONE_PIN} imza phone run --phone {} --phone-dir {} --approve --pin-env DEMO_PIN",
        DEMO_PHONE.0,
        phone_dir.display()
    );
    println!("  RP_KEY=$(cat {}) imza --data-dir {dd} sign --mobile {} --national-id {} --mss-url http://127.0.0.1:8080 --rp-name {DEMO_RP} --rp-key-env RP_KEY --in README.md --out mobile.p7s --chain {}/ca/mobile.pem --level T --tsa http://127.0.0.1:8080/tsa", rp_key_file.display(), DEMO_PHONE.0, DEMO_PHONE.1, demo.display());
    println!("  RP_KEY=$(cat {}) imza mobile auth --phone {} --national-id {} --mss-url http://127.0.0.1:8080 --rp-name {DEMO_RP} --rp-key-env RP_KEY --trust {}/ca/root.pem", rp_key_file.display(), DEMO_PHONE.0, DEMO_PHONE.1, demo.display());
    println!(
        "Portal phone and QR logins (make demo serves the portal with {}/portal.toml and the key in {}):",
        demo.display(),
        portal_key_file.display()
    );
    println!(
        "  DEMO_PIN={DEMO_PHONE_PIN} imza phone qr --link 'LINK FROM THE QR CODE' --phone {} --phone-dir {} --pin-env DEMO_PIN",
        DEMO_PHONE.0,
        phone_dir.display()
    );
    println!("  curl -s http://127.0.0.1:8080/verify -H 'Content-Type: application/json' -d \"{{\\\"signature\\\": \\\"$(base64 -w0 readme.p7s)\\\", \\\"content\\\": \\\"$(base64 -w0 README.md)\\\"}}\"");
    Ok(())
}
