//! What imza reads from the PKI services it asks: the bound on an answer from an OCSP
//! responder (RFC 6960) or a time-stamping authority (RFC 3161).

/// The largest OCSP response or time-stamp reply read: one with a few certificates is a few
/// KiB. A client reads no more of an HTTP answer, and the parsers refuse more whether the
/// bytes came over HTTP or from a file, so both stop at the same bound.
pub const MAX_ANSWER_BYTES: usize = 1024 * 1024;
