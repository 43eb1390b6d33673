//! Runs every folder of `pcaps/`: replays `input.pcap` with `--flows` and holds the output to
//! the folder's `checks.toml` (exact counts of matching events, exact stats values), with the
//! folder's `config.toml` when it has one.
//! Adding a case is adding a folder.

use std::path::Path;

use mirrorwatch_tests::{events, json_equals_toml, lookup, run, workspace_root};

/// Applies one folder's checks; returns the failures as readable lines.
fn check_case(dir: &Path) -> Vec<String> {
    let name = dir
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let input = dir.join("input.pcap");
    let checks_text = match std::fs::read_to_string(dir.join("checks.toml")) {
        Ok(t) => t,
        Err(e) => return vec![format!("{name}: reading checks.toml: {e}")],
    };
    let checks: toml::Table = match toml::from_str(&checks_text) {
        Ok(c) => c,
        Err(e) => return vec![format!("{name}: checks.toml: {e}")],
    };
    // A case may bring its own configuration (an approved inventory, thresholds).
    let config = dir.join("config.toml");
    let input = input.to_string_lossy().into_owned();
    let config_arg = config.to_string_lossy().into_owned();
    let mut args = vec!["replay", "--flows", "--no-progress"];
    if config.is_file() {
        args.extend(["--config", config_arg.as_str()]);
    }
    // A control-plane case brings its records (issue 12).
    let audit = dir.join("input.audit");
    let audit_arg = audit.to_string_lossy().into_owned();
    if audit.is_dir() {
        args.extend(["--audit", audit_arg.as_str()]);
    }
    args.push(&input);
    let out = run(&args);
    let mut failures = Vec::new();
    if !out.status.success() {
        failures.push(format!(
            "{name}: exit {:?}: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let evs = events(&out.stdout);
    let n_checks = checks
        .get("event")
        .and_then(toml::Value::as_array)
        .map_or(0, Vec::len);
    for (i, check) in checks
        .get("event")
        .and_then(toml::Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let want = check.get("count").and_then(toml::Value::as_integer);
        let Some(matcher) = check.get("match").and_then(toml::Value::as_table) else {
            failures.push(format!("{name}: event check {i} has no match table"));
            continue;
        };
        let got = evs
            .iter()
            .filter(|ev| {
                matcher
                    .iter()
                    .all(|(path, v)| lookup(ev, path).is_some_and(|j| json_equals_toml(j, v)))
            })
            .count();
        if want != Some(got as i64) {
            failures.push(format!(
                "{name}: event check {i}/{n_checks} {}: want {want:?}, got {got}",
                toml::Value::Table(matcher.clone())
                    .to_string()
                    .replace('\n', " ")
            ));
        }
    }
    let stats: Vec<&serde_json::Value> =
        evs.iter().filter(|e| e["event_type"] == "stats").collect();
    if stats.len() != 1 {
        failures.push(format!(
            "{name}: want exactly one stats event, got {}",
            stats.len()
        ));
    }
    if let (Some(expected), Some(stats)) = (
        checks.get("stats").and_then(toml::Value::as_table),
        stats.first().and_then(|s| s.get("stats")),
    ) {
        for (path, v) in expected {
            let got = lookup(stats, path);
            if !got.is_some_and(|j| json_equals_toml(j, v)) {
                failures.push(format!("{name}: stats.{path}: want {v}, got {got:?}"));
            }
        }
    }
    failures
}

#[test]
fn every_pcap_case_meets_its_checks() {
    let root = workspace_root().join("pcaps");
    let mut dirs: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.join("checks.toml").is_file())
        .collect();
    dirs.sort();
    assert!(
        dirs.len() >= 15,
        "expected the bundled cases in {}",
        root.display()
    );
    let failures: Vec<String> = dirs.iter().flat_map(|d| check_case(d)).collect();
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn a_wrong_expectation_is_caught() {
    // The runner itself must be able to fail: a deliberately wrong count on a real case.
    let dir = std::env::temp_dir().join(format!("mw-case-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(
        workspace_root().join("pcaps/mirror-vxlan/input.pcap"),
        dir.join("input.pcap"),
    )
    .unwrap();
    std::fs::write(
        dir.join("checks.toml"),
        "[[event]]\ncount = 2\nmatch = { event_type = \"tunnel\" }\n[stats]\npackets = 1\n",
    )
    .unwrap();
    let failures = check_case(&dir);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(failures.len(), 2, "{failures:?}");
}

/// Issue 16: a mirror spread over four collectors alerts on each, and the alerts decided with
/// the sibling collectors' evidence name exactly those collectors (the checks format cannot
/// compare arrays).
#[test]
fn evasion_collector_spread_names_the_sibling_collectors() {
    let input = workspace_root().join("pcaps/evasion-collector-spread/input.pcap");
    let input = input.to_string_lossy().into_owned();
    let out = run(&["replay", "--no-progress", &input]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut got: Vec<(String, String, Vec<String>)> = events(&out.stdout)
        .iter()
        .filter(|e| e["event_type"] == "alert")
        .map(|e| {
            let siblings = e["evidence"]["sibling_collectors"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            (
                e["dest_ip"].as_str().unwrap_or_default().to_owned(),
                e["evidence"]["classification"]["reason"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                siblings,
            )
        })
        .collect();
    got.sort();
    let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
    assert_eq!(
        got,
        vec![
            (
                "203.0.113.50".to_owned(),
                "spread_over_collectors".to_owned(),
                s(&["203.0.113.51", "203.0.113.52", "203.0.113.53"])
            ),
            (
                "203.0.113.51".to_owned(),
                "spread_over_collectors".to_owned(),
                s(&["203.0.113.50", "203.0.113.52", "203.0.113.53"])
            ),
            // Decided by their own conversations: no sibling list.
            (
                "203.0.113.52".to_owned(),
                "one_way_both_directions".to_owned(),
                Vec::new()
            ),
            (
                "203.0.113.53".to_owned(),
                "one_way_both_directions".to_owned(),
                Vec::new()
            ),
        ]
    );
}
