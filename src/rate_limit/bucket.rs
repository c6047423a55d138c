//! [`TokenBucket`]: the in-process [`Limiter`], a GCRA token bucket with a FIFO line.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::time::{Instant, Sleep};

use super::limiter::Limiter;
use super::quota::Quota;
use crate::error::Error;

const WAITING: u8 = 0;
const GRANTED: u8 = 1;
/// Cancelled, or granted and already handed out.
const DONE: u8 = 2;

/// After permits were granted to waiters in line, a caller arriving within this time may
/// catch up on permits that fell due meanwhile.
const GRACE_NS: u64 = 10_000_000;
/// The most catch-up such a caller may take: permits due at most this long ago.
const MAX_LAG_NS: u64 = 10_000_000;

/// An in-process token bucket with a first-come-first-served line; clones share one
/// budget.
///
/// # How it works
///
/// The bucket keeps a *theoretical arrival time* `tat` (GCRA, the "virtual scheduling"
/// form of a token bucket) as integer nanoseconds since the bucket was created, read from
/// [`tokio::time::Instant`] (so paused-time tests control it). With interval `T = 1/rate`
/// and burst `b`, a permit is available at `now` when `max(tat, now) + T <= now + b·T`;
/// taking it sets `tat = max(tat, now) + T`. There is no window to reset (a fixed window
/// lets two windows' worth through around its edge): the bound holds at every instant
/// (see "The bound" below).
///
/// Callers that find no permit, or find others already waiting, join a FIFO line. The
/// first in line sleeps until the next permit is due; whoever polls the bucket first
/// grants, in order, **every** permit that is due by then, and wakes the waiters it granted.
/// The others in line sleep until their estimated turn as well, so the line moves on even
/// when the task of the first in line is not being polled (its permit is granted and kept
/// for it).
///
/// # Catch-up
///
/// Tokio timers fire on millisecond ticks, and a woken task runs a little later still. A
/// permit granted late keeps its place in the schedule (`tat` advances by `T`, not from the
/// wake-up time), so at 5,000/s one wake-up grants the five permits due in that millisecond
/// to the waiters in line. When the line empties before the due permits are used up — one
/// caller taking permits one after the other, as [`fan_out`](crate::fan_out()) does through a
/// single service — a caller that comes back within 10 ms of such a grant may take the
/// permits that fell due in the last 10 ms and were not used. So the rate holds at high
/// rates: exactly 5,000 per second at 5,000/s, also when a busy machine runs the caller a
/// few milliseconds late.
///
/// The bound: counted from the first admission after the bucket was idle, at most
/// `burst + rate·t` permits are granted by time `t`, exactly. Within a shorter window,
/// permits that fell due earlier but were granted late can come together with the ones
/// due in the window: the waiters in line make up for the lateness of the wake-up that
/// served them (about a millisecond, more on an overloaded machine), and a caller that
/// comes back right after for at most 10 ms. At low rates that is nothing (at 10/s, 10 ms
/// is a tenth of a permit).
///
/// The state sits behind one mutex, held only for a few arithmetic steps; a caller that
/// needs no wait allocates nothing.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use fastreq::rate_limit::{Limiter, Quota, TokenBucket};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), fastreq::Error> {
/// let bucket = TokenBucket::new(Quota::new(2.0, 1)?);
/// let start = tokio::time::Instant::now();
/// for _ in 0..5 {
///     bucket.acquire().await?;
/// }
/// // One at once, then one every 500 ms.
/// assert_eq!(start.elapsed(), Duration::from_secs(2));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct TokenBucket {
    shared: Arc<Shared>,
}

struct Shared {
    base: Instant,
    state: Mutex<State>,
}

struct State {
    quota: Quota,
    /// Nanoseconds between permits.
    interval: u64,
    /// `burst · interval`, saturated.
    window: u64,
    /// Theoretical arrival time, ns since `base`.
    tat: u64,
    /// No permit before this, ns since `base`.
    paused_until: u64,
    /// When permits were last granted to waiters in line, ns since `base`.
    saturated_at: Option<u64>,
    /// Waiters in arrival order; cancelled ones are removed lazily.
    queue: VecDeque<Arc<Node>>,
    /// The `seq` of the next waiter.
    next_seq: u64,
}

struct Node {
    state: AtomicU8,
    /// Place in line: the order of arrival.
    seq: u64,
    waker: Mutex<Option<Waker>>,
}

impl Node {
    fn new(waker: &Waker, seq: u64) -> Node {
        Node {
            state: AtomicU8::new(WAITING),
            seq,
            waker: Mutex::new(Some(waker.clone())),
        }
    }

    fn set_waker(&self, waker: &Waker) {
        let mut slot = lock(&self.waker);
        match &*slot {
            Some(w) if w.will_wake(waker) => {}
            _ => *slot = Some(waker.clone()),
        }
    }

    fn wake(&self) {
        if let Some(w) = lock(&self.waker).take() {
            w.wake();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The state is consistent after every statement; a panic elsewhere cannot break it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl State {
    fn new(quota: Quota) -> State {
        let mut s = State {
            quota,
            interval: 0,
            window: 0,
            tat: 0,
            paused_until: 0,
            saturated_at: None,
            queue: VecDeque::new(),
            next_seq: 0,
        };
        s.apply(quota);
        s
    }

    fn apply(&mut self, quota: Quota) {
        self.quota = quota;
        self.interval = quota.interval_nanos();
        self.window = self.interval.saturating_mul(u64::from(quota.burst()));
    }

    /// Where the schedule of a caller that is not in line starts (see "Catch-up").
    fn fresh_start(&self, now: u64) -> u64 {
        let continuing = self
            .saturated_at
            .is_some_and(|at| now <= at.saturating_add(GRACE_NS));
        if continuing {
            self.tat.max(now.saturating_sub(MAX_LAG_NS))
        } else {
            self.tat.max(now)
        }
    }

    /// Permits a caller that is not in line could take at `now`.
    fn fresh_available(&self, now: u64) -> u64 {
        if now < self.paused_until {
            return 0;
        }
        now.saturating_add(self.window)
            .saturating_sub(self.fresh_start(now))
            / self.interval
    }

    fn take_fresh(&mut self, now: u64) {
        self.tat = self.fresh_start(now).saturating_add(self.interval);
    }

    /// Whether the first waiter in line may have a permit at `now`. Waiters joined the
    /// line when `tat > now`, so their schedule simply continues from `tat`.
    fn queued_due(&self, now: u64) -> bool {
        now >= self.paused_until
            && self.tat.saturating_add(self.interval) <= now.saturating_add(self.window)
    }

    /// The earliest time at which a waiter in line may have a permit.
    fn next_due(&self) -> u64 {
        let by_tat = self
            .tat
            .saturating_add(self.interval)
            .saturating_sub(self.window);
        by_tat.max(self.paused_until)
    }

    /// When `node`, waiting in line, expects its permit: exact for the first in line; for
    /// the others an estimate from their place (later than exact when waiters ahead of
    /// them left the line), which they sleep on so that they progress even if the tasks
    /// ahead of them are not polled.
    fn due_for(&mut self, node: &Node) -> u64 {
        self.skip_cancelled();
        let ahead = self
            .queue
            .front()
            .map_or(0, |front| node.seq.saturating_sub(front.seq));
        self.next_due()
            .saturating_add(ahead.saturating_mul(self.interval))
    }

    /// Wakes every waiter, so each computes its due time again.
    fn wake_all(&mut self) {
        for node in &self.queue {
            node.wake();
        }
    }

    /// Drops cancelled waiters from the front of the line.
    fn skip_cancelled(&mut self) {
        while let Some(front) = self.queue.front() {
            if front.state.load(Ordering::Relaxed) == DONE {
                self.queue.pop_front();
            } else {
                break;
            }
        }
    }

    /// Grants every due permit to the waiters in line, in order; wakes them, and wakes the
    /// new leader (except `me`, the caller, which is polling already).
    fn drain(&mut self, now: u64, me: Option<&Arc<Node>>) {
        let mut granted = false;
        loop {
            self.skip_cancelled();
            if self.queue.is_empty() || !self.queued_due(now) {
                break;
            }
            self.tat = self.tat.saturating_add(self.interval);
            let node = self.queue.pop_front().expect("line is not empty");
            node.state.store(GRANTED, Ordering::Release);
            if !is_me(&node, me) {
                node.wake();
            }
            granted = true;
        }
        if granted {
            self.saturated_at = Some(now);
            self.wake_leader(me);
        }
    }

    /// Wakes the first waiter so it (re)arms its timer, unless that is `me`.
    fn wake_leader(&mut self, me: Option<&Arc<Node>>) {
        self.skip_cancelled();
        if let Some(front) = self.queue.front() {
            if !is_me(front, me) {
                front.wake();
            }
        }
    }
}

fn is_me(node: &Arc<Node>, me: Option<&Arc<Node>>) -> bool {
    me.is_some_and(|m| Arc::ptr_eq(m, node))
}

impl TokenBucket {
    /// A full bucket with `quota`.
    pub fn new(quota: Quota) -> TokenBucket {
        TokenBucket {
            shared: Arc::new(Shared {
                base: Instant::now(),
                state: Mutex::new(State::new(quota)),
            }),
        }
    }

    fn now(&self) -> u64 {
        nanos_since(self.shared.base, Instant::now())
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.shared.state)
    }

    /// Takes a permit if one is available now and nobody is waiting; never waits.
    pub fn try_acquire(&self) -> bool {
        let now = self.now();
        let mut st = self.state();
        st.drain(now, None);
        if st.queue.is_empty() && st.fresh_available(now) > 0 {
            st.take_fresh(now);
            true
        } else {
            false
        }
    }

    /// Permits that could be taken right now without waiting (0 while others wait).
    pub fn available(&self) -> u64 {
        let now = self.now();
        let mut st = self.state();
        st.drain(now, None);
        if st.queue.is_empty() {
            st.fresh_available(now)
        } else {
            0
        }
    }

    /// How many callers are waiting in line.
    pub fn waiting(&self) -> usize {
        self.state()
            .queue
            .iter()
            .filter(|n| n.state.load(Ordering::Relaxed) == WAITING)
            .count()
    }

    /// True when the bucket is full, nobody waits and no pause is in force: such a
    /// bucket is indistinguishable from a new one.
    pub(crate) fn is_idle(&self) -> bool {
        let now = self.now();
        let mut st = self.state();
        st.skip_cancelled();
        st.queue.is_empty()
            && st.tat <= now
            && st.paused_until <= now
            && st
                .saturated_at
                .is_none_or(|at| at.saturating_add(GRACE_NS) < now)
    }

    /// How many handles share this bucket.
    pub(crate) fn handles(&self) -> usize {
        Arc::strong_count(&self.shared)
    }
}

fn nanos_since(base: Instant, t: Instant) -> u64 {
    u64::try_from(t.saturating_duration_since(base).as_nanos()).unwrap_or(u64::MAX)
}

/// The waiter of a [`TokenBucket`]: a place in line and a timer.
///
/// Reused across permits without allocating once it has waited once.
#[derive(Default)]
pub struct BucketWaiter {
    node: Option<Arc<Node>>,
    /// The bucket `node` is queued in, to leave the line on drop.
    bucket: Option<TokenBucket>,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl fmt::Debug for BucketWaiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BucketWaiter")
            .field("waiting", &self.node.is_some())
            .finish()
    }
}

impl BucketWaiter {
    /// A node for a new place in line: the previous one if nobody else holds it.
    fn fresh_node(&mut self, waker: &Waker, seq: u64) -> Arc<Node> {
        if let Some(mut node) = self.node.take() {
            if let Some(n) = Arc::get_mut(&mut node) {
                *n.state.get_mut() = WAITING;
                n.seq = seq;
                *n.waker.get_mut().unwrap_or_else(|e| e.into_inner()) = Some(waker.clone());
                return node;
            }
        }
        Arc::new(Node::new(waker, seq))
    }

    fn leave(&mut self) {
        let (Some(node), Some(bucket)) = (self.node.as_ref(), self.bucket.as_ref()) else {
            return;
        };
        if node.state.load(Ordering::Acquire) != WAITING {
            return;
        }
        let now = bucket.now();
        let mut st = bucket.state();
        if node.state.load(Ordering::Relaxed) == WAITING {
            node.state.store(DONE, Ordering::Relaxed);
            let was_leader = st.queue.front().is_some_and(|f| Arc::ptr_eq(f, node));
            if was_leader {
                // Permits may be due for the next ones; they also need a new leader.
                st.drain(now, None);
                st.wake_leader(None);
            }
        }
        // A permit granted but not used is not given back: its time slot is gone.
    }
}

impl Drop for BucketWaiter {
    fn drop(&mut self) {
        self.leave();
    }
}

impl Limiter for TokenBucket {
    type Waiter = BucketWaiter;

    fn poll_acquire(
        &self,
        waiter: &mut BucketWaiter,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), Error>> {
        if let Some(b) = &waiter.bucket {
            if !Arc::ptr_eq(&b.shared, &self.shared) {
                // Used with another bucket before: leave that line first.
                waiter.leave();
                waiter.node = None;
                waiter.bucket = None;
            }
        }
        loop {
            let in_line = match &waiter.node {
                Some(node) => match node.state.load(Ordering::Acquire) {
                    GRANTED => {
                        node.state.store(DONE, Ordering::Relaxed);
                        return Poll::Ready(Ok(()));
                    }
                    WAITING => true,
                    _ => false,
                },
                None => false,
            };

            let now = self.now();
            let mut st = self.state();
            let node: &Arc<Node> = if in_line {
                let node = waiter.node.as_ref().expect("in line");
                st.drain(now, Some(node));
                if node.state.load(Ordering::Relaxed) == GRANTED {
                    node.state.store(DONE, Ordering::Relaxed);
                    return Poll::Ready(Ok(()));
                }
                node.set_waker(cx.waker());
                node
            } else {
                st.drain(now, None);
                if st.queue.is_empty() && st.fresh_available(now) > 0 {
                    st.take_fresh(now);
                    return Poll::Ready(Ok(()));
                }
                let seq = st.next_seq;
                st.next_seq += 1;
                let node = waiter.fresh_node(cx.waker(), seq);
                st.queue.push_back(node.clone());
                if waiter.bucket.is_none() {
                    waiter.bucket = Some(self.clone());
                }
                &*waiter.node.insert(node)
            };

            // Sleep until the permit is due: the first in line grants it (and every other
            // one due by then) when its timer fires; the others sleep too, on their
            // estimated turn, in case the tasks ahead of them are not being polled.
            let due = st.due_for(node);
            drop(st);
            let deadline = self
                .shared
                .base
                .checked_add(Duration::from_nanos(due))
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400 * 365 * 30));
            let sleep = match &mut waiter.sleep {
                Some(s) => {
                    if s.deadline() != deadline {
                        s.as_mut().reset(deadline);
                    }
                    s
                }
                None => waiter
                    .sleep
                    .insert(Box::pin(tokio::time::sleep_until(deadline))),
            };
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            // Due now: go round and take it.
        }
    }

    fn quota(&self) -> Quota {
        self.state().quota
    }

    fn set_quota(&self, quota: Quota) {
        let now = self.now();
        let mut st = self.state();
        // Keep the debt in permits: `tat - base` at the old interval becomes the same
        // number of permits at the new one, counted from the end of any pause.
        let base = now.max(st.paused_until);
        if st.tat > base && st.interval != quota.interval_nanos() {
            let debt = u128::from(st.tat - base);
            let scaled = debt * u128::from(quota.interval_nanos()) / u128::from(st.interval);
            st.tat = base.saturating_add(u64::try_from(scaled).unwrap_or(u64::MAX));
        }
        st.apply(quota);
        st.drain(now, None);
        // Every due time changed.
        st.wake_all();
    }

    fn pause_until(&self, until: Instant) {
        let until = nanos_since(self.shared.base, until);
        let mut st = self.state();
        if until <= st.paused_until {
            return;
        }
        st.paused_until = until;
        // One permit at `until`, then one per interval: no burst after the pause.
        let resume = until.saturating_add(st.window.saturating_sub(st.interval));
        st.tat = st.tat.max(resume);
        st.wake_leader(None);
    }
}

impl fmt::Debug for TokenBucket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.state();
        f.debug_struct("TokenBucket")
            .field("quota", &st.quota)
            .field("waiting", &st.queue.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::task::Poll;

    fn bucket(rate: f64, burst: u32) -> TokenBucket {
        TokenBucket::new(Quota::new(rate, burst).unwrap())
    }

    #[tokio::test(start_paused = true)]
    async fn burst_then_steady() {
        let b = bucket(10.0, 3);
        let start = Instant::now();
        let mut times = Vec::new();
        for _ in 0..7 {
            b.acquire().await.unwrap();
            times.push(start.elapsed());
        }
        let ms = |n| Duration::from_millis(n);
        assert_eq!(
            times,
            vec![ms(0), ms(0), ms(0), ms(100), ms(200), ms(300), ms(400)]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn refills_to_burst_only() {
        let b = bucket(10.0, 2);
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert_eq!(b.available(), 2);
        assert!(b.try_acquire());
        assert!(b.try_acquire());
        assert!(!b.try_acquire());
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(b.try_acquire());
        assert!(!b.try_acquire());
    }

    #[tokio::test(start_paused = true)]
    async fn fractional_rate() {
        let b = bucket(0.5, 1);
        let start = Instant::now();
        for i in 0..4u64 {
            b.acquire().await.unwrap();
            assert_eq!(start.elapsed(), Duration::from_secs(2 * i));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn catch_up_grants_all_due_permits_per_wake_up() {
        // 5 permits per millisecond but timers tick once per millisecond: each tick must
        // grant five, also to a caller that acquires one permit at a time.
        let b = bucket(5000.0, 1);
        let start = Instant::now();
        let mut times = Vec::new();
        for _ in 0..10_002 {
            b.acquire().await.unwrap();
            times.push(start.elapsed());
        }
        let count =
            |lo: Duration, hi: Duration| times.iter().filter(|t| **t > lo && **t <= hi).count();
        assert_eq!(times[0], Duration::ZERO);
        assert_eq!(count(Duration::ZERO, Duration::from_secs(1)), 5000);
        assert_eq!(count(Duration::from_secs(1), Duration::from_secs(2)), 5000);
        // Never more than burst + rate·t by time t.
        for (i, t) in times.iter().enumerate() {
            assert!(
                i as f64 + 1.0 <= 1.0 + 5000.0 * t.as_secs_f64() + 1e-9,
                "#{i} at {t:?}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn catch_up_outside_the_line_is_capped() {
        let b = bucket(1000.0, 1);
        assert!(b.try_acquire());
        let waker = futures_util::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        let mut w = b.acquire();
        assert!(Pin::new(&mut w).poll(&mut cx).is_pending());
        // Its task is not polled for 50 ms; then it gets its permit, due at 1 ms.
        tokio::time::advance(Duration::from_millis(50)).await;
        assert!(matches!(
            Pin::new(&mut w).poll(&mut cx),
            Poll::Ready(Ok(()))
        ));
        // A caller right after catches up on the last 10 ms only (plus the one due now).
        let mut n = 0;
        while b.try_acquire() {
            n += 1;
        }
        assert_eq!(n, 11);
        // Later on, no catch-up: the bucket refills to its burst of 1 only.
        tokio::time::advance(Duration::from_millis(100)).await;
        assert!(b.try_acquire());
        assert!(!b.try_acquire());
    }

    #[tokio::test(start_paused = true)]
    async fn dropped_waiter_leaves_the_line() {
        let b = bucket(1.0, 1);
        assert!(b.try_acquire());
        let mut first = b.acquire();
        let mut second = b.acquire();
        let waker = futures_util::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        assert!(Pin::new(&mut first).poll(&mut cx).is_pending());
        assert!(Pin::new(&mut second).poll(&mut cx).is_pending());
        assert_eq!(b.waiting(), 2);
        drop(first);
        assert_eq!(b.waiting(), 1);
        let start = Instant::now();
        second.await.unwrap();
        assert_eq!(start.elapsed(), Duration::from_secs(1));
        assert!(!b.try_acquire());
    }

    #[tokio::test(start_paused = true)]
    async fn newcomers_queue_behind_waiters() {
        let b = bucket(1.0, 1);
        assert!(b.try_acquire());
        let waker = futures_util::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        let mut w = b.acquire();
        assert!(Pin::new(&mut w).poll(&mut cx).is_pending());
        tokio::time::advance(Duration::from_secs(1)).await;
        // A permit is due, but it belongs to the waiter.
        assert!(!b.try_acquire());
        assert!(matches!(
            Pin::new(&mut w).poll(&mut cx),
            Poll::Ready(Ok(()))
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn pause_then_spread() {
        let b = bucket(10.0, 5);
        let start = Instant::now();
        b.pause_until(start + Duration::from_secs(2));
        assert!(!b.try_acquire());
        let mut times = Vec::new();
        for _ in 0..3 {
            b.acquire().await.unwrap();
            times.push(start.elapsed());
        }
        assert_eq!(
            times,
            vec![
                Duration::from_millis(2000),
                Duration::from_millis(2100),
                Duration::from_millis(2200)
            ]
        );
        // An earlier pause changes nothing.
        b.pause_until(start);
        assert!(!b.try_acquire());
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_first_waiter_does_not_block_the_line() {
        let b = bucket(1.0, 1);
        assert!(b.try_acquire());
        let start = Instant::now();
        // First in line, polled once, then its task never polls it again.
        let mut stalled = b.acquire();
        let waker = futures_util::task::noop_waker();
        assert!(Pin::new(&mut stalled)
            .poll(&mut Context::from_waker(&waker))
            .is_pending());
        b.acquire().await.unwrap();
        assert_eq!(start.elapsed(), Duration::from_secs(2));
        // The stalled waiter's permit was granted in its turn and kept for it.
        assert!(matches!(
            Pin::new(&mut stalled).poll(&mut Context::from_waker(&waker)),
            Poll::Ready(Ok(()))
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn set_quota_wakes_the_leader() {
        let b = bucket(0.1, 1);
        assert!(b.try_acquire());
        let start = Instant::now();
        let b2 = b.clone();
        let task = tokio::spawn(async move {
            for _ in 0..3 {
                b2.acquire().await.unwrap();
            }
            Instant::now()
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
        b.set_quota(Quota::per_second(10.0).unwrap());
        let done = task.await.unwrap();
        // The debt of 9 s at 0.1/s (0.9 permits) becomes 90 ms at 10/s.
        assert_eq!(done - start, Duration::from_millis(1090 + 200));
        assert_eq!(b.quota().rate(), 10.0);
    }
}
