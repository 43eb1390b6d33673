//! Files the sensor writes while it may run as root, made safe against a local user who
//! plants symbolic links or guesses temp names (issue 19 item 4).
//!
//! - [`create_output`] opens an output without following a final symbolic link planted by
//!   someone else (`O_NOFOLLOW`); a link owned by the sensor's own user is followed, as the
//!   kernel's `protected_symlinks` rule does, so `-o /dev/stdout` still works for root.
//! - [`replace_file`] writes a whole file through a temp file created `O_EXCL` with a random
//!   name in the target's directory (`tempfile`), synced, then renamed over the target: a
//!   reader sees the old or the new file, never half of one, and a link at the target is
//!   replaced, never followed. The mode of an existing file is kept; a new one gets the mode
//!   asked for under the process umask.
//! - [`read_to_string`] reads a file the same way, refusing a link planted by another user.
//! - [`excerpt`] is what an error may quote of a file's content: a short, escaped prefix.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Characters of a line an error message may quote.
pub const EXCERPT_CHARS: usize = 24;

/// Opens `path` for writing, created with `mode` (under the umask) if missing, truncated
/// (`append == false`) or appended to. A final symbolic link is refused unless the sensor's
/// effective user owns it.
pub fn create_output(path: &Path, append: bool, mode: u32) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create(true).mode(mode);
    if append {
        options.append(true);
    } else {
        options.truncate(true);
    }
    let own_link = std::fs::symlink_metadata(path).is_ok_and(|m| {
        m.file_type().is_symlink() && m.uid() == rustix::process::geteuid().as_raw()
    });
    if !own_link {
        options.custom_flags(libc::O_NOFOLLOW);
    }
    options.open(path).map_err(|e| {
        if e.raw_os_error() == Some(libc::ELOOP) {
            io::Error::new(
                io::ErrorKind::PermissionDenied,
                "it is a symbolic link owned by another user; refusing to write through it",
            )
        } else {
            e
        }
    })
}

/// Reads `path` whole, refusing a final symbolic link owned by another user, as
/// [`create_output`] does: a root sensor pointed at a planted link would otherwise read
/// (and quote in an error) a file its user cannot.
pub fn read_to_string(path: &Path) -> io::Result<String> {
    let mut options = OpenOptions::new();
    options.read(true);
    let own_link = std::fs::symlink_metadata(path).is_ok_and(|m| {
        m.file_type().is_symlink() && m.uid() == rustix::process::geteuid().as_raw()
    });
    if !own_link {
        options.custom_flags(libc::O_NOFOLLOW);
    }
    let mut file = options.open(path).map_err(|e| {
        if e.raw_os_error() == Some(libc::ELOOP) {
            io::Error::new(
                io::ErrorKind::PermissionDenied,
                "it is a symbolic link owned by another user; refusing to read through it",
            )
        } else {
            e
        }
    })?;
    let mut text = String::new();
    io::Read::read_to_string(&mut file, &mut text)?;
    Ok(text)
}

/// Replaces `path` with `bytes` atomically (see the module documentation). `new_mode` is the
/// mode of a file that did not exist (or was a symbolic link), before the umask.
pub fn replace_file(path: &Path, bytes: &[u8], new_mode: u32) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map_or_else(|| "file".into(), |n| n.to_string_lossy());
    let mode = match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_file() => m.permissions().mode() & 0o7777,
        _ => new_mode & !umask(),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode))?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// The process umask, read from `/proc/self/status` (reading it with `umask(2)` would change
/// it for a moment under other threads). `0o022` when the kernel does not say.
pub fn umask() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Umask:"))
                .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
        })
        .unwrap_or(0o022)
}

/// At most [`EXCERPT_CHARS`] characters of `line`, escaped (quotes, controls, non-ASCII as
/// `\u{..}`), with `...` when cut: enough to find the line, too little to leak a secret
/// from a file the sensor was tricked into reading.
pub fn excerpt(line: &str) -> String {
    let mut out = String::with_capacity(EXCERPT_CHARS + 8);
    out.push('"');
    for (i, c) in line.chars().enumerate() {
        if i == EXCERPT_CHARS {
            out.push_str("...");
            break;
        }
        if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
            out.push(c);
        } else {
            out.extend(c.escape_default());
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("mw-fsio-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn replace_keeps_the_mode_and_replaces_a_link_without_following_it() {
        let dir = scratch("replace");
        let victim = dir.join("victim");
        std::fs::write(&victim, "secret\n").unwrap();
        let target = dir.join("baseline");
        std::os::unix::fs::symlink(&victim, &target).unwrap();
        replace_file(&target, b"10.0.0.1\n", 0o640).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "secret\n");
        let meta = std::fs::symlink_metadata(&target).unwrap();
        assert!(meta.file_type().is_file());
        assert_eq!(meta.permissions().mode() & 0o777, 0o640 & !umask());
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
        replace_file(&target, b"10.0.0.2\n", 0o640).unwrap();
        let meta = std::fs::metadata(&target).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600, "mode kept");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "10.0.0.2\n");
        let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert_eq!(left.len(), 2, "no temp file left behind: {left:?}");
    }

    #[test]
    fn excerpts_are_short_and_escaped() {
        assert_eq!(excerpt("not-an-address"), "\"not-an-address\"");
        assert_eq!(
            excerpt("root:$6$abcdefghijklmnopqrstuvwxyz:19000:0:99999:7:::"),
            "\"root:$6$abcdefghijklmnop...\""
        );
        assert_eq!(excerpt("a\u{1b}[2J\"b"), "\"a\\u{1b}[2J\\\"b\"");
    }
}
