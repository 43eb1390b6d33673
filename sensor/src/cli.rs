//! What the user typed (clap derive). `config.rs` turns it into validated settings.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// mirrorwatch: find traffic duplication used for exfiltration (MITRE ATT&CK T1020.001).
#[derive(Debug, Parser)]
#[command(name = "mirrorwatch", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Replay capture files (pcap, pcapng, optionally .gz/.zst) through the sensor.
    Replay(ReplayArgs),
    /// Capture on a network interface (a SPAN or TAP port) until SIGINT/SIGTERM.
    Live(LiveArgs),
    /// Write a deterministic test scenario as a pcap file.
    Generate(GenerateArgs),
    /// Print or check configuration files.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Measure throughput, latency and memory on captures or generated scenarios, side by
    /// side with other tools on the same files.
    Bench(BenchArgs),
    /// Read control-plane records of mirror configurations only (CloudTrail, Azure Activity,
    /// GCP audit logs, device syslog and configurations): configured sessions, alerts, and a
    /// drift report (table on stderr, events on stdout).
    Audit(AuditArgs),
    /// Build the hunting report (one self-contained HTML page) from an events file written
    /// by `replay` or `live`.
    Report(ReportArgs),
}

/// `mirrorwatch replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Configuration file (TOML); defaults are built in (`mirrorwatch config default`).
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Known destinations kept across runs (one address per line; created when missing,
    /// saved at the end): overrides `[beacon] baseline_file`.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    /// Where to write JSON-lines events (repeatable; default `[output] targets`, else `-`).
    ///
    /// `-` is standard output; PATH (or file:PATH) a file, truncated; unix-dgram:PATH and
    /// unix-stream:PATH a Unix socket; syslog: (the local /dev/log), syslog:unix:PATH,
    /// syslog:udp:HOST:PORT or syslog:tcp:HOST:PORT for RFC 5424 syslog;
    /// redis://HOST[:PORT][/list|lpush|channel|stream[/KEY]] for Redis. Options follow a
    /// `?`: types=alert,tunnel (event types written), queue_kib=N, facility=local0 and
    /// level=info (syslog), maxlen=N (Redis stream). A replay drops nothing: it waits for a
    /// slow output, and one unreachable for `[output] retry_timeout_s` ends the run with an
    /// error once every other output has everything.
    #[arg(long, short = 'o', value_name = "OUTPUT")]
    pub output: Vec<String>,
    /// Worker threads, 1 to 256 (default: from the configuration, automatic).
    #[arg(long, short = 'w', value_name = "N", value_parser = parse_workers)]
    pub workers: Option<usize>,
    /// Also write one `flow` record per flow.
    #[arg(long)]
    pub flows: bool,
    /// Never draw a progress bar.
    #[arg(long)]
    pub no_progress: bool,
    /// At the end, print a table of every tunnel session (type, id, source -> collector,
    /// class, approved or not, packets, bytes, first/last seen) to stderr.
    #[arg(long)]
    pub inventory: bool,
    /// At the end, build the hunting report (one self-contained HTML page) from the events
    /// written to an `--output` file (one output must then be a file).
    #[arg(long, value_name = "FILE.html")]
    pub report: Option<PathBuf>,
    /// Capture files, or directories of them (read in name order).
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,
    /// Control-plane records of mirror configurations (a file or a directory; repeat the
    /// flag for more), read before the packets and correlated with the mirrors on the wire.
    #[arg(long, value_name = "PATH")]
    pub audit: Vec<PathBuf>,
}

/// `mirrorwatch live`.
#[derive(Debug, Args)]
pub struct LiveArgs {
    /// The capture interface (e.g. the NIC on the SPAN or TAP port).
    #[arg(long, short = 'i', value_name = "IF")]
    pub interface: String,
    /// Configuration file (TOML); defaults are built in (`mirrorwatch config default`).
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Known destinations kept across runs (one address per line; created when missing,
    /// saved at the end): overrides `[beacon] baseline_file`.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    /// Where to write JSON-lines events (repeatable; default `[output] targets`, else `-`).
    ///
    /// The forms of `replay --output`: `-`, PATH or file:PATH (appended to; SIGHUP reopens
    /// it), unix-dgram:PATH, unix-stream:PATH, syslog:[unix:PATH|udp:HOST:PORT|tcp:HOST:PORT],
    /// redis://HOST[:PORT][/list|lpush|channel|stream[/KEY]], each with options after `?`
    /// (types=alert,tunnel, queue_kib=N, facility=, level=, maxlen=). Capture never waits for
    /// an output: a line that does not fit in its queue is dropped and counted
    /// (`stats.output`, `mirrorwatch_output_dropped_total`); sockets and servers that go
    /// away are reconnected, and a FIFO without a reader is waited for in the background.
    #[arg(long, short = 'o', value_name = "OUTPUT")]
    pub output: Vec<String>,
    /// A BPF filter (tcpdump syntax) applied in the kernel.
    #[arg(long, value_name = "FILTER")]
    pub bpf: Option<String>,
    /// Bytes kept of each frame; the default keeps jumbo mirror frames whole.
    #[arg(long, value_name = "N", default_value_t = 9216, value_parser = clap::value_parser!(u32).range(64..=262_144))]
    pub snaplen: u32,
    /// Kernel ring size in MiB (TPACKET_V3 under libpcap), 1 to 2047 (libpcap takes the size
    /// as a signed 32-bit number of bytes).
    #[arg(long, value_name = "N", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=2047))]
    pub buffer_mb: u32,
    /// Worker threads, 1 to 256 (default: from the configuration, automatic).
    #[arg(long, short = 'w', value_name = "N", value_parser = parse_workers)]
    pub workers: Option<usize>,
    /// Capture threads, 1 to 64, each on its own socket of one kernel fanout group that
    /// keeps every packet of a tunnel (both directions of its outer IP pair) in one thread
    /// (default: `[live] capture_threads`, automatic: half the cores, 1 to 8). 1 reads one
    /// socket with no group.
    #[arg(long, value_name = "N", value_parser = parse_capture_threads)]
    pub capture_threads: Option<usize>,
    /// The fanout program's seed (default: random per run). For tests that need to know
    /// which capture thread an outer pair reaches (`capture::fanout::outer_pair_hash`).
    #[arg(long, value_name = "N", hide = true)]
    pub fanout_seed: Option<u32>,
    /// How often to write a `stats` event (`60s`, `500ms`, ...); one more is written at exit.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = humantime::parse_duration)]
    pub stats_interval: std::time::Duration,
    /// Ring timeout: how long the kernel may hold a block of packets before handing it over.
    #[arg(long, value_name = "DURATION", default_value = "20ms", value_parser = humantime::parse_duration)]
    pub timeout: std::time::Duration,
    /// Hand over every packet at once (libpcap then uses TPACKET_V2, not the V3 block ring).
    #[arg(long)]
    pub immediate: bool,
    /// Also write one `flow` record per flow.
    #[arg(long)]
    pub flows: bool,
    /// Serve Prometheus metrics over HTTP on this address (e.g. `127.0.0.1:9717`).
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<std::net::SocketAddr>,
    /// Control-plane records of mirror configurations (a file or a directory; repeat the
    /// flag for more), read at start and correlated with the mirrors on the wire.
    #[arg(long, value_name = "PATH")]
    pub audit: Vec<PathBuf>,
    /// Once the capture is open, run as this user (name or uid) with no capability at all;
    /// overrides `[live] user`. Without either, the user stays and capabilities still go.
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
}

/// `mirrorwatch generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Scenario name (`--list` shows them).
    #[arg(required_unless_present = "list")]
    pub scenario: Option<String>,
    /// Random seed: the same scenario and seed give the same bytes.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Output pcap file.
    #[arg(
        long,
        short = 'o',
        value_name = "FILE",
        required_unless_present = "list"
    )]
    pub output: Option<PathBuf>,
    /// List the scenarios.
    #[arg(long)]
    pub list: bool,
}

/// `mirrorwatch bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Configuration file (TOML); defaults are built in.
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Worker counts to run each input with, comma-separated (e.g. `1,2,4`).
    #[arg(long, short = 'w', value_name = "LIST", default_value = "1,2")]
    pub workers: String,
    /// Seconds per measurement row: the input is replayed from memory until this much time
    /// has passed (at least once). 0 = exactly one pass.
    #[arg(long, value_name = "S", default_value_t = 1.0)]
    pub duration: f64,
    /// Passes over each input per throughput row, instead of `--duration` (each pass is new
    /// traffic: time and addresses moved; README.md, Benchmarks).
    #[arg(long, value_name = "N")]
    pub passes: Option<u64>,
    /// Write the events of each throughput row to `DIR/<input>-<N>w.jsonl` instead of
    /// `/dev/null` (to check what the rows detected; the file writes are then timed too).
    #[arg(long, value_name = "DIR")]
    pub events: Option<PathBuf>,
    /// Flow counts of the flow-table scaling rows (`bench-flood64:N`, flow capacity 2N),
    /// comma-separated, `1e6` style allowed; `none` skips them.
    #[arg(long, value_name = "LIST", default_value = "1e3,1e4,1e5,1e6")]
    pub flow_sizes: String,
    /// Packet rate of the packet-to-alert latency run (paced), in packets per second;
    /// 0 skips it.
    #[arg(long, value_name = "PPS", default_value_t = 1_000_000.0)]
    pub latency_rate: f64,
    /// Packet-to-alert runs per input, each into a fresh pipeline: a row is the run with the
    /// median p99 of its pass, the range of the runs' p99 beside it.
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub latency_runs: u32,
    /// Peer tools to compare with (TOML, e.g. `benches/peers.toml`); default:
    /// `/etc/mirrorwatch/peers.toml` when it exists, else tcpdump and tshark.
    #[arg(long, value_name = "FILE")]
    pub peers: Option<PathBuf>,
    /// Run no peer tool.
    #[arg(long)]
    pub no_peers: bool,
    /// Skip the peers on inputs with more packets than this (tshark takes minutes on
    /// millions of packets).
    #[arg(long, value_name = "N", default_value = "2e6")]
    pub peer_max_packets: String,
    /// Timed runs of each peer, each paired with a run of `mirrorwatch replay` just before
    /// it: rows give the median, ratios the median of the pairs' ratios.
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub peer_runs: u32,
    /// How each input sits in the page cache when the peers and `mirrorwatch replay` read
    /// it: `as-is`, whatever the last writer or reader left (a file a capture tool just wrote
    /// 4 KiB at a time is in 4 KiB pages), or `from-storage`, its pages dropped from the cache
    /// (`POSIX_FADV_DONTNEED`) and read back in order, as an archive read from disk is cached
    /// (in large folios where the file system has them). Reading costs every tool less in
    /// large folios, a mapped replay most; the inputs table says what the peers met.
    #[arg(long, value_enum, value_name = "STATE", default_value_t = PageCacheState::AsIs)]
    pub page_cache: PageCacheState,
    /// Seed of generated scenarios.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Also write the JSON document here (`-` is standard output).
    #[arg(long, value_name = "PATH")]
    pub json: Option<String>,
    /// Record the run in `DIR/<date>-<host>/` (raw JSON, summary, machine description,
    /// SVG charts), e.g. `--record benches/runs`.
    #[arg(long, value_name = "DIR")]
    pub record: Option<PathBuf>,
    /// Host name used in the run folder (default: the system's).
    #[arg(long, value_name = "NAME")]
    pub host: Option<String>,
    /// Capture files, or generated scenarios (`mirrorwatch generate --list`, e.g.
    /// `bench-syn-flood:1e7`). Default: bench-flood64 bench-imix bench-enterprise
    /// bench-mirror bench-syn-flood:12e5 bench-beacons.
    #[arg(value_name = "INPUT|SCENARIO")]
    pub inputs: Vec<String>,
}

/// `mirrorwatch report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The events file (JSON lines) to report on.
    #[arg(value_name = "EVENTS.jsonl")]
    pub events: PathBuf,
    /// Where to write the HTML page.
    #[arg(long, short = 'o', value_name = "FILE.html")]
    pub output: PathBuf,
    /// Configuration file (TOML) of the run, for `[networks] home` and the beacon threshold;
    /// defaults are built in.
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// `mirrorwatch config ...`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the built-in default configuration.
    Default,
    /// Validate a configuration file and exit 0 if it is good.
    Check {
        /// The file.
        file: PathBuf,
    },
}

/// `mirrorwatch audit`.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Configuration file (TOML): `[mirror]` baseline and `[control]` files.
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Where to write JSON-lines events; `-` is standard output.
    #[arg(long, short = 'o', value_name = "PATH", default_value = "-")]
    pub output: String,
    /// Control-plane files, or directories of them (read in name order).
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}

/// Most worker threads, as `[pipeline] workers` allows.
pub const MAX_WORKERS: usize = 256;

/// `--capture-threads`: 1 to [`crate::config::MAX_CAPTURE_THREADS`].
fn parse_capture_threads(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if (1..=crate::config::MAX_CAPTURE_THREADS).contains(&n) => Ok(n),
        _ => Err(format!(
            "expected 1 to {} capture threads, got {text:?}",
            crate::config::MAX_CAPTURE_THREADS
        )),
    }
}

/// `--workers`: 1 to [`MAX_WORKERS`] (0 is accepted as "automatic", like the configuration).
fn parse_workers(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if n <= MAX_WORKERS => Ok(n),
        _ => Err(format!(
            "give 1 to {MAX_WORKERS} worker threads (0: automatic, from the configuration)"
        )),
    }
}

/// `bench --page-cache`: the state the inputs are read in by the peers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PageCacheState {
    /// As the last writer or reader left it.
    AsIs,
    /// Dropped from the cache and read back in order.
    FromStorage,
}
