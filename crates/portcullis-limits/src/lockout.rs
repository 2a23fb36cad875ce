//! Brute-force lockout: failed secret checks per (account, client address)
//! back off exponentially after a few free tries, then lock the pair out
//! for a set time. The account is the name the client presented, whether
//! or not it exists, so the lockout says nothing about which accounts do.
//! Entries live in the `StateStore` under `lockout/<account>/<address>`
//! (both base64url), expiring on their own.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use portcullis_state::{StateError, StateStore};
use serde::{Deserialize, Serialize};

/// How failures are answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Failures allowed before any delay.
    pub free: u32,
    /// The first delay; each failure after it doubles the delay.
    pub base: Duration,
    /// The longest delay while backing off.
    pub max_delay: Duration,
    /// After this many failures the pair is locked for `lockout`.
    pub lock_after: u32,
    pub lockout: Duration,
    /// Failures older than this are forgotten.
    pub forget: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            free: 5,
            base: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
            lock_after: 20,
            lockout: Duration::from_secs(15 * 60),
            forget: Duration::from_secs(3600),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Entry {
    failures: u32,
    /// Unix seconds before which the pair is refused.
    until: u64,
    /// Unix seconds of the last failure.
    last: u64,
}

/// One locked or backing-off pair, for `portcullis lockout list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Locked {
    pub account: String,
    pub client: String,
    pub failures: u32,
    /// Seconds until it is let try again (0: may try now, failures kept).
    pub retry_after: u64,
}

/// The lockout store.
#[derive(Clone)]
pub struct Lockout {
    store: Arc<dyn StateStore>,
    policy: Policy,
}

impl std::fmt::Debug for Lockout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lockout")
            .field("store", &self.store.kind())
            .field("policy", &self.policy)
            .finish()
    }
}

const PREFIX: &str = "lockout";

fn secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn key(account: &str, client: &str) -> String {
    // An empty segment is not a valid key: `-` stands for "none".
    let seg = |s: &str| {
        if s.is_empty() {
            "-".to_owned()
        } else {
            B64.encode(s)
        }
    };
    format!("{PREFIX}/{}/{}", seg(account), seg(client))
}

fn unseg(s: &str) -> String {
    if s == "-" {
        return String::new();
    }
    B64.decode(s)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .unwrap_or_else(|| s.to_owned())
}

impl Lockout {
    #[must_use]
    pub fn new(store: Arc<dyn StateStore>, policy: Policy) -> Self {
        Self { store, policy }
    }

    #[must_use]
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    fn read(&self, key: &str) -> Result<Option<(Entry, u64)>, StateError> {
        Ok(self.store.get(key)?.map(|v| {
            let e = serde_json::from_slice(&v.value).unwrap_or_default();
            (e, v.version)
        }))
    }

    /// How long `account` from `client` must still wait before its secret
    /// is checked; `None` when it may try now. Check this before checking
    /// the secret, and answer a wait with 429 and `Retry-After`.
    ///
    /// # Errors
    /// When the store fails.
    pub fn wait(&self, account: &str, client: &str) -> Result<Option<Duration>, StateError> {
        let now = secs(self.store.now());
        Ok(self
            .read(&key(account, client))?
            .filter(|(e, _)| e.until > now)
            .map(|(e, _)| Duration::from_secs(e.until - now)))
    }

    /// Records a failed check; returns the wait it now imposes.
    ///
    /// # Errors
    /// When the store fails.
    pub fn fail(&self, account: &str, client: &str) -> Result<Option<Duration>, StateError> {
        let k = key(account, client);
        let p = self.policy;
        for _ in 0..8 {
            let now = secs(self.store.now());
            let current = self.read(&k)?;
            let version = current.as_ref().map(|(_, v)| *v);
            let mut e = current.map(|(e, _)| e).unwrap_or_default();
            e.failures = e.failures.saturating_add(1);
            e.last = now;
            let wait = if e.failures >= p.lock_after {
                p.lockout
            } else if e.failures > p.free {
                let doublings = (e.failures - p.free - 1).min(30);
                p.base.saturating_mul(1 << doublings).min(p.max_delay)
            } else {
                Duration::ZERO
            };
            e.until = now + wait.as_secs();
            let ttl = p.forget.max(wait + Duration::from_secs(1));
            let value = serde_json::to_vec(&e).unwrap_or_default();
            if self
                .store
                .compare_and_set(&k, version, &value, Some(ttl))?
                .is_some()
            {
                return Ok((!wait.is_zero()).then_some(wait));
            }
        }
        Ok(None)
    }

    /// A successful check clears the pair's failures.
    ///
    /// # Errors
    /// When the store fails.
    pub fn succeed(&self, account: &str, client: &str) -> Result<(), StateError> {
        let k = key(account, client);
        if self.store.get(&k)?.is_some() {
            self.store.delete(&k)?;
        }
        Ok(())
    }

    /// Every pair with failures on record, most failures first.
    ///
    /// # Errors
    /// When the store fails.
    pub fn list(&self) -> Result<Vec<Locked>, StateError> {
        let now = secs(self.store.now());
        let mut out = Vec::new();
        for k in self.store.list(PREFIX)? {
            let mut parts = k.splitn(3, '/').skip(1);
            let (Some(a), Some(c)) = (parts.next(), parts.next()) else {
                continue;
            };
            if let Some((e, _)) = self.read(&k)? {
                out.push(Locked {
                    account: unseg(a),
                    client: unseg(c),
                    failures: e.failures,
                    retry_after: e.until.saturating_sub(now),
                });
            }
        }
        out.sort_by(|x, y| y.failures.cmp(&x.failures).then(x.account.cmp(&y.account)));
        Ok(out)
    }

    /// Clears the pairs of `account` (all addresses), of `client` (all
    /// accounts), or exactly one pair; returns how many.
    ///
    /// # Errors
    /// When the store fails.
    pub fn clear(&self, account: Option<&str>, client: Option<&str>) -> Result<usize, StateError> {
        let mut n = 0;
        for l in self.list()? {
            if account.is_none_or(|a| a == l.account) && client.is_none_or(|c| c == l.client) {
                n += usize::from(self.store.delete(&key(&l.account, &l.client))?);
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_state::{MemoryStore, TestClock};

    fn lockout() -> (Lockout, TestClock) {
        let clock = TestClock::default();
        let store = Arc::new(MemoryStore::new(clock.clock()));
        (Lockout::new(store, Policy::default()), clock)
    }

    #[test]
    fn free_tries_then_doubling_delays_then_a_lockout() {
        let (l, clock) = lockout();
        for _ in 0..5 {
            assert_eq!(l.fail("alice", "10.0.0.1").expect("fail"), None);
        }
        assert_eq!(l.wait("alice", "10.0.0.1").expect("wait"), None);
        let mut delays = Vec::new();
        for _ in 5..19 {
            delays.push(l.fail("alice", "10.0.0.1").expect("fail").expect("delay"));
            clock.advance(*delays.last().expect("delay"));
        }
        let secs: Vec<u64> = delays.iter().map(Duration::as_secs).collect();
        assert_eq!(
            secs,
            [1, 2, 4, 8, 16, 32, 60, 60, 60, 60, 60, 60, 60, 60],
            "doubling, capped"
        );
        let locked = l.fail("alice", "10.0.0.1").expect("fail");
        assert_eq!(locked, Some(Duration::from_secs(900)));
        assert_eq!(
            l.wait("alice", "10.0.0.1").expect("wait"),
            Some(Duration::from_secs(900))
        );
        // Another address, and another account, are not held.
        assert_eq!(l.wait("alice", "10.0.0.2").expect("wait"), None);
        assert_eq!(l.wait("bob", "10.0.0.1").expect("wait"), None);
        clock.advance(Duration::from_secs(900));
        assert_eq!(l.wait("alice", "10.0.0.1").expect("wait"), None);
    }

    #[test]
    fn success_clears_and_list_and_clear_name_the_pairs() {
        let (l, _clock) = lockout();
        for _ in 0..7 {
            l.fail("alice", "2001:db8::1").expect("fail");
        }
        l.fail("no such user", "10.0.0.9").expect("fail");
        let listed = l.list().expect("list");
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[0].account, "alice");
        assert_eq!(listed[0].client, "2001:db8::1");
        assert_eq!(listed[0].failures, 7);
        assert!(listed[0].retry_after > 0);
        assert_eq!(l.clear(Some("alice"), None).expect("clear"), 1);
        assert_eq!(l.wait("alice", "2001:db8::1").expect("wait"), None);
        l.succeed("no such user", "10.0.0.9").expect("ok");
        assert!(l.list().expect("list").is_empty());
    }
}
