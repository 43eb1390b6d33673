//! The command line end to end: configuration errors, damaged and compressed inputs,
//! directories, output files, and SIGTERM in the middle of a stream.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use mirrorwatch_tests::{ensure_binary, events, run, workspace_root};

fn case(name: &str) -> PathBuf {
    workspace_root().join("pcaps").join(name).join("input.pcap")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mw-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Tunnel and flow events without their volatile parts (link numbers depend on order).
fn identities(stdout: &[u8]) -> Vec<String> {
    let mut ids: Vec<String> = events(stdout)
        .into_iter()
        .filter(|e| e["event_type"] != "stats")
        .map(|mut e| {
            if let Some(t) = e.get_mut("tunnel").and_then(|t| t.as_object_mut()) {
                t.remove("link");
            }
            // Each variant is its own file.
            if let Some(o) = e.as_object_mut() {
                o.remove("pcap_filename");
            }
            e.to_string()
        })
        .collect();
    ids.sort();
    ids
}

fn tool(name: &str) -> bool {
    Command::new(name).arg("--version").output().is_ok()
}

#[test]
fn config_errors_name_file_and_key_and_exit_2_before_reading() {
    let dir = scratch("config");
    let cfg = dir.join("bad.toml");
    std::fs::write(&cfg, "[decode]\nmax_tunnel_depth = 12\n").unwrap();
    let out = run(&[
        "replay",
        "-c",
        &cfg.to_string_lossy(),
        &case("mirror-vxlan").to_string_lossy(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.toml") && err.contains("[decode] max_tunnel_depth"),
        "{err}"
    );
    assert!(
        out.stdout.is_empty(),
        "no event may be written before the config is valid"
    );

    std::fs::write(&cfg, "[flows]\nidle_timeout = 5\n").unwrap();
    let out = run(&["config", "check", &cfg.to_string_lossy()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.toml") && err.contains("idle_timeout"),
        "{err}"
    );
}

#[test]
fn default_config_prints_and_checks_clean() {
    let dir = scratch("default");
    let out = run(&["config", "default"]);
    assert!(out.status.success());
    let cfg = dir.join("default.toml");
    std::fs::write(&cfg, &out.stdout).unwrap();
    let check = run(&["config", "check", &cfg.to_string_lossy()]);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
}

#[test]
fn config_changes_decoding() {
    // With the depth cap at 1, the AWS double encapsulation stops at the outer Geneve layer.
    let dir = scratch("depth");
    let cfg = dir.join("depth1.toml");
    std::fs::write(&cfg, "[decode]\nmax_tunnel_depth = 1\n").unwrap();
    let input = case("aws-gwlb-double");
    let out = run(&[
        "replay",
        "-c",
        &cfg.to_string_lossy(),
        &input.to_string_lossy(),
    ]);
    assert!(out.status.success());
    let evs = events(&out.stdout);
    let tunnels: Vec<_> = evs.iter().filter(|e| e["event_type"] == "tunnel").collect();
    assert!(!tunnels.is_empty());
    assert!(
        tunnels.iter().all(|t| t["tunnel"]["type"] == "geneve"),
        "{tunnels:?}"
    );
    let stats = evs.iter().find(|e| e["event_type"] == "stats").unwrap();
    assert_eq!(
        stats["stats"]["decoder"]["decoder.tunnel.depth_exceeded"],
        52
    );
}

#[test]
fn missing_and_damaged_inputs_are_named_and_good_ones_still_processed() {
    let dir = scratch("damaged");
    let good = case("mirror-vxlan");
    let bytes = std::fs::read(&good).unwrap();
    // Cut the file in the middle of its last packet record.
    let cut = dir.join("b-cut.pcap");
    std::fs::write(&cut, &bytes[..bytes.len() - 10]).unwrap();
    let junk = dir.join("c-junk.pcap");
    std::fs::write(&junk, b"this is not a capture file at all").unwrap();
    std::fs::copy(&good, dir.join("a-good.pcap")).unwrap();
    let missing = run(&["replay", &dir.to_string_lossy(), "/nonexistent/x.pcap"]);
    assert_eq!(
        missing.status.code(),
        Some(2),
        "a missing input is a usage error"
    );
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(err.contains("/nonexistent/x.pcap"), "{err}");
    assert_eq!(err.matches("os error 2").count(), 1, "said once: {err}");
    assert!(missing.stdout.is_empty());
    let out = run(&["replay", &dir.to_string_lossy()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("b-cut.pcap") && err.contains("cut short"),
        "{err}"
    );
    assert!(err.contains("c-junk.pcap"), "{err}");
    let evs = events(&out.stdout);
    let stats = evs.iter().find(|e| e["event_type"] == "stats").unwrap();
    // 26 packets from the good copy + 25 complete ones before the cut.
    assert_eq!(stats["stats"]["packets"], 51, "{stats}");
    assert_eq!(stats["stats"]["capture_errors"], 2, "{stats}");
}

#[test]
fn compressed_and_pcapng_inputs_give_the_same_events() {
    let input = case("mirror-erspan3");
    let plain = run(&["replay", "--flows", &input.to_string_lossy()]);
    assert!(plain.status.success());
    let want = identities(&plain.stdout);
    assert!(want.len() > 3);
    let dir = scratch("formats");
    let mut variants = Vec::new();
    for (tool_name, args, file) in [
        ("gzip", vec!["-c"], "x.pcap.gz"),
        ("zstd", vec!["-q", "-c"], "x.pcap.zst"),
    ] {
        if !tool(tool_name) {
            eprintln!("SKIPPED {tool_name} variant: {tool_name} is not installed");
            continue;
        }
        let out = Command::new(tool_name)
            .args(&args)
            .arg(&input)
            .output()
            .unwrap();
        assert!(out.status.success());
        let path = dir.join(file);
        std::fs::write(&path, out.stdout).unwrap();
        variants.push(path);
    }
    if tool("editcap") {
        for (fmt, file) in [("pcapng", "x.pcapng"), ("nsecpcap", "x-ns.pcap")] {
            let path = dir.join(file);
            let st = Command::new("editcap")
                .args(["-F", fmt])
                .arg(&input)
                .arg(&path)
                .status();
            assert!(matches!(st, Ok(s) if s.success()));
            variants.push(path);
        }
    } else {
        eprintln!("SKIPPED pcapng/nanosecond variants: editcap is not installed");
    }
    assert!(!variants.is_empty(), "no format variant could be built");
    for v in &variants {
        let out = run(&["replay", "--flows", &v.to_string_lossy()]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(identities(&out.stdout), want, "{}", v.display());
    }
}

#[test]
fn output_file_holds_the_events() {
    let dir = scratch("output");
    let path = dir.join("events.json");
    let input = case("plain-sessions");
    let out = run(&[
        "replay",
        "--flows",
        "-o",
        &path.to_string_lossy(),
        &input.to_string_lossy(),
    ]);
    assert!(out.status.success());
    assert!(out.stdout.is_empty());
    let evs = events(&std::fs::read(&path).unwrap());
    assert_eq!(evs.iter().filter(|e| e["event_type"] == "stats").count(), 1);
    assert!(evs.iter().filter(|e| e["event_type"] == "flow").count() >= 10);
    let bad = run(&[
        "replay",
        "-o",
        "/nonexistent-dir/events.json",
        &input.to_string_lossy(),
    ]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("/nonexistent-dir/events.json"));
}

#[test]
fn generate_lists_scenarios_and_reproduces_a_case() {
    let out = run(&["generate", "--list"]);
    let list = String::from_utf8_lossy(&out.stdout);
    assert!(
        list.contains("mirror-erspan3") && list.contains("aws-gwlb-double"),
        "{list}"
    );
    let dir = scratch("generate");
    let path = dir.join("x.pcap");
    let out = run(&[
        "generate",
        "mirror-nvgre",
        "--seed",
        "106",
        "-o",
        &path.to_string_lossy(),
    ]);
    assert!(out.status.success());
    assert_eq!(
        std::fs::read(&path).unwrap(),
        std::fs::read(case("mirror-nvgre")).unwrap()
    );
    let out = run(&[
        "generate",
        "no-such-scenario",
        "-o",
        &path.to_string_lossy(),
    ]);
    assert_eq!(out.status.code(), Some(1));
}

/// Writes `bytes` into a FIFO from a thread; returns when the reader has them.
fn feed(fifo: &mut std::fs::File, bytes: &[u8]) {
    fifo.write_all(bytes).unwrap();
    fifo.flush().unwrap();
}

#[test]
fn sigterm_mid_stream_flushes_everything_seen() {
    let dir = scratch("sigterm");
    let fifo = dir.join("stream.pcap");
    let st = Command::new("mkfifo").arg(&fifo).status();
    if !matches!(st, Ok(s) if s.success()) {
        eprintln!("SKIPPED sigterm test: mkfifo unavailable");
        return;
    }
    let child = Command::new(ensure_binary())
        .args(["replay", "--flows", "--no-progress"])
        .arg(&fifo)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let bytes = std::fs::read(case("plain-sessions")).unwrap();
    let mut writer = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    // Header and the first records, then a pause with the stream still open.
    let first_part = 24 + 2000;
    feed(&mut writer, &bytes[..first_part]);
    std::thread::sleep(std::time::Duration::from_millis(500));
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    std::thread::sleep(std::time::Duration::from_millis(200));
    // More data arrives; the sensor must stop at the next packet, not read to the end.
    let _ = writer.write_all(&bytes[first_part..]);
    drop(writer);
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("interrupted"));
    let evs = events(&out.stdout);
    let stats = evs
        .iter()
        .find(|e| e["event_type"] == "stats")
        .expect("stats written");
    let packets = stats["stats"]["packets"].as_u64().unwrap();
    assert!(packets > 0 && packets < 79, "read {packets} of 79 packets");
    let flow_packets: u64 = evs
        .iter()
        .filter(|e| e["event_type"] == "flow")
        .map(|e| {
            e["flow"]["pkts_toserver"].as_u64().unwrap()
                + e["flow"]["pkts_toclient"].as_u64().unwrap()
        })
        .sum();
    // Every IP packet read before the signal is in a flushed flow record.
    assert_eq!(
        flow_packets,
        packets - stats["stats"]["non_ip_packets"].as_u64().unwrap()
    );
    assert!(
        evs.iter()
            .filter(|e| e["event_type"] == "flow")
            .all(|e| e["flow"]["reason"] == "shutdown")
    );
    let _ = Path::new(&fifo);
}

/// `--baseline FILE` (issue 5): a bad file is a usage error naming file and line before any
/// packet is read; a missing one is created with the untrusted destinations contacted, and
/// the next run finds them there.
#[test]
fn baseline_is_checked_created_and_read_back() {
    let dir = scratch("baseline");
    let baseline = dir.join("known.txt");
    let input = case("beacon-connections");
    std::fs::write(&baseline, "203.0.113.11\nnot-an-address\n").unwrap();
    let out = run(&[
        "replay",
        "--no-progress",
        "--baseline",
        &baseline.to_string_lossy(),
        &input.to_string_lossy(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("known.txt") && err.contains("line 2"), "{err}");
    assert!(out.stdout.is_empty(), "nothing read before the check");

    std::fs::remove_file(&baseline).unwrap();
    let in_baseline = |stdout: &[u8]| -> Vec<bool> {
        events(stdout)
            .into_iter()
            .filter(|e| e["detector"] == "beacon")
            .map(|e| e["evidence"]["destination"]["in_baseline"] == true)
            .collect()
    };
    let args = [
        "replay",
        "--no-progress",
        "--baseline",
        &baseline.to_string_lossy(),
        &input.to_string_lossy(),
    ];
    let first = run(&args);
    assert_eq!(first.status.code(), Some(0));
    let first_alerts = in_baseline(&first.stdout);
    assert!(!first_alerts.is_empty());
    assert!(
        first_alerts.iter().all(|b| !b),
        "nothing known on the first run"
    );
    let saved = std::fs::read_to_string(&baseline).unwrap();
    assert!(saved.lines().any(|l| l == "203.0.113.11"), "{saved}");
    assert!(
        !saved.lines().any(|l| l.starts_with("10.")),
        "home hosts are not destinations to remember:\n{saved}"
    );
    let second = run(&args);
    assert_eq!(second.status.code(), Some(0));
    let second_alerts = in_baseline(&second.stdout);
    assert_eq!(second_alerts.len(), first_alerts.len());
    assert!(
        second_alerts.iter().all(|b| *b),
        "every destination known now"
    );
}
