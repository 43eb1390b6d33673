//! Least privilege for the live sensor (issue 19 item 5): once every capture socket is open
//! and the metrics address bound, the process drops to a configured user (`--user`,
//! `[live] user`) and gives up every capability, before it parses a single hostile packet,
//! opens its output or starts a thread.
//!
//! Order matters: the bounding set is emptied while `CAP_SETPCAP` is still held, then
//! `no_new_privs` is set (no exec can give rights back), then groups, gid and uid change
//! (which needs `CAP_SETGID`/`CAP_SETUID`), and last every capability set is cleared. Linux
//! keeps credentials per thread, so the drop must happen while the process has one thread;
//! [`drop_privileges`] refuses otherwise, and every thread started later inherits the
//! dropped credentials. The result is read back from `/proc/self/status` and checked.
//! Users are looked up in `/etc/passwd` and `/etc/group` (no NSS: the sensor links no C
//! library code for it, and a capture host's service user is local).

use std::fmt;

use rustix::thread::{CapabilitySet, CapabilitySets};
use thiserror::Error;

/// A user to run as, with its primary and supplementary groups.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunAs {
    /// The name given (or the number).
    pub name: String,
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Supplementary groups (from `/etc/group`).
    pub groups: Vec<u32>,
}

/// Errors of the privilege drop. Each is a usage error: the sensor does not capture at all
/// rather than run with more rights than asked.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum PrivilegeError {
    /// No such user.
    #[error("--user {name}: no such user in /etc/passwd")]
    NoSuchUser {
        /// The name given.
        name: String,
    },
    /// A step of the drop failed.
    #[error("dropping privileges to {user}: {step} failed: {source}")]
    Step {
        /// The user (or "no user change").
        user: String,
        /// What failed.
        step: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
    /// The process has more than one thread: credentials are per thread on Linux.
    #[error("dropping privileges: the process already runs {threads} threads (a bug)")]
    Threads {
        /// Threads found.
        threads: u32,
    },
    /// After the drop, the kernel still reports rights.
    #[error("dropping privileges: still {what} after the drop")]
    Kept {
        /// What is left.
        what: String,
    },
}

/// What the process runs with after the drop, as the kernel reports it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Credentials {
    /// Real, effective, saved and filesystem uid.
    pub uid: [u32; 4],
    /// Real, effective, saved and filesystem gid.
    pub gid: [u32; 4],
    /// Effective capabilities.
    pub cap_eff: u64,
    /// Permitted capabilities.
    pub cap_prm: u64,
    /// Ambient capabilities.
    pub cap_amb: u64,
}

impl fmt::Display for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "uid {}, gid {}, capabilities {:#x}",
            self.uid[1], self.gid[1], self.cap_eff
        )
    }
}

impl RunAs {
    /// Looks a user up by name, or takes a number as a uid (its group from `/etc/passwd`
    /// when listed, else the same number).
    pub fn lookup(name: &str) -> Result<RunAs, PrivilegeError> {
        let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
        let group = std::fs::read_to_string("/etc/group").unwrap_or_default();
        RunAs::lookup_in(name, &passwd, &group)
    }

    /// [`RunAs::lookup`] on given file contents.
    pub fn lookup_in(name: &str, passwd: &str, group: &str) -> Result<RunAs, PrivilegeError> {
        let numeric = name.parse::<u32>().ok();
        let entry = passwd.lines().find_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            let uid = f.get(2)?.parse::<u32>().ok()?;
            let gid = f.get(3)?.parse::<u32>().ok()?;
            let user = *f.first()?;
            (user == name || numeric == Some(uid)).then(|| (user.to_owned(), uid, gid))
        });
        let (user, uid, gid) = match (entry, numeric) {
            (Some(e), _) => e,
            (None, Some(n)) => (String::new(), n, n),
            (None, None) => {
                return Err(PrivilegeError::NoSuchUser {
                    name: name.to_owned(),
                });
            }
        };
        let mut groups = vec![gid];
        if !user.is_empty() {
            for line in group.lines() {
                let f: Vec<&str> = line.split(':').collect();
                let (Some(g), Some(members)) = (f.get(2), f.get(3)) else {
                    continue;
                };
                let Ok(g) = g.parse::<u32>() else { continue };
                if members.split(',').any(|m| m.trim() == user) && !groups.contains(&g) {
                    groups.push(g);
                }
            }
        }
        Ok(RunAs {
            name: name.to_owned(),
            uid,
            gid,
            groups,
        })
    }
}

/// Drops to `user` (when given) and clears every capability; returns what the kernel then
/// reports. Without a user the uid stays (a sensor started by its own service user with
/// file capabilities, or under systemd's `AmbientCapabilities`), but the capabilities go.
pub fn drop_privileges(user: Option<&RunAs>) -> Result<Credentials, PrivilegeError> {
    let who = user.map_or_else(|| "the same user".to_owned(), |u| u.name.clone());
    let step = |step: &'static str| {
        let who = who.clone();
        move |e: rustix::io::Errno| PrivilegeError::Step {
            user: who,
            step,
            source: e.into(),
        }
    };
    let threads = status_field("Threads:")
        .and_then(|v| v.trim().parse::<u32>().ok())
        .unwrap_or(1);
    if threads != 1 {
        return Err(PrivilegeError::Threads { threads });
    }
    let held = rustix::thread::capabilities(None).map_err(step("capget"))?;
    if held.effective.contains(CapabilitySet::SETPCAP) {
        // Empty the bounding set: no later exec can gain a capability back.
        let last = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
            .unwrap_or(40)
            .min(63);
        for cap in 0..=last {
            rustix::thread::remove_capability_from_bounding_set(CapabilitySet::from_bits_retain(
                1 << cap,
            ))
            .map_err(step("emptying the capability bounding set"))?;
        }
    }
    rustix::thread::set_no_new_privs(true).map_err(step("setting no_new_privs"))?;
    if let Some(u) = user {
        use rustix::thread::{Gid, Uid};
        let groups: Vec<Gid> = u.groups.iter().map(|g| Gid::from_raw(*g)).collect();
        rustix::thread::set_thread_groups(&groups).map_err(step("setgroups"))?;
        let gid = Gid::from_raw(u.gid);
        rustix::thread::set_thread_res_gid(gid, gid, gid).map_err(step("setresgid"))?;
        let uid = Uid::from_raw(u.uid);
        rustix::thread::set_thread_res_uid(uid, uid, uid).map_err(step("setresuid"))?;
    }
    let none = CapabilitySet::empty();
    rustix::thread::set_capabilities(
        None,
        CapabilitySets {
            effective: none,
            permitted: none,
            inheritable: none,
        },
    )
    .map_err(step("clearing the capabilities"))?;
    let now = credentials();
    if now.cap_eff != 0 || now.cap_prm != 0 || now.cap_amb != 0 {
        return Err(PrivilegeError::Kept {
            what: format!(
                "capabilities effective {:#x}, permitted {:#x}, ambient {:#x}",
                now.cap_eff, now.cap_prm, now.cap_amb
            ),
        });
    }
    if let Some(u) = user {
        if now.uid != [u.uid; 4] || now.gid != [u.gid; 4] {
            return Err(PrivilegeError::Kept {
                what: format!("uids {:?}, gids {:?}", now.uid, now.gid),
            });
        }
    }
    Ok(now)
}

/// The calling thread's credentials from `/proc/thread-self/status`.
pub fn credentials() -> Credentials {
    let ids = |field: &str| {
        let mut out = [u32::MAX; 4];
        if let Some(v) = status_field(field) {
            for (slot, n) in out.iter_mut().zip(v.split_whitespace()) {
                *slot = n.parse().unwrap_or(u32::MAX);
            }
        }
        out
    };
    let caps = |field: &str| {
        status_field(field)
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .unwrap_or(u64::MAX)
    };
    Credentials {
        uid: ids("Uid:"),
        gid: ids("Gid:"),
        cap_eff: caps("CapEff:"),
        cap_prm: caps("CapPrm:"),
        cap_amb: caps("CapAmb:"),
    }
}

fn status_field(name: &str) -> Option<String> {
    let text = std::fs::read_to_string("/proc/thread-self/status")
        .or_else(|_| std::fs::read_to_string("/proc/self/status"))
        .ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(name).map(str::to_owned))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\n\
                          nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n\
                          mw:x:998:997::/var/lib/mw:/usr/sbin/nologin\n";
    const GROUP: &str = "root:x:0:\npcap:x:120:mw,other\nnogroup:x:65534:\nmw:x:997:\n";

    #[test]
    fn users_are_looked_up_by_name_or_number_with_their_groups() {
        let mw = RunAs::lookup_in("mw", PASSWD, GROUP).unwrap();
        assert_eq!((mw.uid, mw.gid), (998, 997));
        assert_eq!(mw.groups, [997, 120]);
        let nobody = RunAs::lookup_in("65534", PASSWD, GROUP).unwrap();
        assert_eq!((nobody.uid, nobody.gid), (65534, 65534));
        let unlisted = RunAs::lookup_in("4242", PASSWD, GROUP).unwrap();
        assert_eq!(
            (unlisted.uid, unlisted.gid, unlisted.groups),
            (4242, 4242, vec![4242])
        );
        let e = RunAs::lookup_in("nosuch", PASSWD, GROUP).unwrap_err();
        assert_eq!(e.to_string(), "--user nosuch: no such user in /etc/passwd");
    }
}
