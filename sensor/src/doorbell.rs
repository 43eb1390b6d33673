//! A bounded channel whose receiving thread sleeps without spinning: crossbeam's channel,
//! with a doorbell its senders ring.
//!
//! crossbeam's blocking receive spins, then calls `sched_yield` four times before it parks.
//! On a busy core that is the slow path: Linux's EEVDF scheduler moves a yielding thread's
//! deadline back and runs the thread it yielded to for the rest of that one's slice, and the
//! yielder stays runnable, so no wake-up lets it preempt. Measured on the 2-core VM at 1 Mpps
//! (`bench-mirror`): the event writer yielded to the capture thread and got the core back
//! 1.3 ms later, with 64 alerts waiting in its queue. A thread parked here is woken by the
//! first message instead (with the short slice of [`crate::sched`], it then preempts).
//!
//! The event writer's queue is one (a few microseconds of work per wake-up, latency first).
//! The workers' queues are not: a worker that parked when its queue ran dry cost the 64-byte
//! flood 5 to 30 % of its rate, the next batch waiting for its wake-up, where a yielding
//! worker is still on its core.
//!
//! The protocol is the store-buffer one: the consumer says it sleeps, then looks at its
//! queue once more; a producer puts its message in the queue, then looks whether the
//! consumer sleeps. A sequentially consistent fence on each side makes sure that at least
//! one of them sees the other's write, so a message never waits for a wake-up that nobody
//! sends. A stale wake-up only makes the consumer look at its queue once more.

use std::sync::atomic::{AtomicBool, Ordering, fence};
use std::sync::{Arc, OnceLock};
use std::thread::Thread;
use std::time::Instant;

use crossbeam_channel::{
    Receiver, RecvError, RecvTimeoutError, SendError, Sender, TryRecvError, TrySendError,
};

/// A bounded channel (crossbeam's) whose one receiving thread parks while it is empty.
pub fn bounded<T>(capacity: usize) -> (BellSender<T>, BellReceiver<T>) {
    let (tx, rx) = crossbeam_channel::bounded(capacity);
    let bell = Arc::new(Doorbell::new());
    (
        BellSender {
            tx: Some(tx),
            bell: Arc::clone(&bell),
        },
        BellReceiver { rx, bell },
    )
}

/// The sending side: rings the receiver's bell after every message, and once more when
/// dropped (the receiver learns that its senders are gone).
#[derive(Debug)]
pub struct BellSender<T> {
    /// `None` only while dropping.
    tx: Option<Sender<T>>,
    bell: Arc<Doorbell>,
}

impl<T> BellSender<T> {
    /// Sends, waiting for room.
    pub fn send(&self, msg: T) -> Result<(), SendError<T>> {
        let Some(tx) = self.tx.as_ref() else {
            return Err(SendError(msg));
        };
        let sent = tx.send(msg);
        self.bell.ring();
        sent
    }

    /// Sends if there is room now.
    pub fn try_send(&self, msg: T) -> Result<(), TrySendError<T>> {
        let Some(tx) = self.tx.as_ref() else {
            return Err(TrySendError::Disconnected(msg));
        };
        let sent = tx.try_send(msg);
        if sent.is_ok() {
            self.bell.ring();
        }
        sent
    }

    /// Rings without sending: the receiver looks at its queue and whatever else its
    /// condition reads (a flag set beside the channel).
    pub fn ring(&self) {
        self.bell.ring();
    }
}

impl<T> Clone for BellSender<T> {
    fn clone(&self) -> BellSender<T> {
        BellSender {
            tx: self.tx.clone(),
            bell: Arc::clone(&self.bell),
        }
    }
}

impl<T> Drop for BellSender<T> {
    fn drop(&mut self) {
        drop(self.tx.take());
        self.bell.ring();
    }
}

/// The receiving side. Only one thread receives (the bell wakes one thread): it is not
/// `Clone`, and the first thread that waits on it is the one woken from then on.
#[derive(Debug)]
pub struct BellReceiver<T> {
    rx: Receiver<T>,
    bell: Arc<Doorbell>,
}

impl<T> BellReceiver<T> {
    /// Waits for a message; fails once the queue is empty and every sender is gone.
    pub fn recv(&self) -> Result<T, RecvError> {
        match self.recv_until(None) {
            Ok(m) => Ok(m),
            Err(_) => Err(RecvError),
        }
    }

    /// Waits for a message until `deadline`.
    pub fn recv_deadline(&self, deadline: Instant) -> Result<T, RecvTimeoutError> {
        self.recv_until(Some(deadline))
    }

    fn recv_until(&self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        self.bell
            .wait(
                || match self.rx.try_recv() {
                    Ok(m) => Some(Ok(m)),
                    Err(TryRecvError::Empty) => None,
                    Err(TryRecvError::Disconnected) => Some(Err(RecvTimeoutError::Disconnected)),
                },
                deadline,
            )
            .unwrap_or(Err(RecvTimeoutError::Timeout))
    }

    /// A message if one is queued.
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        self.rx.try_recv()
    }
}

/// The consumer's side and the producers' bell, shared.
#[derive(Debug, Default)]
struct Doorbell {
    /// The consumer is about to park, or parked.
    sleeping: AtomicBool,
    /// The consumer thread, set by [`Doorbell::wait`] on its first call.
    consumer: OnceLock<Thread>,
}

impl Doorbell {
    /// A bell for a consumer that has not waited yet.
    fn new() -> Doorbell {
        Doorbell::default()
    }

    /// Called by a producer after it put a message in the queue (or dropped its sender):
    /// wakes the consumer if it sleeps.
    #[inline]
    fn ring(&self) {
        fence(Ordering::SeqCst);
        if self.sleeping.load(Ordering::Relaxed) {
            if let Some(t) = self.consumer.get() {
                t.unpark();
            }
        }
    }

    /// Called by the consumer (always the same thread): returns the first `Some` of `poll`,
    /// parking between looks, or `None` once `deadline` has passed.
    fn wait<T>(&self, mut poll: impl FnMut() -> Option<T>, deadline: Option<Instant>) -> Option<T> {
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
    use std::sync::atomic::AtomicU64;
    use std::time::Duration;

    /// Senders that send as fast as they can, and pause now and then so the receiver parks:
    /// the receiver gets every message, in order per sender, and never sleeps through one (a
    /// lost wake-up would hang the test: the receiver waits without a deadline), then learns
    /// that the senders are gone.
    #[test]
    fn every_message_wakes_the_receiver_and_the_last_drop_ends_it() {
        const PER_SENDER: u64 = 20_000;
        let (tx, rx) = bounded::<(u8, u64)>(4);
        let senders: Vec<_> = (0..3u8)
            .map(|p| {
                let tx = tx.clone();
                std::thread::spawn(move || {
                    for i in 0..PER_SENDER {
                        // `send` waits on a full queue: the receiver must be awake to drain.
                        tx.send((p, i)).unwrap();
                        if i % 1_000 == 0 {
                            std::thread::sleep(Duration::from_micros(200));
                        }
                    }
                })
            })
            .collect();
        drop(tx);
        let mut next = [0u64; 3];
        while let Ok((p, i)) = rx.recv() {
            assert_eq!(i, next[usize::from(p)], "sender {p} out of order");
            next[usize::from(p)] += 1;
        }
        for s in senders {
            s.join().unwrap();
        }
        assert_eq!(next, [PER_SENDER; 3]);
    }

    /// `try_send` rings too; a receiver parked with a deadline wakes for it at once.
    #[test]
    fn try_send_wakes_a_receiver_waiting_with_a_deadline() {
        let (tx, rx) = bounded::<u32>(1);
        let sender = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            tx.try_send(7).unwrap();
            // Kept alive: the receiver must wake for the message, not for the drop.
            std::thread::sleep(Duration::from_millis(500));
        });
        let started = Instant::now();
        assert_eq!(rx.recv_deadline(started + Duration::from_secs(5)), Ok(7));
        assert!(started.elapsed() < Duration::from_millis(400));
        sender.join().unwrap();
        assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
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
