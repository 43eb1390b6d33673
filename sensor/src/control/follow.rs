//! Live mode: the `--audit` files are followed like `tail -F`.
//!
//! Once a second (wall clock, in the live shell) every path is looked at again: a directory's
//! new files are read whole (CloudTrail and GCP sinks deliver new files); a file that grew is
//! read from where it stopped, whole lines only (the rest waits for its newline); a file
//! replaced under the same name (rotation: a new inode) is read from its start, after the
//! rest of the old file, read through the handle kept open; a file that shrank (truncated in
//! place) starts over. New changes are judged (their alerts written), the correlator gets the
//! new inventory (what the wire has shown is kept), and the pipeline the wire approvals.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::correlate::{Correlator, write_judgement_alerts_where};
use super::inventory::{Assets, ControlInventory};
use super::judge::ChangeRecord;
use super::{Format, MirrorChange, ReadOptions, ReadOutcome, expand_paths, read_bytes, sniff};
use crate::alert::EventSink;
use crate::config::Config;

/// Bytes read from one file per poll at most (the rest comes at the next poll).
const MAX_READ_PER_POLL: u64 = 64 << 20;

/// One followed file.
#[derive(Debug)]
struct Followed {
    /// The open handle (survives a rename).
    file: File,
    inode: u64,
    /// Bytes consumed (whole lines).
    offset: u64,
    /// Lines consumed, to number the lines of later reads.
    lines: u64,
    /// CSV header line, prepended to each new piece.
    csv_header: Option<Vec<u8>>,
}

/// The followed `--audit` paths and everything read from them.
pub struct Follower {
    paths: Vec<PathBuf>,
    options: ReadOptions,
    files: HashMap<PathBuf, Followed>,
    changes: Vec<MirrorChange>,
    assets: Assets,
    records: Vec<ChangeRecord>,
    records_configured: bool,
    correlator: Arc<Mutex<Correlator>>,
    /// Inodes of rotated files already read: the old file, found again under its new name
    /// (`audit.log.1` in a followed directory), is not read a second time.
    retired: Vec<u64>,
    /// Errors met while following (printed by the caller).
    pub errors: Vec<String>,
}

impl Follower {
    /// Starts following `paths` after the initial read (`changes`, what `shell::load` read):
    /// every file present is consumed up to its current end.
    pub fn new(
        paths: &[PathBuf],
        config: &Config,
        changes: Vec<MirrorChange>,
        correlator: Arc<Mutex<Correlator>>,
    ) -> Follower {
        let (assets, _) = if config.control.assets.is_empty() {
            (Assets::default(), Vec::new())
        } else {
            Assets::load(config.control.assets.as_ref())
        };
        let records_configured = !config.control.change_records.is_empty();
        let records = if records_configured {
            super::judge::load_change_records(config.control.change_records.as_ref()).0
        } else {
            Vec::new()
        };
        let mut f = Follower {
            paths: paths.to_vec(),
            options: ReadOptions {
                syslog_year: config.control.syslog_year,
            },
            files: HashMap::new(),
            changes,
            assets,
            records,
            records_configured,
            correlator,
            retired: Vec::new(),
            errors: Vec::new(),
        };
        for path in expand_paths(paths).unwrap_or_default() {
            if let Some(followed) = open_at_end(&path) {
                f.files.insert(path, followed);
            }
        }
        f
    }

    /// Reads what the files gained; judges, correlates and approves the new changes. Returns
    /// the configuration the pipeline should now use (`None`: nothing new).
    pub fn poll(
        &mut self,
        config: &Config,
        sink: &mut EventSink,
    ) -> Result<Option<Config>, crate::alert::AlertWriteError> {
        let mut out = ReadOutcome::default();
        let paths = match expand_paths(&self.paths) {
            Ok(p) => p,
            Err(e) => {
                self.errors.push(e.to_string());
                return Ok(None);
            }
        };
        for path in paths {
            self.poll_file(&path, &mut out);
        }
        self.errors
            .extend(out.errors.iter().map(ToString::to_string));
        if out.changes.is_empty() {
            return Ok(None);
        }
        let new: Vec<(Arc<str>, &'static str, u64)> = out
            .changes
            .iter()
            .map(|c| {
                (
                    Arc::clone(&c.location.file),
                    c.location.unit,
                    c.location.index,
                )
            })
            .collect();
        self.changes.extend(out.changes);
        let inv = self.inventory(config);
        write_judgement_alerts_where(&inv, sink, |c| {
            new.iter().any(|(f, u, i)| {
                *f == c.location.file && *u == c.location.unit && *i == c.location.index
            })
        })?;
        sink.flush()?;
        // The pipeline's configuration is the file's plus what the control plane approves.
        let mut applied = config.clone();
        applied.mirror.inventory.extend(self.hand_over(inv));
        Ok(Some(applied))
    }

    /// Builds the inventory of every change read so far again under `config` (a reload),
    /// hands it to the correlator, and returns the streams it approves on the wire.
    pub fn rejudge(&mut self, config: &Config) -> Vec<crate::config::InventoryEntry> {
        let inv = self.inventory(config);
        self.hand_over(inv)
    }

    /// The inventory of every change read so far, judged under `config`.
    fn inventory(&self, config: &Config) -> ControlInventory {
        ControlInventory::build(
            self.changes.clone(),
            &self.assets,
            config,
            &self.records,
            self.records_configured,
        )
    }

    /// Gives `inv` to the correlator; returns the streams it approves on the wire.
    fn hand_over(&mut self, inv: ControlInventory) -> Vec<crate::config::InventoryEntry> {
        let entries = inv.approved_wire_entries();
        if let Ok(mut c) = self.correlator.lock() {
            c.replace_inventory(inv);
        }
        entries
    }

    fn poll_file(&mut self, path: &PathBuf, out: &mut ReadOutcome) {
        let Ok(meta) = std::fs::metadata(path) else {
            return;
        };
        let Some(f) = self.files.get_mut(path) else {
            // A new file: read it whole, then follow it; a rotated file under its new name
            // was read already.
            if !self.retired.contains(&meta.ino()) {
                super::read_file(path, self.options, out);
            }
            if let Some(followed) = open_at_end(path) {
                self.files.insert(path.clone(), followed);
            }
            return;
        };
        if meta.ino() != f.inode {
            // Rotated: the rest of the old file first, then the new one from its start.
            read_new(f, path, self.options, out);
            if self.retired.len() >= 1024 {
                self.retired.remove(0);
            }
            self.retired.push(f.inode);
            match File::open(path) {
                Ok(file) => {
                    *f = Followed {
                        file,
                        inode: meta.ino(),
                        offset: 0,
                        lines: 0,
                        csv_header: f.csv_header.take(),
                    };
                }
                Err(e) => {
                    out.errors.push(super::ReadError::Io {
                        path: path.clone(),
                        source: e,
                    });
                    return;
                }
            }
        } else if meta.len() < f.offset {
            // Truncated in place.
            f.offset = 0;
            f.lines = 0;
        }
        read_new(f, path, self.options, out);
    }
}

/// Opens `path` and places it at its end (its content was read already).
fn open_at_end(path: &PathBuf) -> Option<Followed> {
    let mut file = File::open(path).ok()?;
    let meta = file.metadata().ok()?;
    let mut head = vec![0u8; 4096.min(meta.len() as usize)];
    let _ = file.read_exact(&mut head);
    let csv_header = (sniff(&head) == Some(Format::Csv))
        .then(|| head.split(|b| *b == b'\n').next().map(<[u8]>::to_vec))
        .flatten();
    let mut all = Vec::new();
    let _ = file.seek(SeekFrom::Start(0));
    let _ = (&mut file).take(MAX_READ_PER_POLL).read_to_end(&mut all);
    let lines = all.iter().filter(|b| **b == b'\n').count() as u64;
    let offset = all
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |i| i as u64 + 1);
    Some(Followed {
        file,
        inode: meta.ino(),
        offset,
        lines,
        csv_header,
    })
}

/// Reads the whole lines `f` gained since its offset and hands them to the readers, with
/// their true line numbers.
fn read_new(f: &mut Followed, path: &std::path::Path, options: ReadOptions, out: &mut ReadOutcome) {
    if f.file.seek(SeekFrom::Start(f.offset)).is_err() {
        return;
    }
    let mut buf = Vec::new();
    if (&mut f.file)
        .take(MAX_READ_PER_POLL)
        .read_to_end(&mut buf)
        .is_err()
    {
        return;
    }
    let Some(end) = buf.iter().rposition(|b| *b == b'\n') else {
        return;
    };
    buf.truncate(end + 1);
    f.offset += buf.len() as u64;
    let new_lines = buf.iter().filter(|b| **b == b'\n').count() as u64;
    let mut piece = Vec::new();
    let header = f.csv_header.as_ref().filter(|_| f.lines > 0);
    if let Some(h) = header {
        piece.extend_from_slice(h);
        piece.push(b'\n');
    }
    piece.extend_from_slice(&buf);
    // Line n of the piece is line `base + n` of the file.
    let base = f.lines - u64::from(header.is_some());
    let name: Arc<str> = Arc::from(path.display().to_string());
    let mut piece_out = ReadOutcome::default();
    read_bytes(&piece, &name, options, &mut piece_out);
    for c in &mut piece_out.changes {
        if c.location.unit == "line" {
            c.location.index += base;
        }
    }
    for e in &mut piece_out.errors {
        if let super::ReadError::Record {
            unit: "line",
            index,
            ..
        } = e
        {
            *index += base;
        }
    }
    f.lines += new_lines;
    out.changes.append(&mut piece_out.changes);
    out.errors.append(&mut piece_out.errors);
    out.records += piece_out.records;
    out.ignored += piece_out.ignored;
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;
    use crate::alert::{EventWriter, OutputTarget};

    const LINE: &str = "{\"protoPayload\":{\"methodName\":\"v1.compute.packetMirrorings.insert\",\"resourceName\":\"projects/p/regions/r/packetMirrorings/pm-N\",\"request\":{\"collectorIlb\":{\"url\":\"projects/p/regions/r/forwardingRules/fr\"}},\"authenticationInfo\":{\"principalEmail\":\"mallory@example.net\"}},\"timestamp\":\"2026-01-05T08:41:12Z\"}\n";

    fn line(n: u32) -> String {
        LINE.replace("pm-N", &format!("pm-{n}"))
    }

    /// Appended lines are read (a partial line waits for its newline), a rotated file is read
    /// after the rest of the old one, and each new unapproved change is alerted once.
    #[test]
    fn follows_appends_partial_lines_and_rotation() {
        let dir = std::env::temp_dir().join(format!("mw-follow-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("audit.jsonl");
        std::fs::write(&log, line(1)).unwrap();
        let config = Config::default();
        let correlator = Arc::new(Mutex::new(Correlator::new(
            ControlInventory::default(),
            &config,
        )));
        let mut f = Follower::new(
            std::slice::from_ref(&dir),
            &config,
            Vec::new(),
            Arc::clone(&correlator),
        );
        let out_path = dir.join("events.json");
        let writer = EventWriter::spawn(&OutputTarget::File(out_path.clone())).unwrap();
        let mut sink = writer.sink();
        assert!(
            f.poll(&config, &mut sink).unwrap().is_none(),
            "nothing new yet"
        );
        // One whole line and half of the next.
        let mut file = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        let second = line(2);
        let third = line(3);
        file.write_all(second.as_bytes()).unwrap();
        file.write_all(&third.as_bytes()[..50]).unwrap();
        file.flush().unwrap();
        assert!(f.poll(&config, &mut sink).unwrap().is_some());
        assert_eq!(
            correlator.lock().unwrap().inventory.sessions.len(),
            1,
            "pm-2 (pm-1 was read at start by the caller)"
        );
        // The rest of line 3, then rotation: the new file has line 4.
        file.write_all(&third.as_bytes()[50..]).unwrap();
        drop(file);
        std::fs::rename(&log, dir.join("audit.jsonl.1")).unwrap();
        std::fs::write(&log, line(4)).unwrap();
        assert!(f.poll(&config, &mut sink).unwrap().is_some());
        assert!(f.errors.is_empty(), "{:?}", f.errors);
        let ids: Vec<String> = correlator
            .lock()
            .unwrap()
            .inventory
            .sessions
            .iter()
            .map(|s| s.id.clone())
            .collect();
        drop(sink);
        writer.finish().unwrap();
        let events = std::fs::read_to_string(&out_path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        for n in [2, 3, 4] {
            assert!(
                ids.iter().any(|i| i.ends_with(&format!("pm-{n}"))),
                "{ids:?}"
            );
        }
        // The renamed file, found again in the directory, is not read a second time: one
        // alert each for pm-2, pm-3 and pm-4.
        let alerts = events
            .lines()
            .filter(|l| l.contains("mirror_config.unapproved_collector"))
            .count();
        assert_eq!(alerts, 3, "{events}");
    }
}
