//! Live capture on a network interface through libpcap (the `pcap` crate).
//!
//! The interface is opened promiscuous, with a large kernel ring (`buffer_size`: libpcap maps
//! a TPACKET_V3 ring on Linux, unless immediate mode asks for V2) and a snaplen that keeps
//! jumbo mirror frames. Each packet is yielded as a [`CaptureRecord`] borrowed from the ring,
//! with the kernel's nanosecond timestamp as packet time: nothing is copied or allocated per
//! packet. The handle is non-blocking and we `poll(2)` its descriptor ourselves: libpcap's own
//! blocking read on a TPACKET_V3 ring waits forever on a quiet link (the kernel retires only
//! blocks that hold packets), and a live sensor must look at signals and clocks. A read that
//! finds no packet within the wait returns `None`. [`preflight`] checks what libpcap does not: whether the
//! interface exists and is up, and whether offloads merge frames before we see them.

use std::path::Path;

use flowtable::Timestamp;
use thiserror::Error;

use super::CaptureRecord;
use crate::decode::link::LinkType;

/// How to open the interface.
#[derive(Clone, Debug)]
pub struct LiveOptions {
    /// Interface name.
    pub interface: String,
    /// Bytes kept per frame.
    pub snaplen: u32,
    /// Kernel ring size in bytes.
    pub buffer_bytes: u32,
    /// Ring (block) timeout in milliseconds; also the longest a read waits without a packet.
    pub timeout_ms: u32,
    /// Immediate mode (every packet handed over at once; TPACKET_V2).
    pub immediate: bool,
    /// A BPF filter, tcpdump syntax.
    pub bpf: Option<String>,
}

/// Kernel counters of the capture (libpcap's `pcap_stats`), since the capture started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelStats {
    /// Packets the kernel handed to the ring (after the BPF filter).
    pub received: u64,
    /// Packets dropped because the ring was full.
    pub dropped: u64,
    /// Packets dropped by the interface or its driver (not all drivers count them).
    pub if_dropped: u64,
}

/// Errors of live capture. Each names the interface.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum LiveError {
    /// There is no interface of that name.
    #[error("no interface named {name:?} (interfaces here: {available})")]
    NoSuchInterface {
        /// The name given.
        name: String,
        /// The interfaces that do exist, comma-separated.
        available: String,
    },
    /// The process may not capture.
    #[error(
        "{name}: permission denied ({detail}); capturing needs root or the capabilities \
         CAP_NET_RAW and CAP_NET_ADMIN (e.g. `setcap cap_net_raw,cap_net_admin=eip mirrorwatch`)"
    )]
    Permission {
        /// Interface.
        name: String,
        /// libpcap's message.
        detail: String,
    },
    /// The BPF filter does not compile.
    #[error("{name}: bad BPF filter {filter:?}: {detail}")]
    Filter {
        /// Interface.
        name: String,
        /// The filter.
        filter: String,
        /// libpcap's message.
        detail: String,
    },
    /// The sockets of several capture threads could not be joined in a fanout group.
    #[error("{name}: {source}")]
    Fanout {
        /// Interface.
        name: String,
        /// The step that failed.
        source: super::fanout::FanoutError,
    },
    /// libpcap could not open or read the interface.
    #[error("{name}: {detail}")]
    Pcap {
        /// Interface.
        name: String,
        /// libpcap's message.
        detail: String,
    },
}

impl LiveError {
    /// A problem with what the user asked for (name, rights, filter), found before capture:
    /// exit code 2.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            LiveError::NoSuchInterface { .. }
                | LiveError::Permission { .. }
                | LiveError::Filter { .. }
        )
    }
}

/// 64-bit running totals of libpcap's 32-bit `pcap_stats` counters, which wrap after 2^32
/// packets (minutes at 10GbE line rate): each reading adds its wrapping difference from the
/// last one. Correct as long as readings are less than 2^32 packets apart; the live loop
/// reads at least every [`KernelTotals::READ_EVERY`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelTotals {
    last: [u32; 3],
    totals: KernelStats,
}

impl KernelTotals {
    /// How often the counters must be read at most: 2^32 packets take 4.8 minutes at
    /// 14.88 Mpps, so 10 s leaves a wide margin.
    pub const READ_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

    /// Adds a reading of the raw counters (received, dropped, interface dropped).
    pub fn update(&mut self, raw: [u32; 3]) -> KernelStats {
        let delta = |i: usize| u64::from(raw[i].wrapping_sub(self.last[i]));
        self.totals.received += delta(0);
        self.totals.dropped += delta(1);
        self.totals.if_dropped += delta(2);
        self.last = raw;
        self.totals
    }
}

/// An open live capture.
pub struct LiveCapture {
    /// Running totals of the kernel's counters.
    totals: KernelTotals,
    cap: pcap::Capture<pcap::Active>,
    link: LinkType,
    name: String,
    promisc_refused: Option<String>,
    /// How long a read waits for the ring when it is empty.
    wait: rustix::event::Timespec,
    /// The last read found the ring empty: poll before the next.
    dry: bool,
}

/// Longest a read waits on an empty ring: the bound on how late a signal is seen.
const MAX_WAIT_MS: u32 = 100;

/// Checks the interface before opening it: an error when it does not exist, warnings when it
/// is down or offloads are on (GRO/LRO merge received frames, TSO/GSO hand us unsplit ones:
/// either breaks TCP sequence tracking and packet counts).
pub fn preflight(name: &str) -> Result<Vec<String>, LiveError> {
    let sys = Path::new("/sys/class/net").join(name);
    if name.is_empty() || name.contains('/') || !sys.exists() {
        let mut names: Vec<String> = std::fs::read_dir("/sys/class/net")
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        return Err(LiveError::NoSuchInterface {
            name: name.to_owned(),
            available: names.join(", "),
        });
    }
    let mut warnings = Vec::new();
    let flags = std::fs::read_to_string(sys.join("flags")).unwrap_or_default();
    let flags = u32::from_str_radix(flags.trim().trim_start_matches("0x"), 16).unwrap_or(0);
    let operstate = std::fs::read_to_string(sys.join("operstate")).unwrap_or_default();
    let operstate = operstate.trim();
    // IFF_UP = 0x1.
    if flags & 0x1 == 0 {
        warnings.push(format!(
            "{name} is administratively down: nothing will be captured until `ip link set {name} up`"
        ));
    } else if operstate == "down" || operstate == "lowerlayerdown" {
        warnings.push(format!(
            "{name} has no carrier (operstate {operstate}): check the cable or the peer"
        ));
    }
    match offloads(name) {
        Ok(on) if !on.is_empty() => warnings.push(format!(
            "{name} has offloads on ({}): the kernel merges or hands over unsplit frames, which \
             breaks sequence tracking and packet counts; turn them off with `ethtool -K {name} \
             gro off lro off tso off gso off`",
            on.join(", ")
        )),
        Ok(_) => {}
        Err(why) => warnings.push(format!("{name}: could not check offloads ({why})")),
    }
    Ok(warnings)
}

/// Where `ethtool` is looked for: system directories only, never `PATH`, which the user
/// starting a privileged sensor controls.
pub const ETHTOOL_PATHS: [&str; 4] = [
    "/usr/sbin/ethtool",
    "/sbin/ethtool",
    "/usr/bin/ethtool",
    "/bin/ethtool",
];

/// The first of [`ETHTOOL_PATHS`] that is a regular file owned by root and writable by no
/// one else.
fn ethtool() -> Option<&'static str> {
    use std::os::unix::fs::MetadataExt;
    ETHTOOL_PATHS.into_iter().find(|p| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.uid() == 0 && m.mode() & 0o022 == 0)
    })
}

/// The merging offloads that are on, read from `ethtool -k` (run by absolute path, before
/// privileges are dropped).
fn offloads(name: &str) -> Result<Vec<&'static str>, String> {
    let program = ethtool().ok_or_else(|| {
        format!(
            "ethtool is not installed in {} (root-owned)",
            ETHTOOL_PATHS.join(", ")
        )
    })?;
    let out = std::process::Command::new(program)
        .env_clear()
        .arg("-k")
        .arg(name)
        .output()
        .map_err(|e| format!("running ethtool: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "ethtool -k {name}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(parse_offloads(&String::from_utf8_lossy(&out.stdout)))
}

/// Offloads reported `on` in `ethtool -k` output.
fn parse_offloads(text: &str) -> Vec<&'static str> {
    const WATCHED: [(&str, &str); 4] = [
        ("generic-receive-offload", "GRO"),
        ("large-receive-offload", "LRO"),
        ("tcp-segmentation-offload", "TSO"),
        ("generic-segmentation-offload", "GSO"),
    ];
    let mut on = Vec::new();
    for line in text.lines() {
        let Some((feature, state)) = line.split_once(':') else {
            continue;
        };
        if let Some((_, short)) = WATCHED.iter().find(|(f, _)| *f == feature.trim()) {
            if state.trim_start().starts_with("on") {
                on.push(*short);
            }
        }
    }
    on
}

impl LiveCapture {
    /// Opens `n` captures of the interface, one per capture thread. With `n > 1` their
    /// sockets join one kernel fanout group steered by the outer IP pair
    /// (`capture/fanout.rs`, seeded with `seed`), so each frame reaches one of them and every
    /// frame of one tunnel, both directions, the same one. With `n == 1` there is no group:
    /// the one capture is exactly [`LiveCapture::open`]. A frame received in the moment
    /// between opening the sockets and joining the group may be seen by several of them
    /// (before the sensor says it is capturing).
    pub fn open_group(
        options: &LiveOptions,
        n: usize,
        seed: u32,
    ) -> Result<Vec<LiveCapture>, LiveError> {
        let mut captures = Vec::with_capacity(n.max(1));
        for _ in 0..n.max(1) {
            captures.push(LiveCapture::open(options)?);
        }
        if captures.len() > 1 {
            let fds: Vec<&dyn std::os::fd::AsRawFd> = captures
                .iter()
                .map(|c| &c.cap as &dyn std::os::fd::AsRawFd)
                .collect();
            super::fanout::join(&fds, seed).map_err(|source| LiveError::Fanout {
                name: options.interface.clone(),
                source,
            })?;
        }
        Ok(captures)
    }

    /// Opens the interface. Promiscuous mode is asked for; when the driver refuses it, the
    /// capture opens without it and [`LiveCapture::promisc_refused`] says why.
    pub fn open(options: &LiveOptions) -> Result<LiveCapture, LiveError> {
        let name = options.interface.as_str();
        let (cap, promisc_refused) = match activate(options, true) {
            Ok(cap) => (cap, None),
            Err(e) if is_permission(&e) => return Err(permission(name, &e)),
            Err(first) => match activate(options, false) {
                // It opens without promiscuous mode: that was what failed.
                Ok(cap) => (cap, Some(pcap_detail(&first))),
                Err(e) if is_permission(&e) => return Err(permission(name, &e)),
                Err(e) => {
                    return Err(LiveError::Pcap {
                        name: name.to_owned(),
                        detail: pcap_detail(&e),
                    });
                }
            },
        };
        let mut cap = cap;
        if let Some(filter) = &options.bpf {
            cap.filter(filter, true).map_err(|e| LiveError::Filter {
                name: name.to_owned(),
                filter: filter.clone(),
                detail: pcap_detail(&e),
            })?;
        }
        let link = LinkType(u32::try_from(cap.get_datalink().0).unwrap_or(u32::MAX));
        let cap = cap.setnonblock().map_err(|e| LiveError::Pcap {
            name: name.to_owned(),
            detail: pcap_detail(&e),
        })?;
        let wait_ms = options.timeout_ms.clamp(1, MAX_WAIT_MS);
        Ok(LiveCapture {
            totals: KernelTotals::default(),
            cap,
            link,
            name: name.to_owned(),
            promisc_refused,
            wait: rustix::event::Timespec {
                tv_sec: 0,
                tv_nsec: i64::from(wait_ms) * 1_000_000,
            },
            dry: true,
        })
    }

    /// The interface's link type.
    pub fn link(&self) -> LinkType {
        self.link
    }

    /// Why promiscuous mode was refused, if it was.
    pub fn promisc_refused(&self) -> Option<&str> {
        self.promisc_refused.as_deref()
    }

    /// The next packet, or `None` when none came within the wait (the ring timeout, at most
    /// [`MAX_WAIT_MS`]).
    pub fn next_packet(&mut self) -> Result<Option<CaptureRecord<'_>>, LiveError> {
        if !self.ready()? {
            return Ok(None);
        }
        match self.cap.next_packet() {
            Ok(p) => {
                let h = p.header;
                // Nanosecond precision was asked for: `tv_usec` holds nanoseconds.
                let secs = u64::try_from(h.ts.tv_sec).unwrap_or(0);
                let nanos = u32::try_from(h.ts.tv_usec).unwrap_or(0).min(999_999_999);
                Ok(Some(CaptureRecord {
                    ts: Timestamp::from_secs_nanos(secs, nanos),
                    link: self.link,
                    data: p.data,
                    orig_len: h.len,
                }))
            }
            // Non-blocking: nothing in the ring now.
            Err(pcap::Error::TimeoutExpired) => {
                self.dry = true;
                Ok(None)
            }
            Err(e) => Err(LiveError::Pcap {
                name: self.name.clone(),
                detail: pcap_detail(&e),
            }),
        }
    }

    /// After the ring ran dry, waits until the descriptor is readable (a block was retired)
    /// or the wait passes. Under load the ring never runs dry and this costs nothing.
    fn ready(&mut self) -> Result<bool, LiveError> {
        use rustix::event::{PollFd, PollFlags, poll};
        if !self.dry {
            return Ok(true);
        }
        let mut fds = [PollFd::new(&self.cap, PollFlags::IN)];
        match poll(&mut fds, Some(&self.wait)) {
            Ok(0) => Ok(false),
            Ok(_) => {
                self.dry = false;
                Ok(true)
            }
            // A signal arrived: let the caller look at its flags.
            Err(rustix::io::Errno::INTR) => Ok(false),
            Err(e) => Err(LiveError::Pcap {
                name: self.name.clone(),
                detail: format!("waiting for packets: {e}"),
            }),
        }
    }

    /// The kernel's counters since the capture started, as 64-bit totals (see
    /// [`KernelTotals`]).
    pub fn stats(&mut self) -> Result<KernelStats, LiveError> {
        let s = self.cap.stats().map_err(|e| LiveError::Pcap {
            name: self.name.clone(),
            detail: pcap_detail(&e),
        })?;
        Ok(self.totals.update([s.received, s.dropped, s.if_dropped]))
    }
}

/// Whether the interface is in promiscuous mode now (`IFF_PROMISC` in sysfs).
pub fn is_promiscuous(name: &str) -> bool {
    let flags = std::fs::read_to_string(Path::new("/sys/class/net").join(name).join("flags"))
        .unwrap_or_default();
    let flags = u32::from_str_radix(flags.trim().trim_start_matches("0x"), 16).unwrap_or(0);
    // IFF_PROMISC = 0x100.
    flags & 0x100 != 0
}

fn activate(
    options: &LiveOptions,
    promisc: bool,
) -> Result<pcap::Capture<pcap::Active>, pcap::Error> {
    let timeout_ms = i32::try_from(options.timeout_ms.max(1)).unwrap_or(i32::MAX);
    pcap::Capture::from_device(options.interface.as_str())?
        .promisc(promisc)
        .snaplen(i32::try_from(options.snaplen).unwrap_or(i32::MAX))
        .buffer_size(i32::try_from(options.buffer_bytes).unwrap_or(i32::MAX))
        .timeout(timeout_ms)
        .immediate_mode(options.immediate)
        .precision(pcap::Precision::Nano)
        .open()
}

fn pcap_detail(e: &pcap::Error) -> String {
    match e {
        pcap::Error::PcapError(s) => s.clone(),
        other => other.to_string(),
    }
}

fn is_permission(e: &pcap::Error) -> bool {
    let d = pcap_detail(e).to_ascii_lowercase();
    d.contains("permission") || d.contains("not permitted")
}

fn permission(name: &str, e: &pcap::Error) -> LiveError {
    LiveError::Permission {
        name: name.to_owned(),
        detail: pcap_detail(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_counters_keep_counting_past_the_32_bit_wrap() {
        let mut t = KernelTotals::default();
        assert_eq!(t.update([10, 1, 0]).received, 10);
        let near = u32::MAX - 5;
        assert_eq!(t.update([near, 2, 0]).received, u64::from(near));
        // The counter wrapped: 6 to reach 2^32, then 20 more.
        let s = t.update([20, 2, 0]);
        assert_eq!(s.received, (1u64 << 32) + 20);
        assert_eq!(s.dropped, 2);
        let s = t.update([u32::MAX, u32::MAX, 7]);
        assert_eq!(s.received, (1u64 << 32) + u64::from(u32::MAX));
        assert_eq!(s.dropped, u64::from(u32::MAX));
        assert_eq!(s.if_dropped, 7);
    }

    #[test]
    fn offloads_are_read_from_ethtool_output() {
        let text = "Features for veth0:\nrx-checksumming: on\ntcp-segmentation-offload: on\n\
                    \ttx-tcp-segmentation: on\ngeneric-segmentation-offload: off\n\
                    generic-receive-offload: on\nlarge-receive-offload: off [fixed]\n";
        assert_eq!(parse_offloads(text), ["TSO", "GRO"]);
        assert!(parse_offloads("generic-receive-offload: off\n").is_empty());
    }

    #[test]
    fn a_missing_interface_is_a_usage_error_naming_the_others() {
        let Err(e) = preflight("mw-no-such-if0") else {
            panic!("an interface that does not exist passed the preflight");
        };
        assert!(e.is_usage());
        let text = e.to_string();
        assert!(text.contains("mw-no-such-if0"), "{text}");
        assert!(text.contains("lo"), "{text}");
        assert!(matches!(
            preflight("../lo"),
            Err(LiveError::NoSuchInterface { .. })
        ));
    }
}
