//! The signed document of a detached signature as validation sees it: its bytes, or only its
//! digests, taken in one pass as it is read ([`ContentDigests::read`]) — a gigabyte document is
//! verified in bounded memory. A signature needs no more: its message-digest attribute and an
//! archive time-stamp's imprint are hashes of the document (RFC 5652 §11.2, EN 319 122-1
//! §5.5.3). Only a SignerInfo without signed attributes signs the document itself; for it the
//! bytes are kept while reading, up to [`MAX_KEPT_CONTENT_BYTES`].

use std::io::Read;

use imza_core::alg::DigestAlgorithm;
use openssl::hash::Hasher;

/// Most bytes of a streamed document kept for SignerInfos without signed attributes (whose
/// signature is over the document itself); a longer document leaves them unverifiable.
pub const MAX_KEPT_CONTENT_BYTES: u64 = 64 * 1024 * 1024;

/// How much is read at a time.
const CHUNK: usize = 256 * 1024;

/// A document's digests under the algorithms a signature needs, and its bytes when asked to
/// keep them and they fit in [`MAX_KEPT_CONTENT_BYTES`].
#[derive(Clone, Debug)]
pub struct ContentDigests {
    digests: Vec<(DigestAlgorithm, Vec<u8>)>,
    kept: Option<Vec<u8>>,
    len: u64,
}

impl ContentDigests {
    /// Reads `reader` to its end once, hashing with each of `algorithms`; keeps the bytes when
    /// `keep` and they fit.
    pub fn read(
        reader: &mut dyn Read,
        algorithms: &[DigestAlgorithm],
        keep: bool,
    ) -> std::io::Result<ContentDigests> {
        let mut hashers = Vec::new();
        for algorithm in algorithms {
            if hashers.iter().any(|(a, _)| a == algorithm) {
                continue;
            }
            let hasher = Hasher::new(algorithm.message_digest()).map_err(std::io::Error::other)?;
            hashers.push((*algorithm, hasher));
        }
        let mut kept = keep.then(Vec::new);
        let mut len: u64 = 0;
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            let chunk = buf.get(..n).unwrap_or_default();
            for (_, hasher) in &mut hashers {
                hasher.update(chunk).map_err(std::io::Error::other)?;
            }
            len = len.saturating_add(n as u64);
            if let Some(bytes) = &mut kept {
                if len <= MAX_KEPT_CONTENT_BYTES {
                    bytes.extend_from_slice(chunk);
                } else {
                    kept = None;
                }
            }
        }
        let mut digests = Vec::new();
        for (algorithm, mut hasher) in hashers {
            let digest = hasher.finish().map_err(std::io::Error::other)?;
            digests.push((algorithm, digest.to_vec()));
        }
        Ok(ContentDigests { digests, kept, len })
    }

    /// The document's length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// The content a validation checks a signature against.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Content<'a> {
    Bytes(&'a [u8]),
    Digested(&'a ContentDigests),
}

impl<'a> Content<'a> {
    /// The content's hash under `algorithm`; `None` when it was streamed without it.
    pub(crate) fn digest(&self, algorithm: DigestAlgorithm) -> Option<Vec<u8>> {
        match self {
            Content::Bytes(bytes) => Some(algorithm.digest(bytes)),
            Content::Digested(digests) => digests
                .digests
                .iter()
                .find(|(a, _)| *a == algorithm)
                .map(|(_, d)| d.clone()),
        }
    }

    /// The bytes, when they are at hand.
    pub(crate) fn bytes(&self) -> Option<&'a [u8]> {
        match self {
            Content::Bytes(bytes) => Some(bytes),
            Content::Digested(digests) => digests.kept.as_deref(),
        }
    }

    /// Whether this is the same document as `other`'s bytes (by a digest taken of both when
    /// only digests are at hand).
    pub(crate) fn same_as(&self, other: &[u8]) -> bool {
        match self {
            Content::Bytes(bytes) => *bytes == other,
            Content::Digested(digests) => digests
                .digests
                .first()
                .is_some_and(|(algorithm, digest)| algorithm.digest(other) == *digest),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streamed_digests_equal_the_digests_of_the_bytes() {
        let document: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
        let streamed = ContentDigests::read(
            &mut document.as_slice(),
            &[DigestAlgorithm::Sha256, DigestAlgorithm::Sha512],
            true,
        )
        .unwrap();
        assert_eq!(streamed.len(), 1_000_000);
        let content = Content::Digested(&streamed);
        for algorithm in [DigestAlgorithm::Sha256, DigestAlgorithm::Sha512] {
            assert_eq!(content.digest(algorithm), Some(algorithm.digest(&document)));
        }
        assert_eq!(content.digest(DigestAlgorithm::Sha384), None);
        assert_eq!(content.bytes(), Some(document.as_slice()));
        assert!(content.same_as(&document));
        assert!(!content.same_as(b"another"));
        let unkept =
            ContentDigests::read(&mut document.as_slice(), &[DigestAlgorithm::Sha256], false)
                .unwrap();
        assert_eq!(Content::Digested(&unkept).bytes(), None);
    }
}
