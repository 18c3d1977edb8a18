//! A PIV card (NIST SP 800-73-4) over PC/SC, for enrollment (owned by the reader/PIV work).
