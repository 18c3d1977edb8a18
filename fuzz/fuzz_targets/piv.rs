//! A PIV card's answers as the enrollment code reads them: the input is a script of answers
//! (two-byte length, then data and status word), given in turn to SELECT, GET DATA, VERIFY,
//! the management-key authentication, GENERATE and GENERAL AUTHENTICATE; and the whole input
//! as BER-TLV.
#![no_main]

use imza_smartcard::piv::fuzzing;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    fuzzing::read_tlv(data);
    fuzzing::run_operations(imza_fuzz::frames(data));
});
