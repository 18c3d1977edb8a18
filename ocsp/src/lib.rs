//! imza-ocsp: OCSP responder core (RFC 6960, RFC 9919); being built for issue 3.
