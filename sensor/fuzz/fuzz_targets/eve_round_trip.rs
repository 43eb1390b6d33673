#![no_main]
//! Fuzz target: `mirrorwatch::fuzzing::eve_round_trip` (see that module for what it checks). The events
//! file lives in /dev/shm so each execution stays in memory.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    mirrorwatch::fuzzing::eve_round_trip(data, std::path::Path::new("/dev/shm"));
});
