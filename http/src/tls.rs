//! HTTPS for the server: OpenSSL (the library imza already links for every signature) through
//! tokio-openssl, the Tokio adapter of the same maintainers as the `openssl` crate. TLS 1.2 and
//! 1.3 only, Mozilla's "intermediate" cipher list; a client certificate is asked for when a CA
//! to check it against is given (the portal's device-certificate login) and handed to the
//! routes as a [`ClientCertificate`] request extension — the routes validate it further
//! (revocation) before they trust it.

use std::sync::Arc;

use openssl::pkey::PKey;
use openssl::ssl::{SslAcceptor, SslMethod, SslVerifyMode, SslVersion};
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::X509;

/// OpenSSL's verification errors for a certificate outside its validity period
/// (`x509_vfy.h`).
const X509_V_ERR_CERT_NOT_YET_VALID: i32 = 9;
const X509_V_ERR_CERT_HAS_EXPIRED: i32 = 10;

/// The DER certificate a client presented in the TLS handshake, verified to chain to the
/// configured client CAs at the TLS layer — all but its own validity period, which the route
/// checks (so that it can say the certificate expired).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientCertificate(pub Vec<u8>);

/// What a server answers TLS with. Cheap to clone.
#[derive(Clone)]
pub struct TlsConfig {
    pub(crate) acceptor: Arc<SslAcceptor>,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig").finish_non_exhaustive()
    }
}

impl TlsConfig {
    /// The server's certificate chain (PEM: its certificate first, then its CAs) and private
    /// key (PEM); with `client_cas` (PEM), clients may present a certificate chaining to one
    /// of them (asked for, not required: routes decide what needs one).
    pub fn new(
        chain_pem: &[u8],
        key_pem: &[u8],
        client_cas: Option<&[u8]>,
    ) -> Result<TlsConfig, String> {
        let mut builder = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())
            .map_err(|e| format!("TLS: {e}"))?;
        builder
            .set_min_proto_version(Some(SslVersion::TLS1_2))
            .map_err(|e| format!("TLS: {e}"))?;
        let mut chain = X509::stack_from_pem(chain_pem)
            .map_err(|e| format!("TLS certificate chain: {e}"))?
            .into_iter();
        let leaf = chain
            .next()
            .ok_or_else(|| "TLS certificate chain: no certificate".to_string())?;
        builder
            .set_certificate(&leaf)
            .map_err(|e| format!("TLS certificate: {e}"))?;
        for ca in chain {
            builder
                .add_extra_chain_cert(ca)
                .map_err(|e| format!("TLS certificate chain: {e}"))?;
        }
        let key = PKey::private_key_from_pem(key_pem).map_err(|e| format!("TLS key: {e}"))?;
        builder
            .set_private_key(&key)
            .map_err(|e| format!("TLS key does not match the certificate: {e}"))?;
        builder
            .check_private_key()
            .map_err(|e| format!("TLS key does not match the certificate: {e}"))?;
        if let Some(cas) = client_cas {
            let mut store = X509StoreBuilder::new().map_err(|e| format!("TLS: {e}"))?;
            for ca in X509::stack_from_pem(cas).map_err(|e| format!("client CAs: {e}"))? {
                store.add_cert(ca).map_err(|e| format!("client CAs: {e}"))?;
            }
            builder
                .set_verify_cert_store(store.build())
                .map_err(|e| format!("client CAs: {e}"))?;
            // The client's own certificate out of its validity period still reaches the
            // route, which refuses it with words a citizen can act on ("expired on …") rather
            // than a TLS alert the browser shows as a bare connection error. Everything else
            // — the chain, its signatures, the CAs' own validity — fails the handshake here.
            builder.set_verify_callback(SslVerifyMode::PEER, |verified, context| {
                verified
                    || (context.error_depth() == 0
                        && [X509_V_ERR_CERT_NOT_YET_VALID, X509_V_ERR_CERT_HAS_EXPIRED]
                            .contains(&context.error().as_raw()))
            });
        }
        Ok(TlsConfig {
            acceptor: Arc::new(builder.build()),
        })
    }
}
