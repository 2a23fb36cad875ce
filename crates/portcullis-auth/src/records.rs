//! The small record stores (refresh tokens, robot tokens) over a
//! [`StateStore`]: each store is one JSON document, `{"<list>": [records]}`,
//! under one key. Records are few and small, so one document keeps every
//! change (create-if-the-name-is-free, revoke-all-of-an-owner) a single
//! compare-and-set, and keeps the layout of the files these stores were
//! before: in a [`DirStore`] over the state directory the key *is* the old
//! file, in the old format.
//!
//! Each process caches the document and re-reads it when its version
//! changes (one `get` per operation), and writes it whole by
//! compare-and-set against the version it read, re-reading and re-applying
//! its change on conflict, so the processes that share the state (the
//! server and the CLI, or replicas) never lose each other's writes.
//! Last-use times are batched (at most one write a minute).
//!
//! A store opened over a state store that lacks its key imports the old
//! store file once, when there is one, and renames it `<file>.migrated`.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use portcullis_state::{DirStore, StateError, StateStore, system_clock};
use sha2::{Digest, Sha256};

pub(crate) fn secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Hex SHA-256 of a secret (what the stores keep instead of the secret).
pub(crate) fn hash_hex(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Constant-time comparison of two equal-length ASCII strings.
pub(crate) fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Why a store could not be used; each store maps it to its own error.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FileError {
    #[error("{0}")]
    Io(std::io::Error),
    #[error("corrupt: {0}")]
    Corrupt(String),
}

impl From<StateError> for FileError {
    fn from(e: StateError) -> Self {
        match e {
            StateError::Io { source, .. } => Self::Io(source),
            other => Self::Corrupt(other.to_string()),
        }
    }
}

/// A stored record: keyed by its id, and remembering its last use.
pub(crate) trait Entry: Clone + serde::Serialize + serde::de::DeserializeOwned {
    fn id(&self) -> &str;
    fn last_used(&self) -> u64;
    fn set_last_used(&mut self, secs: u64);
}

type Map<E> = BTreeMap<String, E>;

fn parse<E: Entry>(bytes: &[u8], list: &str) -> Result<Map<E>, FileError> {
    let corrupt = |e: serde_json::Error| FileError::Corrupt(e.to_string());
    let mut doc: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(bytes).map_err(corrupt)?;
    let records: Vec<E> = match doc.remove(list) {
        Some(v) => serde_json::from_value(v).map_err(corrupt)?,
        None => Vec::new(),
    };
    Ok(records
        .into_iter()
        .map(|r| (r.id().to_owned(), r))
        .collect())
}

fn render<E: Entry>(entries: &Map<E>, list: &str) -> Result<Vec<u8>, FileError> {
    let records: Vec<&E> = entries.values().collect();
    let mut doc = serde_json::Map::new();
    doc.insert(
        list.to_owned(),
        serde_json::to_value(records).map_err(|e| FileError::Corrupt(e.to_string()))?,
    );
    serde_json::to_vec_pretty(&doc).map_err(|e| FileError::Corrupt(e.to_string()))
}

/// This process's copy of a store's document.
pub(crate) struct Records<E> {
    pub entries: Map<E>,
    /// The stored document `entries` was read from (or written as), and
    /// its version; `None` while the key is absent.
    stored: Option<(u64, Vec<u8>)>,
    pub last_flush: Option<SystemTime>,
    /// Last-use times changed since the last write.
    pub dirty: bool,
}

impl<E> Default for Records<E> {
    fn default() -> Self {
        Self {
            entries: BTreeMap::new(),
            stored: None,
            last_flush: None,
            dirty: false,
        }
    }
}

impl<E: Entry> Records<E> {
    /// Re-reads the document if its version changed since we last read or
    /// wrote it (or always, with `force`). An absent key is an empty store.
    /// Last-use times from memory win when newer.
    fn refresh(
        &mut self,
        state: &dyn StateStore,
        key: &str,
        list: &str,
        force: bool,
    ) -> Result<(), FileError> {
        let current = state.get(key)?;
        let version = current.as_ref().map(|c| c.version);
        if !force && version == self.stored.as_ref().map(|s| s.0) {
            return Ok(());
        }
        let mut entries: Map<E> = match &current {
            Some(c) => parse(&c.value, list)?,
            None => BTreeMap::new(),
        };
        for (id, r) in &mut entries {
            if let Some(old) = self.entries.get(id) {
                r.set_last_used(r.last_used().max(old.last_used()));
            }
        }
        self.entries = entries;
        self.stored = current.map(|c| (c.version, c.value));
        Ok(())
    }
}

/// How often last-use times are written at most.
pub(crate) const LAST_USE_FLUSH: Duration = Duration::from_secs(60);

/// How many times a write is re-applied after losing a race before it
/// gives up; a handful of processes never get near it.
const MAX_ATTEMPTS: usize = 64;

/// A store of [`Entry`] records in one key of a [`StateStore`], shared in
/// an `Arc`. Blocking I/O, small and rare.
pub(crate) struct RecordStore<E> {
    state: Arc<dyn StateStore>,
    key: String,
    /// The name of the document's record list.
    list: &'static str,
    /// Where the key is, for messages.
    location: PathBuf,
    records: parking_lot::Mutex<Records<E>>,
}

impl<E: Entry> RecordStore<E> {
    /// Opens the store at `key` of `state`, first importing the store file
    /// `legacy` when the key is absent and the file exists.
    pub fn open(
        state: Arc<dyn StateStore>,
        key: &str,
        list: &'static str,
        legacy: Option<&Path>,
    ) -> Result<Self, FileError> {
        let location = PathBuf::from(state.location(key));
        if let Some(file) = legacy {
            import::<E>(&*state, key, list, file, &location)?;
        }
        let mut records = Records::default();
        records.refresh(&*state, key, list, true)?;
        Ok(Self {
            state,
            key: key.to_owned(),
            list,
            location,
            records: parking_lot::Mutex::new(records),
        })
    }

    /// Opens the store that is the file `path`: the key named like the file
    /// in a [`DirStore`] over its directory.
    pub fn open_file(path: &Path, list: &'static str) -> Result<Self, FileError> {
        let key = path.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
            FileError::Io(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "not a file name",
            ))
        })?;
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let state: Arc<dyn StateStore> = Arc::new(DirStore::new(dir, system_clock()));
        let key = key.to_owned();
        let mut store = Self::open(state, &key, list, None)?;
        path.clone_into(&mut store.location);
        Ok(store)
    }

    pub fn location(&self) -> &Path {
        &self.location
    }

    /// The records, locked and up to date with the state store.
    pub fn lock(&self) -> Result<parking_lot::MutexGuard<'_, Records<E>>, FileError> {
        let mut st = self.records.lock();
        st.refresh(&*self.state, &self.key, self.list, false)?;
        Ok(st)
    }

    /// Applies `change` to the current records and stores the result by
    /// compare-and-set; when another process wrote first, re-reads and
    /// applies `change` again. A refusal from `change` writes nothing and
    /// is the inner error. Nothing is written when nothing changed.
    pub fn update<T, X>(
        &self,
        st: &mut Records<E>,
        now: SystemTime,
        mut change: impl FnMut(&mut Map<E>) -> Result<T, X>,
    ) -> Result<Result<T, X>, FileError> {
        for _ in 0..MAX_ATTEMPTS {
            st.refresh(&*self.state, &self.key, self.list, false)?;
            let mut next = st.entries.clone();
            let out = match change(&mut next) {
                Ok(out) => out,
                Err(refused) => return Ok(Err(refused)),
            };
            let bytes = render(&next, self.list)?;
            let expected = st.stored.as_ref().map(|s| s.0);
            let unchanged = match &st.stored {
                Some((_, stored)) => *stored == bytes,
                None => next.is_empty(),
            };
            if unchanged {
                st.dirty = false;
                return Ok(Ok(out));
            }
            if let Some(version) = self
                .state
                .compare_and_set(&self.key, expected, &bytes, None)?
            {
                st.entries = next;
                st.stored = Some((version, bytes));
                st.last_flush = Some(now);
                st.dirty = false;
                return Ok(Ok(out));
            }
        }
        Err(FileError::Io(std::io::Error::other(format!(
            "other writers changed it {MAX_ATTEMPTS} times while this one tried to write"
        ))))
    }

    /// [`Self::update`] with a change that cannot be refused.
    pub fn modify<T>(
        &self,
        st: &mut Records<E>,
        now: SystemTime,
        mut change: impl FnMut(&mut Map<E>) -> T,
    ) -> Result<T, FileError> {
        match self.update(st, now, |m| Ok::<T, std::convert::Infallible>(change(m)))? {
            Ok(out) => Ok(out),
            Err(never) => match never {},
        }
    }

    /// Notes that a record's last use changed: written now when `at_once`
    /// or a minute after the last write, else later by [`Self::flush`].
    /// Last-use times are best effort: a failed write is only logged.
    pub fn note_use(&self, st: &mut Records<E>, now: SystemTime, at_once: bool) {
        st.dirty = true;
        let due = at_once
            || st
                .last_flush
                .is_none_or(|t| now.duration_since(t).unwrap_or_default() >= LAST_USE_FLUSH);
        if due && let Err(e) = self.modify(st, now, |_| ()) {
            tracing::warn!(store = %self.location.display(), error = %e, "could not record a last use");
        }
    }

    /// Every record, ordered by `key`.
    pub fn list_by<K: Ord>(&self, key: impl Fn(&E) -> K) -> Result<Vec<E>, FileError> {
        let st = self.lock()?;
        let mut v: Vec<E> = st.entries.values().cloned().collect();
        v.sort_by_key(|e| key(e));
        Ok(v)
    }

    /// Removes the records matching `pred`; returns how many.
    pub fn revoke_where(
        &self,
        pred: impl Fn(&E) -> bool,
        now: SystemTime,
    ) -> Result<usize, FileError> {
        let mut st = self.records.lock();
        self.modify(&mut st, now, |entries| {
            let before = entries.len();
            entries.retain(|_, r| !pred(r));
            before - entries.len()
        })
    }

    /// Writes pending last-use times (e.g. at shutdown).
    pub fn flush(&self, now: SystemTime) -> Result<(), FileError> {
        let mut st = self.records.lock();
        if st.dirty {
            self.modify(&mut st, now, |_| ())?;
        }
        Ok(())
    }
}

/// Copies the store file `file` into `key` when the key is absent, then
/// renames the file `<file>.migrated` (kept for a downgrade by hand). A file
/// that does not parse is an error and stays where it is.
fn import<E: Entry>(
    state: &dyn StateStore,
    key: &str,
    list: &str,
    file: &Path,
    location: &Path,
) -> Result<(), FileError> {
    // A directory store over the file's own directory keeps it as the key.
    if location == file || state.get(key)?.is_some() {
        return Ok(());
    }
    let bytes = match fs::read(file) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(FileError::Io(e)),
    };
    let records = parse::<E>(&bytes, list)?.len();
    // `None`: another process imported it first.
    if state.compare_and_set(key, None, &bytes, None)?.is_some() {
        tracing::info!(
            from = %file.display(), to = %location.display(), records,
            "imported a token store file into the state store"
        );
    }
    let mut done = file.as_os_str().to_owned();
    done.push(".migrated");
    match fs::rename(file, &done) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(
            file = %file.display(), error = %e,
            "imported a token store file but could not rename it; it is no longer read"
        ),
    }
    Ok(())
}

/// Test support: the stores' tests run once over each kind of state store.
#[cfg(test)]
pub(crate) mod testing {
    use std::path::PathBuf;
    use std::sync::Arc;

    use portcullis_state::{DirStore, MemoryStore, StateStore, system_clock};

    /// A state store to run a test over; every [`Backend::state`] is
    /// another handle on the same state (for a directory, another store
    /// over it, as another process would open).
    pub(crate) struct Backend {
        pub name: &'static str,
        dir: tempfile::TempDir,
        memory: Option<Arc<MemoryStore>>,
    }

    impl Backend {
        pub fn state(&self) -> Arc<dyn StateStore> {
            match &self.memory {
                Some(m) => m.clone(),
                None => Arc::new(DirStore::new(self.dir.path().join("state"), system_clock())),
            }
        }

        /// The file that holds `key`, for a directory.
        pub fn file(&self, key: &str) -> Option<PathBuf> {
            self.memory
                .is_none()
                .then(|| self.dir.path().join("state").join(key))
        }
    }

    /// Runs `test` over a memory store and over a directory store.
    pub(crate) fn for_each_store(test: impl Fn(&Backend)) {
        for memory in [true, false] {
            let backend = Backend {
                name: if memory { "memory" } else { "directory" },
                dir: tempfile::tempdir().unwrap(),
                memory: memory.then(|| Arc::new(MemoryStore::default())),
            };
            test(&backend);
        }
    }
}
