//! Config files: YAML or TOML (the first byte picks), parsed and validated as `bedrud run`
//! would. Any input must give a config or a `ConfigError`, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    bedrud::fuzzing::config(data);
});
