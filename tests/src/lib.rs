//! Helpers shared by the end-to-end tests: locating the binary, the bundled cases and the
//! shared real captures, and running the sensor.
// Test support: a helper that cannot do its job fails the test that called it.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from(".."), Path::to_path_buf)
}

/// The `mirrorwatch` binary built for this test run (debug or release, as cargo built it).
pub fn binary() -> PathBuf {
    // Cargo puts integration-test binaries in target/<profile>/deps; the crate's binary sits
    // one level up. Build it first if a test run did not.
    let exe = std::env::current_exe().unwrap_or_default();
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .map_or_else(|| workspace_root().join("target/debug"), Path::to_path_buf);
    profile_dir.join("mirrorwatch")
}

/// Builds the binary once per test process (with the tests' profile), so the tests never run
/// a stale `mirrorwatch`; cargo makes this a no-op when it is fresh.
pub fn ensure_binary() -> PathBuf {
    static BUILT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let bin = binary();
    let ok = BUILT.get_or_init(|| {
        let release = bin.to_string_lossy().contains("/release/");
        let mut cmd = Command::new(env!("CARGO"));
        cmd.args([
            "build",
            "--quiet",
            "-p",
            "mirrorwatch",
            "--bin",
            "mirrorwatch",
        ]);
        if release {
            cmd.arg("--release");
        }
        matches!(cmd.current_dir(workspace_root()).status(), Ok(s) if s.success())
    });
    assert!(*ok, "building mirrorwatch failed");
    bin
}

/// The shared real captures, or `None` (with a loud message) when the folder is absent.
pub fn shared_pcaps(test: &str) -> Option<PathBuf> {
    let dir = workspace_root().join("../shared/pcaps");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "SKIPPED {test}: {} not found; the real-capture checks did not run",
            dir.display()
        );
        None
    }
}

/// Runs the sensor with `args`.
pub fn run(args: &[&str]) -> Output {
    match Command::new(ensure_binary()).args(args).output() {
        Ok(o) => o,
        Err(e) => panic!("could not run mirrorwatch: {e}"),
    }
}

/// Parses JSON lines.
pub fn events(stdout: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| match serde_json::from_str(l) {
            Ok(v) => v,
            Err(e) => panic!("not a JSON line ({e}): {l}"),
        })
        .collect()
}

/// Looks up a dotted path in a JSON value. At each level a key equal to the whole remaining
/// path wins, so names that contain dots (`decoder.vxlan.bad_flags`) are single keys.
pub fn lookup<'a>(value: &'a serde_json::Value, path: &str) -> Option<&'a serde_json::Value> {
    let obj = value.as_object()?;
    if let Some(v) = obj.get(path) {
        return Some(v);
    }
    let mut split = path.char_indices().filter(|&(_, c)| c == '.');
    split.find_map(|(i, _)| {
        let (head, rest) = (&path[..i], &path[i + 1..]);
        obj.get(head).and_then(|v| lookup(v, rest))
    })
}

/// Whether a JSON value equals a TOML value from a checks file.
pub fn json_equals_toml(json: &serde_json::Value, expected: &toml::Value) -> bool {
    match expected {
        toml::Value::String(s) => json.as_str() == Some(s.as_str()),
        toml::Value::Integer(i) => json.as_i64() == Some(*i),
        toml::Value::Boolean(b) => json.as_bool() == Some(*b),
        toml::Value::Float(f) => json.as_f64() == Some(*f),
        _ => false,
    }
}
