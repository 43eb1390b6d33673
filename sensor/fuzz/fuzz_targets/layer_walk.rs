#![no_main]
//! Fuzz target: `mirrorwatch::fuzzing::layer_walk` (see that module for what it checks).
libfuzzer_sys::fuzz_target!(|data: &[u8]| mirrorwatch::fuzzing::layer_walk(data));
