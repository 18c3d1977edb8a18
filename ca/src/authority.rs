//! The CA engine: creating CAs, issuing, revoking and signing CRLs over a [`CaStore`].
//!
//! Order of events for every action (ARCHITECTURE "Data flow"): check everything, sign, record
//! in the store together with the audit entry (one durable transaction), and only then hand
//! the result back. A failure at any step leaves the store as it was.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rayon::prelude::*;
use serde_json::json;
use time::{Duration, OffsetDateTime};
use x509_cert::ext::pkix::CrlReason;
use x509_cert::ext::Extension;
use x509_cert::name::Name;
use x509_cert::Certificate;

use imza_core::cert::{
    parse_certificate, random_serial, serial_hex, sign_certificate, CertificateFields,
};
use imza_core::clock::{from_x509_time, rfc3339, Clock};
use imza_core::crl::{reason_name, sign_crl, CrlFields};
use imza_core::ext::{self as x, AltName};
use imza_core::key::pkcs11::PinSource;
use imza_core::name::{format_dn, parse_dn};
use imza_core::{KeyAlgorithm, SigningKey};

use crate::audit::{AuditEvent, ChainVerifier};
use crate::crl_shards::{shard_crl_url, shard_of, CrlRun, ShardSigner, MAX_CRL_SHARDS};
use crate::csr::CertificateRequest;
use crate::error::CaError;
use crate::keyref::{KeyBackend, KeyReference};
use crate::profile::{Profile, ProfileSet};
use crate::store::{
    CaRecord, CaStore, CertificateRecord, CrlRecord, Revocation, StatusFilter, StoreError,
};
use imza_store::{Create, StoreUrl};

pub use crate::data_dir::DATABASE_FILE;
/// Default base URL written into CDP/AIA when the operator gives none.
pub const DEFAULT_BASE_URL: &str = "http://127.0.0.1:8080";
/// Default backdating of notBefore, so that relying parties with a slightly slow clock accept
/// a fresh certificate.
pub const DEFAULT_BACKDATE: Duration = Duration::seconds(60);
/// Longest backdating accepted.
pub const MAX_BACKDATE: Duration = Duration::days(1);

/// A national PKI: its store (embedded or shared), and the data directory of this machine
/// with its profiles and software keys; and its clock.
pub struct Pki {
    data_dir: PathBuf,
    store_url: StoreUrl,
    store: Box<dyn CaStore>,
    profiles: ProfileSet,
    clock: Arc<dyn Clock>,
    /// False in a process that must never open a CA private key (a public node of `imza
    /// serve`): [`Pki::authority`] refuses.
    ca_keys: bool,
}

/// What `imza ca init` asks for.
pub struct InitCa {
    pub name: String,
    pub subject: String,
    /// Issuing CA; `None` creates a self-signed root.
    pub parent: Option<String>,
    pub algorithm: KeyAlgorithm,
    pub validity_days: Option<u32>,
    /// Inherited from the parent when `None` (a root gets [`DEFAULT_BASE_URL`]).
    pub base_url: Option<String>,
    pub backend: KeyBackend,
    /// PIN for the parent's key if it lives in PKCS#11 (else its stored source is used).
    pub parent_pin: Option<PinSource>,
    /// Partition the CA's CRL into this many shards ([`crate::crl_shards`]); 0 or 1: one CRL.
    /// Only a subordinate CA: a root issues CA certificates, few of them.
    pub crl_shards: u32,
}

impl InitCa {
    /// A CA named `name` with `subject`, under `parent` (`None`: a self-signed root), and
    /// every other choice at its default: a software P-256 key, the profile's validity, the
    /// parent's base URL, one CRL. Set fields to choose otherwise
    /// (`InitCa { crl_shards: 64, ..InitCa::new(…) }`).
    pub fn new(name: &str, subject: &str, parent: Option<&str>) -> InitCa {
        InitCa {
            name: name.to_string(),
            subject: subject.to_string(),
            parent: parent.map(str::to_string),
            algorithm: KeyAlgorithm::EcP256,
            validity_days: None,
            base_url: None,
            backend: KeyBackend::Software,
            parent_pin: None,
            crl_shards: 0,
        }
    }
}

/// A subject asking for a certificate, after its CSR (if any) was verified.
#[derive(Clone, Debug)]
pub struct IssueRequest {
    pub subject: Name,
    /// DER SubjectPublicKeyInfo.
    pub public_key: Vec<u8>,
    pub key_algorithm: KeyAlgorithm,
    pub alt_names: Vec<AltName>,
    pub asks_for_ca: bool,
}

impl From<CertificateRequest> for IssueRequest {
    fn from(csr: CertificateRequest) -> Self {
        IssueRequest {
            subject: csr.subject,
            public_key: csr.public_key,
            key_algorithm: csr.key_algorithm,
            alt_names: csr.alt_names,
            asks_for_ca: csr.asks_for_ca,
        }
    }
}

/// How to issue: which profile, for how long.
pub struct IssueOptions<'a> {
    pub profile: &'a Profile,
    pub validity_days: Option<u32>,
    pub backdate: Duration,
}

/// Result of `imza audit verify` on an intact log.
#[derive(Debug, serde::Serialize)]
pub struct AuditSummary {
    pub entries: u64,
    pub head: String,
}

/// A name usable in URLs and file names: 1–64 characters a-z, 0-9 and '-', not starting
/// with '-'. CA names and service (TSA unit) names follow it.
pub(crate) fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
}

impl Pki {
    /// Opens the PKI whose store is at `store` (its keys and profiles in `data_dir`). A store
    /// that does not exist — no SQLite file, a database without imza's tables — is refused
    /// (`NoStore`) and nothing is created: a mistyped path must not become a new, empty PKI
    /// whose audit log is "intact". The directory, `keys/` and `profiles/` must be the user's
    /// own and writable by nobody else ([`crate::data_dir::check_private_dir`]). With a store
    /// outside the data directory (PostgreSQL, or another node's file) the data directory holds
    /// only this machine's keys and is created if missing.
    pub fn open(data_dir: &Path, store: &StoreUrl, clock: Arc<dyn Clock>) -> Result<Pki, CaError> {
        let open_store = || {
            crate::store::open(store, Create::No).map_err(|e| match e {
                StoreError::NotFound(_) => CaError::NoStore {
                    store: store.to_string(),
                },
                other => other.into(),
            })
        };
        // Nothing is created before the store is known to exist. The data directory's own
        // store file is trusted only once the directory is checked; a store elsewhere (a
        // database, another node's file) is opened first, and this machine's data directory
        // made for its keys if missing.
        let opened = match store {
            StoreUrl::Sqlite(path) if *path == data_dir.join(DATABASE_FILE) => {
                crate::data_dir::check_existing(data_dir)?;
                open_store()?
            }
            _ => {
                let opened = open_store()?;
                crate::data_dir::create_or_check(data_dir)?;
                opened
            }
        };
        crate::data_dir::ensure_keys_dir(data_dir)?;
        Pki::with_store(data_dir, store, opened, clock)
    }

    /// Opens the PKI in `data_dir`, creating what is missing: the directory (0700), `keys/`
    /// (0700) and an empty store (an SQLite file is made 0600; a PostgreSQL database must exist
    /// and gets imza's tables). For the commands that create a PKI (`imza ca init` of a root,
    /// `imza demo`); an existing directory is checked as by [`Pki::open`].
    pub fn open_or_create(
        data_dir: &Path,
        store: &StoreUrl,
        clock: Arc<dyn Clock>,
    ) -> Result<Pki, CaError> {
        crate::data_dir::create_or_check(data_dir)?;
        crate::data_dir::ensure_keys_dir(data_dir)?;
        let opened = crate::store::open(store, Create::IfMissing)?;
        Pki::with_store(data_dir, store, opened, clock)
    }

    /// The embedded store's URL for `data_dir`: `sqlite:DATA_DIR/imza.db`.
    pub fn default_store(data_dir: &Path) -> StoreUrl {
        StoreUrl::sqlite(&data_dir.join(DATABASE_FILE))
    }

    fn with_store(
        data_dir: &Path,
        url: &StoreUrl,
        store: Box<dyn CaStore>,
        clock: Arc<dyn Clock>,
    ) -> Result<Pki, CaError> {
        let profiles = ProfileSet::load(&data_dir.join(crate::data_dir::PROFILES_DIR))?;
        Ok(Pki {
            data_dir: data_dir.to_path_buf(),
            store_url: url.clone(),
            store,
            profiles,
            clock,
            ca_keys: true,
        })
    }

    /// This PKI for a process that must never open a CA private key (a public node): every
    /// later [`Pki::authority`] is refused with `CaKeysNotHere`, so nothing in it can sign
    /// with a CA key, whatever a request asks.
    pub fn without_ca_keys(mut self) -> Pki {
        self.ca_keys = false;
        self
    }

    /// Whether this process may open CA keys.
    pub fn opens_ca_keys(&self) -> bool {
        self.ca_keys
    }

    /// Where the store is (shown redacted).
    pub fn store_url(&self) -> &StoreUrl {
        &self.store_url
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn store(&self) -> &dyn CaStore {
        self.store.as_ref()
    }

    pub fn profiles(&self) -> &ProfileSet {
        &self.profiles
    }

    pub fn now(&self) -> OffsetDateTime {
        imza_core::clock::whole_seconds(self.clock.now())
    }

    /// The stored CA, or `UnknownCa` naming the ones that exist.
    pub fn ca(&self, name: &str) -> Result<CaRecord, CaError> {
        match self.store.ca(name)? {
            Some(ca) => Ok(ca),
            None => Err(CaError::UnknownCa {
                name: name.to_string(),
                known: {
                    let names: Vec<String> =
                        self.store.cas()?.into_iter().map(|c| c.name).collect();
                    if names.is_empty() {
                        "none yet; run imza ca init".into()
                    } else {
                        names.join(", ")
                    }
                },
            }),
        }
    }

    /// A stored certificate, or `UnknownSerial`.
    pub fn certificate(&self, ca: &str, serial: &[u8]) -> Result<CertificateRecord, CaError> {
        self.ca(ca)?;
        self.store
            .certificate(ca, serial)?
            .ok_or_else(|| CaError::UnknownSerial {
                ca: ca.to_string(),
                serial: serial_hex(serial),
            })
    }

    /// Opens a CA with its key, ready to issue and sign CRLs.
    pub fn authority(
        &self,
        name: &str,
        pin: Option<&PinSource>,
    ) -> Result<CertificateAuthority<'_>, CaError> {
        if !self.ca_keys {
            return Err(CaError::CaKeysNotHere {
                ca: name.to_string(),
            });
        }
        let record = self.ca(name)?;
        let certificate = parse_certificate(&record.certificate)?;
        let key = record.key.open(&self.data_dir, pin)?;
        let public_key = der::Encode::to_der(&certificate.tbs_certificate.subject_public_key_info)
            .map_err(imza_core::CoreError::der)?;
        if key.public_key_der()? != public_key {
            return Err(CaError::CaUnusable {
                ca: name.to_string(),
                reason: format!(
                    "its key ({}) does not match its certificate",
                    key.describe()
                ),
            });
        }
        let key_id = x::key_identifier(&public_key)?;
        Ok(CertificateAuthority {
            pki: self,
            record,
            certificate,
            key_id,
            key,
        })
    }

    /// Creates a root (no parent) or subordinate CA: key, certificate, store record, audit.
    pub fn init_ca(&self, request: InitCa) -> Result<CaRecord, CaError> {
        if !valid_name(&request.name) {
            return Err(CaError::InvalidCaName(request.name));
        }
        if self.store.ca(&request.name)?.is_some() {
            return Err(CaError::CaExists(request.name));
        }
        let crl_shards = match request.crl_shards {
            0 | 1 => 0,
            n if n > MAX_CRL_SHARDS => {
                return Err(CaError::InvalidRequest(format!(
                    "--crl-shards {n}: at most {MAX_CRL_SHARDS} shards"
                )))
            }
            _ if request.parent.is_none() => {
                return Err(CaError::InvalidRequest(
                    "a root CA's CRL is not partitioned (it lists the CA certificates it \
                     issued, few of them): give --crl-shards to a subordinate CA (--parent)"
                        .into(),
                ))
            }
            n => n,
        };
        let subject = parse_dn(&request.subject)?;
        let profile_name = if request.parent.is_some() {
            "sub-ca"
        } else {
            "root-ca"
        };
        let profile = self.profiles.get(profile_name)?;
        profile.check_subject(&subject)?;
        profile.check_key(request.algorithm)?;
        let validity = Duration::days(profile.validity_days(request.validity_days)?.into());
        let parent = match &request.parent {
            Some(p) => Some(self.authority(p, request.parent_pin.as_ref())?),
            None => None,
        };
        let base_url = match (&request.base_url, &parent) {
            (Some(url), _) => url.trim_end_matches('/').to_string(),
            (None, Some(p)) => p.record.base_url.clone(),
            (None, None) => DEFAULT_BASE_URL.to_string(),
        };
        if !(base_url.starts_with("http://") || base_url.starts_with("https://"))
            || !base_url.is_ascii()
        {
            return Err(CaError::InvalidRequest(format!(
                "--base-url {base_url:?} must be an http:// or https:// URL"
            )));
        }
        // Check the parent can cover the validity before creating a key anywhere.
        let now = self.now();
        let sub_ca_options = IssueOptions {
            profile,
            validity_days: request.validity_days,
            backdate: DEFAULT_BACKDATE,
        };
        if let Some(p) = &parent {
            p.check_can_issue(&sub_ca_options, now)?;
        }

        let (key_ref, key) = KeyReference::generate(
            &request.backend,
            &request.name,
            request.algorithm,
            &self.data_dir,
        )?;
        let result = (|| {
            let public_key = key.public_key_der()?;
            let issue = IssueRequest {
                subject: subject.clone(),
                key_algorithm: request.algorithm,
                public_key: public_key.clone(),
                alt_names: Vec::new(),
                asks_for_ca: true,
            };
            let (certificate, parent_record) = match &parent {
                Some(p) => {
                    let record = p.sign_one(&issue, &sub_ca_options, now)?;
                    (record.der.clone(), Some(record))
                }
                None => {
                    let key_id = x::key_identifier(&public_key)?;
                    let fields = CertificateFields {
                        serial: random_serial()?,
                        issuer: subject.clone(),
                        subject: subject.clone(),
                        not_before: now - DEFAULT_BACKDATE,
                        not_after: now + validity,
                        subject_public_key: public_key,
                        extensions: profile_extensions(
                            profile,
                            request.algorithm,
                            &key_id,
                            &key_id,
                            None,
                            &[],
                            &subject,
                        )?,
                    };
                    (sign_certificate(fields, key.as_ref())?.der, None)
                }
            };
            let record = CaRecord {
                name: request.name.clone(),
                parent: request.parent.clone(),
                certificate,
                key: key_ref.clone(),
                base_url: base_url.clone(),
                created_at: now,
                crl_shards,
            };
            let cert = parse_certificate(&record.certificate)?;
            let event = AuditEvent {
                at: now,
                action: "ca.init".into(),
                ca: request.name.clone(),
                details: json!({
                    "subject": format_dn(&subject),
                    "parent": request.parent,
                    "serial": serial_hex(cert.tbs_certificate.serial_number.as_bytes()),
                    "key": key_ref.describe(),
                    "algorithm": request.algorithm.name(),
                    "not_after": rfc3339(from_x509_time(&cert.tbs_certificate.validity.not_after)),
                    "base_url": base_url,
                    "crl_shards": crl_shards,
                    "certificate_sha256": hex::encode(openssl::sha::sha256(&record.certificate)),
                }),
            };
            self.store
                .create_ca(&record, parent_record.as_ref(), &event)
                .map_err(|e| match e {
                    StoreError::Conflict(_) => CaError::CaExists(request.name.clone()),
                    other => other.into(),
                })?;
            Ok(record)
        })();
        if result.is_err() {
            key_ref.discard(&self.data_dir);
        }
        result
    }

    /// Revokes a certificate: recorded with reason and time, audited; the next CRL lists it.
    pub fn revoke(
        &self,
        ca: &str,
        serial: &[u8],
        reason: CrlReason,
        invalidity_date: Option<OffsetDateTime>,
    ) -> Result<CertificateRecord, CaError> {
        let mut record = self.certificate(ca, serial)?;
        let now = self.now();
        if invalidity_date.is_some_and(|d| d > now) {
            return Err(CaError::InvalidRequest(
                "the invalidity date lies in the future".into(),
            ));
        }
        let revocation = Revocation {
            revoked_at: now,
            reason,
            invalidity_date,
        };
        let event = AuditEvent {
            at: now,
            action: "ca.revoke".into(),
            ca: ca.to_string(),
            details: json!({
                "serial": serial_hex(serial),
                "subject": record.subject,
                "reason": reason_name(reason),
                "invalidity_date": invalidity_date.map(rfc3339),
            }),
        };
        self.store.revoke(ca, serial, &revocation, &event)?;
        record.revocation = Some(revocation);
        Ok(record)
    }

    /// Walks the audit log from the first entry, a page at a time.
    pub fn verify_audit(&self) -> Result<AuditSummary, CaError> {
        const PAGE: usize = 10_000;
        let mut verifier = ChainVerifier::default();
        loop {
            let page = self.store.audit_entries(verifier.count(), PAGE)?;
            for entry in &page {
                verifier.check(entry)?;
            }
            if page.len() < PAGE {
                break;
            }
        }
        Ok(AuditSummary {
            entries: verifier.count(),
            head: verifier.head().to_string(),
        })
    }

    /// Certificates of a CA by status.
    pub fn list(
        &self,
        ca: &str,
        filter: StatusFilter,
        limit: usize,
    ) -> Result<Vec<CertificateRecord>, CaError> {
        self.ca(ca)?;
        Ok(self.store.certificates(ca, filter, limit)?)
    }
}

/// A CA with its key open: it issues certificates and signs CRLs.
pub struct CertificateAuthority<'p> {
    pki: &'p Pki,
    record: CaRecord,
    certificate: Certificate,
    key_id: Vec<u8>,
    key: Box<dyn SigningKey>,
}

impl CertificateAuthority<'_> {
    pub fn record(&self) -> &CaRecord {
        &self.record
    }

    pub fn certificate(&self) -> &Certificate {
        &self.certificate
    }

    pub fn key(&self) -> &dyn SigningKey {
        self.key.as_ref()
    }

    pub(crate) fn name(&self) -> &str {
        &self.record.name
    }

    /// Refuses to issue past the CA's own notAfter, before its notBefore, or when its own
    /// certificate has been revoked by its parent.
    fn check_usable(&self, now: OffsetDateTime, not_after: OffsetDateTime) -> Result<(), CaError> {
        let validity = &self.certificate.tbs_certificate.validity;
        let unusable = |reason: String| CaError::CaUnusable {
            ca: self.name().to_string(),
            reason,
        };
        let ca_not_after = from_x509_time(&validity.not_after);
        if now > ca_not_after || now < from_x509_time(&validity.not_before) {
            return Err(unusable(format!(
                "its certificate is not valid now (notAfter {})",
                rfc3339(ca_not_after)
            )));
        }
        if not_after > ca_not_after {
            return Err(unusable(format!(
                "the certificate would outlive the CA (until {}, CA notAfter {}); ask for fewer --validity-days",
                rfc3339(not_after),
                rfc3339(ca_not_after)
            )));
        }
        if let Some(parent) = &self.record.parent {
            let serial = self.certificate.tbs_certificate.serial_number.as_bytes();
            if let Some(own) = self.pki.store.certificate(parent, serial)? {
                if let Some(r) = own.revocation {
                    return Err(unusable(format!(
                        "its certificate was revoked by {parent} ({})",
                        reason_name(r.reason)
                    )));
                }
            }
        }
        Ok(())
    }

    /// Checks one request against the profile without signing, storing or reading anything,
    /// so a batch can be refused as a whole before any of it is issued.
    pub fn check_request(
        &self,
        request: &IssueRequest,
        options: &IssueOptions<'_>,
    ) -> Result<(), CaError> {
        let profile = options.profile;
        profile.check_subject(&request.subject)?;
        profile.check_alt_names(&request.alt_names)?;
        profile.check_key(request.key_algorithm)?;
        if request.asks_for_ca && !profile.spec.ca {
            return Err(CaError::ProfileViolation {
                profile: profile.name().to_string(),
                reason: "the request asks for a CA certificate (basicConstraints cA=TRUE)".into(),
            });
        }
        if request.subject == self.certificate.tbs_certificate.subject {
            return Err(CaError::InvalidRequest(
                "the subject equals the issuing CA's name".into(),
            ));
        }
        // A partitioned CA publishes no complete CRL, the only kind that covers a certificate
        // naming no distribution point (RFC 5280 §6.3.3): unless nobody checks it (ocsp-nocheck).
        if self.record.crl_shards > 1
            && !profile.spec.include_crl_distribution_point
            && !profile.spec.ocsp_no_check
        {
            return Err(CaError::ProfileViolation {
                profile: profile.name().to_string(),
                reason: format!(
                    "CA {} publishes its CRL in {} shards and every certificate it issues must \
                     name its shard's CRL distribution point; the profile has none",
                    self.name(),
                    self.record.crl_shards
                ),
            });
        }
        Ok(())
    }

    /// Checks, once per batch, what is the same for every request: the options, and that the
    /// CA can issue certificates of that validity now (this one reads the store).
    pub fn check_can_issue(
        &self,
        options: &IssueOptions<'_>,
        now: OffsetDateTime,
    ) -> Result<(), CaError> {
        if !(Duration::ZERO..=MAX_BACKDATE).contains(&options.backdate) {
            return Err(CaError::InvalidRequest(
                "backdating must be between 0 s and 1 day".into(),
            ));
        }
        let days = options.profile.validity_days(options.validity_days)?;
        self.check_usable(now, now + Duration::days(days.into()))
    }

    /// Checks a request against the profile and signs it (nothing is stored). The caller has
    /// run [`Self::check_can_issue`] for these options.
    pub(crate) fn sign_one(
        &self,
        request: &IssueRequest,
        options: &IssueOptions<'_>,
        now: OffsetDateTime,
    ) -> Result<CertificateRecord, CaError> {
        let profile = options.profile;
        self.check_request(request, options)?;
        let days = profile.validity_days(options.validity_days)?;
        let not_before = now - options.backdate;
        let not_after = now + Duration::days(days.into());
        let subject_key_id = x::key_identifier(&request.public_key)?;
        let serial = random_serial()?;
        let crl_shard = shard_of(&serial, self.record.crl_shards);
        let urls = IssuerUrls::new(&self.record.base_url, self.name(), crl_shard);
        let extensions = profile_extensions(
            profile,
            request.key_algorithm,
            &subject_key_id,
            &self.key_id,
            Some(&urls),
            &request.alt_names,
            &request.subject,
        )?;
        let signed = sign_certificate(
            CertificateFields {
                serial: serial.clone(),
                issuer: self.certificate.tbs_certificate.subject.clone(),
                subject: request.subject.clone(),
                not_before,
                not_after,
                subject_public_key: request.public_key.clone(),
                extensions,
            },
            self.key.as_ref(),
        )?;
        Ok(CertificateRecord {
            ca: self.name().to_string(),
            serial,
            subject: format_dn(&request.subject),
            profile: profile.name().to_string(),
            not_before: imza_core::clock::whole_seconds(not_before),
            not_after: imza_core::clock::whole_seconds(not_after),
            issued_at: now,
            der: signed.der,
            revocation: None,
            crl_shard,
        })
    }

    /// Issues certificates for `requests` (signed in parallel) and commits them, with one
    /// audit entry each, in one durable transaction before returning them. Any refused request
    /// fails the whole call and nothing is stored.
    pub fn issue(
        &self,
        requests: &[IssueRequest],
        options: &IssueOptions<'_>,
    ) -> Result<Vec<CertificateRecord>, CaError> {
        let now = self.pki.now();
        self.check_can_issue(options, now)?;
        let records: Vec<CertificateRecord> = requests
            .par_iter()
            .map(|r| self.sign_one(r, options, now))
            .collect::<Result<_, _>>()?;
        let events: Vec<AuditEvent> = records.iter().map(issue_event).collect();
        self.pki.store.insert_certificates(&records, &events)?;
        Ok(records)
    }

    /// Checks a CRL validity and that the CA may sign now; returns now.
    fn check_crl_signing(&self, validity: Duration) -> Result<OffsetDateTime, CaError> {
        if validity <= Duration::ZERO || validity > Duration::days(366) {
            return Err(CaError::InvalidRequest(
                "the CRL validity must be between 1 hour and 366 days".into(),
            ));
        }
        let now = self.pki.now();
        let ca_not_after = from_x509_time(&self.certificate.tbs_certificate.validity.not_after);
        if now > ca_not_after {
            return Err(CaError::CaUnusable {
                ca: self.name().to_string(),
                reason: "its certificate has expired".into(),
            });
        }
        Ok(now)
    }

    /// Signs every CRL the CA publishes — its one CRL, or each shard's of a partitioned CA
    /// ([`crate::crl_shards`]) — and records them, calling `stored` for each once it is in the
    /// store. `progress(done, total)` counts entries of an unpartitioned CA's CRL.
    pub fn sign_crls(
        &self,
        validity: Duration,
        progress: &mut dyn FnMut(usize, usize),
        stored: &mut dyn FnMut(&SignedCrl),
    ) -> Result<CrlRun, CaError> {
        if self.record.crl_shards < 2 {
            let signed = self.sign_crl(validity, progress)?;
            stored(&signed);
            let number = signed.record.number;
            return Ok(CrlRun {
                crls: 1,
                revoked: signed.revoked,
                numbers: (number, number),
                next_update: signed.record.next_update,
            });
        }
        let now = self.check_crl_signing(validity)?;
        ShardSigner {
            store: self.pki.store.as_ref(),
            ca: self.name(),
            base_url: &self.record.base_url,
            shards: self.record.crl_shards,
            issuer: &self.certificate.tbs_certificate.subject,
            issuer_key_id: &self.key_id,
            key: self.key.as_ref(),
        }
        .sign_all(now, now + validity, stored)
    }

    /// Signs the next CRL (number + 1) over every revoked certificate, records it, returns it.
    /// A partitioned CA has no such CRL: [`Self::sign_crls`] signs its shards.
    pub fn sign_crl(
        &self,
        validity: Duration,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<SignedCrl, CaError> {
        if self.record.crl_shards > 1 {
            return Err(CaError::InvalidRequest(format!(
                "CA {} publishes its CRL in {} shards, not as one CRL",
                self.name(),
                self.record.crl_shards
            )));
        }
        let now = self.check_crl_signing(validity)?;
        let entries = self.pki.store.revoked(self.name())?;
        let number = self.pki.store.last_crl_number(self.name())?.unwrap_or(0) + 1;
        let next_update = now + validity;
        let der = sign_crl(
            CrlFields {
                issuer: &self.certificate.tbs_certificate.subject,
                issuer_key_id: &self.key_id,
                number,
                this_update: now,
                next_update,
                distribution_point: None,
            },
            &entries,
            self.key.as_ref(),
            progress,
        )?;
        let record = CrlRecord {
            ca: self.name().to_string(),
            shard: None,
            number,
            this_update: now,
            next_update,
            der,
        };
        let event = AuditEvent {
            at: now,
            action: "ca.crl".into(),
            ca: self.name().to_string(),
            details: json!({
                "number": number,
                "entries": entries.len(),
                "next_update": rfc3339(next_update),
                "crl_sha256": hex::encode(openssl::sha::sha256(&record.der)),
            }),
        };
        self.pki
            .store
            .insert_crl(&record, &event)
            .map_err(|e| match e {
                StoreError::Conflict(_) => CaError::InvalidRequest(format!(
                    "CRL number {number} was taken by a concurrent run; run imza ca crl again"
                )),
                other => other.into(),
            })?;
        Ok(SignedCrl {
            record,
            revoked: entries.len(),
        })
    }
}

/// The `ca.issue` audit entry of an issued certificate.
pub(crate) fn issue_event(record: &CertificateRecord) -> AuditEvent {
    AuditEvent {
        at: record.issued_at,
        action: "ca.issue".into(),
        ca: record.ca.clone(),
        details: json!({
            "serial": serial_hex(&record.serial),
            "subject": record.subject,
            "profile": record.profile,
            "not_after": rfc3339(record.not_after),
            "certificate_sha256": hex::encode(openssl::sha::sha256(&record.der)),
        }),
    }
}

/// A CRL just signed and recorded.
pub struct SignedCrl {
    pub record: CrlRecord,
    /// How many revoked certificates it lists.
    pub revoked: usize,
}

/// The URLs a CA's certificates point to (served later by `imza serve`).
pub struct IssuerUrls {
    pub crl: String,
    pub ocsp: String,
    pub ca_issuers: String,
}

impl IssuerUrls {
    /// The URLs of a certificate of CA `ca` in CRL shard `crl_shard` (`None`: the CA's CRL is
    /// not partitioned).
    pub fn new(base_url: &str, ca: &str, crl_shard: Option<u32>) -> Self {
        IssuerUrls {
            crl: match crl_shard {
                Some(shard) => shard_crl_url(base_url, ca, shard),
                None => format!("{base_url}/crl/{ca}.crl"),
            },
            ocsp: format!("{base_url}/ocsp"),
            ca_issuers: format!("{base_url}/ca/{ca}.crt"),
        }
    }
}

/// The extensions a profile puts in a certificate (RFC 5280 §4.2), in a conventional order.
fn profile_extensions(
    profile: &Profile,
    key_algorithm: KeyAlgorithm,
    subject_key_id: &[u8],
    issuer_key_id: &[u8],
    urls: Option<&IssuerUrls>,
    alt_names: &[AltName],
    subject: &Name,
) -> Result<Vec<Extension>, CaError> {
    let spec = &profile.spec;
    let mut exts = Vec::with_capacity(10);
    if spec.ca {
        exts.push(x::basic_constraints(true, spec.path_len)?);
    }
    exts.push(x::key_usage(profile.key_usage_for(key_algorithm))?);
    if !profile.extended_key_usage.is_empty() {
        exts.push(x::extended_key_usage(
            &profile.extended_key_usage,
            spec.extended_key_usage_critical,
        )?);
    }
    exts.push(x::subject_key_identifier(subject_key_id)?);
    exts.push(x::authority_key_identifier(issuer_key_id)?);
    if !profile.policies.is_empty() {
        exts.push(x::certificate_policies(&profile.policies)?);
    }
    if let Some(urls) = urls {
        if spec.include_crl_distribution_point {
            exts.push(x::crl_distribution_points(&urls.crl)?);
        }
        if spec.include_authority_info_access {
            // A responder marked ocsp-nocheck is not itself checked by OCSP (RFC 6960 §4.2.2.2.1).
            let ocsp = (!spec.ocsp_no_check).then_some(urls.ocsp.as_str());
            exts.push(x::authority_info_access(ocsp, Some(&urls.ca_issuers))?);
        }
    }
    if !alt_names.is_empty() {
        // An empty subject makes the subjectAltName critical (RFC 5280 §4.2.1.6).
        exts.push(x::subject_alt_name(alt_names, subject.0.is_empty())?);
    }
    if !profile.qc_statements.is_empty() {
        exts.push(profile.qc_statements.extension()?);
    }
    if spec.ocsp_no_check {
        exts.push(x::ocsp_no_check()?);
    }
    Ok(exts)
}
