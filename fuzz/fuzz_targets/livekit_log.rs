//! livekit-server's output, read line by line as the supervisor reads it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    bedrud::fuzzing::livekit_log(data);
});
