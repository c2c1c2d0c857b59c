//! The webhook endpoint's input: `Authorization` (up to the first newline) and the body, through
//! signature verification and event parsing.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    bedrud::fuzzing::webhook(data);
});
