#![no_main]
//! Fuzz target: `mirrorwatch::fuzzing::dns_message` (see that module for what it checks).
libfuzzer_sys::fuzz_target!(|data: &[u8]| mirrorwatch::fuzzing::dns_message(data));
