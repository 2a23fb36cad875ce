//! State as a port: small values that every replica must agree on (signing
//! keys, refresh and robot tokens, upload sessions, rate-limit counters,
//! lockouts, leases), behind [`StateStore`]. Values are bytes under
//! `/`-separated keys; writes can be conditional ([`StateStore::compare_and_set`]),
//! entries can expire, counters count, and leases elect one holder.
//!
//! Implementations: [`DirStore`] (files under a directory, safe across the
//! processes that share it) and [`MemoryStore`] (one process). Both pass
//! [`contract`]; a Redis store will have to as well. Calls may block (file
//! I/O, a network round trip): make them off the async threads.

mod dir;
mod memory;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

pub use dir::DirStore;
pub use memory::MemoryStore;

/// A value and its version. Versions are opaque: equal versions mean equal
/// values, and a write that changes the value changes the version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned {
    pub value: Vec<u8>,
    pub version: u64,
}

/// A lease on a key: held by `holder` until `until`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub key: String,
    pub holder: String,
    pub until: SystemTime,
}

/// Why a state operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(
        "state key `{0}` is not valid: keys are non-empty `/`-separated segments of letters, digits and `._-` that do not start with `.`"
    )]
    InvalidKey(String),
    #[error("state entry `{0}` changed under every one of 16 tries to update it; try again")]
    Contended(String),
    #[error("state entry `{key}` is not {what}")]
    Corrupt { key: String, what: &'static str },
    #[error("state store at {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// The clock a store reads, so expiry can be tested without sleeping.
/// What [`StateStore::update`] makes of an entry: the next value and its
/// time to live, or `None` to leave it.
pub type Change<'a> = dyn FnMut(Option<&[u8]>) -> Option<(Vec<u8>, Option<Duration>)> + 'a;

/// Compare-and-set rounds the default [`StateStore::update`] tries.
const UPDATE_ROUNDS: usize = 16;

pub type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// The system clock.
#[must_use]
pub fn system_clock() -> Clock {
    Arc::new(SystemTime::now)
}

/// Key-value state shared by every process that uses the same store.
pub trait StateStore: Send + Sync {
    /// A short name for logs ("directory", "memory").
    fn kind(&self) -> &'static str;

    /// Where `key` is kept, for messages: a file's path in a store of
    /// files, else the key and the kind of store.
    fn location(&self, key: &str) -> String {
        format!("{key} in the {} state store", self.kind())
    }

    /// The live value of `key`, if any (an expired entry is absent).
    ///
    /// # Errors
    /// An invalid key, or a store that cannot be read.
    fn get(&self, key: &str) -> Result<Option<Versioned>, StateError>;

    /// Writes `value`, expiring after `ttl` if given; returns the version.
    ///
    /// # Errors
    /// An invalid key, or a store that cannot be written.
    fn put(&self, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<u64, StateError>;

    /// Writes `value` only if the entry is at `expected` (`None`: absent or
    /// expired). `Ok(Some(version))` when written, `Ok(None)` when another
    /// writer got there first.
    ///
    /// # Errors
    /// An invalid key, or a store that cannot be written.
    fn compare_and_set(
        &self,
        key: &str,
        expected: Option<u64>,
        value: &[u8],
        ttl: Option<Duration>,
    ) -> Result<Option<u64>, StateError>;

    /// Reads `key` and writes what `change` makes of it, in one atomic
    /// step: `change` sees the live value (`None` when absent or expired)
    /// and returns the next value with its time to live, or `None` to
    /// leave the entry as it is. Returns whether a value was written.
    /// `change` may run more than once, and must not call the store. A
    /// store that can do this in one step (one lock in memory, a script in
    /// Redis) should; the default retries [`Self::compare_and_set`].
    ///
    /// # Errors
    /// An invalid key, a store that cannot be read or written, or
    /// [`StateError::Contended`] when others kept changing the entry.
    fn update(&self, key: &str, change: &mut Change<'_>) -> Result<bool, StateError> {
        for _ in 0..UPDATE_ROUNDS {
            let current = self.get(key)?;
            let Some((value, ttl)) = change(current.as_ref().map(|v| v.value.as_slice())) else {
                return Ok(false);
            };
            if self
                .compare_and_set(key, current.map(|v| v.version), &value, ttl)?
                .is_some()
            {
                return Ok(true);
            }
        }
        Err(StateError::Contended(key.to_owned()))
    }

    /// Removes `key`; whether a live entry was there.
    ///
    /// # Errors
    /// An invalid key, or a store that cannot be written.
    fn delete(&self, key: &str) -> Result<bool, StateError>;

    /// The live keys under `prefix` (itself a key, or empty for all), sorted.
    ///
    /// # Errors
    /// An invalid prefix, or a store that cannot be read.
    fn list(&self, prefix: &str) -> Result<Vec<String>, StateError>;

    /// Adds `by` to the counter at `key` (absent counts as 0) and returns
    /// the new count. A counter created by this call expires after `ttl`
    /// (a fixed window); later increments keep its expiry.
    ///
    /// # Errors
    /// An invalid key, an entry that is not a counter, or an I/O failure.
    fn increment(&self, key: &str, by: i64, ttl: Option<Duration>) -> Result<i64, StateError>;

    /// Takes the lease on `key` for `holder` for `ttl` if it is free,
    /// expired or already `holder`'s (which renews it). `None` when someone
    /// else holds it.
    ///
    /// # Errors
    /// An invalid key, or an I/O failure.
    fn acquire(&self, key: &str, holder: &str, ttl: Duration) -> Result<Option<Lease>, StateError> {
        let now_lease = |until| Lease {
            key: key.to_owned(),
            holder: holder.to_owned(),
            until,
        };
        let current = self.get(key)?;
        if let Some(c) = &current
            && c.value != holder.as_bytes()
        {
            return Ok(None);
        }
        let until = self.now() + ttl;
        Ok(self
            .compare_and_set(
                key,
                current.map(|c| c.version),
                holder.as_bytes(),
                Some(ttl),
            )?
            .map(|_| now_lease(until)))
    }

    /// Gives a lease up, if it is still `holder`'s.
    ///
    /// # Errors
    /// An invalid key, or an I/O failure.
    fn release(&self, lease: &Lease) -> Result<(), StateError> {
        if let Some(c) = self.get(&lease.key)?
            && c.value == lease.holder.as_bytes()
        {
            self.delete(&lease.key)?;
        }
        Ok(())
    }

    /// The store's clock.
    fn now(&self) -> SystemTime;
}

/// Checks a key: `/`-separated segments of `[A-Za-z0-9._-]`, none empty or
/// starting with `.` (names a store may use for itself), at most 512 bytes.
///
/// # Errors
/// [`StateError::InvalidKey`].
pub fn check_key(key: &str) -> Result<(), StateError> {
    let ok = !key.is_empty()
        && key.len() <= 512
        && key.split('/').all(|seg| {
            !seg.is_empty()
                && !seg.starts_with('.')
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        });
    if ok {
        Ok(())
    } else {
        Err(StateError::InvalidKey(key.chars().take(100).collect()))
    }
}

/// A counter's stored form: decimal.
pub(crate) fn parse_count(key: &str, value: &[u8]) -> Result<i64, StateError> {
    std::str::from_utf8(value)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| StateError::Corrupt {
            key: key.to_owned(),
            what: "a counter",
        })
}

/// A value's version: the first 8 bytes of its SHA-256, so equal values
/// have equal versions in every implementation and across processes.
#[must_use]
pub fn version_of(value: &[u8]) -> u64 {
    use sha2::Digest;
    let d = sha2::Sha256::digest(value);
    u64::from_be_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
}

/// A clock tests can move.
#[derive(Clone)]
pub struct TestClock(Arc<parking_lot::Mutex<SystemTime>>);

impl Default for TestClock {
    fn default() -> Self {
        Self(Arc::new(parking_lot::Mutex::new(
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
        )))
    }
}

impl TestClock {
    pub fn advance(&self, by: Duration) {
        *self.0.lock() += by;
    }

    #[must_use]
    pub fn clock(&self) -> Clock {
        let t = self.0.clone();
        Arc::new(move || *t.lock())
    }
}

/// The contract every store keeps; each implementation's tests run it with
/// a store built on `clock`.
///
/// # Panics
/// When the store breaks the contract.
pub fn contract(store: &dyn StateStore, clock: &TestClock) {
    let s = store;
    let kind = s.kind();
    // keys are checked
    for bad in ["", "/a", "a/", "a//b", "a/../b", ".", ".hidden", "a b", "ä"] {
        assert!(
            matches!(s.get(bad), Err(StateError::InvalidKey(_))),
            "{kind}: {bad:?}"
        );
        assert!(s.put(bad, b"x", None).is_err(), "{kind}: put {bad:?}");
    }
    // get, put, versions
    assert_eq!(s.get("k/a").unwrap(), None);
    let v1 = s.put("k/a", b"one", None).unwrap();
    assert_eq!(
        s.get("k/a").unwrap(),
        Some(Versioned {
            value: b"one".to_vec(),
            version: v1
        })
    );
    let v2 = s.put("k/a", b"two", None).unwrap();
    assert_ne!(v1, v2, "{kind}: a changed value changes the version");
    // compare-and-set: create-only, and at a version
    assert_eq!(
        s.compare_and_set("k/a", None, b"x", None).unwrap(),
        None,
        "{kind}"
    );
    assert_eq!(
        s.compare_and_set("k/a", Some(v1), b"x", None).unwrap(),
        None,
        "{kind}"
    );
    let v3 = s
        .compare_and_set("k/a", Some(v2), b"three", None)
        .unwrap()
        .unwrap();
    assert_eq!(s.get("k/a").unwrap().unwrap().version, v3);
    let created = s.compare_and_set("k/b", None, b"new", None).unwrap();
    assert!(created.is_some(), "{kind}: create-only on an absent key");
    assert_eq!(
        s.compare_and_set("k/b", None, b"again", None).unwrap(),
        None
    );
    // list and delete
    s.put("k/c/d", b"deep", None).unwrap();
    s.put("other", b"o", None).unwrap();
    assert_eq!(s.list("k").unwrap(), ["k/a", "k/b", "k/c/d"], "{kind}");
    assert_eq!(
        s.list("").unwrap(),
        ["k/a", "k/b", "k/c/d", "other"],
        "{kind}"
    );
    assert!(s.delete("k/b").unwrap());
    assert!(!s.delete("k/b").unwrap());
    assert_eq!(s.get("k/b").unwrap(), None);
    // expiry
    s.put("t/short", b"soon gone", Some(Duration::from_secs(10)))
        .unwrap();
    clock.advance(Duration::from_secs(9));
    assert!(
        s.get("t/short").unwrap().is_some(),
        "{kind}: alive before its ttl"
    );
    clock.advance(Duration::from_secs(2));
    assert_eq!(s.get("t/short").unwrap(), None, "{kind}: expired");
    assert!(!s.list("t").unwrap().contains(&"t/short".to_owned()));
    assert!(
        s.compare_and_set("t/short", None, b"reborn", None)
            .unwrap()
            .is_some(),
        "{kind}: an expired entry is absent"
    );
    // counters: a fixed window
    assert_eq!(
        s.increment("n/hits", 1, Some(Duration::from_secs(60)))
            .unwrap(),
        1
    );
    assert_eq!(
        s.increment("n/hits", 2, Some(Duration::from_secs(60)))
            .unwrap(),
        3
    );
    clock.advance(Duration::from_secs(30));
    assert_eq!(
        s.increment("n/hits", 1, Some(Duration::from_secs(60)))
            .unwrap(),
        4
    );
    clock.advance(Duration::from_secs(31));
    assert_eq!(
        s.increment("n/hits", 1, Some(Duration::from_secs(60)))
            .unwrap(),
        1,
        "{kind}: a new window"
    );
    assert!(
        matches!(s.increment("k/a", 1, None), Err(StateError::Corrupt { .. })),
        "{kind}: not a counter"
    );
    // leases
    let a = s
        .acquire("l/gc", "replica-a", Duration::from_secs(30))
        .unwrap()
        .unwrap();
    assert_eq!(
        s.acquire("l/gc", "replica-b", Duration::from_secs(30))
            .unwrap(),
        None,
        "{kind}"
    );
    assert!(
        s.acquire("l/gc", "replica-a", Duration::from_secs(30))
            .unwrap()
            .is_some(),
        "{kind}: renew"
    );
    clock.advance(Duration::from_secs(31));
    let b = s
        .acquire("l/gc", "replica-b", Duration::from_secs(30))
        .unwrap()
        .unwrap();
    s.release(&a).unwrap(); // no longer a's: changes nothing
    assert_eq!(
        s.acquire("l/gc", "replica-a", Duration::from_secs(30))
            .unwrap(),
        None
    );
    s.release(&b).unwrap();
    assert!(
        s.acquire("l/gc", "replica-a", Duration::from_secs(30))
            .unwrap()
            .is_some()
    );
    // update: one read-modify-write
    let mut seen = Vec::new();
    let wrote = s
        .update("u/a", &mut |cur| {
            seen.push(cur.map(<[u8]>::to_vec));
            Some((b"1".to_vec(), Some(Duration::from_secs(10))))
        })
        .unwrap();
    assert!(wrote, "{kind}: update of an absent key writes");
    assert_eq!(seen.last(), Some(&None), "{kind}: update saw no value");
    let wrote = s
        .update("u/a", &mut |cur| {
            let n: u32 = std::str::from_utf8(cur?).ok()?.parse().ok()?;
            Some((
                (n + 1).to_string().into_bytes(),
                Some(Duration::from_secs(10)),
            ))
        })
        .unwrap();
    assert!(wrote, "{kind}: update from a value writes");
    assert_eq!(
        s.get("u/a").unwrap().unwrap().value,
        b"2",
        "{kind}: updated"
    );
    assert!(
        !s.update("u/a", &mut |_| None).unwrap(),
        "{kind}: a declined update writes nothing"
    );
    assert_eq!(s.get("u/a").unwrap().unwrap().value, b"2", "{kind}: kept");
    clock.advance(Duration::from_secs(11));
    let mut after = None;
    s.update("u/a", &mut |cur| {
        after = Some(cur.map(<[u8]>::to_vec));
        None
    })
    .unwrap();
    assert_eq!(
        after,
        Some(None),
        "{kind}: update does not see an expired value"
    );
    assert!(matches!(
        s.update("u//a", &mut |_| None),
        Err(StateError::InvalidKey(_))
    ));
}

/// Many threads racing to create one key: exactly one wins, for stores
/// that several processes or threads share.
///
/// # Panics
/// When more or fewer than one creation succeeded.
pub fn contract_races(store: &(dyn StateStore + 'static)) {
    let winners = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for i in 0..8 {
            let winners = &winners;
            scope.spawn(move || {
                let value = format!("writer {i}");
                if store
                    .compare_and_set("race/key", None, value.as_bytes(), None)
                    .unwrap()
                    .is_some()
                {
                    winners.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
            });
        }
    });
    assert_eq!(
        winners.into_inner(),
        1,
        "{}: exactly one creation wins",
        store.kind()
    );
    let counted = std::sync::atomic::AtomicI64::new(0);
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                for _ in 0..25 {
                    store.increment("race/count", 1, None).unwrap();
                }
                counted.fetch_add(25, std::sync::atomic::Ordering::SeqCst);
            });
        }
    });
    assert_eq!(
        store.increment("race/count", 0, None).unwrap(),
        counted.into_inner()
    );
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                for _ in 0..25 {
                    store
                        .update("race/updated", &mut |cur| {
                            let n: u64 = cur
                                .and_then(|v| std::str::from_utf8(v).ok()?.parse().ok())
                                .unwrap_or(0);
                            Some(((n + 1).to_string().into_bytes(), None))
                        })
                        .unwrap();
                }
            });
        }
    });
    assert_eq!(
        store.get("race/updated").unwrap().map(|v| v.value),
        Some(b"200".to_vec()),
        "{}: no update is lost",
        store.kind()
    );
}
