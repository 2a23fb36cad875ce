//! State in one process's memory: for tests, and for a single registry
//! that keeps nothing across restarts.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use crate::{Change, Clock, StateError, StateStore, Versioned, check_key, version_of};

const MIN_SWEEP: usize = 1024;

struct Entry {
    value: Vec<u8>,
    expires: Option<SystemTime>,
}

/// A [`StateStore`] in memory.
pub struct MemoryStore {
    entries: parking_lot::Mutex<BTreeMap<String, Entry>>,
    /// The size at which the next write first drops expired entries: twice
    /// the live size after the last sweep, so sweeping costs O(1) a write
    /// and a flood of short-lived keys (rate-limit counters per address)
    /// cannot grow the map without bound.
    sweep_at: std::sync::atomic::AtomicUsize,
    clock: Clock,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore").finish_non_exhaustive()
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new(crate::system_clock())
    }
}

impl MemoryStore {
    #[must_use]
    pub fn new(clock: Clock) -> Self {
        Self {
            entries: parking_lot::Mutex::new(BTreeMap::new()),
            sweep_at: std::sync::atomic::AtomicUsize::new(MIN_SWEEP),
            clock,
        }
    }

    fn insert(&self, map: &mut BTreeMap<String, Entry>, key: &str, entry: Entry) {
        use std::sync::atomic::Ordering::Relaxed;
        if map.len() >= self.sweep_at.load(Relaxed) {
            let now = (self.clock)();
            map.retain(|_, e| e.expires.is_none_or(|t| t > now));
            self.sweep_at.store((map.len() * 2).max(MIN_SWEEP), Relaxed);
        }
        map.insert(key.to_owned(), entry);
    }

    fn live<'a>(&self, map: &'a BTreeMap<String, Entry>, key: &str) -> Option<&'a Entry> {
        let now = (self.clock)();
        map.get(key).filter(|e| e.expires.is_none_or(|t| t > now))
    }

    fn expiry(&self, ttl: Option<Duration>) -> Option<SystemTime> {
        ttl.map(|t| (self.clock)() + t)
    }
}

impl StateStore for MemoryStore {
    fn kind(&self) -> &'static str {
        "memory"
    }

    fn get(&self, key: &str) -> Result<Option<Versioned>, StateError> {
        check_key(key)?;
        let map = self.entries.lock();
        Ok(self.live(&map, key).map(|e| Versioned {
            value: e.value.clone(),
            version: version_of(&e.value),
        }))
    }

    fn put(&self, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<u64, StateError> {
        check_key(key)?;
        let expires = self.expiry(ttl);
        let mut map = self.entries.lock();
        self.insert(
            &mut map,
            key,
            Entry {
                value: value.to_vec(),
                expires,
            },
        );
        Ok(version_of(value))
    }

    fn compare_and_set(
        &self,
        key: &str,
        expected: Option<u64>,
        value: &[u8],
        ttl: Option<Duration>,
    ) -> Result<Option<u64>, StateError> {
        check_key(key)?;
        let mut map = self.entries.lock();
        let current = self.live(&map, key).map(|e| version_of(&e.value));
        if current != expected {
            return Ok(None);
        }
        let expires = self.expiry(ttl);
        self.insert(
            &mut map,
            key,
            Entry {
                value: value.to_vec(),
                expires,
            },
        );
        Ok(Some(version_of(value)))
    }

    /// One lock; an entry that exists is changed in place (no new key).
    fn update(&self, key: &str, change: &mut Change<'_>) -> Result<bool, StateError> {
        check_key(key)?;
        let mut map = self.entries.lock();
        let Some((value, ttl)) = change(self.live(&map, key).map(|e| e.value.as_slice())) else {
            return Ok(false);
        };
        let expires = self.expiry(ttl);
        match map.get_mut(key) {
            Some(e) => *e = Entry { value, expires },
            None => self.insert(&mut map, key, Entry { value, expires }),
        }
        Ok(true)
    }

    fn delete(&self, key: &str) -> Result<bool, StateError> {
        check_key(key)?;
        let mut map = self.entries.lock();
        let was_live = self.live(&map, key).is_some();
        map.remove(key);
        Ok(was_live)
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>, StateError> {
        if !prefix.is_empty() {
            check_key(prefix)?;
        }
        let map = self.entries.lock();
        let under = format!("{prefix}/");
        Ok(map
            .keys()
            .filter(|k| prefix.is_empty() || k.as_str() == prefix || k.starts_with(&under))
            .filter(|k| self.live(&map, k).is_some())
            .cloned()
            .collect())
    }

    fn increment(&self, key: &str, by: i64, ttl: Option<Duration>) -> Result<i64, StateError> {
        check_key(key)?;
        let mut map = self.entries.lock();
        let (count, expires) = match self.live(&map, key) {
            Some(e) => (crate::parse_count(key, &e.value)?, e.expires),
            None => (0, self.expiry(ttl)),
        };
        let next = count.saturating_add(by);
        self.insert(
            &mut map,
            key,
            Entry {
                value: next.to_string().into_bytes(),
                expires,
            },
        );
        Ok(next)
    }

    fn now(&self) -> SystemTime {
        (self.clock)()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_store_keeps_the_contract() {
        let clock = crate::TestClock::default();
        crate::contract(&MemoryStore::new(clock.clock()), &clock);
        crate::contract_races(&MemoryStore::default());
    }

    #[test]
    fn expired_entries_are_swept_as_writes_go_on() {
        let clock = crate::TestClock::default();
        let store = MemoryStore::new(clock.clock());
        store.put("keep", b"1", None).expect("put");
        for round in 0..10 {
            for i in 0..1000 {
                let key = format!("limits/{round}/{i}");
                store
                    .increment(&key, 1, Some(Duration::from_secs(1)))
                    .expect("count");
            }
            clock.advance(Duration::from_secs(2));
        }
        let held = store.entries.lock().len();
        assert!(held <= 2 * MIN_SWEEP + 1, "{held} entries held");
        assert_eq!(
            store.get("keep").expect("get").map(|v| v.value),
            Some(b"1".to_vec())
        );
    }
}
