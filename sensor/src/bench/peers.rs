//! Peer tools run on the same capture files as the sensor, in the same run, so ratios compare
//! like with like: `mirrorwatch replay` as a user runs it (a child process reading the file),
//! then every peer of `--peers FILE` (e.g. `benches/peers.toml`), else of the installed
//! [`INSTALLED_PEERS`], else tcpdump and tshark (command template per peer; a peer whose
//! binary is not installed is skipped with a message). Each command is printed before it runs.
//!
//! Each peer runs in a fresh temp folder (`{tmpdir}`, also its working directory, where Zeek
//! and Suricata write logs), with its time measured from spawn to exit and its peak RSS
//! polled from `/proc/<pid>/status` (`VmHWM`) while it runs. What it counted (conversations,
//! flows, alerts) is read from its output as the peer's `counts` say.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Deserialize;

use super::report::PeerRow;
use super::runner::rss_of;

/// The peers when no `peers.toml` is found: the two the issue names.
pub const DEFAULT_PEERS_TOML: &str = r#"
[[peer]]
name = "tcpdump"
work = "reads every packet and writes it to /dev/null: the cost of just reading"
command = ["tcpdump", "-r", "{input}", "-w", "/dev/null"]

[[peer]]
name = "tshark"
work = "dissects every packet; IP conversation table"
command = ["tshark", "-r", "{input}", "-q", "-z", "conv,ip"]
counts = [{ label = "IP conversations", contains = "<->" }]
"#;

/// A peer's longest run before it is stopped.
const PEER_TIMEOUT: Duration = Duration::from_secs(600);

/// `peers.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeersFile {
    /// The peers, in the order they run.
    #[serde(default)]
    pub peer: Vec<Peer>,
}

/// One peer tool.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Peer {
    /// Name in the tables.
    pub name: String,
    /// What it does with the file (the work its time buys).
    #[serde(default)]
    pub work: String,
    /// Program and arguments; `{input}` is the capture, `{tmpdir}` the peer's folder.
    pub command: Vec<String>,
    /// An untimed command run after the peer succeeded (`{input}` and `{tmpdir}` expanded),
    /// e.g. a reader of the binary records it wrote (argus's `ra`); count rules without
    /// `file` then read this command's stdout instead of the peer's.
    #[serde(default)]
    pub then: Vec<String>,
    /// What to count in its output.
    #[serde(default)]
    pub counts: Vec<CountRule>,
}

/// Counts the lines of the peer's stdout (or of `file`) that contain `contains` (every line
/// when empty) and do not start with `skip_prefix`; with `number_after`, reads the number
/// that follows that text on the first line holding it instead (a tool's own summary, such
/// as softflowd's `Flows expired: N`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CountRule {
    /// Name of what is counted.
    pub label: String,
    /// A file the peer writes (`{tmpdir}` expanded); stdout when absent.
    #[serde(default)]
    pub file: Option<String>,
    /// Substring a counted line contains.
    #[serde(default)]
    pub contains: String,
    /// Lines starting with this are not counted (log headers).
    #[serde(default)]
    pub skip_prefix: Option<String>,
    /// The count is the number after this text (first line holding it).
    #[serde(default)]
    pub number_after: Option<String>,
}

/// The peers file of an installed sensor, read when `--peers` is not given. Only a file
/// owned by root (or the user running the bench) and writable by no one else is read: the
/// commands in it run with the bench's rights.
pub const INSTALLED_PEERS: &str = "/etc/mirrorwatch/peers.toml";

/// Loads the peers: `path` (`--peers`), else [`INSTALLED_PEERS`] when it exists, else the
/// built-in list. Never a file found in the current directory: running commands from
/// wherever the bench happens to start let any user who can write there choose them.
pub fn load(path: Option<&Path>) -> anyhow::Result<Vec<Peer>> {
    let installed = Path::new(INSTALLED_PEERS);
    let text = match path {
        Some(p) => {
            std::fs::read_to_string(p).with_context(|| format!("--peers {}", p.display()))?
        }
        None if installed.exists() => {
            check_installed(installed)?;
            std::fs::read_to_string(installed)
                .with_context(|| format!("reading {}", installed.display()))?
        }
        None => DEFAULT_PEERS_TOML.to_owned(),
    };
    let file: PeersFile = toml::from_str(&text).context("parsing the peers file")?;
    for p in &file.peer {
        if p.command.is_empty() {
            anyhow::bail!("peer {:?}: empty command", p.name);
        }
        // `then` is either absent or a program with its arguments.
        if p.then.first().is_some_and(String::is_empty) {
            anyhow::bail!("peer {:?}: empty `then` program", p.name);
        }
    }
    Ok(file.peer)
}

/// Refuses an installed peers file another user could have written.
fn check_installed(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(path).with_context(|| format!("{}", path.display()))?;
    let me = rustix::process::geteuid().as_raw();
    if !meta.is_file() || (meta.uid() != 0 && meta.uid() != me) || meta.mode() & 0o022 != 0 {
        anyhow::bail!(
            "{}: not read, since it is not a regular file owned by root (or you) and writable \
             by no one else; give --peers FILE to use it anyway",
            path.display()
        );
    }
    Ok(())
}

/// The `mirrorwatch replay` row every ratio is taken against.
pub fn mirrorwatch_peer(config: Option<&Path>) -> Peer {
    let exe = std::env::current_exe()
        .map_or_else(|_| "mirrorwatch".to_owned(), |p| p.display().to_string());
    let mut command = vec![exe, "replay".to_owned(), "--no-progress".to_owned()];
    if let Some(c) = config {
        command.push("-c".to_owned());
        command.push(c.display().to_string());
    }
    // The input after `--`: a file name starting with `-` is never an option.
    command.extend(["-o", "{tmpdir}/events.jsonl", "--", "{input}"].map(str::to_owned));
    Peer {
        name: "mirrorwatch replay".to_owned(),
        work: "full pipeline, all detectors, events to a file".to_owned(),
        command,
        then: Vec::new(),
        counts: Vec::new(),
    }
}

/// Where a program is on `PATH` (or the path itself if it has a slash).
fn find_program(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        let p = PathBuf::from(program);
        return p.is_file().then_some(p);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
    })
}

/// Runs `peer` on `input` (with `packets` packets) in a fresh folder under `tmp`.
pub fn run(peer: &Peer, workload: &str, input: &Path, packets: u64, tmp: &Path) -> PeerRow {
    let dir = tmp.join(format!(
        "peer-{}-{}",
        peer.name.replace(|c: char| !c.is_ascii_alphanumeric(), "_"),
        std::process::id()
    ));
    // The input as an absolute path: it cannot start with `-`, whatever the template does
    // with it (peers' own templates may not put it after `--`).
    let input = std::path::absolute(input).unwrap_or_else(|_| input.to_path_buf());
    let expand = |s: &str| {
        s.replace("{input}", &input.display().to_string())
            .replace("{tmpdir}", &dir.display().to_string())
    };
    let args: Vec<String> = peer.command.iter().map(|a| expand(a)).collect();
    let mut row = PeerRow {
        workload: workload.to_owned(),
        peer: peer.name.clone(),
        work: peer.work.clone(),
        command: args.join(" "),
        status: "ran".to_owned(),
        message: None,
        seconds: None,
        packets_per_s: None,
        peak_rss_bytes: None,
        time_ratio_vs_mirrorwatch: None,
        counted: Vec::new(),
    };
    let Some(program) = args.first().and_then(|p| find_program(p)) else {
        row.status = "skipped".to_owned();
        row.message = Some(format!("{} is not installed", peer.command[0]));
        return row;
    };
    // Each command is said before it runs, so what a peers file makes the bench do is seen.
    eprintln!("mirrorwatch bench: running {}", row.command);
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(e) = std::fs::create_dir_all(&dir) {
        row.status = "failed".to_owned();
        row.message = Some(format!("creating {}: {e}", dir.display()));
        return row;
    }
    let stdout_path = dir.join("stdout.txt");
    let stderr_path = dir.join("stderr.txt");
    let result = (|| -> anyhow::Result<(f64, u64)> {
        let stdout = std::fs::File::create(&stdout_path)?;
        let stderr = std::fs::File::create(&stderr_path)?;
        let started = Instant::now();
        let mut child = Command::new(program)
            .args(&args[1..])
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()?;
        let pid = child.id().to_string();
        let mut peak = 0u64;
        let status = loop {
            if let Some((hwm, _)) = rss_of(&pid) {
                peak = peak.max(hwm);
            }
            if let Some(status) = child.try_wait()? {
                break status;
            }
            if started.elapsed() > PEER_TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                anyhow::bail!("stopped after {} s", PEER_TIMEOUT.as_secs());
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        let secs = started.elapsed().as_secs_f64();
        if !status.success() {
            let err = std::fs::read_to_string(&stderr_path).unwrap_or_default();
            let last = err.lines().last().unwrap_or("").to_owned();
            anyhow::bail!("exited with {status}: {last}");
        }
        Ok((secs, peak))
    })();
    match result {
        Ok((secs, peak)) => {
            row.seconds = Some(secs);
            row.packets_per_s = Some(packets as f64 / secs.max(1e-9));
            row.peak_rss_bytes = (peak > 0).then_some(peak);
            let mut counted_stdout = stdout_path.clone();
            if !peer.then.is_empty() {
                let then: Vec<String> = peer.then.iter().map(|a| expand(a)).collect();
                match run_after(&then, &dir) {
                    Ok(path) => counted_stdout = path,
                    Err(e) => row.message = Some(format!("counting: {e:#}")),
                }
            }
            for rule in &peer.counts {
                let file = rule
                    .file
                    .as_deref()
                    .map_or_else(|| counted_stdout.clone(), |f| PathBuf::from(expand(f)));
                if let Some(n) = count_lines(&file, rule) {
                    row.counted.push((rule.label.clone(), n));
                }
            }
            if peer.name == "mirrorwatch replay" {
                row.counted = replay_counts(&dir.join("events.jsonl"));
            }
        }
        Err(e) => {
            row.status = "failed".to_owned();
            row.message = Some(format!("{e:#}"));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    row
}

/// Runs the untimed `then` command of a peer in `dir`; returns the file holding its stdout.
fn run_after(args: &[String], dir: &Path) -> anyhow::Result<PathBuf> {
    let program = args
        .first()
        .and_then(|p| find_program(p))
        .ok_or_else(|| anyhow::anyhow!("{} is not installed", args[0]))?;
    eprintln!("mirrorwatch bench: counting with {}", args.join(" "));
    let out_path = dir.join("then-stdout.txt");
    let stdout = std::fs::File::create(&out_path)?;
    let status = Command::new(program)
        .args(&args[1..])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::null())
        .status()?;
    if !status.success() {
        anyhow::bail!("{} exited with {status}", args[0]);
    }
    Ok(out_path)
}

fn count_lines(file: &Path, rule: &CountRule) -> Option<u64> {
    let text = std::fs::read_to_string(file).ok()?;
    if let Some(prefix) = rule.number_after.as_deref() {
        return text.lines().find_map(|l| {
            let (_, rest) = l.split_once(prefix)?;
            let digits: String = rest
                .trim_start()
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            digits.parse().ok()
        });
    }
    Some(
        text.lines()
            .filter(|l| {
                rule.skip_prefix
                    .as_deref()
                    .is_none_or(|p| !l.starts_with(p))
            })
            .filter(|l| l.contains(&rule.contains))
            .count() as u64,
    )
}

/// Packets, flows and alerts from the `stats` event `mirrorwatch replay` wrote last.
fn replay_counts(events: &Path) -> Vec<(String, u64)> {
    let Ok(text) = std::fs::read_to_string(events) else {
        return Vec::new();
    };
    let Some(stats) = text
        .lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v.get("event_type").and_then(|t| t.as_str()) == Some("stats"))
    else {
        return Vec::new();
    };
    let s = &stats["stats"];
    let alerts = s["alerts"].as_object().map_or(0, |m| {
        m.values().filter_map(serde_json::Value::as_u64).sum()
    });
    vec![
        ("packets".to_owned(), s["packets"].as_u64().unwrap_or(0)),
        (
            "flows".to_owned(),
            s["flows"]["created"].as_u64().unwrap_or(0),
        ),
        ("alerts".to_owned(), alerts),
    ]
}
