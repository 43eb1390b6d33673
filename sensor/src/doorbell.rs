//! A consumer thread that sleeps without spinning, and the bell its producers ring.
//!
//! crossbeam's blocking receive spins, then calls `sched_yield` four times before it parks.
//! On a busy core that is the slow path: Linux's EEVDF scheduler moves a yielding thread's
//! deadline back and runs the thread it yielded to for the rest of that one's slice, and the
//! yielder stays runnable, so no wake-up lets it preempt. Measured on the 2-core VM at 1 Mpps
//! (`bench-mirror`): the event writer yielded to the capture thread and got the core back
//! 1.3 ms later, with 64 alerts waiting in its queue. A thread parked here is woken by the
//! first message instead (with the short slice of [`crate::sched`], it then preempts).
//!
//! The protocol is the store-buffer one: the consumer says it sleeps, then looks at its
//! queue once more; a producer puts its message in the queue, then looks whether the
//! consumer sleeps. A sequentially consistent fence on each side makes sure that at least
//! one of them sees the other's write, so a message never waits for a wake-up that nobody
//! sends. A stale wake-up only makes the consumer look at its queue once more.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering, fence};
use std::thread::Thread;
use std::time::Instant;

/// The consumer's side and the producers' bell, shared.
#[derive(Debug, Default)]
pub struct Doorbell {
    /// The consumer is about to park, or parked.
    sleeping: AtomicBool,
    /// The consumer thread, set by [`Doorbell::wait`] on its first call.
    consumer: OnceLock<Thread>,
}

impl Doorbell {
    /// A bell for a consumer that has not waited yet.
    pub fn new() -> Doorbell {
        Doorbell::default()
    }

    /// Called by a producer after it put a message in the queue (or dropped its sender):
    /// wakes the consumer if it sleeps.
    #[inline]
    pub fn ring(&self) {
        fence(Ordering::SeqCst);
        if self.sleeping.load(Ordering::Relaxed) {
            if let Some(t) = self.consumer.get() {
                t.unpark();
            }
        }
    }

    /// Called by the consumer (always the same thread): returns the first `Some` of `poll`,
    /// parking between looks, or `None` once `deadline` has passed.
    pub fn wait<T>(
        &self,
        mut poll: impl FnMut() -> Option<T>,
        deadline: Option<Instant>,
    ) -> Option<T> {
        self.consumer.get_or_init(std::thread::current);
        loop {
            if let Some(v) = poll() {
                return Some(v);
            }
            self.sleeping.store(true, Ordering::Relaxed);
            fence(Ordering::SeqCst);
            let ready = poll();
            if ready.is_none() {
                match deadline {
                    None => std::thread::park(),
                    Some(at) => match at.checked_duration_since(Instant::now()) {
                        Some(left) if !left.is_zero() => std::thread::park_timeout(left),
                        _ => {
                            self.sleeping.store(false, Ordering::Relaxed);
                            return None;
                        }
                    },
                }
            }
            self.sleeping.store(false, Ordering::Relaxed);
            if ready.is_some() {
                return ready;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicU64;
    use std::time::Duration;

    /// Producers that ring after every message: the consumer sees every one of them, in
    /// order per producer, and never sleeps through a message (a lost wake-up would hang
    /// the test, which has no timeout on the consumer's side).
    #[test]
    fn every_message_wakes_the_consumer() {
        const PER_PRODUCER: u64 = 20_000;
        let bell = Arc::new(Doorbell::new());
        let (tx, rx) = crossbeam_channel::bounded::<(u8, u64)>(4);
        let producers: Vec<_> = (0..3u8)
            .map(|p| {
                let (tx, bell) = (tx.clone(), Arc::clone(&bell));
                std::thread::spawn(move || {
                    for i in 0..PER_PRODUCER {
                        // `send` blocks on a full queue: the consumer must be awake to drain.
                        tx.send((p, i)).unwrap();
                        bell.ring();
                        if i % 1_000 == 0 {
                            // Let the consumer catch up and park now and then.
                            std::thread::sleep(Duration::from_micros(200));
                        }
                    }
                    drop(tx);
                    bell.ring();
                })
            })
            .collect();
        drop(tx);
        let mut next = [0u64; 3];
        loop {
            let msg = bell.wait(
                || match rx.try_recv() {
                    Ok(m) => Some(Some(m)),
                    Err(crossbeam_channel::TryRecvError::Empty) => None,
                    Err(crossbeam_channel::TryRecvError::Disconnected) => Some(None),
                },
                None,
            );
            match msg {
                Some(Some((p, i))) => {
                    assert_eq!(i, next[usize::from(p)], "producer {p} out of order");
                    next[usize::from(p)] += 1;
                }
                Some(None) => break,
                None => unreachable!("no deadline"),
            }
        }
        for p in producers {
            p.join().unwrap();
        }
        assert_eq!(next, [PER_PRODUCER; 3]);
    }

    /// With a deadline and nothing to take, the consumer comes back after the deadline, not
    /// before, with `None`.
    #[test]
    fn a_deadline_ends_the_wait() {
        let bell = Doorbell::new();
        let polls = AtomicU64::new(0);
        let started = Instant::now();
        let got: Option<()> = bell.wait(
            || {
                polls.fetch_add(1, Ordering::Relaxed);
                None
            },
            Some(started + Duration::from_millis(20)),
        );
        assert_eq!(got, None);
        assert!(started.elapsed() >= Duration::from_millis(20));
        assert!(polls.load(Ordering::Relaxed) >= 2);
    }
}
