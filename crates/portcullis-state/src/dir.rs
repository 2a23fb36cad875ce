//! State as files under a directory: each key is a file at its own path
//! (so `keys/signing.key` stays a PEM file an operator can read), an
//! entry's expiry in `.ttl/<key>`, and every write under an exclusive lock
//! on `.lock`, so the processes that share the directory (a registry and
//! the CLI, or replicas on one host) agree. Files are written to a
//! temporary name, flushed, and renamed into place, mode 0600.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::{
    Change, Clock, Lease, StateError, StateStore, Versioned, check_key, parse_count, version_of,
};

/// A [`StateStore`] in a directory.
pub struct DirStore {
    root: PathBuf,
    clock: Clock,
    /// Serializes this process's writers (the file lock does it across
    /// processes).
    writers: parking_lot::Mutex<()>,
}

impl std::fmt::Debug for DirStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirStore")
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

/// A live entry: its value and expiry.
type Live = (Vec<u8>, Option<SystemTime>);

fn millis(t: SystemTime) -> u128 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis())
}

impl DirStore {
    /// A store rooted at `root` (created, mode 0700, when first written).
    #[must_use]
    pub fn new(root: impl Into<PathBuf>, clock: Clock) -> Self {
        Self {
            root: root.into(),
            clock,
            writers: parking_lot::Mutex::new(()),
        }
    }

    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn io(&self, path: &Path, source: std::io::Error) -> StateError {
        StateError::Io {
            path: path.display().to_string(),
            source,
        }
    }

    fn path(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }

    fn ttl_path(&self, key: &str) -> PathBuf {
        self.root.join(".ttl").join(key)
    }

    fn mkdirs(&self, dir: &Path) -> Result<(), StateError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| self.io(dir, e))
    }

    /// Runs `f` holding the store's lock: exclusive for writers.
    fn locked<T>(
        &self,
        exclusive: bool,
        f: impl FnOnce() -> Result<T, StateError>,
    ) -> Result<T, StateError> {
        let _guard = exclusive.then(|| self.writers.lock());
        let lock_path = self.root.join(".lock");
        let file = match OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&lock_path)
        {
            Ok(f) => f,
            // A reader that may not create the lock (nothing written yet,
            // or a read-only view of the directory) reads without it: each
            // value is replaced whole, by rename.
            Err(e)
                if !exclusive
                    && matches!(
                        e.kind(),
                        std::io::ErrorKind::NotFound
                            | std::io::ErrorKind::PermissionDenied
                            | std::io::ErrorKind::ReadOnlyFilesystem
                    ) =>
            {
                return f();
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.mkdirs(&self.root)?;
                OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .mode(0o600)
                    .open(&lock_path)
                    .map_err(|e| self.io(&lock_path, e))?
            }
            Err(e) => return Err(self.io(&lock_path, e)),
        };
        if exclusive {
            file.lock()
        } else {
            file.lock_shared()
        }
        .map_err(|e| self.io(&lock_path, e))?;
        let out = f();
        let _ = file.unlock();
        out
    }

    fn expires(&self, key: &str) -> Result<Option<SystemTime>, StateError> {
        let p = self.ttl_path(key);
        match fs::read_to_string(&p) {
            Ok(s) => s
                .trim()
                .parse::<u64>()
                .map(|ms| Some(UNIX_EPOCH + Duration::from_millis(ms)))
                .map_err(|_| StateError::Corrupt {
                    key: key.to_owned(),
                    what: "an expiry time",
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.io(&p, e)),
        }
    }

    /// The live value and its expiry, read without a lock.
    fn read(&self, key: &str) -> Result<Option<Live>, StateError> {
        let p = self.path(key);
        let value = match fs::read(&p) {
            Ok(v) => v,
            // A key that is a prefix of others is a directory, no value.
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound
                        | std::io::ErrorKind::NotADirectory
                        | std::io::ErrorKind::IsADirectory
                ) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(self.io(&p, e)),
        };
        let expires = self.expires(key)?;
        let now = (self.clock)();
        Ok(expires.is_none_or(|t| t > now).then_some((value, expires)))
    }

    /// Writes `bytes` to `path` by temporary file and rename, flushed.
    /// Replaces `path` whole, by rename; `durable` flushes the file and its
    /// directory first (a lease, which outlives no holder, skips that).
    fn write_file(&self, path: &Path, bytes: &[u8], durable: bool) -> Result<(), StateError> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = path.parent().unwrap_or(&self.root);
        self.mkdirs(dir)?;
        let tmp = dir.join(format!(
            ".tmp-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let result = (|| {
            let mut f = OpenOptions::new()
                .create_new(true)
                .write(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(bytes)?;
            if durable {
                f.sync_data()?;
            }
            fs::rename(&tmp, path)?;
            if durable {
                File::open(dir)?.sync_all()?;
            }
            Ok(())
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result.map_err(|e| self.io(path, e))
    }

    fn remove(&self, path: &Path) -> Result<(), StateError> {
        match fs::remove_file(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.io(path, e)),
        }
    }

    /// Writes an entry and its expiry (under the lock).
    fn store(
        &self,
        key: &str,
        value: &[u8],
        expires: Option<SystemTime>,
    ) -> Result<u64, StateError> {
        self.store_as(key, value, expires, true)
    }

    fn store_as(
        &self,
        key: &str,
        value: &[u8],
        expires: Option<SystemTime>,
        durable: bool,
    ) -> Result<u64, StateError> {
        let ttl = self.ttl_path(key);
        match expires {
            Some(t) => self.write_file(&ttl, millis(t).to_string().as_bytes(), durable)?,
            None => self.remove(&ttl)?,
        }
        self.write_file(&self.path(key), value, durable)?;
        Ok(version_of(value))
    }

    fn walk(&self, dir: &Path, key: &str, out: &mut Vec<String>) -> Result<(), StateError> {
        let entries = match fs::read_dir(dir) {
            Ok(e) => e,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                ) =>
            {
                return Ok(());
            }
            Err(e) => return Err(self.io(dir, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| self.io(dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let child = if key.is_empty() {
                name
            } else {
                format!("{key}/{name}")
            };
            if entry.file_type().map_err(|e| self.io(dir, e))?.is_dir() {
                self.walk(&entry.path(), &child, out)?;
            } else if check_key(&child).is_ok() && self.read(&child)?.is_some() {
                out.push(child);
            }
        }
        Ok(())
    }
}

impl StateStore for DirStore {
    fn kind(&self) -> &'static str {
        "directory"
    }

    fn location(&self, key: &str) -> String {
        self.path(key).display().to_string()
    }

    fn get(&self, key: &str) -> Result<Option<Versioned>, StateError> {
        check_key(key)?;
        // A key with no value file is absent, whatever a writer is about to
        // do: answered without the lock, so the common miss (the lockout is
        // asked on every login) costs one failed stat. A value and its
        // expiry are two files, so they are read together under the lock.
        if fs::symlink_metadata(self.path(key))
            .is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound)
        {
            return Ok(None);
        }
        self.locked(false, || {
            Ok(self.read(key)?.map(|(value, _)| Versioned {
                version: version_of(&value),
                value,
            }))
        })
    }

    fn put(&self, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<u64, StateError> {
        check_key(key)?;
        self.locked(true, || {
            self.store(key, value, ttl.map(|t| (self.clock)() + t))
        })
    }

    fn compare_and_set(
        &self,
        key: &str,
        expected: Option<u64>,
        value: &[u8],
        ttl: Option<Duration>,
    ) -> Result<Option<u64>, StateError> {
        check_key(key)?;
        self.locked(true, || {
            let current = self.read(key)?.map(|(v, _)| version_of(&v));
            if current != expected {
                return Ok(None);
            }
            self.store(key, value, ttl.map(|t| (self.clock)() + t))
                .map(Some)
        })
    }

    /// Under the store's lock, and written without flushing: a lease
    /// outlives no holder, so losing it in a power cut loses nothing (it
    /// would have lapsed), and a session's lease is taken on every chunk.
    fn acquire(&self, key: &str, holder: &str, ttl: Duration) -> Result<Option<Lease>, StateError> {
        check_key(key)?;
        self.locked(true, || {
            if let Some((v, _)) = self.read(key)?
                && v != holder.as_bytes()
            {
                return Ok(None);
            }
            let until = (self.clock)() + ttl;
            self.store_as(key, holder.as_bytes(), Some(until), false)?;
            Ok(Some(Lease {
                key: key.to_owned(),
                holder: holder.to_owned(),
                until,
            }))
        })
    }

    /// Under the store's lock: read, change, write.
    fn update(&self, key: &str, change: &mut Change<'_>) -> Result<bool, StateError> {
        check_key(key)?;
        self.locked(true, || {
            let current = self.read(key)?;
            let Some((value, ttl)) = change(current.as_ref().map(|(v, _)| v.as_slice())) else {
                return Ok(false);
            };
            self.store(key, &value, ttl.map(|t| (self.clock)() + t))?;
            Ok(true)
        })
    }

    fn delete(&self, key: &str) -> Result<bool, StateError> {
        check_key(key)?;
        self.locked(true, || {
            let was_live = self.read(key)?.is_some();
            self.remove(&self.path(key))?;
            self.remove(&self.ttl_path(key))?;
            Ok(was_live)
        })
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>, StateError> {
        if !prefix.is_empty() {
            check_key(prefix)?;
        }
        self.locked(false, || {
            let mut out = Vec::new();
            let start = if prefix.is_empty() {
                self.root.clone()
            } else {
                self.path(prefix)
            };
            if start.is_file() {
                if self.read(prefix)?.is_some() {
                    out.push(prefix.to_owned());
                }
            } else {
                self.walk(&start, prefix, &mut out)?;
            }
            out.sort();
            Ok(out)
        })
    }

    fn increment(&self, key: &str, by: i64, ttl: Option<Duration>) -> Result<i64, StateError> {
        check_key(key)?;
        self.locked(true, || {
            let (count, expires) = match self.read(key)? {
                Some((v, expires)) => (parse_count(key, &v)?, expires),
                None => (0, ttl.map(|t| (self.clock)() + t)),
            };
            let next = count.saturating_add(by);
            self.store(key, next.to_string().as_bytes(), expires)?;
            Ok(next)
        })
    }

    fn now(&self) -> SystemTime {
        (self.clock)()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_store_keeps_the_contract() {
        let dir = tempfile::tempdir().unwrap();
        let clock = crate::TestClock::default();
        let store = DirStore::new(dir.path().join("state"), clock.clock());
        crate::contract(&store, &clock);
        let racing = DirStore::new(dir.path().join("race"), crate::system_clock());
        crate::contract_races(&racing);
    }

    /// Values are plain files at their keys' paths, private to the owner;
    /// a second store over the same directory (another process) sees them.
    #[test]
    fn values_are_private_files_shared_by_every_store_on_the_directory() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let a = DirStore::new(dir.path(), crate::system_clock());
        a.put("keys/signing.key", b"-----BEGIN PRIVATE KEY-----\n", None)
            .unwrap();
        let file = dir.path().join("keys/signing.key");
        assert_eq!(a.location("keys/signing.key"), file.display().to_string());
        assert_eq!(fs::read(&file).unwrap(), b"-----BEGIN PRIVATE KEY-----\n");
        assert_eq!(
            fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let b = DirStore::new(dir.path(), crate::system_clock());
        let seen = b.get("keys/signing.key").unwrap().unwrap();
        assert_eq!(
            b.compare_and_set("keys/signing.key", None, b"other", None)
                .unwrap(),
            None
        );
        assert!(
            b.compare_and_set("keys/signing.key", Some(seen.version), b"new", None)
                .unwrap()
                .is_some()
        );
        assert_eq!(a.get("keys/signing.key").unwrap().unwrap().value, b"new");
        // nothing but the value, the lock and no temporary files are left
        let names: Vec<String> = fs::read_dir(dir.path().join("keys"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["signing.key"]);
    }
}
