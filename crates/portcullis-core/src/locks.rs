//! Per-key async locks (per tag, per repository) that exist only while held
//! or awaited, so the maps stay as small as the number of writes in flight.
//! They order this process's writes; replicas on shared storage are not
//! covered (that needs a compare-and-set in the state store).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;

use tokio::sync::{OwnedRwLockReadGuard, OwnedRwLockWriteGuard, RwLock};

type Slot = Arc<RwLock<()>>;

/// A map of reader-writer locks keyed by `K`.
pub(crate) struct KeyedLocks<K> {
    slots: Arc<parking_lot::Mutex<HashMap<K, Slot>>>,
}

impl<K> Default for KeyedLocks<K> {
    fn default() -> Self {
        Self {
            slots: Arc::default(),
        }
    }
}

/// A held lock; it is never read, only dropped.
enum Held {
    Shared { _guard: OwnedRwLockReadGuard<()> },
    Exclusive { _guard: OwnedRwLockWriteGuard<()> },
}

/// Holds one key's lock; dropping it releases the lock and forgets the key
/// when nobody else holds or awaits it.
pub(crate) struct KeyGuard<K: Eq + Hash> {
    held: Option<Held>,
    key: Option<K>,
    slots: Arc<parking_lot::Mutex<HashMap<K, Slot>>>,
}

impl<K: Eq + Hash> Drop for KeyGuard<K> {
    fn drop(&mut self) {
        drop(self.held.take());
        let Some(key) = self.key.take() else { return };
        let mut slots = self.slots.lock();
        // Only the map's own reference is left: no holder, no waiter, and
        // no one can clone it without the map lock we hold.
        if slots.get(&key).is_some_and(|s| Arc::strong_count(s) == 1) {
            slots.remove(&key);
        }
    }
}

impl<K: Eq + Hash + Clone> KeyedLocks<K> {
    fn slot(&self, key: &K) -> Slot {
        self.slots.lock().entry(key.clone()).or_default().clone()
    }

    fn guard(&self, key: K, held: Held) -> KeyGuard<K> {
        KeyGuard {
            held: Some(held),
            key: Some(key),
            slots: self.slots.clone(),
        }
    }

    /// Shared access: many holders at once, none while someone is exclusive.
    pub async fn shared(&self, key: K) -> KeyGuard<K> {
        let held = Held::Shared {
            _guard: self.slot(&key).read_owned().await,
        };
        self.guard(key, held)
    }

    /// Exclusive access to `key`.
    pub async fn exclusive(&self, key: K) -> KeyGuard<K> {
        let held = Held::Exclusive {
            _guard: self.slot(&key).write_owned().await,
        };
        self.guard(key, held)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.slots.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn exclusive_waits_for_shared_and_keys_are_forgotten() {
        let locks: Arc<KeyedLocks<&'static str>> = Arc::default();
        let a = locks.shared("k").await;
        let b = locks.shared("k").await;
        let l2 = locks.clone();
        let waiter = tokio::spawn(async move { drop(l2.exclusive("k").await) });
        tokio::task::yield_now().await;
        assert!(
            !waiter.is_finished(),
            "exclusive lock taken beside shared ones"
        );
        drop((a, b));
        waiter.await.unwrap();
        assert_eq!(locks.len(), 0, "released keys must not stay in the map");
        let _other = locks.exclusive("other").await;
        let _k = locks.exclusive("k").await;
        assert_eq!(locks.len(), 2);
    }
}
