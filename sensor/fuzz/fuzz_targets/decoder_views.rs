#![no_main]
//! Fuzz target: `mirrorwatch::fuzzing::decoder_views` (see that module for what it checks).
libfuzzer_sys::fuzz_target!(|data: &[u8]| mirrorwatch::fuzzing::decoder_views(data));
