//! The error of writing events, shared by the writer thread and the outputs it drives; it
//! names the output and says what the failure means to the user (a full disk or a closed
//! pipe stops the run, since every later event would be lost).

use thiserror::Error;

/// Errors writing events.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum AlertWriteError {
    /// The output could not be opened or written.
    #[error("writing events to {target}: {source}")]
    Io {
        /// Output description.
        target: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The reader of the output went away (a closed pipe or standard output).
    #[error(
        "writing events to {target}: the reader closed it (broken pipe); stopping, since every \
         event from here on would be lost"
    )]
    OutputClosed {
        /// Output description.
        target: String,
    },
    /// The file system of the output is full (or the quota is used up).
    #[error(
        "writing events to {target}: no space left on the device ({source}); stopping, since \
         every event from here on would be lost"
    )]
    DiskFull {
        /// Output description.
        target: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A network output stayed unreachable longer than `[output] retry_timeout_s` in a
    /// replay; every other output got every event.
    #[error(
        "writing events to {target}: unreachable for {waited_s} s ({last_error}); gave it up; \
         every other output got every event"
    )]
    OutputDead {
        /// Output description.
        target: String,
        /// Seconds it was retried.
        waited_s: u64,
        /// The last error (in the message, not a source: it would be printed twice).
        last_error: std::io::Error,
    },
    /// An event could not be serialized (a bug, not an input problem).
    #[error("serializing an event: {0}")]
    Serialize(#[from] serde_json::Error),
    /// The writer thread has stopped (after an error it reports itself).
    #[error("the event writer has stopped")]
    WriterGone,
}

impl AlertWriteError {
    /// An OS error while writing to `target`, named for what it means to the user.
    pub(crate) fn from_io(target: &str, source: std::io::Error) -> AlertWriteError {
        let target = target.to_owned();
        match source.raw_os_error() {
            Some(libc::EPIPE) => AlertWriteError::OutputClosed { target },
            Some(libc::ENOSPC | libc::EDQUOT) => AlertWriteError::DiskFull { target, source },
            _ if source.kind() == std::io::ErrorKind::BrokenPipe => {
                AlertWriteError::OutputClosed { target }
            }
            _ => AlertWriteError::Io { target, source },
        }
    }
}
