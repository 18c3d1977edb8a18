//! A revocation [`Fetcher`] that remembers whether the network failed it, so that a
//! validation ending "revocation status unknown" because a responder or a CRL distribution
//! point could not be reached exits 3 (the environment failed), not 1 (a "no" verdict).

use std::sync::{Arc, Mutex};

use imza_validation::{Crl, Fetcher, ValidationError};

/// Wraps a fetcher; every [`ValidationError::Network`] it answers is noted (the first kept).
pub struct WatchedFetcher<F> {
    inner: F,
    failed: Arc<Mutex<Option<ValidationError>>>,
}

/// What a [`WatchedFetcher`] saw, kept by the caller after the fetcher is handed over.
#[derive(Clone, Default)]
pub struct NetworkWatch(Arc<Mutex<Option<ValidationError>>>);

impl NetworkWatch {
    /// The first network failure seen, if any: a [`ValidationError::Network`] with its URL
    /// and why (the HTTP status, the io cause, a cap's number).
    pub fn failure(&self) -> Option<ValidationError> {
        self.0.lock().map(|seen| seen.clone()).unwrap_or(None)
    }
}

impl<F: Fetcher> WatchedFetcher<F> {
    pub fn new(inner: F) -> (WatchedFetcher<F>, NetworkWatch) {
        let watch = NetworkWatch::default();
        let fetcher = WatchedFetcher {
            inner,
            failed: Arc::clone(&watch.0),
        };
        (fetcher, watch)
    }

    fn note<T>(&self, answer: Result<T, ValidationError>) -> Result<T, ValidationError> {
        if let Err(e @ ValidationError::Network { .. }) = &answer {
            if let Ok(mut seen) = self.failed.lock() {
                seen.get_or_insert_with(|| e.clone());
            }
        }
        answer
    }
}

impl<F: Fetcher> Fetcher for WatchedFetcher<F> {
    fn fetch_crl(&self, url: &str) -> Result<Vec<u8>, ValidationError> {
        self.note(self.inner.fetch_crl(url))
    }

    fn post_ocsp(&self, url: &str, request: &[u8]) -> Result<Vec<u8>, ValidationError> {
        self.note(self.inner.post_ocsp(url, request))
    }

    fn crls(&self, url: &str) -> Result<Vec<Arc<Crl>>, ValidationError> {
        self.note(self.inner.crls(url))
    }

    fn ocsp_nonce(&self) -> bool {
        self.inner.ocsp_nonce()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use imza_validation::NetworkFailure;

    /// A CRL distribution point answering 404 for `missing.crl` and something unparsable
    /// elsewhere; an OCSP responder refusing connections.
    struct Failing;

    impl Fetcher for Failing {
        fn fetch_crl(&self, url: &str) -> Result<Vec<u8>, ValidationError> {
            match url {
                "http://ca.test/missing.crl" => Err(ValidationError::Network {
                    url: url.to_owned(),
                    failure: NetworkFailure::status(404),
                }),
                _ => Err(ValidationError::malformed("CRL", "not DER")),
            }
        }

        fn post_ocsp(&self, url: &str, _request: &[u8]) -> Result<Vec<u8>, ValidationError> {
            Err(ValidationError::Network {
                url: url.to_owned(),
                failure: NetworkFailure::unreachable(std::io::Error::from(
                    std::io::ErrorKind::ConnectionRefused,
                )),
            })
        }
    }

    #[test]
    fn watch_keeps_the_first_network_failure_with_its_status_and_url() {
        let (fetcher, watch) = WatchedFetcher::new(Failing);
        assert!(fetcher.fetch_crl("http://ca.test/bad.crl").is_err());
        assert!(
            watch.failure().is_none(),
            "a parse failure is not the network's"
        );

        assert!(fetcher.fetch_crl("http://ca.test/missing.crl").is_err());
        assert!(fetcher.post_ocsp("http://ocsp.test/", b"").is_err());
        match watch.failure() {
            Some(ValidationError::Network {
                url,
                failure: NetworkFailure::Status { status, .. },
            }) => {
                assert_eq!(url, "http://ca.test/missing.crl");
                assert_eq!(status, 404);
            }
            other => panic!("expected the 404 kept, got {other:?}"),
        }
    }

    #[test]
    fn watch_keeps_the_io_cause_of_an_unreachable_responder() {
        let (fetcher, watch) = WatchedFetcher::new(Failing);
        assert!(fetcher.post_ocsp("http://ocsp.test/", b"").is_err());
        let seen = watch.failure().unwrap();
        let io = std::error::Error::source(&seen)
            .and_then(std::error::Error::source)
            .and_then(|e| e.downcast_ref::<std::io::Error>())
            .unwrap();
        assert_eq!(io.kind(), std::io::ErrorKind::ConnectionRefused);
    }
}
