//! A small cache of resolved manifests, so that hot `GET /manifests/<tag>`
//! requests cost no storage round trips. Entries live for a short time
//! (other processes may write the same storage, e.g. registry:2 during a
//! migration) and are dropped at once by this process's own writes.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use portcullis_types::{Reference, RepoName};

use crate::ManifestRead;

/// How long a resolved manifest is served from memory.
const TTL: Duration = Duration::from_secs(2);
/// Upper bound on cached bytes, to keep resident memory small.
const MAX_BYTES: usize = 8 * 1024 * 1024;

#[derive(Default)]
pub(crate) struct ManifestCache {
    inner: parking_lot::RwLock<Inner>,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<(RepoName, Reference), (ManifestRead, Instant)>,
    bytes: usize,
}

impl ManifestCache {
    pub fn get(&self, name: &RepoName, reference: &Reference) -> Option<ManifestRead> {
        let g = self.inner.read();
        let key = (name.clone(), reference.clone());
        match g.entries.get(&key) {
            Some((m, at)) if at.elapsed() < TTL => Some(m.clone()),
            _ => None,
        }
    }

    pub fn put(&self, name: &RepoName, reference: &Reference, m: &ManifestRead) {
        let mut g = self.inner.write();
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

    /// Drops every entry of a repository (after a write to it).
    pub fn invalidate(&self, name: &RepoName) {
        let mut g = self.inner.write();
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
