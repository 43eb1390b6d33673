//! Issue 16: every committed fuzzing input, replayed on the stable toolchain.
//!
//! `sensor/fuzz/corpus/<target>/` holds each target's minimised corpus and
//! `sensor/fuzz/regressions/<target>/` every input that once crashed it; both go through the
//! same `mirrorwatch::fuzzing` entry point the fuzz target calls, so a crash found by libFuzzer
//! stays a test of the normal command. A panic in an entry point fails the test, naming the
//! file.

use std::path::{Path, PathBuf};

use mirrorwatch_tests::workspace_root;

type Entry = fn(&[u8], &Path);

/// Every fuzz target by its directory name.
const TARGETS: [(&str, Entry); 6] = [
    ("capture_file", |d, dir| {
        mirrorwatch::fuzzing::capture_file(d, dir)
    }),
    ("layer_walk", |d, _| mirrorwatch::fuzzing::layer_walk(d)),
    ("decoder_views", |d, _| {
        mirrorwatch::fuzzing::decoder_views(d)
    }),
    ("dns_message", |d, _| mirrorwatch::fuzzing::dns_message(d)),
    ("config_toml", |d, _| mirrorwatch::fuzzing::config_toml(d)),
    ("baseline_file", |d, dir| {
        mirrorwatch::fuzzing::baseline_file(d, dir)
    }),
];

fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = workspace_root().join("sensor/fuzz").join(kind).join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

#[test]
fn every_corpus_and_regression_input_replays_without_a_panic() {
    let scratch = std::env::temp_dir().join(format!("mirrorwatch-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    let mut total = 0;
    for (target, entry) in TARGETS {
        let corpus = inputs("corpus", target);
        assert!(
            !corpus.is_empty(),
            "sensor/fuzz/corpus/{target} is empty: the corpus of every target is committed"
        );
        for path in corpus.iter().chain(inputs("regressions", target).iter()) {
            let data = std::fs::read(path).unwrap();
            let outcome = std::panic::catch_unwind(|| entry(&data, &scratch));
            assert!(outcome.is_ok(), "{target}: {} panicked", path.display());
            total += 1;
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    eprintln!("fuzz corpus: {total} inputs replayed");
}
