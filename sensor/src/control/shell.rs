//! The IO shell of the control-plane side: `mirrorwatch audit`, and the `--audit` hooks of
//! replay and live (read the records before the packets, write the judgement, correlate,
//! report silent sessions at the end).
//!
//! Unreadable records never stop a run: they are named on stderr and counted in the `audit`
//! event. An asset or change-record file that cannot be opened is a configuration error
//! (exit 2), found before any packet is read.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use flowtable::Timestamp;

use super::correlate::{Correlator, drift_table, write_judgement_alerts, write_sessions};
use super::inventory::{Assets, ControlInventory};
use super::judge::load_change_records;
use super::text::TableFileError;
use super::{ReadOptions, ReadOutcome, read_paths};
use crate::alert::control::{AuditDetail, AuditEvent};
use crate::alert::{EventSink, EventWriter, OutputTarget, Rfc3339};
use crate::cli::AuditArgs;
use crate::config::{Config, ConfigError};

/// Error messages kept in the `audit` event (all are printed on stderr).
const AUDIT_EVENT_ERRORS: usize = 100;

/// The control plane read and judged.
#[derive(Debug)]
pub struct Loaded {
    /// Sessions, changes, verdicts.
    pub inventory: ControlInventory,
    /// Files, records, ignored.
    pub files: u64,
    /// Records read.
    pub records: u64,
    /// Records about something else.
    pub ignored: u64,
    /// Every unreadable record or file, naming it.
    pub errors: Vec<String>,
}

/// Reads `paths`, the asset and change-record files of `[control]`, and judges every change.
pub fn load(config: &Config, paths: &[PathBuf]) -> anyhow::Result<Loaded> {
    let mut out = ReadOutcome::default();
    let options = ReadOptions {
        syslog_year: config.control.syslog_year,
    };
    read_paths(paths, options, &mut out);
    let mut errors: Vec<String> = out.errors.iter().map(ToString::to_string).collect();
    let mut assets = Assets::default();
    if !config.control.assets.is_empty() {
        let (a, errs) = Assets::load(config.control.assets.as_ref());
        for e in errs {
            if let TableFileError::Io { .. } = e {
                return Err(invalid("assets", e.to_string()).into());
            }
            errors.push(e.to_string());
        }
        assets = a;
    }
    let mut records = Vec::new();
    let configured = !config.control.change_records.is_empty();
    if configured {
        let (r, errs) = load_change_records(config.control.change_records.as_ref());
        for e in errs {
            if let TableFileError::Io { .. } = e {
                return Err(invalid("change_records", e.to_string()).into());
            }
            errors.push(e.to_string());
        }
        records = r;
    }
    let inventory = ControlInventory::build(out.changes, &assets, config, &records, configured);
    Ok(Loaded {
        inventory,
        files: out.files,
        records: out.records,
        ignored: out.ignored,
        errors,
    })
}

fn invalid(key: &'static str, problem: String) -> ConfigError {
    ConfigError::Invalid {
        path: PathBuf::from("[control]"),
        section: "control",
        key,
        problem,
    }
}

/// `config` with `[[mirror.inventory]]` entries for the streams the control plane approved.
pub fn with_approved_streams(mut config: Config, loaded: Option<&Loaded>) -> Config {
    if let Some(l) = loaded {
        config
            .mirror
            .inventory
            .extend(l.inventory.approved_wire_entries());
    }
    config
}

/// Writes the judgement alerts and the `audit` event, prints the errors; returns the
/// correlator for the pipeline.
pub fn start(
    loaded: Option<Loaded>,
    config: &Config,
    sink: &mut EventSink,
) -> anyhow::Result<Option<Arc<Mutex<Correlator>>>> {
    let Some(loaded) = loaded else {
        return Ok(None);
    };
    let alerts = write_judgement_alerts(&loaded.inventory, sink)?;
    write_audit_event(&loaded, alerts, sink)?;
    sink.flush()?;
    Ok(Some(Arc::new(Mutex::new(Correlator::new(
        loaded.inventory,
        config,
    )))))
}

/// At the end of the packets: silent sessions, `mirror_session` events, the drift table on
/// stderr.
pub fn finish(
    correlator: Option<&Arc<Mutex<Correlator>>>,
    first: Option<Timestamp>,
    last: Timestamp,
    sink: &mut EventSink,
) -> anyhow::Result<()> {
    let Some(c) = correlator else {
        return Ok(());
    };
    let mut c = c
        .lock()
        .map_err(|_| anyhow::anyhow!("control-plane correlation failed earlier"))?;
    c.finish(first.unwrap_or(last), last, sink)?;
    sink.flush()?;
    eprint!("{}", drift_table(&c.inventory, Some(&c.seen)));
    Ok(())
}

fn write_audit_event(loaded: &Loaded, alerts: u64, sink: &mut EventSink) -> anyhow::Result<()> {
    for e in &loaded.errors {
        eprintln!("mirrorwatch: audit: {e}");
    }
    let latest = loaded
        .inventory
        .changes
        .iter()
        .map(|c| c.time)
        .max()
        .unwrap_or(Timestamp::ZERO);
    let shown = loaded.errors.len().min(AUDIT_EVENT_ERRORS);
    sink.write(&AuditEvent {
        timestamp: Rfc3339(latest),
        event_type: "audit",
        audit: AuditDetail {
            files: loaded.files,
            records: loaded.records,
            changes: loaded.inventory.changes.len() as u64,
            ignored: loaded.ignored,
            sessions: loaded.inventory.sessions.len() as u64,
            alerts,
            errors: loaded.errors.len() as u64,
            error_messages: &loaded.errors[..shown],
        },
    })?;
    Ok(())
}

/// What `mirrorwatch audit` found.
#[derive(Debug)]
pub struct AuditOutcome {
    /// Records read.
    pub records: u64,
    /// Alerts written.
    pub alerts: u64,
    /// Unreadable records and files.
    pub errors: u64,
}

/// Runs `mirrorwatch audit`.
pub fn audit(args: &AuditArgs) -> anyhow::Result<AuditOutcome> {
    let config = crate::config::Config::load_or_default(args.config.as_deref())?;
    let loaded = load(&config, &args.paths)?;
    let target = OutputTarget::from_arg(&args.output);
    let writer = EventWriter::spawn(&target).context("opening the output")?;
    let mut sink = writer.sink();
    let alerts = write_judgement_alerts(&loaded.inventory, &mut sink)?;
    write_sessions(&loaded.inventory, None, &mut sink)?;
    write_audit_event(&loaded, alerts, &mut sink)?;
    sink.flush()?;
    drop(sink);
    writer.finish()?;
    eprint!("{}", drift_table(&loaded.inventory, None));
    eprintln!(
        "mirrorwatch: audit: {} files, {} records, {} mirror changes, {} sessions, {} alerts, {} unreadable",
        loaded.files,
        loaded.records,
        loaded.inventory.changes.len(),
        loaded.inventory.sessions.len(),
        alerts,
        loaded.errors.len()
    );
    Ok(AuditOutcome {
        records: loaded.records,
        alerts,
        errors: loaded.errors.len() as u64,
    })
}

/// Live: the followed `--audit` files, polled once a second of wall time.
pub struct LiveFollow {
    follower: super::follow::Follower,
    /// The configuration as loaded (from the file); control-plane approvals are added to it.
    base: Config,
    next: std::time::Instant,
}

impl LiveFollow {
    /// Follows `paths` from their current ends (`changes`: what the initial read gave).
    pub fn start(
        paths: &[PathBuf],
        base: &Config,
        changes: Vec<super::MirrorChange>,
        control: &Arc<Mutex<Correlator>>,
    ) -> LiveFollow {
        LiveFollow {
            follower: super::follow::Follower::new(paths, base, changes, Arc::clone(control)),
            base: base.clone(),
            next: std::time::Instant::now() + std::time::Duration::from_secs(1),
        }
    }

    /// A SIGHUP reload: `config` (the file just read) becomes the base of every later poll,
    /// the changes read so far are judged again under it, and the configuration to apply is
    /// returned with the control plane's approved streams added, and how many there are. No
    /// alert is written again: the changes were judged when they were read.
    pub fn reloaded(&mut self, config: Config) -> (Config, usize) {
        self.base = config.clone();
        let entries = self.follower.rejudge(&config);
        let n = entries.len();
        let mut applied = config;
        applied.mirror.inventory.extend(entries);
        (applied, n)
    }

    /// Once a second: new records are judged and correlated, and the pipeline approves the
    /// streams the control plane approved since.
    pub fn tick(
        &mut self,
        pipeline: &mut crate::pipeline::Pipeline,
        sink: &mut EventSink,
    ) -> anyhow::Result<()> {
        let now = std::time::Instant::now();
        if now < self.next {
            return Ok(());
        }
        self.next = now + std::time::Duration::from_secs(1);
        let applied = self.follower.poll(&self.base, sink)?;
        for e in self.follower.errors.drain(..) {
            eprintln!("mirrorwatch: audit: {e}");
        }
        if let Some(config) = applied {
            pipeline.reload(&config)?;
        }
        Ok(())
    }
}
