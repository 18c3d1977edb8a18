//! Validating a certificate someone logs in with: the RFC 5280 path to the relying party's
//! trust anchors for the authentication purpose, revocation required (OCSP from the
//! certificate's AIA first, then CRLs; no answer means no login), and the issuing CAs the
//! relying party lacks fetched from the AIA caIssuers URLs when it allows. Used by the mobile
//! signature client's authentication and the portal's card login.

use std::sync::Arc;

use imza_core::clock::Clock;
use imza_core::oids;
use imza_http::HttpClient;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::AuthorityInfoAccessSyntax;

use crate::{
    read_certificates, Certificate, Crl, Fetcher, Purpose, RevocationPolicy, SharedFetcher,
    SignatureCache, ValidationOptions, Validator,
};

/// Most issuer certificates fetched from caIssuers URLs for one authentication (a real chain
/// has one or two CAs above the citizen's certificate).
pub const MAX_ISSUER_FETCHES: usize = 4;

/// Largest issuer certificate answer read.
const MAX_ISSUER_BYTES: u64 = 64 * 1024;

/// What an authentication certificate is validated against.
pub struct AuthenticationTrust {
    anchors: Vec<Arc<Certificate>>,
    intermediates: Vec<Arc<Certificate>>,
    crls: Vec<Arc<Crl>>,
    fetcher: Arc<dyn Fetcher>,
    issuer_fetcher: Option<HttpClient>,
    signatures: Arc<SignatureCache>,
    clock: Arc<dyn Clock>,
}

impl AuthenticationTrust {
    /// Trusts `anchors`; fetches revocation answers with `fetcher` (OCSP at the certificate's
    /// AIA, CRLs at its distribution points); validates at `clock`'s time.
    pub fn new(
        anchors: Vec<Certificate>,
        fetcher: Box<dyn Fetcher>,
        clock: Arc<dyn Clock>,
    ) -> AuthenticationTrust {
        AuthenticationTrust {
            anchors: anchors.into_iter().map(Arc::new).collect(),
            intermediates: Vec::new(),
            crls: Vec::new(),
            fetcher: Arc::from(fetcher),
            issuer_fetcher: None,
            signatures: Arc::new(SignatureCache::default()),
            clock,
        }
    }

    /// A certificate paths may go through (an issuing CA). Not trusted.
    pub fn add_intermediate(&mut self, certificate: Certificate) {
        self.intermediates.push(Arc::new(certificate));
    }

    /// A CRL to check revocation with, besides what is fetched.
    pub fn add_crl(&mut self, crl: Crl) {
        self.crls.push(Arc::new(crl));
    }

    /// Fetch the issuing CAs a path lacks from the caIssuers URLs of the certificates' AIA
    /// (RFC 5280 §4.2.2.1), at most [`MAX_ISSUER_FETCHES`] of them, with `fetcher`. They are
    /// not trusted: the path must still end at an anchor.
    pub fn with_issuer_fetching(mut self, fetcher: HttpClient) -> AuthenticationTrust {
        self.issuer_fetcher = Some(HttpClient {
            max_bytes: fetcher.max_bytes.min(MAX_ISSUER_BYTES),
            ..fetcher
        });
        self
    }

    /// Validates `certificate` for authentication at the clock's time, revocation required
    /// over the network, after fetching missing issuers when allowed.
    pub fn validate(&self, certificate: &Certificate) -> Result<(), String> {
        self.validate_with(
            certificate,
            Box::new(SharedFetcher(Arc::clone(&self.fetcher))),
        )
    }

    /// [`AuthenticationTrust::validate`], revocation fetched with `fetcher` (one login's
    /// [`crate::RequestFetcher`] of a process-wide [`crate::FetchCache`], say) instead of the
    /// trust's own.
    pub fn validate_with(
        &self,
        certificate: &Certificate,
        fetcher: Box<dyn Fetcher>,
    ) -> Result<(), String> {
        let mut validator =
            Validator::new(Vec::new()).with_signature_cache(Arc::clone(&self.signatures));
        for anchor in &self.anchors {
            validator.add_shared_trust_anchor(Arc::clone(anchor));
        }
        for intermediate in &self.intermediates {
            validator.add_shared_certificate(Arc::clone(intermediate));
        }
        for crl in &self.crls {
            validator.add_shared_crl(Arc::clone(crl));
        }
        validator.set_fetcher(fetcher);
        let mut notes = Vec::new();
        if let Some(fetcher) = &self.issuer_fetcher {
            for issuer in self.fetch_issuers(certificate, fetcher, &mut notes) {
                validator.add_certificate(issuer);
            }
        }
        let mut options = ValidationOptions::at(self.clock.now());
        options.purpose = Purpose::Auth;
        options.revocation = RevocationPolicy::Require;
        options.network = true;
        validator
            .validate(certificate, &options)
            .map(|_| ())
            .map_err(|e| {
                let mut why = e.to_string();
                if !notes.is_empty() {
                    why.push_str(&format!(" (fetching issuers: {})", notes.join("; ")));
                }
                why
            })
    }

    /// The issuers above `certificate` that neither the anchors nor the intermediates hold,
    /// fetched one by one from caIssuers URLs until a known or self-issued one is reached.
    fn fetch_issuers(
        &self,
        certificate: &Certificate,
        fetcher: &HttpClient,
        notes: &mut Vec<String>,
    ) -> Vec<Certificate> {
        let known = |name: &x509_cert::name::Name| {
            self.anchors
                .iter()
                .chain(&self.intermediates)
                .any(|c| c.subject() == name)
        };
        let mut fetched: Vec<Certificate> = Vec::new();
        let mut current = certificate.clone();
        while fetched.len() < MAX_ISSUER_FETCHES
            && !current.is_self_issued()
            && !known(current.issuer())
        {
            let Some(url) = ca_issuers_url(&current) else {
                notes.push(format!("{} names no caIssuers URL", current.subject_text()));
                break;
            };
            let issuer = fetcher
                .get(&url, "application/pkix-cert")
                .map_err(|e| e.to_string())
                .and_then(|bytes| read_certificates(&bytes).map_err(|e| e.to_string()))
                .and_then(|found| {
                    found
                        .into_iter()
                        .find(|c| c.subject() == current.issuer())
                        .ok_or_else(|| format!("{url} holds no certificate of the issuer"))
                });
            match issuer {
                Ok(issuer) => {
                    current = issuer.clone();
                    fetched.push(issuer);
                }
                Err(e) => {
                    notes.push(e);
                    break;
                }
            }
        }
        fetched
    }
}

/// The first http(s) caIssuers URL of a certificate's authorityInfoAccess.
fn ca_issuers_url(certificate: &Certificate) -> Option<String> {
    let (_, aia) = certificate
        .inner()
        .tbs_certificate
        .get::<AuthorityInfoAccessSyntax>()
        .ok()??;
    aia.0.into_iter().find_map(|d| match d.access_location {
        GeneralName::UniformResourceIdentifier(uri)
            if d.access_method == oids::AD_CA_ISSUERS
                && (uri.as_str().starts_with("http://")
                    || uri.as_str().starts_with("https://")) =>
        {
            Some(uri.as_str().to_string())
        }
        _ => None,
    })
}
