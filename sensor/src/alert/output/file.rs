//! File and standard output.
//!
//! A file is opened without following a final symlink (`O_NOFOLLOW`: a link planted in a
//! world-writable directory cannot make a root sensor write elsewhere), created with mode
//! 0640 under the process umask, and opened non-blocking so a FIFO without a reader fails
//! at once (`ENXIO`) instead of blocking the sensor: the output thread then retries until a
//! reader appears, and the descriptor is made blocking again once open (the output thread may
//! wait; the writer and capture never do).

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::Transport;

/// Mode of a new output file, before the umask.
const NEW_FILE_MODE: u32 = 0o640;

/// Opens an output file: appending or truncating, never through a final symlink, new files
/// 0640 under the umask, a FIFO without a reader an `ENXIO` error rather than a wait.
pub fn open_output_file(path: &Path, append: bool) -> std::io::Result<File> {
    let mut o = std::fs::OpenOptions::new();
    if append {
        o.create(true).append(true);
    } else {
        o.create(true).write(true).truncate(true);
    }
    o.mode(NEW_FILE_MODE)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC);
    let file = o.open(path).map_err(|e| {
        if e.raw_os_error() == Some(libc::ELOOP) {
            std::io::Error::other(format!(
                "{} is a symbolic link; output files are never opened through one (name the \
                 target itself)",
                path.display()
            ))
        } else {
            e
        }
    })?;
    rustix::io::ioctl_fionbio(&file, false)?;
    Ok(file)
}

/// Where a file output writes.
enum Sink {
    Stdout,
    File(File),
    /// A FIFO that had no reader yet: opened on the next send.
    Waiting,
}

/// A file or standard output.
pub(super) struct FileTransport {
    sink: Sink,
    path: Option<PathBuf>,
    append: bool,
}

impl FileTransport {
    pub(super) fn stdout() -> FileTransport {
        FileTransport {
            sink: Sink::Stdout,
            path: None,
            append: true,
        }
    }

    /// Whether it writes to a regular file (not a FIFO, a device or standard output): a write
    /// lands in the page cache and waits for no reader.
    pub(super) fn is_regular_file(&self) -> bool {
        matches!(&self.sink, Sink::File(f) if f.metadata().is_ok_and(|m| m.file_type().is_file()))
    }

    /// Opens `path` now; a FIFO without a reader is opened later by the output thread.
    pub(super) fn open(path: &Path, append: bool) -> std::io::Result<FileTransport> {
        let sink = match open_output_file(path, append) {
            Ok(f) => Sink::File(f),
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) => Sink::Waiting,
            Err(e) => return Err(e),
        };
        Ok(FileTransport {
            sink,
            path: Some(path.to_owned()),
            append,
        })
    }
}

impl Transport for FileTransport {
    fn send(&mut self, batch: &[u8], done: &mut usize, _refused: &mut u64) -> std::io::Result<()> {
        let rest = &batch[*done..];
        match &mut self.sink {
            Sink::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(rest)?;
                out.flush()?;
            }
            Sink::File(f) => f.write_all(rest)?,
            Sink::Waiting => {
                let Some(path) = &self.path else {
                    return Ok(());
                };
                return match open_output_file(path, self.append) {
                    Ok(f) => {
                        self.sink = Sink::File(f);
                        self.send(batch, done, _refused)
                    }
                    // Still no reader: retried like an unreachable server.
                    Err(e) if e.raw_os_error() == Some(libc::ENXIO) => {
                        Err(std::io::Error::new(e.kind(), NoReader))
                    }
                    Err(e) => Err(e),
                };
            }
        }
        *done = batch.len();
        Ok(())
    }

    /// Reopens the file (SIGHUP after a rotation): appending, created again if it was renamed.
    fn reset(&mut self) -> std::io::Result<()> {
        if let (Some(path), Sink::File(_) | Sink::Waiting) = (&self.path, &self.sink) {
            self.sink = match open_output_file(path, true) {
                Ok(f) => Sink::File(f),
                Err(e) if e.raw_os_error() == Some(libc::ENXIO) => Sink::Waiting,
                Err(e) => return Err(e),
            };
            self.append = true;
        }
        Ok(())
    }
}

/// Whether `e` says a FIFO output waits for its reader (retried, not fatal).
pub(super) fn waits_for_reader(e: &std::io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<NoReader>())
}

/// Why a FIFO output waits.
#[derive(Debug)]
struct NoReader;

impl std::fmt::Display for NoReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a FIFO without a reader (waiting for one)")
    }
}

impl std::error::Error for NoReader {}
