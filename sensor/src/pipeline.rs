//! The packet pipeline: one capture thread decodes and dispatches, N workers own flow shards.
//!
//! The capture thread (the caller of [`Pipeline::push`]) decodes each frame, accounts tunnel
//! sessions, builds the canonical [`FlowKey`] and sends a small [`PacketMeta`] in a batch to
//! the worker chosen by a seeded symmetric hash of the innermost flow, so both directions of
//! a conversation (and a mirrored copy of it) reach the same worker. Each worker owns its
//! [`FlowTable`] shard: no shared writes, no locks on the hot path. Batches are recycled
//! through a return channel, so the steady state allocates nothing. Time is packet time:
//! every batch carries the capture thread's clock, and workers expire flows by it.

use std::hash::BuildHasher;
use std::net::IpAddr;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};
use flowtable::key::addr_to_ip;
use flowtable::{
    Direction, Duration, ExpireReason, FlowEntry, FlowKey, FlowTable, FlowTableConfig,
    FlowTableStats, IpProto, Timestamp,
};

use crate::alert::{
    AlertEvent, AlertInfo, AlertWriteError, Classification, ConversationRef, EventHeader,
    EventSink, FlowDetail, FlowEvent, HexByte, MirrorEvidence, Mitre, ProtoName, Rfc3339,
    TunnelDetail, TunnelEvent, TunnelRef,
};
use crate::capture::CaptureRecord;
use crate::config::Config;
use crate::decode::{DecodeCounters, Decoder, InnerPacket, TunnelKind};
use crate::detect::mirror_stream::{
    self, Approval, CollectorInventory, CopyWindow, DecidePolicy, MirrorClass,
};
use crate::tunnel::{InnerObservation, TunnelSessionRecord, TunnelTable, TunnelTableStats};

/// Tunnel records kept for the end-of-run inventory report.
pub const INVENTORY_ROWS_CAP: usize = 10_000;

/// Bytes of transport payload that go into a packet fingerprint.
const FINGERPRINT_PAYLOAD_BYTES: usize = 64;

/// What the capture thread tells a worker about one packet.
#[derive(Clone, Copy, Debug)]
pub struct PacketMeta {
    /// Packet time.
    pub ts: Timestamp,
    /// Canonical innermost flow.
    pub key: FlowKey,
    /// Direction within `key`.
    pub dir: Direction,
    /// IP length of the innermost packet.
    pub ip_len: u32,
    /// TCP flags (0 when not TCP).
    pub tcp_flags: u8,
    /// Innermost enclosing tunnel.
    pub tunnel: Option<FlowTunnel>,
}

/// The tunnel a flow travels in, as kept per flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowTunnel {
    /// Encapsulation.
    pub kind: TunnelKind,
    /// VNI / key / session ID.
    pub id: u32,
    /// Nesting level of that tunnel.
    pub depth: u8,
    /// Link id (also the key's tunnel context).
    pub link: u64,
}

/// Per-flow state the sensor keeps beside the generic counters.
#[derive(Clone, Copy, Debug, Default)]
pub struct FlowExt {
    /// Innermost tunnel, if encapsulated.
    pub tunnel: Option<FlowTunnel>,
}

/// A batch of packets for one worker.
struct Batch {
    now: Timestamp,
    packets: Vec<PacketMeta>,
}

enum WorkerMsg {
    Batch(Batch),
    Finish,
}

/// What a worker reports when it finishes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WorkerReport {
    /// Packets processed.
    pub packets: u64,
    /// Flow table counters.
    pub table: FlowTableStats,
    /// Flow records written.
    pub flow_events: u64,
    /// Bytes one tracked flow costs.
    pub bytes_per_flow: usize,
}

/// Counters of the capture thread.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CaptureCounters {
    /// Frames read.
    pub packets: u64,
    /// Bytes on the wire of those frames.
    pub bytes: u64,
    /// Frames without an IP packet (ARP, STP, undecodable).
    pub non_ip: u64,
    /// Frames inside at least one tunnel.
    pub encapsulated: u64,
    /// Decode errors and events.
    pub decode: DecodeCounters,
}

/// Everything a finished run counted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PipelineReport {
    /// Capture thread counters.
    pub capture: CaptureCounters,
    /// Tunnel table counters.
    pub tunnels: TunnelTableStats,
    /// Tunnel records written.
    pub tunnel_events: u64,
    /// `mirror_stream` alerts written.
    pub mirror_alerts: u64,
    /// Tunnel session records for the inventory report (at most [`INVENTORY_ROWS_CAP`]).
    pub tunnel_records: Vec<TunnelSessionRecord>,
    /// Tunnel sessions beyond the inventory cap.
    pub tunnel_records_dropped: u64,
    /// Per-worker reports.
    pub workers: Vec<WorkerReport>,
    /// Packet time of the first and last packet.
    pub first_ts: Option<Timestamp>,
    /// Latest packet time.
    pub last_ts: Timestamp,
}

impl PipelineReport {
    /// Flow table counters summed over workers.
    pub fn flows(&self) -> FlowTableStats {
        let mut sum = FlowTableStats::default();
        for w in &self.workers {
            let t = w.table;
            sum.inserted += t.inserted;
            sum.expired_idle += t.expired_idle;
            sum.expired_active += t.expired_active;
            sum.evicted += t.evicted;
            sum.flushed += t.flushed;
            sum.peak_len += t.peak_len;
        }
        sum
    }
}

/// Options of a pipeline beyond the configuration file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PipelineOptions {
    /// Worker count (0 = from the configuration).
    pub workers: usize,
    /// Write `flow` records.
    pub flow_records: bool,
}

/// The running pipeline. The thread that owns it is the capture thread.
pub struct Pipeline {
    decoder: Decoder,
    tunnels: TunnelTable,
    copies: CopyWindow,
    hasher: foldhash::quality::SeedableRandomState,
    senders: Vec<Sender<WorkerMsg>>,
    recycled: Receiver<Vec<PacketMeta>>,
    pending: Vec<Vec<PacketMeta>>,
    batch_size: usize,
    threads: Vec<JoinHandle<Result<WorkerReport, AlertWriteError>>>,
    sink: EventSink,
    counters: CaptureCounters,
    tunnel_events: u64,
    mirror_alerts: u64,
    tunnel_records: Vec<TunnelSessionRecord>,
    tunnel_records_dropped: u64,
    clock: Timestamp,
    first_ts: Option<Timestamp>,
    last_tick_s: u64,
}

impl Pipeline {
    /// Starts `workers` threads writing through sinks made by `new_sink`.
    pub fn start(
        config: &Config,
        options: PipelineOptions,
        mut new_sink: impl FnMut() -> EventSink,
    ) -> std::io::Result<Pipeline> {
        let n_workers = if options.workers > 0 {
            options.workers
        } else {
            config.worker_count()
        };
        let batch_size = config.pipeline.batch_size;
        let queue = config.pipeline.queue_batches;
        // Enough recycled batches for every queue slot plus the ones being filled or worked on.
        let (recycle_tx, recycled) = crossbeam_channel::bounded(n_workers * (queue + 2));
        let table_config = FlowTableConfig {
            capacity: config.flows.capacity.div_ceil(n_workers).max(1),
            idle_timeout: config.flow_idle_timeout(),
            active_timeout: config.flow_active_timeout(),
        };
        let mut senders = Vec::with_capacity(n_workers);
        let mut threads = Vec::with_capacity(n_workers);
        for i in 0..n_workers {
            let (tx, rx) = crossbeam_channel::bounded(queue);
            let worker = Worker {
                table: FlowTable::new(table_config, seed_from_os()),
                sink: new_sink(),
                flow_records: options.flow_records,
                recycle: recycle_tx.clone(),
                report: WorkerReport::default(),
            };
            let thread = std::thread::Builder::new()
                .name(format!("mw-worker-{i}"))
                .spawn(move || worker.run(&rx))?;
            senders.push(tx);
            threads.push(thread);
        }
        Ok(Pipeline {
            decoder: Decoder::new(config.decode.clone()),
            tunnels: TunnelTable::new(
                config.tunnels.capacity,
                Duration::from_secs(config.tunnels.idle_timeout_s),
                config.tunnels.max_inner_flows,
                // As many inner-flow entries as the flow table holds flows, over all sessions.
                config.flows.capacity,
                CollectorInventory::from_config(config),
                DecidePolicy::from_config(config),
            ),
            copies: CopyWindow::new(Duration::from_millis(config.mirror.duplicate_window_ms)),
            hasher: foldhash::quality::SeedableRandomState::random(),
            pending: (0..n_workers)
                .map(|_| Vec::with_capacity(batch_size))
                .collect(),
            senders,
            recycled,
            batch_size,
            threads,
            sink: new_sink(),
            counters: CaptureCounters::default(),
            tunnel_events: 0,
            mirror_alerts: 0,
            tunnel_records: Vec::new(),
            tunnel_records_dropped: 0,
            clock: Timestamp::ZERO,
            first_ts: None,
            last_tick_s: 0,
        })
    }

    /// Processes one captured frame.
    pub fn push(&mut self, rec: &CaptureRecord<'_>) -> Result<(), AlertWriteError> {
        let c = &mut self.counters;
        let frame_bytes = rec.orig_len.max(rec.data.len() as u32);
        c.packets += 1;
        c.bytes += u64::from(frame_bytes);
        if rec.ts > self.clock {
            self.clock = rec.ts;
        }
        if self.first_ts.is_none() {
            self.first_ts = Some(rec.ts);
        }
        let decoded = self
            .decoder
            .decode(rec.link, rec.data, rec.orig_len, &mut c.decode);
        if !decoded.tunnels.is_empty() {
            c.encapsulated += 1;
        }
        let inner = decoded.inner;
        // Canonical inner key without tunnel context: the dispatch hash and the distinct
        // inner-flow identity, equal for a native flow and its mirrored copies.
        let bare = inner.map(|p| FlowKey::new(p.src, p.src_port, p.dst, p.dst_port, p.proto, 0));
        let inner_hash = bare.map(|(k, _)| self.hasher.hash_one(k));
        // A fingerprint of the innermost packet, equal for a native packet and its mirrored
        // copy: it finds inner frames that duplicate traffic also seen on the capture.
        let fingerprint = match (inner.as_ref(), bare) {
            (Some(p), Some((k, dir))) => Some(fingerprint(&self.hasher, &k, dir, p)),
            _ => None,
        };
        let encapsulated = decoded.inner_depth > 0;
        if let (Some(fp), false) = (fingerprint, encapsulated) {
            if let Some(link) = self.copies.native(fp, rec.ts) {
                self.tunnels.note_duplicate(link);
            }
        }
        // The copy is recorded under its link below; here only whether it matches.
        let duplicate =
            encapsulated && fingerprint.is_some_and(|fp| self.copies.tunneled(fp, rec.ts, 0));
        let observation = match (bare, inner_hash) {
            (Some((key, dir)), Some(hash)) => Some(InnerObservation {
                key,
                dir,
                hash,
                duplicate,
            }),
            _ => None,
        };
        let mut parent = 0u64;
        let mut flow_tunnel = None;
        for (depth, layer) in decoded.tunnels.iter().enumerate() {
            let inside = depth < decoded.inner_depth;
            let innermost = depth + 1 == decoded.inner_depth;
            let depth = u8::try_from(depth).unwrap_or(u8::MAX);
            let link = self.tunnels.observe(
                parent,
                layer,
                depth,
                rec.ts,
                frame_bytes,
                observation.as_ref().filter(|_| inside),
                innermost,
            );
            if inside {
                flow_tunnel = Some(FlowTunnel {
                    kind: layer.kind,
                    id: layer.id,
                    depth,
                    link,
                });
            }
            parent = link;
        }
        if let (Some(fp), Some(t), false) = (fingerprint, flow_tunnel, duplicate) {
            self.copies.set_tunneled_link(fp, t.link);
        }
        // Any tunnel layer may have been classified, also one whose inner frame did not decode.
        if !decoded.tunnels.is_empty() {
            self.write_pending_alerts()?;
        }
        let (Some(p), Some((bare_key, dir)), Some(hash)) = (inner, bare, inner_hash) else {
            self.counters.non_ip += 1;
            return self.tick();
        };
        let key = FlowKey {
            tunnel: flow_tunnel.map_or(0, |t| t.link),
            ..bare_key
        };
        let meta = PacketMeta {
            ts: rec.ts,
            key,
            dir,
            ip_len: p.ip_len,
            tcp_flags: p.tcp.map_or(0, |t| t.flags),
            tunnel: flow_tunnel,
        };
        let worker = pick_worker(hash, self.senders.len());
        if let Some(batch) = self.pending.get_mut(worker) {
            batch.push(meta);
            if batch.len() >= self.batch_size {
                self.send(worker)?;
            }
        }
        self.tick()
    }

    /// Once per second of packet time: flush partial batches so idle workers see the clock,
    /// and expire tunnel sessions.
    fn tick(&mut self) -> Result<(), AlertWriteError> {
        let now_s = self.clock.as_nanos() / 1_000_000_000;
        if now_s == self.last_tick_s {
            return Ok(());
        }
        self.last_tick_s = now_s;
        for w in 0..self.senders.len() {
            self.send(w)?;
        }
        self.end_tunnels(false)
    }

    /// Writes the alerts of sessions classified since the last call.
    fn write_pending_alerts(&mut self) -> Result<(), AlertWriteError> {
        let mut result = Ok(());
        let (sink, alerts) = (&mut self.sink, &mut self.mirror_alerts);
        self.tunnels.take_alerts(&mut |r| {
            if result.is_ok() {
                result = write_mirror_alert(sink, &r);
                *alerts += 1;
            }
        });
        result
    }

    /// Ends idle tunnel sessions (or all of them at the end): alerts first, then records.
    fn end_tunnels(&mut self, all: bool) -> Result<(), AlertWriteError> {
        let mut ended = Vec::new();
        let mut alerts = Vec::new();
        let mut on_alert = |r: TunnelSessionRecord| alerts.push(r);
        let mut on_record = |r: TunnelSessionRecord| ended.push(r);
        if all {
            self.tunnels
                .drain(self.clock, &mut on_alert, &mut on_record);
        } else {
            self.tunnels
                .expire(self.clock, &mut on_alert, &mut on_record);
        }
        for r in &alerts {
            write_mirror_alert(&mut self.sink, r)?;
            self.mirror_alerts += 1;
        }
        let reason = if all { "shutdown" } else { "timeout" };
        for r in ended {
            write_tunnel(&mut self.sink, &r, reason)?;
            self.tunnel_events += 1;
            if self.tunnel_records.len() < INVENTORY_ROWS_CAP {
                self.tunnel_records.push(r);
            } else {
                self.tunnel_records_dropped += 1;
            }
        }
        Ok(())
    }

    /// Hands worker `w` its pending batch (also when empty: it carries the clock).
    fn send(&mut self, w: usize) -> Result<(), AlertWriteError> {
        let fresh = match self.recycled.try_recv() {
            Ok(mut v) => {
                v.clear();
                v
            }
            Err(_) => Vec::with_capacity(self.batch_size),
        };
        let Some(slot) = self.pending.get_mut(w) else {
            return Ok(());
        };
        let packets = std::mem::replace(slot, fresh);
        let batch = Batch {
            now: self.clock,
            packets,
        };
        match self.senders.get(w) {
            Some(tx) => tx
                .send(WorkerMsg::Batch(batch))
                .map_err(|_| AlertWriteError::WriterGone),
            None => Ok(()),
        }
    }

    /// Flushes everything, stops the workers and reports. Every flow and tunnel session
    /// still open is written.
    pub fn finish(mut self) -> Result<PipelineReport, AlertWriteError> {
        for w in 0..self.senders.len() {
            self.send(w)?;
        }
        for tx in &self.senders {
            let _ = tx.send(WorkerMsg::Finish);
        }
        self.write_pending_alerts()?;
        self.end_tunnels(true)?;
        self.sink.flush()?;
        let mut workers = Vec::with_capacity(self.threads.len());
        let mut first_error = None;
        for t in self.threads.drain(..) {
            match t.join() {
                Ok(Ok(report)) => workers.push(report),
                Ok(Err(e)) => {
                    first_error.get_or_insert(e);
                }
                Err(_) => {
                    first_error.get_or_insert(AlertWriteError::WriterGone);
                }
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        Ok(PipelineReport {
            capture: std::mem::take(&mut self.counters),
            tunnels: self.tunnels.stats(),
            tunnel_events: self.tunnel_events,
            mirror_alerts: self.mirror_alerts,
            tunnel_records: std::mem::take(&mut self.tunnel_records),
            tunnel_records_dropped: self.tunnel_records_dropped,
            workers,
            first_ts: self.first_ts,
            last_ts: self.clock,
        })
    }

    /// Capture-thread counters so far.
    pub fn counters(&self) -> &CaptureCounters {
        &self.counters
    }
}

/// Maps a 64-bit hash to a worker without a division (Lemire's multiply-shift).
#[inline]
fn pick_worker(hash: u64, n: usize) -> usize {
    ((u128::from(hash) * n as u128) >> 64) as usize
}

/// A per-process random seed for flow-table hashers (the keys come from the network).
fn seed_from_os() -> u64 {
    foldhash::quality::RandomState::default().hash_one(0u64)
}

fn write_tunnel(
    sink: &mut EventSink,
    r: &TunnelSessionRecord,
    reason: &'static str,
) -> Result<(), AlertWriteError> {
    let proto = tunnel_proto(r);
    sink.write(&TunnelEvent {
        header: EventHeader {
            timestamp: Rfc3339(r.first_seen),
            event_type: "tunnel",
            src_ip: Some(addr_to_ip(r.src)),
            src_port: Some(r.src_port),
            dest_ip: Some(addr_to_ip(r.dst)),
            dest_port: Some(r.dst_port),
            proto: Some(ProtoName(proto)),
        },
        tunnel: TunnelDetail {
            reference: TunnelRef {
                kind: r.kind.name(),
                id: r.id,
                depth: r.depth,
                link: r.link,
            },
            nonstandard_port: r.nonstandard_port,
            truncated_packets: r.truncated_packets,
        },
        packets: r.packets,
        bytes: r.bytes,
        first_seen: Rfc3339(r.first_seen),
        last_seen: Rfc3339(r.last_seen),
        inner_flows: r.inner_flows,
        inner_flows_capped: r.inner_flows_capped,
        reason,
        classification: classification(r),
        approved: r.approval == Approval::Approved,
        top_conversations: conversations(r),
    })
}

fn tunnel_proto(r: &TunnelSessionRecord) -> IpProto {
    match r.kind {
        TunnelKind::Vxlan | TunnelKind::Geneve => IpProto::UDP,
        _ if r.dst_port != 0 => IpProto::UDP,
        _ => IpProto::GRE,
    }
}

fn classification(r: &TunnelSessionRecord) -> Classification {
    let erspan3 = r.kind == TunnelKind::Erspan3;
    Classification {
        class: r.class.name(),
        reason: r.reason.name(),
        one_way: r.one_way,
        duplicates_matched: r.duplicates,
        erspan_ingress: erspan3.then_some(r.erspan_ingress),
        erspan_egress: erspan3.then_some(r.erspan_egress),
    }
}

fn conversations(r: &TunnelSessionRecord) -> Vec<ConversationRef> {
    r.top_conversations
        .iter()
        .map(|(k, packets)| ConversationRef {
            src_ip: k.lo_ip(),
            src_port: k.lo_port,
            dest_ip: k.hi_ip(),
            dest_port: k.hi_port,
            proto: ProtoName(k.proto),
            packets: *packets,
        })
        .collect()
}

/// Writes the `mirror_stream` alert of a session classified `mirror` with an unapproved
/// collector.
fn write_mirror_alert(
    sink: &mut EventSink,
    r: &TunnelSessionRecord,
) -> Result<(), AlertWriteError> {
    debug_assert_eq!(r.class, MirrorClass::Mirror);
    let collector = addr_to_ip(r.dst);
    let collector_home = r.collector_home;
    let (signature_id, signature) = mirror_stream::signature(r.approval);
    let finding = signature.trim_start_matches("mirror.");
    sink.write(&AlertEvent {
        header: EventHeader {
            timestamp: Rfc3339(r.last_seen),
            event_type: "alert",
            src_ip: Some(addr_to_ip(r.src)),
            src_port: Some(r.src_port),
            dest_ip: Some(collector),
            dest_port: Some(r.dst_port),
            proto: Some(ProtoName(tunnel_proto(r))),
        },
        detector: "mirror_stream",
        alert: AlertInfo {
            signature_id,
            signature,
            category: "Traffic duplication",
            severity: mirror_stream::severity(collector_home),
        },
        mitre: Mitre::T1020_001,
        tunnel: Some(TunnelRef {
            kind: r.kind.name(),
            id: r.id,
            depth: r.depth,
            link: r.link,
        }),
        evidence: MirrorEvidence {
            classification: classification(r),
            finding,
            collector_home,
            nonstandard_port: r.nonstandard_port,
            packets: r.packets,
            bytes: r.bytes,
            first_seen: Rfc3339(r.first_seen),
            inner_flows: r.inner_flows,
            inner_hosts: crate::tunnel::inner_hosts(r).to_vec(),
            top_conversations: conversations(r),
            truncated_packets: r.truncated_packets,
        },
    })
}

/// Hash of what a mirrored copy shares with its original: the inner flow and direction, IP
/// identification and length, TCP sequence, acknowledgement and flags, and the start of the
/// payload.
fn fingerprint(
    hasher: &foldhash::quality::SeedableRandomState,
    key: &FlowKey,
    dir: Direction,
    p: &InnerPacket<'_>,
) -> u64 {
    let payload = p
        .l4_payload
        .get(..FINGERPRINT_PAYLOAD_BYTES)
        .unwrap_or(p.l4_payload);
    // Flags matter: an ACK and the FIN after it can share everything else (IPv6 has no IP id).
    let (seq, ack, flags) = p.tcp.map_or((0, 0, 0), |t| (t.seq, t.ack, t.flags));
    hasher.hash_one((
        key,
        dir.index(),
        p.ip_id,
        p.ip_len,
        seq,
        ack,
        flags,
        payload,
    ))
}

/// One worker: a flow table shard and a sink.
struct Worker {
    table: FlowTable<FlowExt>,
    sink: EventSink,
    flow_records: bool,
    recycle: Sender<Vec<PacketMeta>>,
    report: WorkerReport,
}

impl Worker {
    fn run(mut self, rx: &Receiver<WorkerMsg>) -> Result<WorkerReport, AlertWriteError> {
        let mut failure = None;
        while let Ok(msg) = rx.recv() {
            match msg {
                WorkerMsg::Batch(batch) => {
                    if let Err(e) = self.process(&batch) {
                        failure = Some(e);
                        break;
                    }
                    // The capture thread may have dropped the return channel at shutdown.
                    let _ = self.recycle.try_send(batch.packets);
                }
                WorkerMsg::Finish => break,
            }
        }
        if let Some(e) = failure {
            return Err(e);
        }
        let mut result = Ok(());
        let sink = &mut self.sink;
        let flow_records = self.flow_records;
        let mut written = 0u64;
        self.table.drain(&mut |entry, reason| {
            if flow_records && result.is_ok() {
                result = write_flow(sink, entry, reason);
                written += 1;
            }
        });
        result?;
        self.sink.flush()?;
        self.report.flow_events += written;
        self.report.table = self.table.stats();
        self.report.bytes_per_flow = FlowTable::<FlowExt>::approx_bytes_per_flow();
        Ok(self.report)
    }

    fn process(&mut self, batch: &Batch) -> Result<(), AlertWriteError> {
        let mut result = Ok(());
        let mut written = 0u64;
        let sink = &mut self.sink;
        let flow_records = self.flow_records;
        let mut on_expire = |entry: &FlowEntry<FlowExt>, reason: ExpireReason| {
            if flow_records && result.is_ok() {
                result = write_flow(sink, entry, reason);
                written += 1;
            }
        };
        for p in &batch.packets {
            let (entry, new) = self.table.touch(&p.key, p.dir, p.ts, &mut on_expire);
            if new {
                entry.ext.tunnel = p.tunnel;
            }
            entry.counters.record(p.dir, p.ts, p.ip_len, p.tcp_flags);
        }
        self.table.expire(batch.now, &mut on_expire);
        self.report.packets += batch.packets.len() as u64;
        self.report.flow_events += written;
        result
    }
}

fn write_flow(
    sink: &mut EventSink,
    entry: &FlowEntry<FlowExt>,
    reason: ExpireReason,
) -> Result<(), AlertWriteError> {
    let key = &entry.key;
    let first = entry.first_dir;
    let (src, sport, dst, dport): (IpAddr, u16, IpAddr, u16) = key.endpoints(first);
    let c = &entry.counters;
    let (ts, tc) = (first.index(), first.reverse().index());
    let is_tcp = key.proto == IpProto::TCP;
    sink.write(&FlowEvent {
        header: EventHeader {
            timestamp: Rfc3339(c.first_seen),
            event_type: "flow",
            src_ip: Some(src),
            src_port: Some(sport),
            dest_ip: Some(dst),
            dest_port: Some(dport),
            proto: Some(ProtoName(key.proto)),
        },
        flow: FlowDetail {
            pkts_toserver: c.packets[ts],
            pkts_toclient: c.packets[tc],
            bytes_toserver: c.bytes[ts],
            bytes_toclient: c.bytes[tc],
            start: Rfc3339(c.first_seen),
            end: Rfc3339(c.last_seen),
            reason: match reason {
                ExpireReason::Idle => "timeout",
                ExpireReason::Active => "active",
                ExpireReason::Evicted => "evicted",
                ExpireReason::Flushed => "shutdown",
            },
            tcp_flags_ts: is_tcp.then_some(HexByte(c.tcp_flags[ts])),
            tcp_flags_tc: is_tcp.then_some(HexByte(c.tcp_flags[tc])),
        },
        tunnel: entry.ext.tunnel.map(|t| TunnelRef {
            kind: t.kind.name(),
            id: t.id,
            depth: t.depth,
            link: t.link,
        }),
    })
}
