//! Validated configuration: TOML with an embedded default, checked before any packet is read.
//!
//! `cli.rs` holds what the user typed; this module turns a file into a [`Config`]. Unknown
//! keys and bad values are errors that name the file, the key and the problem. The embedded
//! default (`default_config.toml`) is the single description of every key; a test keeps it
//! equal to [`Config::default`].

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use flowtable::Duration;
use ipnet::IpNet;
use serde::Deserialize;
use thiserror::Error;

use crate::alert::output::{OutputSpec, OutputSpecError};
use crate::decode::{DecodeConfig, MAX_TUNNEL_DEPTH_CAP, TunnelKind};
use crate::detect::beacon::BeaconConfig;
use crate::detect::extraneous::ExtraneousConfig;

/// The default configuration file, printed by `mirrorwatch config default`.
pub const DEFAULT_CONFIG_TOML: &str = include_str!("default_config.toml");

/// Keys a running sensor keeps at their start values when it reloads its configuration
/// (SIGHUP): they size tables, pools and threads allocated at start, or (`enabled`) decide
/// whether a detector got its tables at all; the baseline of known destinations is read
/// once, at start. Every other key applies to the running sensor (see [`Config::reloaded`]).
pub const RESTART_ONLY_KEYS: [&str; 19] = [
    "[flows] capacity",
    "[tunnels] capacity",
    "[pipeline] workers",
    "[pipeline] batch_size",
    "[pipeline] queue_batches",
    "[extraneous] enabled",
    "[extraneous] pending_capacity",
    "[extraneous] resume_memory",
    "[beacon] enabled",
    "[beacon] pair_capacity",
    "[beacon] packet_tracks",
    "[beacon] baseline_file",
    "[beacon] known_destinations_capacity",
    "[live] user",
    "[live] capture_threads",
    "[output] targets",
    "[output] retry_timeout_s",
    "[output] shutdown_grace_s",
    "[output] nice",
];

/// Errors from loading a configuration. Each names the file.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not valid TOML, has an unknown key or a value of the wrong type.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message (names the key and shows the line).
        message: String,
    },
    /// A value has the right type but is out of range.
    #[error("{path}: [{section}] {key}: {problem}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The table.
        section: &'static str,
        /// The key.
        key: &'static str,
        /// What is wrong.
        problem: String,
    },
}

/// The whole configuration, validated.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `[networks]`.
    pub networks: NetworksConfig,
    /// `[mirror]`.
    pub mirror: MirrorConfig,
    /// `[decode]`: ports and limits of the layer walk (the decoder's own settings).
    pub decode: DecodeConfig,
    /// `[flows]`.
    pub flows: FlowsConfig,
    /// `[tunnels]`.
    pub tunnels: TunnelsConfig,
    /// `[pipeline]`.
    pub pipeline: PipelineConfig,
    /// `[extraneous]`.
    pub extraneous: ExtraneousConfig,
    /// `[beacon]`.
    pub beacon: BeaconConfig,
    /// `[control]`: control-plane records of mirror configurations (`--audit`).
    pub control: crate::control::ControlConfig,
    /// `[live]`.
    pub live: LiveConfig,
    /// `[output]`.
    pub output: OutputConfig,
    /// `[eve]`: the sensor's identity in its events.
    pub eve: EveConfig,
}

/// `[live]`: the live sensor's process settings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LiveConfig {
    /// The user to run as once the capture is open (`--user` overrides); empty = keep the
    /// user, still dropping every capability.
    pub user: String,
    /// Capture threads, each on its own socket of one kernel fanout group (`--capture-threads`
    /// overrides); 0 = automatic ([`LiveConfig::capture_thread_count`]).
    pub capture_threads: usize,
}

/// Most capture threads (`--capture-threads`, `[live] capture_threads`).
pub const MAX_CAPTURE_THREADS: usize = 64;

impl LiveConfig {
    /// The capture thread count: the configured one, or half the cores (the other half runs
    /// the workers that the capture threads feed), at least 1 and at most 8: past that, one
    /// interface's ring is rarely the limit.
    pub fn capture_thread_count(&self) -> usize {
        if self.capture_threads > 0 {
            return self.capture_threads.min(MAX_CAPTURE_THREADS);
        }
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        (cores / 2).clamp(1, 8)
    }
}

/// A list of CIDRs where a bare address stands for its host prefix (`10.0.0.1` is
/// `10.0.0.1/32`): the reading an operator listing collectors means.
fn nets_or_addresses<'de, D>(deserializer: D) -> Result<Vec<IpNet>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let texts = Vec::<String>::deserialize(deserializer)?;
    texts
        .iter()
        .map(|t| {
            t.parse::<IpNet>()
                .or_else(|_| t.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    serde::de::Error::custom(format!(
                        "{t:?} is neither an address nor a CIDR (e.g. 10.0.0.1 or 10.0.0.0/8)"
                    ))
                })
        })
        .collect()
}

/// `[eve]`: what every event says about its writer (read at start).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EveConfig {
    /// `host` in every event; empty = the machine's host name.
    pub host: String,
    /// Community ID seed (0 unless every tool that computes the ids agrees on another).
    pub community_id_seed: u16,
}

impl EveConfig {
    /// The process-wide event identity this section gives, with the live interface.
    pub fn origin(&self, in_iface: Option<&str>) -> crate::alert::Origin {
        crate::alert::Origin {
            host: crate::alert::host_name(&self.host),
            in_iface: in_iface.map(std::sync::Arc::from),
            community_id_seed: self.community_id_seed,
        }
    }
}

/// `[networks]`: what is inside the organization.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetworksConfig {
    /// Internal address space.
    pub home: Vec<IpNet>,
}

/// `[mirror]`: the approved inventory of collectors and the classification thresholds.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MirrorConfig {
    /// Collectors allowed to receive mirrored traffic from anyone (CIDRs; a bare address
    /// is its /32 or /128).
    #[serde(deserialize_with = "nets_or_addresses")]
    pub approved_collectors: Vec<IpNet>,
    /// Decide a session's class after at most this many packets.
    pub decide_after_packets: u64,
    /// ... or this many seconds of packet time.
    pub decide_after_s: u64,
    /// Window for matching inner frames against native packets, in milliseconds.
    pub duplicate_window_ms: u64,
    /// Collectors approved only within bounds.
    pub inventory: Vec<InventoryEntry>,
}

/// One `[[mirror.inventory]]` entry: a collector and what it may receive.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InventoryEntry {
    /// The collector (a CIDR).
    pub collector: IpNet,
    /// Mirror sources allowed to send to it; empty = any.
    #[serde(default)]
    pub sources: Vec<IpNet>,
    /// Tunnel types allowed (event names); empty = any.
    #[serde(default)]
    pub types: Vec<String>,
    /// Tunnel ids allowed; empty = any.
    #[serde(default)]
    pub tunnel_ids: Vec<u32>,
    /// Control plane: who may configure mirrors to this collector (ARN, UPN, e-mail or
    /// device user patterns, `*` wildcard); empty = anyone.
    #[serde(default)]
    pub actors: Vec<String>,
    /// Control plane: mirrored resources allowed (ENI, NIC, subnet, interface patterns);
    /// empty = any.
    #[serde(default)]
    pub source_resources: Vec<String>,
    /// Control plane: the collector's resource ids (target, ENI, NIC IP configuration,
    /// forwarding rule patterns), for records that name no address.
    #[serde(default)]
    pub collector_resources: Vec<String>,
    /// Control plane: change records that may approve changes to this collector (patterns);
    /// when set, a change needs one of them within its window.
    #[serde(default)]
    pub change_records: Vec<String>,
}

impl Default for MirrorConfig {
    fn default() -> Self {
        MirrorConfig {
            approved_collectors: Vec::new(),
            decide_after_packets: 32,
            decide_after_s: 5,
            duplicate_window_ms: 1000,
            inventory: Vec::new(),
        }
    }
}

/// `[flows]`: flow table sizing and timeouts.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FlowsConfig {
    /// Flows tracked at once across all workers.
    pub capacity: usize,
    /// Idle timeout in seconds of packet time.
    pub idle_timeout_s: u64,
    /// Active timeout in seconds of packet time.
    pub active_timeout_s: u64,
}

/// `[tunnels]`: tunnel session table sizing.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TunnelsConfig {
    /// Tunnel links tracked at once.
    pub capacity: usize,
    /// Idle timeout in seconds of packet time.
    pub idle_timeout_s: u64,
    /// Distinct inner flows counted per session.
    pub max_inner_flows: usize,
}

/// `[pipeline]`: threads and queues.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PipelineConfig {
    /// Worker threads; 0 = automatic.
    pub workers: usize,
    /// Packets per batch.
    pub batch_size: usize,
    /// Batches queued per worker.
    pub queue_batches: usize,
}

/// `[output]`: where events go, and how long outputs are waited for.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutputConfig {
    /// Outputs, each in the form `--output` takes ([`OutputSpec::parse`]); empty = standard
    /// output. `--output` on the command line replaces the list.
    pub targets: Vec<String>,
    /// Replay: seconds an unreachable output is retried before the run gives it up.
    pub retry_timeout_s: u64,
    /// Live: seconds a stopping sensor gives its outputs to deliver what they hold.
    pub shutdown_grace_s: u64,
    /// Nice level of the event writer and output threads (see `crate::sched`); 0 = that of
    /// the other threads.
    pub nice: i32,
}

impl Default for OutputConfig {
    fn default() -> Self {
        OutputConfig {
            targets: Vec::new(),
            retry_timeout_s: 60,
            shutdown_grace_s: 5,
            nice: crate::sched::OUTPUT_NICE_DEFAULT,
        }
    }
}

impl Default for NetworksConfig {
    fn default() -> Self {
        let home = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fd00::/8"];
        NetworksConfig {
            home: home.iter().filter_map(|s| s.parse().ok()).collect(),
        }
    }
}

impl Default for FlowsConfig {
    fn default() -> Self {
        FlowsConfig {
            capacity: 1_000_000,
            idle_timeout_s: 300,
            active_timeout_s: 3600,
        }
    }
}

impl Default for TunnelsConfig {
    fn default() -> Self {
        TunnelsConfig {
            capacity: 65_536,
            idle_timeout_s: 3600,
            max_inner_flows: 65_536,
        }
    }
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            workers: 0,
            batch_size: 1024,
            queue_batches: 64,
        }
    }
}

impl Config {
    /// The configuration named on the command line, or the defaults without one.
    pub fn load_or_default(path: Option<&Path>) -> Result<Config, ConfigError> {
        path.map_or_else(|| Ok(Config::default()), Config::load)
    }

    /// Loads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })?;
        let mut config = Config::parse(&text, path)?;
        config.control.resolve_relative_to(path);
        Ok(config)
    }

    /// Parses and validates configuration text; `path` is only used in error messages.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        config.validate(path)?;
        Ok(config)
    }

    /// Checks ranges that the types cannot express.
    fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let invalid = |section, key, problem: &str| ConfigError::Invalid {
            path: path.to_owned(),
            section,
            key,
            problem: problem.to_owned(),
        };
        let d = &self.decode;
        for (key, ports) in [
            ("vxlan_ports", &d.vxlan_ports),
            ("geneve_ports", &d.geneve_ports),
            ("gre_udp_ports", &d.gre_udp_ports),
        ] {
            if ports.contains(&0) {
                return Err(invalid("decode", key, "port 0 is not a valid UDP port"));
            }
            if ports.len() > 16 {
                return Err(invalid("decode", key, "at most 16 ports"));
            }
        }
        if d.max_tunnel_depth > MAX_TUNNEL_DEPTH_CAP {
            return Err(invalid(
                "decode",
                "max_tunnel_depth",
                &format!("must be between 0 and {MAX_TUNNEL_DEPTH_CAP}"),
            ));
        }
        if d.max_mpls_labels == 0 || d.max_mpls_labels > 64 {
            return Err(invalid(
                "decode",
                "max_mpls_labels",
                "must be between 1 and 64",
            ));
        }
        let m = &self.mirror;
        if m.decide_after_packets == 0 {
            return Err(invalid(
                "mirror",
                "decide_after_packets",
                "must be at least 1",
            ));
        }
        if m.decide_after_s == 0 {
            return Err(invalid("mirror", "decide_after_s", "must be at least 1"));
        }
        if m.duplicate_window_ms == 0 || m.duplicate_window_ms > 60_000 {
            return Err(invalid(
                "mirror",
                "duplicate_window_ms",
                "must be between 1 and 60000",
            ));
        }
        for entry in &m.inventory {
            if let Some(bad) = entry
                .types
                .iter()
                .find(|t| !TunnelKind::ALL.iter().any(|k| k.name() == t.as_str()))
            {
                return Err(invalid(
                    "mirror.inventory",
                    "types",
                    &format!("unknown tunnel type {bad:?}"),
                ));
            }
        }
        let f = &self.flows;
        if f.capacity == 0 || f.capacity > 1 << 30 {
            return Err(invalid("flows", "capacity", "must be between 1 and 2^30"));
        }
        if f.idle_timeout_s == 0 {
            return Err(invalid("flows", "idle_timeout_s", "must be at least 1"));
        }
        if f.active_timeout_s < f.idle_timeout_s {
            return Err(invalid(
                "flows",
                "active_timeout_s",
                "must be at least idle_timeout_s",
            ));
        }
        let t = &self.tunnels;
        if t.capacity == 0 || t.capacity > 1 << 24 {
            return Err(invalid("tunnels", "capacity", "must be between 1 and 2^24"));
        }
        if t.idle_timeout_s == 0 {
            return Err(invalid("tunnels", "idle_timeout_s", "must be at least 1"));
        }
        if t.max_inner_flows > 1 << 24 {
            return Err(invalid(
                "tunnels",
                "max_inner_flows",
                "must be at most 2^24",
            ));
        }
        let p = &self.pipeline;
        if p.workers > 256 {
            return Err(invalid("pipeline", "workers", "must be at most 256"));
        }
        if self.live.capture_threads > MAX_CAPTURE_THREADS {
            return Err(invalid("live", "capture_threads", "must be at most 64"));
        }
        if p.batch_size == 0 || p.batch_size > 65_536 {
            return Err(invalid(
                "pipeline",
                "batch_size",
                "must be between 1 and 65536",
            ));
        }
        if p.queue_batches == 0 || p.queue_batches > 65_536 {
            return Err(invalid(
                "pipeline",
                "queue_batches",
                "must be between 1 and 65536",
            ));
        }
        for target in &self.output.targets {
            OutputSpec::parse(target).map_err(|e| invalid("output", "targets", &e.to_string()))?;
        }
        if self.output.retry_timeout_s == 0 || self.output.retry_timeout_s > 86_400 {
            return Err(invalid(
                "output",
                "retry_timeout_s",
                "must be between 1 and 86400",
            ));
        }
        if self.output.shutdown_grace_s > 300 {
            return Err(invalid("output", "shutdown_grace_s", "must be at most 300"));
        }
        if !(crate::sched::NICE_MIN..=0).contains(&self.output.nice) {
            return Err(invalid("output", "nice", "must be between -20 and 0"));
        }
        // The detectors own their sections' ranges.
        self.extraneous
            .validate()
            .map_err(|(key, problem)| invalid("extraneous", key, &problem))?;
        self.beacon
            .validate()
            .map_err(|(key, problem)| invalid("beacon", key, &problem))?;
        self.control
            .validate()
            .map_err(|(key, problem)| invalid("control", key, &problem))?;
        Ok(())
    }

    /// What a running sensor applies when it reloads `new` (SIGHUP): `new`, except the keys
    /// that size what was allocated or spawned at start ([`RESTART_ONLY_KEYS`]), which keep
    /// their values from `self`, the configuration in use. Also returns the names of those
    /// keys whose value `new` changes, for the shell to say that they wait for a restart.
    pub fn reloaded(&self, new: &Config) -> (Config, Vec<&'static str>) {
        let mut applied = new.clone();
        let mut changed = Vec::new();
        // One line per key of RESTART_ONLY_KEYS, in its order (a test holds them equal).
        macro_rules! keep {
            ($name:literal, $($field:ident).+) => {
                if applied.$($field).+ != self.$($field).+ {
                    changed.push($name);
                    applied.$($field).+ = self.$($field).+.clone();
                }
            };
        }
        keep!("[flows] capacity", flows.capacity);
        keep!("[tunnels] capacity", tunnels.capacity);
        keep!("[pipeline] workers", pipeline.workers);
        keep!("[pipeline] batch_size", pipeline.batch_size);
        keep!("[pipeline] queue_batches", pipeline.queue_batches);
        keep!("[extraneous] enabled", extraneous.enabled);
        keep!("[extraneous] pending_capacity", extraneous.pending_capacity);
        keep!("[extraneous] resume_memory", extraneous.resume_memory);
        keep!("[beacon] enabled", beacon.enabled);
        keep!("[beacon] pair_capacity", beacon.pair_capacity);
        keep!("[beacon] packet_tracks", beacon.packet_tracks);
        keep!("[beacon] baseline_file", beacon.baseline_file);
        keep!(
            "[beacon] known_destinations_capacity",
            beacon.known_destinations_capacity
        );
        keep!("[live] user", live.user);
        keep!("[live] capture_threads", live.capture_threads);
        keep!("[output] targets", output.targets);
        keep!("[output] retry_timeout_s", output.retry_timeout_s);
        keep!("[output] shutdown_grace_s", output.shutdown_grace_s);
        keep!("[output] nice", output.nice);
        (applied, changed)
    }

    /// The outputs: those given on the command line (`--output`, repeatable) if any, else
    /// `[output] targets`, else standard output.
    pub fn outputs(&self, cli: &[String]) -> Result<Vec<OutputSpec>, OutputSpecError> {
        let texts: &[String] = if cli.is_empty() {
            &self.output.targets
        } else {
            cli
        };
        if texts.is_empty() {
            return Ok(vec![OutputSpec::parse("-")?]);
        }
        texts.iter().map(|t| OutputSpec::parse(t)).collect()
    }

    /// Flow idle timeout.
    pub fn flow_idle_timeout(&self) -> Duration {
        Duration::from_secs(self.flows.idle_timeout_s)
    }

    /// Flow active timeout.
    pub fn flow_active_timeout(&self) -> Duration {
        Duration::from_secs(self.flows.active_timeout_s)
    }

    /// Whether `ip` is inside `[networks] home`.
    pub fn is_home(&self, ip: IpAddr) -> bool {
        self.networks.home.iter().any(|net| net.contains(&ip))
    }

    /// Worker count to use: the configured one, or one per core left after the capture thread.
    pub fn worker_count(&self) -> usize {
        if self.pipeline.workers > 0 {
            return self.pipeline.workers;
        }
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        cores.saturating_sub(1).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("test.toml"))
    }

    #[test]
    fn embedded_default_equals_default_struct() {
        assert_eq!(parse(DEFAULT_CONFIG_TOML).unwrap(), Config::default());
        assert_eq!(parse("").unwrap(), Config::default());
    }

    #[test]
    fn partial_file_keeps_other_defaults() {
        let c = parse("[decode]\nvxlan_ports = [4789, 8472]\n").unwrap();
        assert_eq!(c.decode.vxlan_ports, vec![4789, 8472]);
        assert_eq!(c.flows, FlowsConfig::default());
        assert!(c.is_home("10.1.2.3".parse().unwrap()));
        assert!(!c.is_home("8.8.8.8".parse().unwrap()));
    }

    #[test]
    fn unknown_key_names_file_and_key() {
        let e = parse("[decode]\nvxlan_port = [4789]\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("test.toml: "), "{e}");
        assert!(e.contains("vxlan_port"), "{e}");
        let e = parse("[nope]\n").unwrap_err().to_string();
        assert!(e.contains("nope"), "{e}");
    }

    #[test]
    fn bad_cidr_is_an_error_naming_the_value_line() {
        let e = parse("[mirror]\napproved_collectors = [\"10.0.0.300/8\"]\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("test.toml") && e.contains("approved_collectors"),
            "{e}"
        );
    }

    #[test]
    fn out_of_range_values_name_section_and_key() {
        let e = parse("[decode]\nmax_tunnel_depth = 9\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "test.toml: [decode] max_tunnel_depth: must be between 0 and 8"
        );
        let e = parse("[flows]\ncapacity = 0\n").unwrap_err().to_string();
        assert!(e.contains("[flows] capacity"), "{e}");
        let e = parse("[decode]\nvxlan_ports = [0]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("[decode] vxlan_ports"), "{e}");
        let e = parse("[flows]\nidle_timeout_s = 600\nactive_timeout_s = 60\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("active_timeout_s"), "{e}");
        for nice in ["1", "-21"] {
            let e = parse(&format!("[output]\nnice = {nice}\n"))
                .unwrap_err()
                .to_string();
            assert_eq!(e, "test.toml: [output] nice: must be between -20 and 0");
        }
        assert_eq!(parse("[output]\nnice = 0\n").unwrap().output.nice, 0);
        assert_eq!(parse("").unwrap().output.nice, -10);
    }

    #[test]
    fn inventory_entries_parse_and_unknown_types_are_refused() {
        let c = parse(
            "[[mirror.inventory]]\ncollector = \"10.9.0.10/32\"\nsources = [\"10.1.0.0/16\"]\ntypes = [\"vxlan\"]\ntunnel_ids = [100]\n",
        )
        .unwrap();
        assert_eq!(c.mirror.inventory.len(), 1);
        assert_eq!(c.mirror.inventory[0].tunnel_ids, vec![100]);
        let e = parse("[[mirror.inventory]]\ncollector = \"10.9.0.10/32\"\ntypes = [\"vxlam\"]\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("[mirror.inventory] types") && e.contains("vxlam"),
            "{e}"
        );
        let e = parse("[[mirror.inventory]]\nsources = []\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("collector"), "{e}");
    }

    #[test]
    fn capture_threads_are_bounded_and_automatic_by_default() {
        let e = parse("[live]\ncapture_threads = 65\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("[live] capture_threads"), "{e}");
        let c = parse("[live]\ncapture_threads = 3\n").unwrap();
        assert_eq!(c.live.capture_thread_count(), 3);
        let auto = Config::default().live.capture_thread_count();
        assert!((1..=8).contains(&auto), "{auto}");
    }

    #[test]
    fn wrong_type_is_an_error() {
        let e = parse("[flows]\ncapacity = \"big\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("capacity"), "{e}");
    }

    #[test]
    fn reload_keeps_restart_only_keys_and_names_them() {
        let running = Config::default();
        let new = parse(
            "[flows]\ncapacity = 10\nidle_timeout_s = 60\n[mirror]\napproved_collectors = [\"203.0.113.0/24\"]\n[beacon]\nenabled = false\nmin_beats = 6\n",
        )
        .unwrap();
        let (applied, changed) = running.reloaded(&new);
        assert_eq!(changed, ["[flows] capacity", "[beacon] enabled"]);
        assert_eq!(applied.flows.capacity, running.flows.capacity);
        assert!(applied.beacon.enabled);
        assert_eq!(applied.flows.idle_timeout_s, 60, "timeouts apply live");
        assert_eq!(applied.beacon.min_beats, 6);
        assert_eq!(applied.mirror, new.mirror);
        // Every restart-only key, changed at once, is named, in the order of the list.
        let mut all = Config::default();
        all.flows.capacity += 1;
        all.tunnels.capacity += 1;
        all.pipeline.workers += 1;
        all.pipeline.batch_size += 1;
        all.pipeline.queue_batches += 1;
        all.extraneous.enabled = false;
        all.extraneous.pending_capacity += 1;
        all.extraneous.resume_memory += 1;
        all.beacon.enabled = false;
        all.beacon.pair_capacity += 1;
        all.beacon.packet_tracks += 1;
        all.beacon.baseline_file = "known.txt".to_owned();
        all.beacon.known_destinations_capacity += 1;
        all.live.user = "nobody".to_owned();
        all.live.capture_threads += 1;
        all.output.targets = vec!["events.json".to_owned()];
        all.output.retry_timeout_s += 1;
        all.output.shutdown_grace_s += 1;
        all.output.nice += 1;
        let (applied, changed) = running.reloaded(&all);
        assert_eq!(changed, RESTART_ONLY_KEYS);
        assert_eq!(applied, running);
        assert!(running.reloaded(&running).1.is_empty());
    }

    #[test]
    fn a_bare_collector_address_is_its_host_prefix() {
        let c = parse(
            "[mirror]\napproved_collectors = [\"10.0.0.1\", \"2001:db8::1\", \"192.0.2.0/24\"]\n",
        )
        .unwrap();
        let nets: Vec<String> = c
            .mirror
            .approved_collectors
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(nets, ["10.0.0.1/32", "2001:db8::1/128", "192.0.2.0/24"]);
        let e = parse("[mirror]\napproved_collectors = [\"10.0.0.300\"]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"10.0.0.300\" is neither"), "{e}");
    }

    #[test]
    fn output_targets_are_checked_and_the_command_line_replaces_them() {
        let c = parse(
            "[output]\ntargets = [\"eve.json\", \"redis://127.0.0.1/stream/ev?types=alert\"]\n",
        )
        .unwrap();
        let specs = c.outputs(&[]).unwrap();
        assert_eq!(specs.len(), 2);
        assert_eq!(specs[1].types, ["alert"]);
        let cli = c.outputs(&["-".to_owned()]).unwrap();
        assert_eq!(cli.len(), 1);
        assert_eq!(cli[0].text, "-");
        assert_eq!(Config::default().outputs(&[]).unwrap()[0].text, "-");
        let e = parse("[output]\ntargets = [\"syslog:bogus\"]\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("test.toml: [output] targets: output \"syslog:bogus\""),
            "{e}"
        );
        let e = parse("[output]\nretry_timeout_s = 0\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("[output] retry_timeout_s"), "{e}");
    }

    #[test]
    fn missing_file_names_it() {
        let e = Config::load(Path::new("/nonexistent/mirrorwatch.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("/nonexistent/mirrorwatch.toml: "), "{e}");
    }
}
