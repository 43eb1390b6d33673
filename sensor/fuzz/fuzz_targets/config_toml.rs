#![no_main]
//! Fuzz target: `mirrorwatch::fuzzing::config_toml` (see that module for what it checks).
libfuzzer_sys::fuzz_target!(|data: &[u8]| mirrorwatch::fuzzing::config_toml(data));
