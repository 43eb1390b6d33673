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
const TARGETS: [(&str, Entry); 8] = [
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
    ("control_records", |d, dir| {
        mirrorwatch::fuzzing::control_records(d, dir);
    }),
    ("eve_round_trip", |d, dir| {
        mirrorwatch::fuzzing::eve_round_trip(d, dir);
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

/// Replays `target`'s committed corpus and regression inputs; returns how many.
fn replay(target: &str) -> usize {
    let Some(&(_, entry)) = TARGETS.iter().find(|(name, _)| *name == target) else {
        panic!("no fuzz target {target}");
    };
    let scratch =
        std::env::temp_dir().join(format!("mirrorwatch-fuzz-{target}-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    let corpus = inputs("corpus", target);
    assert!(
        !corpus.is_empty(),
        "sensor/fuzz/corpus/{target} is empty: the corpus of every target is committed"
    );
    let mut total = 0;
    for path in corpus.iter().chain(inputs("regressions", target).iter()) {
        let data = std::fs::read(path).unwrap();
        let outcome = std::panic::catch_unwind(|| entry(&data, &scratch));
        assert!(outcome.is_ok(), "{target}: {} panicked", path.display());
        total += 1;
    }
    let _ = std::fs::remove_dir_all(&scratch);
    eprintln!("fuzz corpus {target}: {total} inputs replayed");
    total
}

/// One test per target, so a failure names its target and the targets replay in parallel.
macro_rules! replays {
    ($($test:ident: $target:literal,)*) => {$(
        #[test]
        fn $test() {
            assert!(replay($target) > 0);
        }
    )*};
}

replays! {
    capture_file_corpus_replays: "capture_file",
    layer_walk_corpus_replays: "layer_walk",
    decoder_views_corpus_replays: "decoder_views",
    dns_message_corpus_replays: "dns_message",
    config_toml_corpus_replays: "config_toml",
    baseline_file_corpus_replays: "baseline_file",
    control_records_corpus_replays: "control_records",
    eve_round_trip_corpus_replays: "eve_round_trip",
}

/// The corpus of `target` reaches the checks of its entry point: `entry` returns how much it
/// checked (changes, lines), and the corpus must give some, or an early return (a refused
/// configuration, a reader never reached) would pass the replay unnoticed.
fn checked(target: &str, entry: fn(&[u8], &Path) -> usize) -> usize {
    let scratch = std::env::temp_dir().join(format!(
        "mirrorwatch-fuzz-checked-{target}-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&scratch).unwrap();
    let total = inputs("corpus", target)
        .iter()
        .map(|p| entry(&std::fs::read(p).unwrap(), &scratch))
        .sum();
    let _ = std::fs::remove_dir_all(&scratch);
    total
}

#[test]
fn control_records_corpus_reaches_the_change_checks() {
    // Every generated control case holds mirror changes: 6 providers, several each.
    let changes = checked("control_records", mirrorwatch::fuzzing::control_records);
    assert!(changes >= 20, "{changes} changes checked");
}

#[test]
fn eve_round_trip_corpus_reaches_the_line_checks() {
    // One stats event per input at least, and the cases' flows, tunnels and alerts.
    let corpus = inputs("corpus", "eve_round_trip").len();
    let lines = checked("eve_round_trip", mirrorwatch::fuzzing::eve_round_trip);
    assert!(
        lines > 2 * corpus,
        "{lines} lines checked from {corpus} inputs"
    );
}

/// Every directory of `fuzz/corpus/` and `fuzz/regressions/` belongs to a target this file
/// replays, and every target of `fuzz/Cargo.toml` is replayed here: a new target cannot be
/// left out of the stable suite.
#[test]
fn every_fuzz_target_is_replayed() {
    let fuzz = workspace_root().join("sensor/fuzz");
    let known: Vec<&str> = TARGETS.iter().map(|(name, _)| *name).collect();
    for kind in ["corpus", "regressions"] {
        for dir in std::fs::read_dir(fuzz.join(kind))
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = dir.file_name().to_string_lossy().into_owned();
            assert!(
                known.contains(&name.as_str()),
                "sensor/fuzz/{kind}/{name} is replayed by no test"
            );
        }
    }
    let manifest = std::fs::read_to_string(fuzz.join("Cargo.toml")).unwrap();
    let bins: Vec<&str> = manifest
        .lines()
        .filter_map(|l| l.trim().strip_prefix("name = \""))
        .filter_map(|l| l.strip_suffix('"'))
        .filter(|name| *name != "mirrorwatch-fuzz")
        .collect();
    assert_eq!(
        bins.len(),
        known.len(),
        "fuzz targets {bins:?}, replayed {known:?}"
    );
    for bin in bins {
        assert!(known.contains(&bin), "fuzz target {bin} is not replayed");
    }
}
