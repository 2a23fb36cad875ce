//! Rate limits by GCRA (the generic cell rate algorithm): one number per
//! key, the theoretical arrival time (TAT), kept in the `StateStore` and
//! moved forward by one read-modify-write (`StateStore::update`), so
//! replicas sharing a store share the limit. A limit of `n` per `window` lets a quiet caller burst `n` at
//! once and then one every `window / n`; it needs no timer and no list of
//! timestamps.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use portcullis_state::{StateError, StateStore};

/// `limit` requests per `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub limit: u32,
    pub window: Duration,
}

impl Rate {
    /// The time one request "costs".
    fn interval(self) -> Duration {
        self.window / self.limit.max(1)
    }
}

/// The answer for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub allowed: bool,
    pub rate: Rate,
    /// Requests left in the window after this one.
    pub remaining: u32,
    /// When refused: how long until one more request would pass.
    pub retry_after: Duration,
    /// How long until the whole window's allowance is back.
    pub reset: Duration,
}

/// Counts requests against rates in a state store.
#[derive(Clone)]
pub struct Limiter {
    store: Arc<dyn StateStore>,
}

impl std::fmt::Debug for Limiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limiter")
            .field("store", &self.store.kind())
            .finish()
    }
}

fn nanos(t: SystemTime) -> u128 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos())
}

fn dur(n: u128) -> Duration {
    Duration::from_nanos(u64::try_from(n).unwrap_or(u64::MAX))
}

impl Limiter {
    #[must_use]
    pub fn new(store: Arc<dyn StateStore>) -> Self {
        Self { store }
    }

    /// Counts one request for `key` (a state key) against `rate`.
    ///
    /// # Errors
    /// When the store fails; callers decide whether that refuses (it
    /// should not: a broken counter store must not take the registry down).
    pub fn check(&self, key: &str, rate: Rate) -> Result<Verdict, StateError> {
        let t = rate.interval().as_nanos().max(1);
        let window = rate.window.as_nanos().max(t);
        let now = nanos(self.store.now());
        let mut verdict = None;
        // One read-modify-write: a single lock in memory, and a store that
        // cannot do it atomically retries compare-and-set.
        self.store.update(key, &mut |current| {
            let stored = current
                .and_then(|v| std::str::from_utf8(v).ok()?.parse::<u128>().ok())
                .unwrap_or(0);
            let tat = stored.max(now);
            let next = tat + t;
            if next > now + window {
                // Refused: nothing is written, so refusals cost no write.
                verdict = Some(Verdict {
                    allowed: false,
                    rate,
                    remaining: 0,
                    retry_after: dur(next - window - now),
                    reset: dur(tat - now),
                });
                return None;
            }
            let ttl = dur(next - now);
            verdict = Some(Verdict {
                allowed: true,
                rate,
                remaining: u32::try_from((now + window - next) / t).unwrap_or(u32::MAX),
                retry_after: Duration::ZERO,
                reset: ttl,
            });
            Some((next.to_string().into_bytes(), Some(ttl)))
        })?;
        Ok(verdict.unwrap_or(Verdict {
            allowed: true,
            rate,
            remaining: 0,
            retry_after: Duration::ZERO,
            reset: rate.window,
        }))
    }

    /// What `check` would answer, without counting.
    ///
    /// # Errors
    /// When the store fails.
    pub fn peek(&self, key: &str, rate: Rate) -> Result<Verdict, StateError> {
        let t = rate.interval().as_nanos().max(1);
        let window = rate.window.as_nanos().max(t);
        let now = nanos(self.store.now());
        let stored = self
            .store
            .get(key)?
            .and_then(|v| std::str::from_utf8(&v.value).ok()?.parse::<u128>().ok())
            .unwrap_or(0);
        let tat = stored.max(now);
        let room = (now + window).saturating_sub(tat) / t;
        Ok(Verdict {
            allowed: room > 0,
            rate,
            remaining: u32::try_from(room).unwrap_or(u32::MAX),
            retry_after: dur((tat + t).saturating_sub(now + window)),
            reset: dur(tat - now),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_state::{MemoryStore, TestClock};

    fn limiter() -> (Limiter, TestClock) {
        let clock = TestClock::default();
        (
            Limiter::new(Arc::new(MemoryStore::new(clock.clock()))),
            clock,
        )
    }

    const HUB: Rate = Rate {
        limit: 100,
        window: Duration::from_secs(6 * 3600),
    };

    #[test]
    fn a_quiet_caller_bursts_the_limit_then_waits_one_interval() {
        let (l, clock) = limiter();
        for i in 0..100u32 {
            let v = l.check("limits/pull/alice", HUB).expect("check");
            assert!(v.allowed, "request {i}");
            assert_eq!(v.remaining, 99 - i);
        }
        let refused = l.check("limits/pull/alice", HUB).expect("check");
        assert!(!refused.allowed);
        assert_eq!(refused.retry_after, Duration::from_secs(216));
        assert_eq!(refused.reset, Duration::from_secs(6 * 3600));
        // Another key is not touched.
        assert!(l.check("limits/pull/bob", HUB).expect("check").allowed);
        clock.advance(Duration::from_secs(216));
        let again = l.check("limits/pull/alice", HUB).expect("check");
        assert!(again.allowed);
        assert_eq!(again.remaining, 0);
        assert!(!l.check("limits/pull/alice", HUB).expect("check").allowed);
    }

    #[test]
    fn peek_counts_nothing() {
        let (l, _clock) = limiter();
        let rate = Rate {
            limit: 3,
            window: Duration::from_secs(60),
        };
        assert_eq!(l.peek("k", rate).expect("peek").remaining, 3);
        l.check("k", rate).expect("check");
        assert_eq!(l.peek("k", rate).expect("peek").remaining, 2);
        assert_eq!(l.peek("k", rate).expect("peek").remaining, 2);
    }

    #[test]
    fn concurrent_callers_share_one_allowance() {
        let l = Limiter::new(Arc::new(MemoryStore::default()));
        let rate = Rate {
            limit: 200,
            window: Duration::from_secs(3600),
        };
        let allowed = std::sync::atomic::AtomicU32::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..100 {
                        if l.check("limits/push/ci", rate).expect("check").allowed {
                            allowed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        // Each check is one atomic update: exactly the allowance passes.
        let n = allowed.into_inner();
        assert_eq!(n, 200, "{n} allowed");
    }
}
