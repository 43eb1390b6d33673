#![no_main]
//! Fuzz target: `mirrorwatch::fuzzing::baseline_file` (see that module for what it checks). The scratch
//! file lives in /dev/shm so each execution stays in memory.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    mirrorwatch::fuzzing::baseline_file(data, std::path::Path::new("/dev/shm"))
});
