//! Per-isolate coalescing of refreshes (docs/api.md section 7, "Refresh races").
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
    /// A leader is working: which one, and since when (ms).
    Running {
        leader: u64,
        since_ms: u64,
    },
    Done {
        value: V,
        at: u64,
        reusable: bool,
    },
}

/// Coalesces concurrent work per key and remembers successful results briefly.
pub struct Coalescer<V> {
    slots: RefCell<HashMap<Key, Slot<V>>>,
    next_leader: std::cell::Cell<u64>,
}

impl<V> Default for Coalescer<V> {
    fn default() -> Self {
        Self { slots: RefCell::new(HashMap::new()), next_leader: std::cell::Cell::new(1) }
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

/// The timing of a [`Coalescer::run`]: the clock, the timer between looks, and how long
/// a leader may take before it is presumed gone.
pub struct Timing<C, T> {
    /// Current time in milliseconds.
    pub clock: C,
    /// A short timer ([`WAIT_TICK_MS`]) awaited between looks.
    pub tick: T,
    /// A leader running longer than this (ms) is presumed gone (its request was
    /// cancelled: in Workers a cancelled request's future is never resumed nor dropped)
    /// and the next request takes its place. Must exceed the longest legitimate work.
    pub leader_deadline_ms: u64,
}

impl<V: Clone + Reusable> Coalescer<V> {
    /// Run `work` for `key` unless the same key is already running (then wait for its
    /// result) or finished successfully within [`REUSE_SECONDS`] (then reuse it).
    /// A leader slot older than the deadline is taken over, so nothing waits forever.
    /// Returns the value and whether this call did the work.
    pub async fn run<F, Fut, C, T, TickFut>(&self, key: Key, now: u64, work: F, timing: Timing<C, T>) -> (V, bool)
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = V>,
        C: Fn() -> u64,
        T: Fn() -> TickFut,
        TickFut: Future<Output = ()>,
    {
        let mut waited = false;
        let leader = loop {
            let now_ms = (timing.clock)();
            let running = {
                let mut slots = self.slots.borrow_mut();
                match slots.get(&key) {
                    Some(Slot::Done { value, at, reusable })
                        if (*reusable && now.saturating_sub(*at) <= REUSE_SECONDS) || waited =>
                    {
                        return (value.clone(), false);
                    }
                    Some(Slot::Running { since_ms, .. })
                        if now_ms.saturating_sub(*since_ms) <= timing.leader_deadline_ms =>
                    {
                        true
                    }
                    stale => {
                        if matches!(stale, Some(Slot::Running { .. })) {
                            log::warn!("a refresh leader did not finish within its deadline; taking over");
                        }
                        self.prune(&mut slots, now);
                        let leader = self.next_leader.get();
                        self.next_leader.set(leader + 1);
                        slots.insert(key, Slot::Running { leader, since_ms: now_ms });
                        false
                    }
                }
            };
            if !running {
                break self.next_leader.get() - 1;
            }
            (timing.tick)().await;
            waited = true;
        };
        let mut guard = LeaderGuard { coalescer: self, key, leader, finished: false };
        let value = work().await;
        guard.finish(value.clone(), now);
        (value, true)
    }

    /// A successful result for `key` finished within [`REUSE_SECONDS`], if any (what a
    /// request carrying that key would be given), without running anything.
    pub fn recent(&self, key: &Key, now: u64) -> Option<V> {
        match self.slots.borrow().get(key) {
            Some(Slot::Done { value, at, reusable: true }) if now.saturating_sub(*at) <= REUSE_SECONDS => {
                Some(value.clone())
            }
            _ => None,
        }
    }

    /// Forget the finished result for `key` (a running one stays): the next [`run`] of
    /// the key does the work again.
    ///
    /// [`run`]: Coalescer::run
    pub fn forget(&self, key: &Key) {
        let mut slots = self.slots.borrow_mut();
        if matches!(slots.get(key), Some(Slot::Done { .. })) {
            slots.remove(key);
        }
    }

    fn prune(&self, slots: &mut HashMap<Key, Slot<V>>, now: u64) {
        slots.retain(|_, s| match s {
            Slot::Running { .. } => true,
            Slot::Done { at, .. } => now.saturating_sub(*at) <= REUSE_SECONDS,
        });
        if slots.len() >= MAX_ENTRIES {
            slots.retain(|_, s| matches!(s, Slot::Running { .. }));
        }
    }
}

/// Makes sure waiters are released if the leader's future is dropped.
struct LeaderGuard<'a, V> {
    coalescer: &'a Coalescer<V>,
    key: Key,
    leader: u64,
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
            // Dropped unfinished: let a waiter become the new leader, unless one already
            // took over this slot.
            let mut slots = self.coalescer.slots.borrow_mut();
            if matches!(slots.get(&self.key), Some(Slot::Running { leader, .. }) if *leader == self.leader) {
                slots.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::yield_once;

    type Tick = fn() -> std::pin::Pin<Box<dyn Future<Output = ()>>>;

    /// Timing for tests: a clock that stands still unless `clock` moves.
    fn timing(clock: &Cell<u64>) -> Timing<impl Fn() -> u64 + '_, Tick> {
        fn tick() -> std::pin::Pin<Box<dyn Future<Output = ()>>> {
            Box::pin(yield_once())
        }
        Timing { clock: move || clock.get(), tick, leader_deadline_ms: 1_000 }
    }
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
        let clock = Cell::new(0);
        let calls = Cell::new(0);
        let gate = Cell::new(false);
        let key = key_of("rt-1");
        let work = || async {
            calls.set(calls.get() + 1);
            gated(&gate).await;
            Ok(7)
        };
        let mut a = pin!(c.run(key, 100, work, timing(&clock)));
        let mut b = pin!(c.run(key, 100, work, timing(&clock)));
        let mut cx = Context::from_waker(Waker::noop());
        assert!(a.as_mut().poll(&mut cx).is_pending());
        assert!(b.as_mut().poll(&mut cx).is_pending());
        gate.set(true);
        assert_eq!(a.as_mut().poll(&mut cx), Poll::Ready((Ok(7), true)));
        assert_eq!(b.as_mut().poll(&mut cx), Poll::Ready((Ok(7), false)));
        assert_eq!(calls.get(), 1);
        // Later, with the old token: reused within the window, not after it.
        assert_eq!(crate::testutil::block_on(c.run(key, 130, work, timing(&clock))), (Ok(7), false));
        assert_eq!(calls.get(), 1);
        assert_eq!(crate::testutil::block_on(c.run(key, 131, work, timing(&clock))), (Ok(7), true));
        assert_eq!(calls.get(), 2);
    }

    #[test]
    fn failures_are_shared_but_not_reused() {
        let c: Coalescer<Result<u32, String>> = Coalescer::default();
        let clock = Cell::new(0);
        let calls = Cell::new(0);
        let key = key_of("rt-2");
        let fail = || async {
            calls.set(calls.get() + 1);
            Err::<u32, _>("down".to_string())
        };
        assert_eq!(crate::testutil::block_on(c.run(key, 1, fail, timing(&clock))).0, Err("down".into()));
        assert_eq!(crate::testutil::block_on(c.run(key, 1, fail, timing(&clock))).0, Err("down".into()));
        assert_eq!(calls.get(), 2);
    }

    #[test]
    fn cancelled_leader_hands_over() {
        let c: Coalescer<Result<u32, String>> = Coalescer::default();
        let clock = Cell::new(0);
        let key = key_of("rt-3");
        let mut cx = Context::from_waker(Waker::noop());
        {
            let mut leader = Box::pin(c.run(key, 1, std::future::pending::<Result<u32, String>>, timing(&clock)));
            assert!(leader.as_mut().poll(&mut cx).is_pending());
        } // dropped: cancelled
        assert_eq!(crate::testutil::block_on(c.run(key, 1, || async { Ok(9) }, timing(&clock))), (Ok(9), true));
    }

    #[test]
    fn a_leader_that_never_finishes_is_taken_over_after_its_deadline() {
        // In Workers a cancelled request's future is neither resumed nor dropped: its slot
        // stays "running" unless someone takes it over.
        let c: Coalescer<Result<u32, String>> = Coalescer::default();
        let clock = Cell::new(0);
        let key = key_of("rt-4");
        let mut cx = Context::from_waker(Waker::noop());
        let mut wedged = Box::pin(c.run(key, 1, std::future::pending::<Result<u32, String>>, timing(&clock)));
        assert!(wedged.as_mut().poll(&mut cx).is_pending());
        // A waiter within the deadline keeps waiting...
        let calls = Cell::new(0);
        let work = || async {
            calls.set(calls.get() + 1);
            Ok(5)
        };
        let mut waiter = Box::pin(c.run(key, 1, work, timing(&clock)));
        for _ in 0..5 {
            assert!(waiter.as_mut().poll(&mut cx).is_pending());
        }
        assert_eq!(calls.get(), 0);
        // ...and takes over once the leader is past it.
        clock.set(1_001);
        assert_eq!(waiter.as_mut().poll(&mut cx), Poll::Ready((Ok(5), true)));
        assert_eq!(calls.get(), 1);
        // The wedged leader, if it is ever dropped, does not disturb the result.
        drop(wedged);
        assert_eq!(crate::testutil::block_on(c.run(key, 1, work, timing(&clock))), (Ok(5), false));
        assert_eq!(calls.get(), 1);
    }
}
