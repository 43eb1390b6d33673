//! The join of the control plane with the wire, and the events of both sides.
//!
//! [`Correlator::correlate`] runs once per tunnel session decision or record (never per
//! packet): it finds the configured session whose collector, type, tunnel id and source
//! match the tunnel session, within `[control] skew_s` of its lifetime, and returns the
//! `control` object the event carries. A `mirror` no session explains is `unexplained`, and
//! its alert's severity is raised by one. A stream that goes on more than the skew after its
//! session was deleted raises `mirror_config.traffic_after_delete`. At the end,
//! [`Correlator::finish`] reports configured sessions never seen on the wire although their
//! collector is visible (`mirror_config.silent_session`).

use std::net::IpAddr;

use flowtable::key::addr_to_ip;
use flowtable::{Duration, Timestamp};

use super::inventory::{ConfiguredSession, ControlInventory};
use super::judge::{Reason, SIG_SILENT_SESSION, SIG_TRAFFIC_AFTER_DELETE};
use crate::alert::control::{
    ControlMatch, MirrorConfigEvidence, MirrorSessionDetail, MirrorSessionEvent,
};
use crate::alert::{
    AlertEvent, AlertInfo, AlertWriteError, EventHeader, EventSink, Mitre, Rfc3339,
};
use crate::config::Config;
use crate::detect::mirror_stream::MirrorClass;
use crate::tunnel::TunnelSessionRecord;

/// Alerts of the `mirror_config` detector share this category with `mirror_stream`.
const CATEGORY: &str = "Traffic duplication";

/// The control plane's sessions and what the wire showed of them.
#[derive(Debug)]
pub struct Correlator {
    /// Sessions and changes.
    pub inventory: ControlInventory,
    /// A tunnel session matched each configured session.
    pub seen: Vec<bool>,
    /// Collectors seen on the wire (any tunnel session to them).
    seen_collectors: Vec<IpAddr>,
    /// `(session, link)` pairs already alerted for traffic after delete.
    after_delete: Vec<(usize, u64)>,
    skew: Duration,
    silent_after: Duration,
    visible: Vec<ipnet::IpNet>,
    home: Vec<ipnet::IpNet>,
    /// Alerts written by the correlation (after delete, silent).
    pub alerts: u64,
}

impl Correlator {
    /// A correlator over `inventory` with the windows of `config`.
    pub fn new(inventory: ControlInventory, config: &Config) -> Correlator {
        let n = inventory.sessions.len();
        Correlator {
            inventory,
            seen: vec![false; n],
            seen_collectors: Vec::new(),
            after_delete: Vec::new(),
            skew: Duration::from_secs(config.control.skew_s),
            silent_after: Duration::from_secs(config.control.silent_after_s),
            visible: config.control.visible_collectors.clone(),
            home: config.networks.home.clone(),
            alerts: 0,
        }
    }

    /// Live: the inventory rebuilt with new records; what the wire showed of each session
    /// (by provider and id) is kept.
    pub fn replace_inventory(&mut self, inventory: ControlInventory) {
        let seen: Vec<bool> = inventory
            .sessions
            .iter()
            .map(|s| {
                self.inventory
                    .sessions
                    .iter()
                    .zip(&self.seen)
                    .any(|(old, seen)| *seen && old.provider == s.provider && old.id == s.id)
            })
            .collect();
        self.inventory = inventory;
        self.seen = seen;
        // Session indices changed: alerts already written stay, keyed anew.
        self.after_delete.clear();
    }

    /// The `control` object for a tunnel session (at its classification or its record);
    /// writes a `traffic_after_delete` alert when the stream outlived its session. `None`
    /// for a tunnel session that no configured session explains and that is not a mirror.
    pub fn correlate(
        &mut self,
        r: &TunnelSessionRecord,
        sink: &mut EventSink,
    ) -> Result<Option<ControlMatch>, AlertWriteError> {
        let dst = addr_to_ip(r.dst);
        let src = addr_to_ip(r.src);
        if !self.seen_collectors.contains(&dst) && self.seen_collectors.len() < 65_536 {
            self.seen_collectors.push(dst);
        }
        // (session, score, started after the session's delete): a session alive when the
        // stream began wins over one the stream began after; the latter still explains it
        // (and raises `traffic_after_delete`): a mirror that comes back after its delete is
        // the deleted session's stream going on, not a mirror nobody configured.
        let mut best: Option<(usize, usize, bool)> = None;
        for (i, s) in self.inventory.sessions.iter().enumerate() {
            if s.collector_ip != Some(dst)
                || s.kind.is_some_and(|k| k != r.kind)
                || s.tunnel_id.is_some_and(|id| id != r.id)
                || s.source_ip.is_some_and(|ip| ip != src)
            {
                continue;
            }
            let Some(since) = s.since() else { continue };
            if r.last_seen + self.skew < since {
                continue;
            }
            let after_delete = s.deleted.is_some_and(|d| r.first_seen > d + self.skew);
            let score = 1
                + usize::from(s.kind.is_some())
                + usize::from(s.tunnel_id.is_some())
                + usize::from(s.source_ip.is_some());
            let better = match best {
                None => true,
                Some((_, b, b_after)) => (!after_delete, score) > (!b_after, b),
            };
            if better {
                best = Some((i, score, after_delete));
            }
        }
        let Some((i, score, _)) = best else {
            return Ok((r.class == MirrorClass::Mirror).then(|| ControlMatch {
                unexplained: true,
                ..ControlMatch::default()
            }));
        };
        if let Some(seen) = self.seen.get_mut(i) {
            *seen = true;
        }
        let Some(s) = self.inventory.sessions.get(i) else {
            return Ok(None);
        };
        let change = self.inventory.changes.get(s.last_change);
        let change_time = change.map(|c| c.time).or(s.since());
        let mut matched_on = vec!["collector"];
        if s.kind.is_some() {
            matched_on.push("type");
        }
        if s.tunnel_id.is_some() {
            matched_on.push("tunnel_id");
        }
        if s.source_ip.is_some() {
            matched_on.push("source");
        }
        let offset_s = change_time.map(|t| {
            let (a, b) = (r.first_seen.as_nanos() as i128, t.as_nanos() as i128);
            (a - b) as f64 / 1e9
        });
        let m = ControlMatch {
            unexplained: false,
            provider: Some(s.provider.name()),
            session_id: Some(s.id.clone()),
            actor: change.and_then(|c| c.actor.clone()),
            change_time: change_time.map(Rfc3339),
            change_record: s.change_record.clone(),
            approved: Some(s.approved),
            closeness: Some(if score == 4 { "exact" } else { "partial" }),
            matched_on,
            offset_s,
        };
        if let Some(deleted) = s.deleted {
            if r.last_seen > deleted + self.skew && !self.after_delete.contains(&(i, r.link)) {
                self.after_delete.push((i, r.link));
                self.write_after_delete(i, r, deleted, sink)?;
            }
        }
        Ok(Some(m))
    }

    fn write_after_delete(
        &mut self,
        i: usize,
        r: &TunnelSessionRecord,
        deleted: Timestamp,
        sink: &mut EventSink,
    ) -> Result<(), AlertWriteError> {
        let Some(s) = self.inventory.sessions.get(i) else {
            return Ok(());
        };
        // The change that deleted it: the latest change of this session.
        let delete = self
            .inventory
            .changes
            .iter()
            .rev()
            .find(|c| c.session_id.as_deref() == Some(s.id.as_str()) && c.time == deleted);
        let collector_home = s
            .collector_ip
            .map(|ip| self.home.iter().any(|n| n.contains(&ip)));
        let mut ev = session_evidence(s, "traffic_after_delete");
        if let Some(d) = delete {
            ev.operation = &d.operation;
            ev.action = d.action.name();
            ev.actor = d.actor.as_deref();
            ev.actor_ip = d.actor_ip.as_deref();
            ev.user_agent = d.user_agent.as_deref();
            ev.file = &d.location.file;
            ev.unit = d.location.unit;
            ev.index = d.location.index;
        }
        ev.collector_home = collector_home;
        ev.deleted = Some(Rfc3339(deleted));
        ev.last_seen = Some(Rfc3339(r.last_seen));
        ev.link = Some(r.link);
        let (signature_id, signature) = SIG_TRAFFIC_AFTER_DELETE;
        sink.write(&AlertEvent {
            header: EventHeader {
                flow_id: None,
                icmp: None,
                timestamp: Rfc3339(r.last_seen),
                event_type: "alert",
                src_ip: Some(addr_to_ip(r.src)),
                src_port: None,
                dest_ip: Some(addr_to_ip(r.dst)),
                dest_port: None,
                proto: None,
            },
            detector: "mirror_config",
            alert: AlertInfo {
                signature_id,
                signature,
                category: CATEGORY,
                severity: if collector_home == Some(false) { 1 } else { 2 },
            },
            mitre: Mitre::T1020_001,
            tunnel: None,
            evidence: ev,
        })?;
        self.alerts += 1;
        Ok(())
    }

    /// At the end of the packets (`last` = latest packet time): a `silent_session` alert for
    /// every configured session with a visible collector and no stream within
    /// `[control] silent_after_s` of its creation, then a `mirror_session` event per session
    /// with `seen_on_wire`. Returns the alerts written.
    pub fn finish(
        &mut self,
        _first: Timestamp,
        last: Timestamp,
        sink: &mut EventSink,
    ) -> Result<u64, AlertWriteError> {
        let mut written = 0;
        for (i, s) in self.inventory.sessions.iter().enumerate() {
            if self.seen.get(i).copied().unwrap_or(true) {
                continue;
            }
            let (Some(collector), Some(since)) = (s.collector_ip, s.since()) else {
                continue;
            };
            let visible = self.visible.iter().any(|n| n.contains(&collector))
                || self.seen_collectors.contains(&collector);
            let due = since + self.silent_after;
            // The packets must reach the time the stream was due (a capture that starts later
            // saw none of it either), and the session must still exist then.
            if !visible || due > last || s.deleted.is_some_and(|d| d < due) {
                continue;
            }
            let Some(c) = self.inventory.changes.get(s.last_change) else {
                continue;
            };
            let mut ev = session_evidence(s, "silent_session");
            ev.operation = &c.operation;
            ev.action = c.action.name();
            ev.actor = c.actor.as_deref();
            ev.actor_ip = c.actor_ip.as_deref();
            ev.user_agent = c.user_agent.as_deref();
            ev.account = c.account.as_deref();
            ev.region = c.region.as_deref();
            ev.file = &c.location.file;
            ev.unit = c.location.unit;
            ev.index = c.location.index;
            ev.silent_s = Some(last.saturating_since(since).as_nanos() / 1_000_000_000);
            let (signature_id, signature) = SIG_SILENT_SESSION;
            sink.write(&AlertEvent {
                header: EventHeader {
                    flow_id: None,
                    icmp: None,
                    timestamp: Rfc3339(due),
                    event_type: "alert",
                    src_ip: s.source_ip,
                    src_port: None,
                    dest_ip: Some(collector),
                    dest_port: None,
                    proto: None,
                },
                detector: "mirror_config",
                alert: AlertInfo {
                    signature_id,
                    signature,
                    category: CATEGORY,
                    severity: 3,
                },
                mitre: Mitre::T1020_001,
                tunnel: None,
                evidence: ev,
            })?;
            written += 1;
        }
        self.alerts += written;
        write_sessions(&self.inventory, Some(&self.seen), sink)?;
        Ok(written)
    }
}

/// Raises a `mirror_stream` alert's severity by one when no configured session explains it.
pub fn severity(base: u8, control: Option<&ControlMatch>) -> u8 {
    if control.is_some_and(|m| m.unexplained) {
        base.saturating_sub(1).max(1)
    } else {
        base
    }
}

/// Evidence fields every session-level alert shares.
fn session_evidence<'a>(
    s: &'a ConfiguredSession,
    reason: &'static str,
) -> MirrorConfigEvidence<'a> {
    MirrorConfigEvidence {
        provider: s.provider.name(),
        reason,
        reasons: vec![reason],
        session_id: Some(&s.id),
        sources: &s.sources,
        collector: s.collector.as_deref(),
        collector_ip: s.collector_ip,
        kind: s.kind.map(|k| k.name()),
        tunnel_id: s.tunnel_id,
        change_record: s.change_record.as_deref(),
        ..MirrorConfigEvidence::default()
    }
}

/// Writes one `mirror_config` alert per unapproved change. Returns the count.
pub fn write_judgement_alerts(
    inv: &ControlInventory,
    sink: &mut EventSink,
) -> Result<u64, AlertWriteError> {
    write_judgement_alerts_where(inv, sink, |_| true)
}

/// [`write_judgement_alerts`] for the changes `pick` selects (live: the new ones).
pub fn write_judgement_alerts_where(
    inv: &ControlInventory,
    sink: &mut EventSink,
    pick: impl Fn(&super::MirrorChange) -> bool,
) -> Result<u64, AlertWriteError> {
    let mut n = 0;
    for ((c, verdict), resolved) in inv.changes.iter().zip(&inv.verdicts).zip(&inv.resolved) {
        if !pick(c) {
            continue;
        }
        let Some(v) = verdict.as_ref().filter(|v| !v.approved) else {
            continue;
        };
        let Some(first) = v.reasons.first().copied() else {
            continue;
        };
        let (signature_id, signature) = first.signature();
        let ev = MirrorConfigEvidence {
            provider: c.provider.name(),
            operation: &c.operation,
            action: c.action.name(),
            reason: first.name(),
            reasons: v.reasons.iter().map(|r: &Reason| r.name()).collect(),
            session_id: c.session_id.as_deref(),
            object_id: c.object_id.as_deref(),
            actor: c.actor.as_deref(),
            actor_type: c.actor_type.as_deref(),
            actor_ip: c.actor_ip.as_deref(),
            user_agent: c.user_agent.as_deref(),
            access_key: c.access_key.as_deref(),
            session_issuer: c.session_issuer.as_deref(),
            account: c.account.as_deref(),
            region: c.region.as_deref(),
            sources: &c.sources,
            collector: c.collector.as_deref(),
            collector_ip: resolved.collector_ip,
            collector_home: v.collector_home,
            kind: c.kind.map(|k| k.name()),
            tunnel_id: c.tunnel_id,
            change_record: v.change_record.as_deref(),
            error: c.error.as_deref(),
            file: &c.location.file,
            unit: c.location.unit,
            index: c.location.index,
            ..MirrorConfigEvidence::default()
        };
        sink.write(&AlertEvent {
            header: EventHeader {
                flow_id: None,
                icmp: None,
                timestamp: Rfc3339(c.time),
                event_type: "alert",
                src_ip: resolved.source_ip,
                src_port: None,
                dest_ip: resolved.collector_ip,
                dest_port: None,
                proto: None,
            },
            detector: "mirror_config",
            alert: AlertInfo {
                signature_id,
                signature,
                category: CATEGORY,
                severity: v.severity,
            },
            mitre: Mitre::T1020_001,
            tunnel: None,
            evidence: ev,
        })?;
        n += 1;
    }
    Ok(n)
}

/// Writes one `mirror_session` event per configured session (`seen`: replay and live).
pub fn write_sessions(
    inv: &ControlInventory,
    seen: Option<&[bool]>,
    sink: &mut EventSink,
) -> Result<(), AlertWriteError> {
    for (i, s) in inv.sessions.iter().enumerate() {
        let c = inv.changes.get(s.last_change);
        let time = s.since().or(s.deleted).unwrap_or(Timestamp::ZERO);
        sink.write(&MirrorSessionEvent {
            header: EventHeader {
                flow_id: None,
                icmp: None,
                timestamp: Rfc3339(time),
                event_type: "mirror_session",
                src_ip: s.source_ip,
                src_port: None,
                dest_ip: s.collector_ip,
                dest_port: None,
                proto: None,
            },
            mirror_session: MirrorSessionDetail {
                provider: s.provider.name(),
                id: &s.id,
                sources: &s.sources,
                source_ip: s.source_ip,
                collector: s.collector.as_deref(),
                collector_ip: s.collector_ip,
                kind: s.kind.map(|k| k.name()),
                tunnel_id: s.tunnel_id,
                created: s.created.map(Rfc3339),
                modified: s.modified.map(Rfc3339),
                deleted: s.deleted.map(Rfc3339),
                actor: c.and_then(|c| c.actor.as_deref()),
                actor_ip: c.and_then(|c| c.actor_ip.as_deref()),
                user_agent: c.and_then(|c| c.user_agent.as_deref()),
                account: c.and_then(|c| c.account.as_deref()),
                region: c.and_then(|c| c.region.as_deref()),
                approved: s.approved,
                change_record: s.change_record.as_deref(),
                reasons: s.reasons.iter().map(|r| r.name()).collect(),
                state: if s.deleted.is_some() {
                    "deleted"
                } else {
                    "active"
                },
                seen_on_wire: seen.map(|v| v.get(i).copied().unwrap_or(false)),
            },
        })?;
    }
    Ok(())
}

/// The drift report: configured sessions against the approved baseline, as a table.
pub fn drift_table(inv: &ControlInventory, seen: Option<&[bool]>) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<8} {:<44} {:<18} {:<8} {:>8} {:<8} {:<9} {:<5} reasons / change record",
        "provider", "session", "collector", "type", "id", "state", "approved", "wire"
    );
    for (i, s) in inv.sessions.iter().enumerate() {
        let collector = s
            .collector_ip
            .map(|ip| ip.to_string())
            .or_else(|| s.collector.clone())
            .unwrap_or_else(|| "?".to_owned());
        let id: String = if s.id.len() > 44 {
            format!("...{}", &s.id[s.id.len().saturating_sub(41)..])
        } else {
            s.id.clone()
        };
        let wire = match seen {
            Some(v) if v.get(i).copied().unwrap_or(false) => "yes",
            Some(_) => "no",
            None => "-",
        };
        let why = if s.approved {
            s.change_record.clone().unwrap_or_default()
        } else {
            s.reasons
                .iter()
                .map(|r| r.name())
                .collect::<Vec<_>>()
                .join(",")
        };
        let _ = writeln!(
            out,
            "{:<8} {:<44} {:<18} {:<8} {:>8} {:<8} {:<9} {:<5} {}",
            s.provider.name(),
            id,
            collector,
            s.kind.map_or("?", |k| k.name()),
            s.tunnel_id
                .map_or_else(|| "?".to_owned(), |v| v.to_string()),
            if s.deleted.is_some() {
                "deleted"
            } else {
                "active"
            },
            if s.approved { "yes" } else { "NO" },
            wire,
            why
        );
    }
    out
}

/// The pipeline's hook: correlates `r` when a correlator is set (one lock per tunnel session
/// decision or record).
pub fn lookup(
    control: Option<&std::sync::Mutex<Correlator>>,
    r: &TunnelSessionRecord,
    sink: &mut EventSink,
) -> Result<Option<ControlMatch>, AlertWriteError> {
    let Some(c) = control else {
        return Ok(None);
    };
    // A poisoned lock means a panic elsewhere; correlation is then skipped, not the event.
    match c.lock() {
        Ok(mut c) => c.correlate(r, sink),
        Err(_) => Ok(None),
    }
}
