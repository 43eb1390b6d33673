//! Issue 12: control-plane records from the command line. `mirrorwatch audit` on a generated
//! case, damaged files counted and named without stopping the run, configuration errors of
//! the `[control]` files before any packet is read.

use std::path::PathBuf;

use mirrorwatch_tests::{events, run, workspace_root};

fn case(name: &str) -> PathBuf {
    workspace_root().join("pcaps").join(name)
}

fn count(evs: &[serde_json::Value], f: impl Fn(&serde_json::Value) -> bool) -> usize {
    evs.iter().filter(|e| f(e)).count()
}

fn temp_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mw-control-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn audit_reports_sessions_alerts_and_a_drift_table() {
    let dir = case("control-aws");
    let config = dir.join("config.toml");
    let audit = dir.join("input.audit");
    let out = run(&[
        "audit",
        "--config",
        &config.to_string_lossy(),
        &audit.to_string_lossy(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let evs = events(&out.stdout);
    let alerts = |sig: &str| count(&evs, |e| e["alert"]["signature"] == sig);
    assert_eq!(alerts("mirror_config.unapproved_actor"), 1);
    assert_eq!(alerts("mirror_config.unapproved_collector"), 1);
    assert_eq!(alerts("mirror_config.failed_attempt"), 1);
    // Without packets nothing is silent and nothing runs after a delete.
    assert_eq!(alerts("mirror_config.silent_session"), 0);
    assert_eq!(count(&evs, |e| e["event_type"] == "mirror_session"), 6);
    assert_eq!(
        count(&evs, |e| e["event_type"] == "mirror_session"
            && e["mirror_session"]["state"] == "deleted"),
        1
    );
    assert!(
        evs.iter()
            .filter(|e| e["event_type"] == "mirror_session")
            .all(|e| e["mirror_session"].get("seen_on_wire").is_none())
    );
    let audit_ev: Vec<_> = evs.iter().filter(|e| e["event_type"] == "audit").collect();
    assert_eq!(audit_ev.len(), 1);
    assert_eq!(audit_ev[0]["audit"]["records"], 21);
    assert_eq!(audit_ev[0]["audit"]["errors"], 0);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("provider session"), "{stderr}");
    assert!(stderr.contains("unapproved_actor"), "{stderr}");
    assert!(stderr.contains("CHG0012345"), "{stderr}");
}

/// A truncated gzip delivery, a line of junk in a JSON-lines file and a file of no known
/// format: each is one counted error naming its file; the records before the damage and the
/// other files are still read, and the run succeeds.
#[test]
fn damaged_files_are_counted_and_named_and_the_rest_is_kept() {
    let dir = temp_dir("damaged");
    let src = case("control-gcp").join("input.audit/cloudaudit-activity.jsonl");
    let text = std::fs::read_to_string(&src).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.insert(2, "{\"protoPayload\": not json");
    std::fs::write(dir.join("a.jsonl"), lines.join("\n") + "\n").unwrap();
    let gz = std::fs::read_dir(case("control-aws").join("input.audit"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".json.gz"))
        .unwrap();
    let bytes = std::fs::read(&gz).unwrap();
    std::fs::write(dir.join("b.json.gz"), &bytes[..bytes.len() / 2]).unwrap();
    std::fs::write(dir.join("c.bin"), [0u8, 1, 2, 3, 0xff]).unwrap();
    let out = run(&["audit", &dir.to_string_lossy()]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(out.status.success(), "{stderr}");
    let evs = events(&out.stdout);
    let audit = evs.iter().find(|e| e["event_type"] == "audit").unwrap();
    // a.jsonl: one bad line; b.json.gz: the gzip damage (and possibly the cut Records array);
    // c.bin: unrecognised.
    let errors = audit["audit"]["errors"].as_u64().unwrap();
    assert!((3..=4).contains(&errors), "{audit}");
    assert!(stderr.contains("a.jsonl: line 3: not JSON"), "{stderr}");
    assert!(
        stderr.contains("b.json.gz: gzip stream damaged"),
        "{stderr}"
    );
    assert!(
        stderr.contains("c.bin: not a control-plane file"),
        "{stderr}"
    );
    // Every GCP session survives the bad line.
    assert_eq!(
        count(&evs, |e| e["event_type"] == "mirror_session"
            && e["mirror_session"]["provider"] == "gcp"),
        6
    );
}

#[test]
fn a_missing_control_file_is_a_configuration_error() {
    let dir = temp_dir("missing");
    let config = dir.join("config.toml");
    std::fs::write(&config, "[control]\nassets = \"no-such-assets.csv\"\n").unwrap();
    let pcap = case("control-aws").join("input.pcap");
    let audit = case("control-aws").join("input.audit");
    let out = run(&[
        "replay",
        "--no-progress",
        "--config",
        &config.to_string_lossy(),
        "--audit",
        &audit.to_string_lossy(),
        &pcap.to_string_lossy(),
    ]);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("assets") && stderr.contains("no-such-assets.csv"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty(), "nothing is written before the error");
}

#[test]
fn replay_without_audit_adds_no_control_fields() {
    let pcap = case("control-aws").join("input.pcap");
    let out = run(&["replay", "--no-progress", &pcap.to_string_lossy()]);
    assert!(out.status.success());
    let evs = events(&out.stdout);
    assert_eq!(count(&evs, |e| e["event_type"] == "tunnel"), 6);
    assert!(evs.iter().all(|e| e.get("control").is_none()
        && e["evidence"].get("control").is_none()
        && e["detector"] != "mirror_config"));
}
