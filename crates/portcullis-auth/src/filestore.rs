//! Helpers shared by the small JSON stores (refresh tokens, robot tokens):
//! hashing and constant-time comparison of secrets, change detection, and
//! private atomic writes.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

/// What identifies a version of a file on disk (inode, size, mtime).
pub(crate) type Stamp = Option<(u64, u64, i64, i64)>;

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

pub(crate) fn stamp(path: &Path) -> Stamp {
    let md = fs::metadata(path).ok()?;
    Some((md.ino(), md.len(), md.mtime(), md.mtime_nsec()))
}

/// Constant-time comparison of two equal-length ASCII strings.
pub(crate) fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Writes `data` to `path` atomically with mode 0600: a temp file in the
/// same directory, synced, then renamed over the old one.
pub(crate) fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(data).and_then(|()| f.sync_all())?;
    fs::rename(&tmp, path)
}

/// Why a store file could not be used; each store maps it to its own error.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FileError {
    #[error("{0}")]
    Io(std::io::Error),
    #[error("corrupt: {0}")]
    Corrupt(String),
}

/// A stored record: keyed by its id, and remembering its last use.
pub(crate) trait Entry: Clone + serde::Serialize + serde::de::DeserializeOwned {
    fn id(&self) -> &str;
    fn last_used(&self) -> u64;
    fn set_last_used(&mut self, secs: u64);
}

/// The in-memory side of a small JSON store: `{"<key>": [records]}` on
/// disk, re-read when the file changes, written whole and atomically.
pub(crate) struct Records<E> {
    pub entries: std::collections::BTreeMap<String, E>,
    stamp: Stamp,
    pub last_flush: Option<SystemTime>,
    /// Last-use times changed since the last write.
    pub dirty: bool,
}

impl<E> Default for Records<E> {
    fn default() -> Self {
        Self {
            entries: std::collections::BTreeMap::new(),
            stamp: None,
            last_flush: None,
            dirty: false,
        }
    }
}

impl<E: Entry> Records<E> {
    /// Re-reads `path` if it changed since we last read or wrote it (or
    /// always, with `force`). A missing file is an empty store. Last-use
    /// times from memory win when newer.
    pub fn reload(&mut self, path: &Path, key: &str, force: bool) -> Result<(), FileError> {
        let now_stamp = stamp(path);
        if !force && now_stamp == self.stamp {
            return Ok(());
        }
        let text = match fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.entries.clear();
                self.stamp = None;
                return Ok(());
            }
            Err(e) => return Err(FileError::Io(e)),
        };
        let mut file: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&text).map_err(|e| FileError::Corrupt(e.to_string()))?;
        let list: Vec<E> = match file.remove(key) {
            Some(v) => serde_json::from_value(v).map_err(|e| FileError::Corrupt(e.to_string()))?,
            None => Vec::new(),
        };
        let mut entries: std::collections::BTreeMap<String, E> =
            list.into_iter().map(|r| (r.id().to_owned(), r)).collect();
        for (id, r) in &mut entries {
            if let Some(old) = self.entries.get(id) {
                r.set_last_used(r.last_used().max(old.last_used()));
            }
        }
        self.entries = entries;
        self.stamp = now_stamp;
        Ok(())
    }

    /// Writes every record to `path` (mode 0600, atomically).
    pub fn write(&mut self, path: &Path, key: &str, now: SystemTime) -> Result<(), FileError> {
        let list: Vec<&E> = self.entries.values().collect();
        let mut body = serde_json::Map::new();
        body.insert(
            key.to_owned(),
            serde_json::to_value(list).map_err(|e| FileError::Corrupt(e.to_string()))?,
        );
        let json =
            serde_json::to_vec_pretty(&body).map_err(|e| FileError::Corrupt(e.to_string()))?;
        write_private(path, &json).map_err(FileError::Io)?;
        self.stamp = stamp(path);
        self.last_flush = Some(now);
        self.dirty = false;
        Ok(())
    }
}

/// How often last-use times are written at most.
pub(crate) const LAST_USE_FLUSH: std::time::Duration = std::time::Duration::from_secs(60);

/// A small JSON store of [`Entry`] records, shared in an `Arc`: one file,
/// a lock, re-read when another process changed the file. Blocking I/O,
/// small and rare.
pub(crate) struct JsonStore<E> {
    path: std::path::PathBuf,
    /// The key of the file's record list.
    key: &'static str,
    state: parking_lot::Mutex<Records<E>>,
}

impl<E: Entry> JsonStore<E> {
    /// Opens (or prepares to create) the store at `path`.
    pub fn open(path: &Path, key: &'static str) -> Result<Self, FileError> {
        let mut records = Records::default();
        records.reload(path, key, true)?;
        Ok(Self {
            path: path.to_owned(),
            key,
            state: parking_lot::Mutex::new(records),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The records, locked and up to date with the file.
    pub fn lock(&self) -> Result<parking_lot::MutexGuard<'_, Records<E>>, FileError> {
        let mut st = self.state.lock();
        st.reload(&self.path, self.key, false)?;
        Ok(st)
    }

    /// Writes the locked records.
    pub fn write(&self, st: &mut Records<E>, now: SystemTime) -> Result<(), FileError> {
        st.write(&self.path, self.key, now)
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
        if due && let Err(e) = self.write(st, now) {
            tracing::warn!(path = %self.path.display(), error = %e, "could not record a last use");
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
        let mut st = self.lock()?;
        let before = st.entries.len();
        st.entries.retain(|_, r| !pred(r));
        let removed = before - st.entries.len();
        if removed > 0 {
            self.write(&mut st, now)?;
        }
        Ok(removed)
    }

    /// Writes pending last-use times (e.g. at shutdown).
    pub fn flush(&self, now: SystemTime) -> Result<(), FileError> {
        let mut st = self.state.lock();
        if st.dirty {
            st.reload(&self.path, self.key, false)?;
            self.write(&mut st, now)?;
        }
        Ok(())
    }
}
