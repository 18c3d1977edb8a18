//! A revocation [`Fetcher`] that remembers whether the network failed it, so that a
//! validation ending "revocation status unknown" because a responder or a CRL distribution
//! point could not be reached exits 3 (the environment failed), not 1 (a "no" verdict).

use std::sync::{Arc, Mutex};

use imza_validation::{Crl, Fetcher, ValidationError};

/// Wraps a fetcher; every [`ValidationError::Network`] it answers is noted (the first kept).
pub struct WatchedFetcher<F> {
    inner: F,
    failed: Arc<Mutex<Option<String>>>,
}

/// What a [`WatchedFetcher`] saw, kept by the caller after the fetcher is handed over.
#[derive(Clone, Default)]
pub struct NetworkWatch(Arc<Mutex<Option<String>>>);

impl NetworkWatch {
    /// The first network failure seen, if any.
    pub fn failure(&self) -> Option<String> {
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
        if let Err(ValidationError::Network { url, failure }) = &answer {
            if let Ok(mut seen) = self.failed.lock() {
                seen.get_or_insert_with(|| format!("{url}: {failure}"));
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
