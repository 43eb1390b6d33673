//! Scheduling of the threads an alert passes through on its way out.
//!
//! Linux's EEVDF scheduler lets a running thread finish its slice (0.75 ms, scaled by the
//! number of CPUs) before a thread it woke gets the CPU, unless the woken thread asked for a
//! shorter slice (`sched_setattr` with `sched_runtime`, Linux 6.12 and later). The event
//! writer and its output threads do a few microseconds of work per wake-up; with the default
//! slice an alert waited, at every hand-over whose CPU was busy with capture or a worker, for
//! the rest of that slice: measured on the 2-core VM at 1 Mpps, the file's reader woke 0.65 to
//! 0.73 ms after the write at the median (a uniform wait over a slice), more than every
//! other hop of the alert together. A short slice lets them preempt at once; they give the CPU
//! back as soon as they block, so the busy threads lose only that time.
//!
//! A short slice is not enough on a busy core. A thread preempted in the middle of its work
//! (the writer, by the reader its write woke) is *runnable* but no longer woken, and EEVDF
//! then often picks the capture thread, which had waited: the writer sat behind it until the
//! next tick (4 ms at HZ 250) while the other core went idle (it had just run there, so load
//! balancing left it as cache-hot). Traced on the 2-core VM, that was every warm-pass alert
//! over 1 ms in `bench-mirror`. A lower nice (more weight) keeps such a thread eligible and
//! picked first, so the writer and output threads also ask for `[output] nice` (−10 by
//! default). They only use the CPU when they have events to write; a writer that cannot keep
//! up still holds producers back through its bounded queue.

/// The slice the latency-sensitive threads ask for: the kernel's minimum.
const SHORT_SLICE_NS: u64 = 100_000;

/// `[output] nice` unless configured: the writer's weight is then about nine times a capture
/// thread's (the kernel's table: 9548 against 1024).
pub const OUTPUT_NICE_DEFAULT: i32 = -10;

/// The lowest nice `[output] nice` may ask for.
pub const NICE_MIN: i32 = -20;

/// The highest nice the kernel has.
const NICE_MAX: i32 = 19;

/// What the kernel granted a latency-sensitive thread (read back after asking); the default,
/// nice 0 without the short slice, is what a thread has when nothing could be read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LatencyGrant {
    /// The thread's nice level now.
    pub nice: i32,
    /// Whether it runs with the short slice.
    pub short_slice: bool,
}

/// Asks for a short slice for the calling thread (normal policy, nice level kept). Returns
/// whether the kernel took it: older kernels ignore the runtime of a normal thread or refuse
/// the call, and the thread then runs as before.
pub fn request_short_slice() -> bool {
    set_attributes(current_nice(), true)
}

/// Asks for a short slice and nice `nice` for the calling thread (normal policy). A nice the
/// process may not take (no `CAP_SYS_NICE`, and an `RLIMIT_NICE` that does not allow it)
/// leaves the thread's own, with the short slice still asked for. Returns what it got.
pub fn request_latency_priority(nice: i32) -> LatencyGrant {
    let nice = nice.clamp(NICE_MIN, NICE_MAX);
    if !set_attributes(nice, true) {
        request_short_slice();
    }
    granted()
}

/// Lowers the calling thread's nice to `nice` while the process still may (before a live
/// sensor drops its privileges), so that the threads it then starts (the event writer and
/// its outputs) inherit the level they could no longer take themselves. Returns the level
/// to put back with [`restore_nice`] once they are started; `None` when the kernel refused
/// (nothing changed) or nothing needed lowering.
pub fn lower_nice_for_children(nice: i32) -> Option<i32> {
    let own = current_nice();
    let nice = nice.clamp(NICE_MIN, NICE_MAX);
    (nice < own && set_attributes(nice, false)).then_some(own)
}

/// Puts the calling thread's nice back to `level` (raising it needs no privilege).
pub fn restore_nice(level: i32) {
    set_attributes(level, false);
}

/// The calling thread's nice level.
fn current_nice() -> i32 {
    granted().nice
}

/// Sets the calling thread's nice and (when `short`) the short slice under the normal
/// policy. Returns whether the kernel took them.
#[allow(unsafe_code)] // A system call libc and rustix have no safe form of: see SAFETY below.
fn set_attributes(nice: i32, short: bool) -> bool {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: `sched_attr` is plain data, zeroed then filled; the kernel reads `size`
        // bytes of it through the pointer, which is valid for the whole call; pid 0 is the
        // calling thread and flags 0 the only defined value.
        unsafe {
            let mut attr: libc::sched_attr = std::mem::zeroed();
            attr.size = std::mem::size_of::<libc::sched_attr>() as u32;
            attr.sched_policy = libc::SCHED_OTHER as u32;
            attr.sched_nice = nice;
            attr.sched_runtime = if short { SHORT_SLICE_NS } else { 0 };
            libc::syscall(
                libc::SYS_sched_setattr,
                0,
                &attr as *const libc::sched_attr,
                0,
            ) == 0
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (nice, short);
        false
    }
}

/// The calling thread's nice and slice as the kernel reports them.
fn granted() -> LatencyGrant {
    #[cfg(target_os = "linux")]
    if let Some(attr) = attributes() {
        return LatencyGrant {
            nice: attr.sched_nice,
            short_slice: attr.sched_runtime == SHORT_SLICE_NS,
        };
    }
    LatencyGrant::default()
}

/// The calling thread's scheduling attributes (`sched_getattr`); `None` if refused.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)] // As above: see SAFETY below.
fn attributes() -> Option<libc::sched_attr> {
    // SAFETY: `sched_getattr` writes at most `size` bytes into `attr`, which lives for the
    // whole call; pid 0 is the calling thread.
    let (rc, attr) = unsafe {
        let mut attr: libc::sched_attr = std::mem::zeroed();
        let size = std::mem::size_of::<libc::sched_attr>() as u32;
        let rc = libc::syscall(
            libc::SYS_sched_getattr,
            0,
            &mut attr as *mut libc::sched_attr,
            size,
            0,
        );
        (rc, attr)
    };
    (rc == 0).then_some(attr)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads the calling thread's slice back (`sched_getattr`): the kernel keeps what was asked
    /// when it supports custom slices, and the thread stays under the normal policy.
    #[test]
    fn a_short_slice_is_taken_and_the_policy_stays_normal() {
        let handle = std::thread::spawn(|| (request_short_slice(), attributes()));
        let (taken, attr) = handle.join().expect("thread");
        let attr = attr.expect("sched_getattr");
        assert_eq!(attr.sched_policy, libc::SCHED_OTHER as u32);
        // Custom slices came with Linux 6.12: there the slice must be the one asked for.
        if custom_slices() {
            assert!(taken, "the kernel refused a short slice");
            assert_eq!(attr.sched_runtime, SHORT_SLICE_NS);
        }
    }

    /// Whether the process holds capability `bit` (effective set).
    fn has_capability(bit: u32) -> bool {
        crate::privdrop::credentials().cap_eff & (1 << bit) != 0
    }

    /// Whether this process may lower a thread's nice to `nice`: `CAP_SYS_NICE`, or an
    /// `RLIMIT_NICE` of at least `20 - nice`.
    fn may_take(nice: i32) -> bool {
        const CAP_SYS_NICE: u32 = 23;
        let limit = rustix::process::getrlimit(rustix::process::Resource::Nice);
        has_capability(CAP_SYS_NICE)
            || limit
                .current
                .is_none_or(|c| i64::try_from(c).unwrap_or(i64::MAX) >= 20 - i64::from(nice))
    }

    fn custom_slices() -> bool {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").expect("osrelease");
        let mut numbers = release
            .split(|c: char| !c.is_ascii_digit())
            .map(|n| n.parse::<u32>().unwrap_or(0));
        (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0)) >= (6, 12)
    }

    /// A higher nice is every thread's right: it is taken, with the short slice, and read
    /// back as the thread's own (another thread keeps its level).
    #[test]
    fn a_higher_nice_is_taken_with_the_short_slice() {
        let before = granted().nice;
        let got = std::thread::spawn(|| request_latency_priority(7))
            .join()
            .expect("thread");
        assert_eq!(got.nice, 7);
        assert_eq!(got.short_slice, custom_slices());
        assert_eq!(granted().nice, before, "the calling thread's level changed");
        // Out of range asks are clamped to the kernel's range, not refused.
        let got = std::thread::spawn(|| request_latency_priority(40))
            .join()
            .expect("thread");
        assert_eq!(got.nice, 19);
    }

    /// A lower nice is taken when the process may (`CAP_SYS_NICE`, or `RLIMIT_NICE`);
    /// otherwise the thread keeps its level and still gets the short slice.
    #[test]
    fn a_lower_nice_is_taken_when_allowed_and_refused_cleanly_otherwise() {
        let may = may_take(-4);
        let before = std::thread::spawn(|| granted().nice)
            .join()
            .expect("thread");
        let got = std::thread::spawn(|| request_latency_priority(-4))
            .join()
            .expect("thread");
        assert_eq!(got.nice, if may { -4 } else { before });
        assert_eq!(got.short_slice, custom_slices());
    }

    /// Threads started while the caller's level is lowered inherit it; the caller gets its
    /// own back, and threads started after that have it too.
    #[test]
    fn children_inherit_a_lowered_level_and_the_caller_gets_its_own_back() {
        let (child, after, later, may) = std::thread::spawn(move || {
            let own = granted().nice;
            let may = may_take(own - 3);
            let restore = lower_nice_for_children(own - 3);
            assert_eq!(restore.is_some(), may);
            let child = std::thread::spawn(|| granted().nice).join().expect("child");
            if let Some(level) = restore {
                restore_nice(level);
            }
            let later = std::thread::spawn(|| granted().nice).join().expect("later");
            (child - own, granted().nice - own, later - own, may)
        })
        .join()
        .expect("thread");
        assert_eq!(child, if may { -3 } else { 0 });
        assert_eq!((after, later), (0, 0));
        // Nothing to lower: no change, nothing to restore.
        let unchanged = std::thread::spawn(|| lower_nice_for_children(granted().nice + 1))
            .join()
            .expect("thread");
        assert_eq!(unchanged, None);
    }
}
