//! OCSP client side (RFC 6960): building a request for a certificate, and accepting a
//! response only when its signature verifies, its signer is authorised for the issuer
//! (the CA itself or a delegated responder with id-kp-OCSPSigning issued by it, §4.2.2.2), and
//! it is fresh at the validation time.
