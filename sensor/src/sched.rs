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

/// The slice the latency-sensitive threads ask for: the kernel's minimum.
const SHORT_SLICE_NS: u64 = 100_000;

/// Asks for a short slice for the calling thread (normal policy, nice level kept). Returns
/// whether the kernel took it: older kernels ignore the runtime of a normal thread or refuse
/// the call, and the thread then runs as before.
#[allow(unsafe_code)] // A system call libc and rustix have no safe form of: see SAFETY below.
pub fn request_short_slice() -> bool {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: `sched_attr` is plain data, zeroed then filled; the kernel reads `size`
        // bytes of it through the pointer, which is valid for the whole call; pid 0 is the
        // calling thread and flags 0 the only defined value.
        unsafe {
            let mut attr: libc::sched_attr = std::mem::zeroed();
            attr.size = std::mem::size_of::<libc::sched_attr>() as u32;
            attr.sched_policy = libc::SCHED_OTHER as u32;
            attr.sched_nice = libc::getpriority(libc::PRIO_PROCESS, 0);
            attr.sched_runtime = SHORT_SLICE_NS;
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
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads the calling thread's slice back (`sched_getattr`): the kernel keeps what was asked
    /// when it supports custom slices, and the thread stays under the normal policy.
    #[test]
    #[allow(unsafe_code)] // Reading the attributes back: see SAFETY below.
    fn a_short_slice_is_taken_and_the_policy_stays_normal() {
        let handle = std::thread::spawn(|| {
            let taken = request_short_slice();
            // SAFETY: as above; `sched_getattr` writes at most `size` bytes into `attr`.
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
            (taken, rc, attr.sched_policy, attr.sched_runtime)
        });
        let (taken, rc, policy, runtime) = handle.join().expect("thread");
        assert_eq!(rc, 0, "sched_getattr");
        assert_eq!(policy, libc::SCHED_OTHER as u32);
        // Custom slices came with Linux 6.12: there the slice must be the one asked for.
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").expect("osrelease");
        let mut numbers = release
            .split(|c: char| !c.is_ascii_digit())
            .map(|n| n.parse::<u32>().unwrap_or(0));
        let version = (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0));
        if version >= (6, 12) {
            assert!(taken, "kernel {release} refused a short slice");
            assert_eq!(runtime, SHORT_SLICE_NS, "kernel {release}");
        }
    }
}
