//! Peer tools run on the same capture files as the sensor, in the same run, so ratios compare
//! like with like: `mirrorwatch replay` as a user runs it (a child process reading the file),
//! then every peer of `--peers FILE` (e.g. `benches/peers.toml`), else of the installed
//! [`INSTALLED_PEERS`], else tcpdump and tshark (command template per peer; a peer whose
//! binary is not installed is skipped with a message). Each command is printed before it runs.
//!
//! Each peer runs in a fresh temp folder (`{tmpdir}`, also its working directory, where Zeek
//! and Suricata write logs), with its time measured from spawn to exit and its peak RSS
//! polled from `/proc/<pid>/status` (`VmHWM`) while it runs. Every timed command runs
//! `--peer-runs` times, each peer's run paired with one of `mirrorwatch replay` just before
//! it: a row gives the median of its runs, and its ratio is the median of the pairs' ratios,
//! so a machine that slows down during the bench slows both sides of a pair. What it counted (conversations,
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

/// A peer's command, ready to be timed as often as asked ([`PeerCommand::time`]); its row
/// ([`PeerCommand::row`]) takes the median of the runs and counts what the last one wrote.
pub struct PeerCommand<'a> {
    peer: &'a Peer,
    workload: String,
    packets: u64,
    /// The capture, as an absolute path.
    input: PathBuf,
    /// Its folder, made afresh before each run (logs a peer appends to start empty).
    dir: PathBuf,
    args: Vec<String>,
    /// The program found on `PATH`; `None`: not installed.
    program: Option<PathBuf>,
    /// Wall seconds of each run so far.
    seconds: Vec<f64>,
    /// Largest peak RSS of the runs.
    peak: u64,
    /// The first failure; no run after it.
    failure: Option<String>,
}

impl<'a> PeerCommand<'a> {
    /// Expands `peer`'s command for `input` (its folder under `tmp`) and finds its program.
    pub fn new(
        peer: &'a Peer,
        workload: &str,
        input: &Path,
        packets: u64,
        tmp: &Path,
    ) -> PeerCommand<'a> {
        let dir = tmp.join(format!(
            "peer-{}-{}",
            peer.name.replace(|c: char| !c.is_ascii_alphanumeric(), "_"),
            std::process::id()
        ));
        // The input as an absolute path: it cannot start with `-`, whatever the template
        // does with it (peers' own templates may not put it after `--`).
        let input = std::path::absolute(input).unwrap_or_else(|_| input.to_path_buf());
        let args: Vec<String> = peer
            .command
            .iter()
            .map(|a| expand(a, &input, &dir))
            .collect();
        let program = args.first().and_then(|p| find_program(p));
        PeerCommand {
            peer,
            workload: workload.to_owned(),
            packets,
            input,
            dir,
            args,
            program,
            seconds: Vec::new(),
            peak: 0,
            failure: None,
        }
    }

    /// Whether the program is installed and no run failed.
    pub fn runnable(&self) -> bool {
        self.program.is_some() && self.failure.is_none()
    }

    /// Runs the command once in a fresh folder; its wall seconds, or `None` when it is not
    /// installed or failed (now or before: the failure is kept for the row).
    pub fn time(&mut self) -> Option<f64> {
        let program = self.program.clone().filter(|_| self.failure.is_none())?;
        // Each command is said before its first run, so what a peers file makes the bench
        // do is seen.
        if self.seconds.is_empty() {
            eprintln!("mirrorwatch bench: running {}", self.args.join(" "));
        }
        match self.run_once(&program) {
            Ok((secs, peak)) => {
                self.seconds.push(secs);
                self.peak = self.peak.max(peak);
                Some(secs)
            }
            Err(e) => {
                self.failure = Some(format!("{e:#}"));
                None
            }
        }
    }

    fn run_once(&self, program: &Path) -> anyhow::Result<(f64, u64)> {
        let dir = &self.dir;
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let stdout = std::fs::File::create(dir.join("stdout.txt"))?;
        let stderr_path = dir.join("stderr.txt");
        let stderr = std::fs::File::create(&stderr_path)?;
        let started = Instant::now();
        let mut child = Command::new(program)
            .args(&self.args[1..])
            .current_dir(dir)
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
            std::thread::sleep(Duration::from_millis(1));
        };
        let secs = started.elapsed().as_secs_f64();
        if !status.success() {
            let err = std::fs::read_to_string(&stderr_path).unwrap_or_default();
            let last = err.lines().last().unwrap_or("").to_owned();
            anyhow::bail!("exited with {status}: {last}");
        }
        Ok((secs, peak))
    }

    /// The row: the median of the runs (their spread beside it), the largest peak RSS, and
    /// what the last run counted; then the peer's folder goes.
    pub fn row(self) -> PeerRow {
        let mut row = PeerRow {
            workload: self.workload.clone(),
            peer: self.peer.name.clone(),
            work: self.peer.work.clone(),
            command: self.args.join(" "),
            status: "ran".to_owned(),
            message: None,
            runs: self.seconds.len(),
            seconds: median(&self.seconds),
            seconds_min: self.seconds.iter().copied().reduce(f64::min),
            seconds_max: self.seconds.iter().copied().reduce(f64::max),
            packets_per_s: None,
            peak_rss_bytes: (self.peak > 0).then_some(self.peak),
            time_ratio_vs_mirrorwatch: None,
            counted: Vec::new(),
        };
        if self.program.is_none() {
            row.status = "skipped".to_owned();
            row.message = Some(format!("{} is not installed", self.peer.command[0]));
            return row;
        }
        if let Some(failure) = &self.failure {
            row.status = "failed".to_owned();
            row.message = Some(failure.clone());
            row.seconds = None;
            let _ = std::fs::remove_dir_all(&self.dir);
            return row;
        }
        row.packets_per_s = row.seconds.map(|s| self.packets as f64 / s.max(1e-9));
        let (input, input_dir) = (&self.input, &self.dir);
        let mut counted_stdout = input_dir.join("stdout.txt");
        if !self.peer.then.is_empty() {
            let then: Vec<String> = self
                .peer
                .then
                .iter()
                .map(|a| expand(a, input, input_dir))
                .collect();
            match run_after(&then, input_dir) {
                Ok(path) => counted_stdout = path,
                Err(e) => row.message = Some(format!("counting: {e:#}")),
            }
        }
        for rule in &self.peer.counts {
            let file = rule.file.as_deref().map_or_else(
                || counted_stdout.clone(),
                |f| PathBuf::from(expand(f, input, input_dir)),
            );
            if let Some(n) = count_lines(&file, rule) {
                row.counted.push((rule.label.clone(), n));
            }
        }
        if self.peer.name == "mirrorwatch replay" {
            row.counted = replay_counts(&input_dir.join("events.jsonl"));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        row
    }
}

/// `{input}` and `{tmpdir}` of a command template.
fn expand(template: &str, input: &Path, dir: &Path) -> String {
    template
        .replace("{input}", &input.display().to_string())
        .replace("{tmpdir}", &dir.display().to_string())
}

/// The median of `values` (the mean of the middle two for an even count).
pub fn median(values: &[f64]) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => sorted.get(n / 2).copied(),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
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

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn median_takes_the_middle_run_or_the_mean_of_the_middle_two() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[0.3]), Some(0.3));
        assert_eq!(median(&[0.9, 0.1, 0.3]), Some(0.3));
        assert_eq!(median(&[0.4, 0.1, 0.3, 10.0]), Some(0.35));
    }
}
