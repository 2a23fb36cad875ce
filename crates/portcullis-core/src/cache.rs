//! A small cache of resolved manifests, so that hot `GET /manifests/<tag>`
//! requests cost no storage round trips. Entries live for a short time
//! (other processes may write the same storage, e.g. registry:2 during a
//! migration) and are dropped at once by this process's own writes.
//!
//! A reader that missed fills the cache with what it read from storage. If a
//! write lands between that read and the fill, the fill would put the old
//! manifest back after the write dropped it. So every repository has a
//! generation (one of [`STRIPES`] counters, chosen by hashing the name), which
//! [`ManifestCache::invalidate`] bumps; a reader takes a [`Ticket`] before it
//! reads storage, and its fill is kept only when the generation has not moved.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use portcullis_types::{Reference, RepoName};

use crate::ManifestRead;

/// How long a resolved manifest is served from memory.
const TTL: Duration = Duration::from_secs(2);
/// Upper bound on cached bytes, to keep resident memory small.
const MAX_BYTES: usize = 8 * 1024 * 1024;
/// Generation counters; repositories that share one only cost each other a
/// refused fill now and then, never a stale read.
const STRIPES: usize = 64;

pub(crate) struct ManifestCache {
    inner: parking_lot::RwLock<Inner>,
    generations: [AtomicU64; STRIPES],
    hasher: std::collections::hash_map::RandomState,
}

impl Default for ManifestCache {
    fn default() -> Self {
        Self {
            inner: parking_lot::RwLock::default(),
            generations: std::array::from_fn(|_| AtomicU64::new(0)),
            hasher: std::collections::hash_map::RandomState::new(),
        }
    }
}

#[derive(Default)]
struct Inner {
    entries: HashMap<(RepoName, Reference), (ManifestRead, Instant)>,
    bytes: usize,
}

/// A repository's generation, taken before reading storage for a fill.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ticket {
    stripe: usize,
    generation: u64,
}

impl ManifestCache {
    fn stripe(&self, name: &RepoName) -> usize {
        let h = self.hasher.hash_one(name.as_str());
        usize::try_from(h % STRIPES as u64).unwrap_or(0)
    }

    pub fn get(&self, name: &RepoName, reference: &Reference) -> Option<ManifestRead> {
        let g = self.inner.read();
        let key = (name.clone(), reference.clone());
        match g.entries.get(&key) {
            Some((m, at)) if at.elapsed() < TTL => Some(m.clone()),
            _ => None,
        }
    }

    /// Call before reading storage for a later [`ManifestCache::put`].
    pub fn ticket(&self, name: &RepoName) -> Ticket {
        let stripe = self.stripe(name);
        Ticket {
            stripe,
            generation: self.generations[stripe].load(Ordering::Acquire),
        }
    }

    /// Caches what was read under `ticket`, unless a write to the repository
    /// was invalidated since the ticket was taken (the read may predate it).
    pub fn put(&self, name: &RepoName, reference: &Reference, m: &ManifestRead, ticket: Ticket) {
        let mut g = self.inner.write();
        // Bumps happen under the write lock too, so this check and the insert
        // are atomic with respect to `invalidate`.
        if self.generations[ticket.stripe].load(Ordering::Acquire) != ticket.generation {
            return;
        }
        if g.bytes + m.bytes.len() > MAX_BYTES {
            g.entries.clear();
            g.bytes = 0;
        }
        g.bytes += m.bytes.len();
        if let Some((old, _)) = g.entries.insert(
            (name.clone(), reference.clone()),
            (m.clone(), Instant::now()),
        ) {
            g.bytes -= old.bytes.len();
        }
    }

    /// Drops every entry of a repository (after a write to it) and refuses
    /// the fills of reads that started before.
    pub fn invalidate(&self, name: &RepoName) {
        let stripe = self.stripe(name);
        let mut g = self.inner.write();
        self.generations[stripe].fetch_add(1, Ordering::AcqRel);
        let mut freed = 0;
        g.entries.retain(|(n, _), (m, _)| {
            let keep = n != name;
            if !keep {
                freed += m.bytes.len();
            }
            keep
        });
        g.bytes -= freed;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn read(tag: &str) -> ManifestRead {
        ManifestRead {
            digest: crate::digest_of(portcullis_types::Algorithm::Sha256, tag.as_bytes()),
            media_type: "application/json".to_owned(),
            bytes: Bytes::from(tag.to_owned()),
        }
    }

    #[test]
    fn a_fill_that_started_before_an_invalidation_is_refused() {
        let c = ManifestCache::default();
        let name: RepoName = "a/b".parse().unwrap();
        let r: Reference = "latest".parse().unwrap();
        let before = c.ticket(&name);
        c.invalidate(&name);
        c.put(&name, &r, &read("old"), before);
        assert!(c.get(&name, &r).is_none(), "stale fill was kept");
        let after = c.ticket(&name);
        c.put(&name, &r, &read("new"), after);
        assert_eq!(c.get(&name, &r).unwrap().bytes, Bytes::from("new"));
    }
}
