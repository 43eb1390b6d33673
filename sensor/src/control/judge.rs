//! Judgement of a mirror change against the approved baseline: `[mirror]` (approved
//! collectors, and inventory entries with their control-plane side: actors, source
//! resources, collector resources, change records) and the change-record file.
//!
//! A create or modify is approved when an inventory entry covering its collector allows its
//! actor and source (and, when the entry asks for one, a listed change record covers it), or
//! when a change record covers it within its window (ticket, actor, resource, window). Any
//! other create or modify, and every failed attempt, is an alert of detector `mirror_config`
//! with its reasons; severity 1 when the collector is outside `[networks] home`.

use std::net::IpAddr;
use std::path::Path;

use flowtable::Timestamp;
use serde_json::Value;

use super::text::{TableFileError, as_text, glob_match, parse_rfc3339, read_table};
use super::{Action, MirrorChange, Object};
use crate::config::Config;

/// Why a change is not approved (stable names, in events).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reason {
    /// The attempt failed (the provider refused it).
    FailedAttempt,
    /// The collector is in no approved list and no change record covers it.
    UnapprovedCollector,
    /// The collector is approved, but not for this actor.
    UnapprovedActor,
    /// The collector is approved, but not for this mirrored resource.
    UnapprovedSource,
    /// A change record names this change, but it was made outside the record's window.
    OutsideChangeWindow,
    /// No change record covers the change (a change-record file is configured, or the
    /// inventory entry asks for one).
    NoChangeRecord,
    /// The collector is outside `[networks] home`: a copy of traffic leaves the
    /// organization.
    CollectorOutsideHome,
}

impl Reason {
    /// Event name.
    pub const fn name(self) -> &'static str {
        match self {
            Reason::FailedAttempt => "failed_attempt",
            Reason::UnapprovedCollector => "unapproved_collector",
            Reason::UnapprovedActor => "unapproved_actor",
            Reason::UnapprovedSource => "unapproved_source",
            Reason::OutsideChangeWindow => "outside_change_window",
            Reason::NoChangeRecord => "no_change_record",
            Reason::CollectorOutsideHome => "collector_outside_home",
        }
    }

    /// Signature id and name of an alert whose first reason is this one.
    pub const fn signature(self) -> (u32, &'static str) {
        match self {
            Reason::FailedAttempt => (1_000_101, "mirror_config.failed_attempt"),
            Reason::UnapprovedCollector => (1_000_102, "mirror_config.unapproved_collector"),
            Reason::UnapprovedActor => (1_000_103, "mirror_config.unapproved_actor"),
            Reason::OutsideChangeWindow => (1_000_104, "mirror_config.outside_change_window"),
            Reason::NoChangeRecord => (1_000_105, "mirror_config.no_change_record"),
            Reason::CollectorOutsideHome => (1_000_106, "mirror_config.collector_outside_home"),
            Reason::UnapprovedSource => (1_000_109, "mirror_config.unapproved_source"),
        }
    }
}

/// Signature of traffic that goes on after its session was deleted.
pub const SIG_TRAFFIC_AFTER_DELETE: (u32, &str) = (1_000_107, "mirror_config.traffic_after_delete");
/// Signature of a configured session never seen on the wire.
pub const SIG_SILENT_SESSION: (u32, &str) = (1_000_108, "mirror_config.silent_session");

/// One approved change from the change-record file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangeRecord {
    /// Ticket id.
    pub id: String,
    /// Who may make the change (pattern; empty = anyone).
    pub actor: String,
    /// Window start.
    pub start: Timestamp,
    /// Window end.
    pub end: Timestamp,
    /// Resources or collectors the change may touch (patterns: ids, addresses).
    pub resources: Vec<String>,
}

/// Loads a change-record file: CSV with a header (`id,actor,start,end,resource`; several
/// resources separated by `;`) or JSON (an array or one object per line, same keys;
/// `resource` may be an array). Every bad row is an error; the good rows are kept.
pub fn load_change_records(path: &Path) -> (Vec<ChangeRecord>, Vec<TableFileError>) {
    let (name, rows) = match read_table(path) {
        Ok(t) => t,
        Err(e) => return (Vec::new(), vec![e]),
    };
    let mut records = Vec::new();
    let mut errors = Vec::new();
    for (unit, index, row) in rows {
        let get = |keys: &[&str]| keys.iter().find_map(|k| row.get(*k).and_then(as_text));
        let id = get(&["id", "ticket", "change_id", "number"]);
        let start = get(&["start", "window_start", "start_time"]);
        let end = get(&["end", "window_end", "end_time"]);
        let (Some(id), Some(start), Some(end)) = (id, start, end) else {
            errors.push(TableFileError::Row {
                path: name.clone(),
                unit,
                index,
                problem: "needs id, start and end".to_owned(),
            });
            continue;
        };
        let (Some(start), Some(end)) = (parse_rfc3339(&start), parse_rfc3339(&end)) else {
            errors.push(TableFileError::Row {
                path: name.clone(),
                unit,
                index,
                problem: "start and end must be RFC 3339 times".to_owned(),
            });
            continue;
        };
        let mut resources = Vec::new();
        for key in ["resource", "resources", "collector"] {
            match row.get(key) {
                Some(Value::Array(items)) => resources.extend(items.iter().filter_map(as_text)),
                Some(v) => {
                    if let Some(t) = as_text(v) {
                        resources.extend(
                            t.split(';')
                                .map(|s| s.trim().to_owned())
                                .filter(|s| !s.is_empty()),
                        );
                    }
                }
                None => {}
            }
        }
        records.push(ChangeRecord {
            id,
            actor: get(&["actor", "requested_by", "assignee", "implementer"]).unwrap_or_default(),
            start,
            end,
            resources,
        });
    }
    (records, errors)
}

/// What a change is judged with besides the configuration.
#[derive(Clone, Copy, Debug)]
pub struct Baseline<'a> {
    /// `[networks]` and `[mirror]`.
    pub config: &'a Config,
    /// The change records (empty without a file).
    pub records: &'a [ChangeRecord],
    /// A change-record file is configured: a change without a record says so.
    pub records_configured: bool,
}

/// What the judge needs to know of a change after resolution.
#[derive(Clone, Debug, Default)]
pub struct Resolved {
    /// Collector address.
    pub collector_ip: Option<IpAddr>,
    /// Source address.
    pub source_ip: Option<IpAddr>,
    /// Every name the collector goes by (target id, ENI, NIC IP configuration, address).
    pub collector_names: Vec<String>,
}

/// The outcome for one change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// No alert.
    pub approved: bool,
    /// Why not, most important first; empty when approved.
    pub reasons: Vec<Reason>,
    /// The change record that approved the change, or that it fell outside of.
    pub change_record: Option<String>,
    /// 1 high to 3 low.
    pub severity: u8,
    /// The collector is inside `[networks] home` (`None`: address unknown).
    pub collector_home: Option<bool>,
}

/// Whether a change is judged at all: creates and modifies of sessions and source
/// attachments, and every failed attempt. Target and filter changes are inventory only
/// (alerting on them too repeats each session alert; Elastic cut its rule for that reason).
pub fn is_judged(change: &MirrorChange) -> bool {
    change.error.is_some()
        || (change.action != Action::Delete
            && matches!(change.object, Object::Session | Object::SourceAttachment))
}

/// Judges one change.
pub fn judge(change: &MirrorChange, resolved: &Resolved, baseline: &Baseline<'_>) -> Verdict {
    let config = baseline.config;
    let collector_home = resolved.collector_ip.map(|ip| config.is_home(ip));
    let outside = collector_home == Some(false);
    let finish = |mut reasons: Vec<Reason>, record: Option<String>| {
        if reasons.is_empty() {
            return Verdict {
                approved: true,
                reasons,
                change_record: record,
                severity: 3,
                collector_home,
            };
        }
        if outside {
            reasons.push(Reason::CollectorOutsideHome);
        }
        reasons.sort();
        reasons.dedup();
        Verdict {
            approved: false,
            reasons,
            change_record: record,
            severity: if outside { 1 } else { 2 },
            collector_home,
        }
    };
    if change.error.is_some() {
        return finish(vec![Reason::FailedAttempt], None);
    }
    let names = resource_names(change, resolved);
    let actor = change.actor.as_deref().unwrap_or("");
    // The change records naming this change: in window first.
    let mut in_window = None;
    let mut out_of_window = None;
    for r in baseline.records {
        let resource_ok = r.resources.is_empty()
            || r.resources
                .iter()
                .any(|p| names.iter().any(|n| glob_match(p, n)));
        let actor_ok = r.actor.is_empty() || glob_match(&r.actor, actor);
        let named = change.change_comment.as_deref() == Some(r.id.as_str());
        if !(named || resource_ok && actor_ok) {
            continue;
        }
        if r.start <= change.time && change.time <= r.end {
            in_window.get_or_insert(r);
        } else {
            out_of_window.get_or_insert(r);
        }
    }
    let approved_list = resolved.collector_ip.is_some_and(|ip| {
        config
            .mirror
            .approved_collectors
            .iter()
            .any(|n| n.contains(&ip))
    });
    let covering: Vec<_> = config
        .mirror
        .inventory
        .iter()
        .filter(|e| {
            resolved
                .collector_ip
                .is_some_and(|ip| e.collector.contains(&ip))
                || e.collector_resources
                    .iter()
                    .any(|p| resolved.collector_names.iter().any(|n| glob_match(p, n)))
        })
        .collect();
    if approved_list && covering.is_empty() {
        return finish(Vec::new(), None);
    }
    if !covering.is_empty() {
        let mut reasons = Vec::new();
        for e in &covering {
            let actor_ok = e.actors.is_empty() || e.actors.iter().any(|p| glob_match(p, actor));
            let source_ok = e.source_resources.is_empty()
                || change
                    .sources
                    .iter()
                    .any(|s| e.source_resources.iter().any(|p| glob_match(p, s)));
            let record_ok = e.change_records.is_empty()
                || in_window.is_some_and(|r| e.change_records.iter().any(|p| glob_match(p, &r.id)));
            if actor_ok && source_ok && record_ok {
                let record = in_window.map(|r| r.id.clone());
                return finish(Vec::new(), record);
            }
            if !actor_ok {
                reasons.push(Reason::UnapprovedActor);
            }
            if !source_ok {
                reasons.push(Reason::UnapprovedSource);
            }
            if actor_ok && source_ok && !record_ok {
                reasons.push(if out_of_window.is_some() {
                    Reason::OutsideChangeWindow
                } else {
                    Reason::NoChangeRecord
                });
            }
        }
        // A change record in its window approves what the entry alone does not.
        if let Some(r) = in_window {
            return finish(Vec::new(), Some(r.id.clone()));
        }
        if out_of_window.is_some() && !reasons.contains(&Reason::OutsideChangeWindow) {
            reasons.push(Reason::OutsideChangeWindow);
        }
        return finish(reasons, out_of_window.map(|r| r.id.clone()));
    }
    if let Some(r) = in_window {
        return finish(Vec::new(), Some(r.id.clone()));
    }
    let mut reasons = vec![Reason::UnapprovedCollector];
    if let Some(r) = out_of_window {
        reasons.push(Reason::OutsideChangeWindow);
        return finish(reasons, Some(r.id.clone()));
    }
    if baseline.records_configured {
        reasons.push(Reason::NoChangeRecord);
    }
    finish(reasons, None)
}

/// Every name the change's resources go by, for change-record patterns.
fn resource_names(change: &MirrorChange, resolved: &Resolved) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    names.extend(change.session_id.iter().cloned());
    names.extend(change.object_id.iter().cloned());
    names.extend(change.sources.iter().cloned());
    names.extend(resolved.collector_names.iter().cloned());
    names.extend(resolved.collector_ip.map(|ip| ip.to_string()));
    names.extend(resolved.source_ip.map(|ip| ip.to_string()));
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::{Location, Provider};

    fn change(actor: &str, secs: u64) -> MirrorChange {
        let mut c = MirrorChange::new(
            Provider::Aws,
            "CreateTrafficMirrorSession",
            Action::Create,
            Object::Session,
            Timestamp::from_secs_nanos(1_767_603_000 + secs, 0),
            Location {
                file: "t".into(),
                unit: "record",
                index: 0,
            },
        );
        c.actor = Some(actor.to_owned());
        c.session_id = Some("tms-1".to_owned());
        c.sources = vec!["eni-1".to_owned()];
        c
    }

    fn config() -> Config {
        Config::parse(
            "[[mirror.inventory]]\ncollector = \"10.9.0.10/32\"\nactors = [\"arn:aws:sts::111122223333:assumed-role/NetOps/*\"]\n",
            Path::new("t.toml"),
        )
        .unwrap()
    }

    fn resolved(ip: &str) -> Resolved {
        Resolved {
            collector_ip: Some(ip.parse().unwrap()),
            source_ip: None,
            collector_names: vec!["tmt-1".to_owned()],
        }
    }

    #[test]
    fn inventory_actor_approves_and_others_are_named() {
        let config = config();
        let b = Baseline {
            config: &config,
            records: &[],
            records_configured: false,
        };
        let ok = judge(
            &change("arn:aws:sts::111122223333:assumed-role/NetOps/alice", 0),
            &resolved("10.9.0.10"),
            &b,
        );
        assert!(ok.approved);
        let bad = judge(
            &change("arn:aws:iam::111122223333:user/mallory", 0),
            &resolved("10.9.0.10"),
            &b,
        );
        assert_eq!(bad.reasons, [Reason::UnapprovedActor]);
        assert_eq!(bad.severity, 2);
        let ext = judge(
            &change("arn:aws:sts::111122223333:assumed-role/NetOps/alice", 0),
            &resolved("203.0.113.50"),
            &b,
        );
        assert_eq!(
            ext.reasons,
            [Reason::UnapprovedCollector, Reason::CollectorOutsideHome]
        );
        assert_eq!(ext.severity, 1);
    }

    #[test]
    fn change_record_window() {
        let config = config();
        let records = [ChangeRecord {
            id: "CHG0012345".to_owned(),
            actor: "*alice".to_owned(),
            start: Timestamp::from_secs_nanos(1_767_603_000, 0),
            end: Timestamp::from_secs_nanos(1_767_603_600, 0),
            resources: vec!["10.9.0.20".to_owned()],
        }];
        let b = Baseline {
            config: &config,
            records: &records,
            records_configured: true,
        };
        let inside = judge(
            &change("arn:aws:sts::1:assumed-role/Ops/alice", 60),
            &resolved("10.9.0.20"),
            &b,
        );
        assert!(inside.approved);
        assert_eq!(inside.change_record.as_deref(), Some("CHG0012345"));
        let late = judge(
            &change("arn:aws:sts::1:assumed-role/Ops/alice", 4000),
            &resolved("10.9.0.20"),
            &b,
        );
        assert_eq!(
            late.reasons,
            [Reason::UnapprovedCollector, Reason::OutsideChangeWindow]
        );
        let none = judge(
            &change("arn:aws:sts::1:assumed-role/Ops/bob", 60),
            &resolved("10.9.0.21"),
            &b,
        );
        assert_eq!(
            none.reasons,
            [Reason::UnapprovedCollector, Reason::NoChangeRecord]
        );
        let mut failed = change("x", 0);
        failed.error = Some("Client.UnauthorizedOperation".to_owned());
        assert_eq!(
            judge(&failed, &resolved("10.9.0.10"), &b).reasons,
            [Reason::FailedAttempt]
        );
    }
}
