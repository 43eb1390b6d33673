#![no_main]
//! Fuzz target: `mirrorwatch::fuzzing::control_records` (see that module for what it checks). The scratch
//! files live in /dev/shm so each execution stays in memory.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    mirrorwatch::fuzzing::control_records(data, std::path::Path::new("/dev/shm"));
});
