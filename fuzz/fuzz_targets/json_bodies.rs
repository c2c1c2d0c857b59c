//! Every JSON request body, sent through the real router to the endpoint the first byte picks,
//! as an administrator (so the body is what decides the answer). Any body must get an answer
//! that is not a 500.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    bedrud::fuzzing::json_body(data);
});
