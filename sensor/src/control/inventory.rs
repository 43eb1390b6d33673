//! The configured mirror sessions the control plane describes, built from the changes in
//! time order, with each change's judgement.
//!
//! A session is keyed by provider and id (AWS `tms-`, Azure TAP resource id, GCP resource
//! name, `device/session`). Creates open it, modifies update it, deletes close it; an Azure
//! NIC TAP configuration adds or removes a source. Resource ids resolve to addresses through
//! the AWS targets seen (target → ENI, NLB, GWLB endpoint) and the optional asset file
//! (`[control] assets`: CSV `resource_id,ip[,ip...]` or JSON rows `{"id": ..., "ips": [...]}`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;

use flowtable::Timestamp;
use serde_json::Value;

use super::judge::{self, Baseline, ChangeRecord, Resolved, Verdict};
use super::text::{TableFileError, as_text, read_table};
use super::{Action, MirrorChange, Object, Provider};
use crate::config::{Config, InventoryEntry};
use crate::decode::TunnelKind;

/// Resource ids (lower case) to addresses.
#[derive(Clone, Debug, Default)]
pub struct Assets {
    map: HashMap<String, Vec<IpAddr>>,
}

impl Assets {
    /// Loads an asset file; bad rows are errors, good rows are kept.
    pub fn load(path: &Path) -> (Assets, Vec<TableFileError>) {
        let (name, rows) = match read_table(path) {
            Ok(t) => t,
            Err(e) => return (Assets::default(), vec![e]),
        };
        let mut assets = Assets::default();
        let mut errors = Vec::new();
        for (unit, index, row) in rows {
            let id = ["id", "resource_id", "resourceId", "resource"]
                .iter()
                .find_map(|k| row.get(*k).and_then(as_text));
            let Some(id) = id else {
                errors.push(TableFileError::Row {
                    path: name.clone(),
                    unit,
                    index,
                    problem: "no resource id".to_owned(),
                });
                continue;
            };
            let mut ips = Vec::new();
            let mut bad = None;
            for key in ["ips", "ip", "addresses", "address"] {
                let texts: Vec<String> = match row.get(key) {
                    Some(Value::Array(items)) => items.iter().filter_map(as_text).collect(),
                    Some(v) => as_text(v)
                        .map(|t| t.split([';', ' ']).map(str::to_owned).collect())
                        .unwrap_or_default(),
                    None => Vec::new(),
                };
                for t in texts.iter().map(|t| t.trim()).filter(|t| !t.is_empty()) {
                    match t.parse::<IpAddr>() {
                        Ok(ip) => ips.push(ip),
                        Err(_) => bad = Some(t.to_owned()),
                    }
                }
            }
            if let Some(b) = bad {
                errors.push(TableFileError::Row {
                    path: name.clone(),
                    unit,
                    index,
                    problem: format!("{b:?} is not an IP address"),
                });
                continue;
            }
            assets.insert(&id, ips);
        }
        (assets, errors)
    }

    /// Adds a resource.
    pub fn insert(&mut self, id: &str, ips: Vec<IpAddr>) {
        self.map
            .entry(id.to_ascii_lowercase())
            .or_default()
            .extend(ips);
    }

    /// The first address of a resource.
    pub fn ip(&self, id: &str) -> Option<IpAddr> {
        self.map
            .get(&id.to_ascii_lowercase())
            .and_then(|v| v.first().copied())
    }
}

/// One configured mirror session.
#[derive(Clone, Debug)]
pub struct ConfiguredSession {
    /// Provider or device family.
    pub provider: Provider,
    /// Session id.
    pub id: String,
    /// Mirrored resources.
    pub sources: Vec<String>,
    /// Outer source address on the wire, when known.
    pub source_ip: Option<IpAddr>,
    /// Collector resource (or address as text).
    pub collector: Option<String>,
    /// Collector address, when known.
    pub collector_ip: Option<IpAddr>,
    /// Encapsulation on the wire.
    pub kind: Option<TunnelKind>,
    /// VNI / ERSPAN session id on the wire.
    pub tunnel_id: Option<u32>,
    /// Created.
    pub created: Option<Timestamp>,
    /// Last modified.
    pub modified: Option<Timestamp>,
    /// Deleted.
    pub deleted: Option<Timestamp>,
    /// Index (in [`ControlInventory::changes`]) of the latest create or modify.
    pub last_change: usize,
    /// Approved: every create or modify of it was.
    pub approved: bool,
    /// The change record of its latest approving change.
    pub change_record: Option<String>,
    /// Reasons of its unapproved changes.
    pub reasons: Vec<judge::Reason>,
}

impl ConfiguredSession {
    /// When it came into being (created, else first modified).
    pub fn since(&self) -> Option<Timestamp> {
        self.created.or(self.modified)
    }
}

/// The control plane's view: every change with its judgement, and the sessions.
#[derive(Clone, Debug, Default)]
pub struct ControlInventory {
    /// Every change, in time order.
    pub changes: Vec<MirrorChange>,
    /// The judgement of each judged change (same index as `changes`).
    pub verdicts: Vec<Option<Verdict>>,
    /// Resolved addresses of each change (same index).
    pub resolved: Vec<Resolved>,
    /// Configured sessions.
    pub sessions: Vec<ConfiguredSession>,
}

impl ControlInventory {
    /// Builds the inventory from `changes` (any order) and judges every change.
    pub fn build(
        mut changes: Vec<MirrorChange>,
        assets: &Assets,
        config: &Config,
        records: &[ChangeRecord],
        records_configured: bool,
    ) -> ControlInventory {
        changes.sort_by_key(|c| c.time);
        let baseline = Baseline {
            config,
            records,
            records_configured,
        };
        // AWS targets: target id → the resource behind it.
        let mut targets: HashMap<String, String> = HashMap::new();
        for c in &changes {
            if c.object == Object::Target && c.error.is_none() {
                if let (Some(t), Some(r)) = (&c.object_id, &c.collector) {
                    targets.insert(t.clone(), r.clone());
                }
            }
        }
        let mut inv = ControlInventory::default();
        let mut by_key: HashMap<(Provider, String), usize> = HashMap::new();
        for (i, c) in changes.iter().enumerate() {
            let mut resolved = resolve(c, assets, &targets);
            // A source attached to a TAP is judged by the TAP's collector.
            if c.object == Object::SourceAttachment && resolved.collector_ip.is_none() {
                let tap = c
                    .session_id
                    .as_ref()
                    .and_then(|id| by_key.get(&(c.provider, id.clone())));
                if let Some(s) = tap.and_then(|&i| inv.sessions.get(i)) {
                    resolved.collector_ip = s.collector_ip;
                    resolved.collector_names.extend(s.collector.iter().cloned());
                }
            }
            let verdict = judge::is_judged(c).then(|| judge::judge(c, &resolved, &baseline));
            if c.error.is_none() {
                inv.apply(i, c, &resolved, verdict.as_ref(), &mut by_key);
            }
            inv.resolved.push(resolved);
            inv.verdicts.push(verdict);
        }
        inv.changes = changes;
        inv
    }

    fn apply(
        &mut self,
        i: usize,
        c: &MirrorChange,
        resolved: &Resolved,
        verdict: Option<&Verdict>,
        by_key: &mut HashMap<(Provider, String), usize>,
    ) {
        let session_key = match c.object {
            Object::Session => c.session_id.clone(),
            Object::SourceAttachment => c.session_id.clone().or_else(|| {
                // A delete without a body: the TAP this NIC was attached to.
                self.sessions
                    .iter()
                    .find(|s| {
                        s.provider == c.provider && s.sources.iter().any(|x| c.sources.contains(x))
                    })
                    .map(|s| s.id.clone())
            }),
            Object::Target | Object::Filter => None,
        };
        let Some(id) = session_key else {
            return;
        };
        let key = (c.provider, id.clone());
        let idx = match by_key.get(&key) {
            Some(&idx) => idx,
            None => {
                if c.action == Action::Delete && c.object == Object::SourceAttachment {
                    return;
                }
                self.sessions.push(ConfiguredSession {
                    provider: c.provider,
                    id: id.clone(),
                    sources: Vec::new(),
                    source_ip: None,
                    collector: None,
                    collector_ip: None,
                    kind: None,
                    tunnel_id: None,
                    created: None,
                    modified: None,
                    deleted: None,
                    last_change: i,
                    approved: true,
                    change_record: None,
                    reasons: Vec::new(),
                });
                by_key.insert(key, self.sessions.len() - 1);
                self.sessions.len() - 1
            }
        };
        let Some(s) = self.sessions.get_mut(idx) else {
            return;
        };
        match (c.object, c.action) {
            (Object::SourceAttachment, Action::Delete) => {
                s.sources.retain(|x| !c.sources.contains(x));
                s.modified = Some(c.time);
                return;
            }
            (Object::SourceAttachment, _) => {
                for src in &c.sources {
                    if !s.sources.contains(src) {
                        s.sources.push(src.clone());
                    }
                }
                if s.source_ip.is_none() {
                    s.source_ip = resolved.source_ip;
                }
                s.modified = Some(c.time);
            }
            (_, Action::Delete) => {
                s.deleted = Some(c.time);
                return;
            }
            (_, action) => {
                let new = s.created.is_none() && s.modified.is_none() && s.deleted.is_none();
                if (action == Action::Create || new) && s.created.is_none() {
                    s.created = Some(c.time);
                } else {
                    s.modified = Some(c.time);
                }
                s.deleted = None;
                if !c.sources.is_empty() {
                    s.sources = c.sources.clone();
                }
                s.source_ip = resolved.source_ip.or(s.source_ip);
                s.collector = c.collector.clone().or(s.collector.take());
                s.collector_ip = resolved.collector_ip.or(s.collector_ip);
                s.kind = c.kind.or(s.kind);
                s.tunnel_id = c.tunnel_id.or(s.tunnel_id);
                s.last_change = i;
            }
        }
        if let Some(v) = verdict {
            if v.approved {
                if v.change_record.is_some() {
                    s.change_record = v.change_record.clone();
                }
            } else {
                s.approved = false;
                for r in &v.reasons {
                    if !s.reasons.contains(r) {
                        s.reasons.push(*r);
                    }
                }
            }
        }
    }

    /// `[[mirror.inventory]]` entries that approve, on the wire, the streams of approved
    /// configured sessions (collector, and source, type and id where known): a mirror the
    /// control plane approved through a change record is approved on the wire too.
    pub fn approved_wire_entries(&self) -> Vec<InventoryEntry> {
        self.sessions
            .iter()
            .filter(|s| s.approved)
            .filter_map(|s| {
                let collector = s.collector_ip?;
                Some(InventoryEntry {
                    collector: ipnet::IpNet::from(collector),
                    sources: s.source_ip.map(ipnet::IpNet::from).into_iter().collect(),
                    types: s.kind.map(|k| k.name().to_owned()).into_iter().collect(),
                    tunnel_ids: s.tunnel_id.into_iter().collect(),
                    actors: Vec::new(),
                    source_resources: Vec::new(),
                    collector_resources: Vec::new(),
                    change_records: Vec::new(),
                })
            })
            .collect()
    }
}

/// Addresses and names of a change's collector and source.
fn resolve(c: &MirrorChange, assets: &Assets, targets: &HashMap<String, String>) -> Resolved {
    let mut names = Vec::new();
    if let Some(col) = &c.collector {
        names.push(col.clone());
        if let Some(behind) = targets.get(col) {
            names.push(behind.clone());
        }
    }
    let collector_ip = c
        .collector_ip
        .or_else(|| names.iter().find_map(|n| assets.ip(n)))
        .or_else(|| names.iter().find_map(|n| n.parse().ok()));
    let source_ip = c
        .source_ip
        .or_else(|| c.sources.iter().find_map(|s| assets.ip(s)));
    Resolved {
        collector_ip,
        source_ip,
        collector_names: names,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asset_rows_in_csv_and_json() {
        let dir = std::env::temp_dir().join(format!("mw-assets-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let csv = dir.join("assets.csv");
        std::fs::write(
            &csv,
            "resource_id,ip\neni-0a1,10.10.0.11\nENI-0B2,10.10.0.12,2001:db8::12\nbad,not-an-ip\n",
        )
        .unwrap();
        let (a, errors) = Assets::load(&csv);
        assert_eq!(a.ip("eni-0a1"), Some("10.10.0.11".parse().unwrap()));
        assert_eq!(a.ip("eni-0b2"), Some("10.10.0.12".parse().unwrap()));
        assert_eq!(errors.len(), 1);
        assert!(errors[0].to_string().contains("line 4"), "{}", errors[0]);
        let json = dir.join("assets.json");
        std::fs::write(&json, r#"[{"id":"tmt-1","ips":["10.9.0.10"]}]"#).unwrap();
        let (a, errors) = Assets::load(&json);
        assert!(errors.is_empty());
        assert_eq!(a.ip("TMT-1"), Some("10.9.0.10".parse().unwrap()));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
