//! Per-isolate coalescing of refreshes (API.md section 7, "Refresh races").
//!
//! Requests of one session that need a refresh at the same moment carry the same refresh
//! token. The first becomes the leader and calls the token endpoint; the others wait for
//! its result. A successful result is kept for [`REUSE_SECONDS`] under the hash of the old
//! refresh token, so a request that arrives a little later with the old cookie (the
//! provider has rotated the refresh token and would reject it) gets the winner's tokens
//! instead of logging the user out. Failures are shared with the waiting requests only.
//!
//! Waiters poll on their own timer ([`WAIT_TICK_MS`]) instead of being woken by the
//! leader: in the Workers runtime every request has its own I/O context, and a promise
//! settled from another request's context is seen as a hung request.

use sha2::{Digest, Sha256};
use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;

/// How long a successful refresh result is reused for requests carrying the old token.
pub const REUSE_SECONDS: u64 = 30;
/// How often a waiting request looks whether the leader has finished.
pub const WAIT_TICK_MS: u32 = 10;
/// Most remembered results; older ones are dropped first when full.
pub const MAX_ENTRIES: usize = 10_000;

/// The key of a refresh: SHA-256 of the refresh token (the token itself is not kept).
pub type Key = [u8; 32];

/// The coalescing key of `refresh_token`.
pub fn key_of(refresh_token: &str) -> Key {
    Sha256::digest(refresh_token.as_bytes()).into()
}

enum Slot<V> {
    Running,
    Done { value: V, at: u64, reusable: bool },
}

/// Coalesces concurrent work per key and remembers successful results briefly.
pub struct Coalescer<V> {
    slots: RefCell<HashMap<Key, Slot<V>>>,
}

impl<V> Default for Coalescer<V> {
    fn default() -> Self {
        Self { slots: RefCell::new(HashMap::new()) }
    }
}

/// Whether a result may be reused by requests that arrive after it was produced.
pub trait Reusable {
    /// `true` for successes.
    fn reusable(&self) -> bool;
}

impl<T, E> Reusable for Result<T, E> {
    fn reusable(&self) -> bool {
        self.is_ok()
    }
}

impl<V: Clone + Reusable> Coalescer<V> {
    /// Run `work` for `key` unless the same key is already running (then wait for its
    /// result) or finished successfully within [`REUSE_SECONDS`] (then reuse it).
    /// Waiting is done by awaiting `tick()` (a short timer) between looks.
    /// Returns the value and whether this call did the work.
    pub async fn run<F, Fut, T, TickFut>(&self, key: Key, now: u64, work: F, tick: T) -> (V, bool)
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = V>,
        T: Fn() -> TickFut,
        TickFut: Future<Output = ()>,
    {
        let mut waited = false;
        loop {
            let running = {
                let mut slots = self.slots.borrow_mut();
                match slots.get(&key) {
                    Some(Slot::Done { value, at, reusable })
                        if (*reusable && now.saturating_sub(*at) <= REUSE_SECONDS) || waited =>
                    {
                        return (value.clone(), false);
                    }
                    Some(Slot::Running) => true,
                    _ => {
                        self.prune(&mut slots, now);
                        slots.insert(key, Slot::Running);
                        false
                    }
                }
            };
            if !running {
                break;
            }
            tick().await;
            waited = true;
        }
        let mut guard = LeaderGuard { coalescer: self, key, finished: false };
        let value = work().await;
        guard.finish(value.clone(), now);
        (value, true)
    }

    fn prune(&self, slots: &mut HashMap<Key, Slot<V>>, now: u64) {
        slots.retain(|_, s| match s {
            Slot::Running => true,
            Slot::Done { at, .. } => now.saturating_sub(*at) <= REUSE_SECONDS,
        });
        if slots.len() >= MAX_ENTRIES {
            slots.retain(|_, s| matches!(s, Slot::Running));
        }
    }
}

/// Makes sure waiters are released even if the leader's request is cancelled.
struct LeaderGuard<'a, V> {
    coalescer: &'a Coalescer<V>,
    key: Key,
    finished: bool,
}

impl<V: Reusable> LeaderGuard<'_, V> {
    fn finish(&mut self, value: V, now: u64) {
        self.finished = true;
        let reusable = value.reusable();
        self.coalescer.slots.borrow_mut().insert(self.key, Slot::Done { value, at: now, reusable });
    }
}

impl<V> Drop for LeaderGuard<'_, V> {
    fn drop(&mut self) {
        if !self.finished {
            // Cancelled: let a waiter become the new leader.
            self.coalescer.slots.borrow_mut().remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::yield_once;
    use std::cell::Cell;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    /// A future that stays pending until `gate` opens.
    async fn gated(gate: &Cell<bool>) {
        std::future::poll_fn(|_| if gate.get() { Poll::Ready(()) } else { Poll::Pending }).await
    }

    #[test]
    fn concurrent_callers_share_one_call_and_later_ones_reuse_success() {
        let c: Coalescer<Result<u32, String>> = Coalescer::default();
        let calls = Cell::new(0);
        let gate = Cell::new(false);
        let key = key_of("rt-1");
        let work = || async {
            calls.set(calls.get() + 1);
            gated(&gate).await;
            Ok(7)
        };
        let mut a = pin!(c.run(key, 100, work, yield_once));
        let mut b = pin!(c.run(key, 100, work, yield_once));
        let mut cx = Context::from_waker(Waker::noop());
        assert!(a.as_mut().poll(&mut cx).is_pending());
        assert!(b.as_mut().poll(&mut cx).is_pending());
        gate.set(true);
        assert_eq!(a.as_mut().poll(&mut cx), Poll::Ready((Ok(7), true)));
        assert_eq!(b.as_mut().poll(&mut cx), Poll::Ready((Ok(7), false)));
        assert_eq!(calls.get(), 1);
        // Later, with the old token: reused within the window, not after it.
        assert_eq!(crate::testutil::block_on(c.run(key, 130, work, yield_once)), (Ok(7), false));
        assert_eq!(calls.get(), 1);
        assert_eq!(crate::testutil::block_on(c.run(key, 131, work, yield_once)), (Ok(7), true));
        assert_eq!(calls.get(), 2);
    }

    #[test]
    fn failures_are_shared_but_not_reused() {
        let c: Coalescer<Result<u32, String>> = Coalescer::default();
        let calls = Cell::new(0);
        let key = key_of("rt-2");
        let fail = || async {
            calls.set(calls.get() + 1);
            Err::<u32, _>("down".to_string())
        };
        assert_eq!(crate::testutil::block_on(c.run(key, 1, fail, yield_once)).0, Err("down".into()));
        assert_eq!(crate::testutil::block_on(c.run(key, 1, fail, yield_once)).0, Err("down".into()));
        assert_eq!(calls.get(), 2);
    }

    #[test]
    fn cancelled_leader_hands_over() {
        let c: Coalescer<Result<u32, String>> = Coalescer::default();
        let key = key_of("rt-3");
        let mut cx = Context::from_waker(Waker::noop());
        {
            let mut leader = Box::pin(c.run(key, 1, std::future::pending::<Result<u32, String>>, yield_once));
            assert!(leader.as_mut().poll(&mut cx).is_pending());
        } // dropped: cancelled
        assert_eq!(crate::testutil::block_on(c.run(key, 1, || async { Ok(9) }, yield_once)), (Ok(9), true));
    }
}
