//! `livekit-server --version` output, parsed to pick the config keys that version accepts.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    bedrud::fuzzing::livekit_version(data);
});
