//! The in-memory driver (distribution's `inmemory`): for tests and throwaway
//! registries. Directories are implied by the files below them.
//!
//! It keeps uncommitted uploads apart from files, the way an object store
//! keeps multipart uploads: they cannot be read, listed or statted until
//! they are committed. So code tested over this driver does not lean on the
//! filesystem driver's leniency.

use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;

use crate::{Chunks, Driver, FileInfo, FileWriter, Reader, StorageError, check_path};

#[derive(Debug, Default)]
struct Store {
    files: BTreeMap<String, (Bytes, SystemTime)>,
    /// Uncommitted uploads by path.
    uploads: BTreeMap<String, Vec<u8>>,
}

/// Keeps every file in a map; cloning shares the same files.
#[derive(Debug, Clone, Default)]
pub struct MemoryDriver {
    store: Arc<Mutex<Store>>,
}

impl MemoryDriver {
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn with<R>(&self, f: impl FnOnce(&mut Store) -> R) -> R {
        let mut guard = self.store.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut guard)
    }
}

fn dir_prefix(path: &str) -> String {
    if path == "/" {
        "/".to_owned()
    } else {
        format!("{path}/")
    }
}

fn under<'a, V>(
    map: &'a BTreeMap<String, V>,
    prefix: &'a str,
) -> impl Iterator<Item = (&'a String, &'a V)> + 'a {
    map.range(prefix.to_owned()..)
        .take_while(move |(k, _)| k.starts_with(prefix))
}

struct MemWriter {
    driver: MemoryDriver,
    path: String,
    start: u64,
    size: u64,
    open: bool,
}

impl MemWriter {
    /// Puts the upload back at `start` if this writer wrote to it.
    fn roll_back(&mut self) {
        if self.open && self.size != self.start {
            let (path, start) = (self.path.clone(), self.start);
            self.driver.with(|s| {
                if let Some(d) = s.uploads.get_mut(&path) {
                    d.truncate(usize::try_from(start).unwrap_or(usize::MAX));
                }
            });
        }
        self.open = false;
    }
}

impl Drop for MemWriter {
    fn drop(&mut self) {
        self.roll_back();
    }
}

#[async_trait]
impl FileWriter for MemWriter {
    async fn write(&mut self, chunks: Chunks) -> Result<(), StorageError> {
        let path = self.path.clone();
        let n = self.driver.with(|s| {
            let d = s
                .uploads
                .get_mut(&path)
                .ok_or_else(|| StorageError::NotFound(path.clone()))?;
            let mut n = 0u64;
            for c in chunks.iter() {
                d.extend_from_slice(c);
                n += c.len() as u64;
            }
            Ok::<_, StorageError>(n)
        })?;
        self.size += n;
        Ok(())
    }

    fn size(&self) -> u64 {
        self.size
    }

    async fn close(mut self: Box<Self>) -> Result<u64, StorageError> {
        self.open = false;
        Ok(self.size)
    }

    async fn commit(mut self: Box<Self>) -> Result<u64, StorageError> {
        self.open = false;
        let path = self.path.clone();
        self.driver.with(|s| {
            let data = s
                .uploads
                .remove(&path)
                .ok_or_else(|| StorageError::NotFound(path.clone()))?;
            s.files
                .insert(path.clone(), (Bytes::from(data), SystemTime::now()));
            Ok::<_, StorageError>(())
        })?;
        Ok(self.size)
    }

    async fn discard(mut self: Box<Self>) -> Result<u64, StorageError> {
        self.roll_back();
        Ok(self.start)
    }

    async fn cancel(mut self: Box<Self>) -> Result<(), StorageError> {
        self.open = false;
        let path = self.path.clone();
        self.driver.with(|s| s.uploads.remove(&path));
        Ok(())
    }
}

#[async_trait]
impl Driver for MemoryDriver {
    async fn get_content(&self, path: &str) -> Result<Bytes, StorageError> {
        check_path(path)?;
        self.with(|s| s.files.get(path).map(|(d, _)| d.clone()))
            .ok_or_else(|| StorageError::NotFound(path.to_owned()))
    }

    async fn put_content(&self, path: &str, data: Bytes) -> Result<(), StorageError> {
        check_path(path)?;
        self.with(|s| s.files.insert(path.to_owned(), (data, SystemTime::now())));
        Ok(())
    }

    async fn reader(&self, path: &str, offset: u64) -> Result<Reader, StorageError> {
        let data = self.get_content(path).await?;
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(data.len());
        Ok(Box::new(io::Cursor::new(data.slice(start..))))
    }

    async fn writer(&self, path: &str, append: bool) -> Result<Box<dyn FileWriter>, StorageError> {
        check_path(path)?;
        let start = self.with(|s| {
            if append {
                s.uploads
                    .get(path)
                    .map(|d| d.len() as u64)
                    .ok_or_else(|| StorageError::NotFound(path.to_owned()))
            } else {
                s.uploads.insert(path.to_owned(), Vec::new());
                Ok(0)
            }
        })?;
        Ok(Box::new(MemWriter {
            driver: self.clone(),
            path: path.to_owned(),
            start,
            size: start,
            open: true,
        }))
    }

    async fn stat(&self, path: &str) -> Result<FileInfo, StorageError> {
        check_path(path)?;
        self.with(|s| {
            if let Some((d, m)) = s.files.get(path) {
                return Ok(FileInfo {
                    size: d.len() as u64,
                    is_dir: false,
                    modified: *m,
                });
            }
            let prefix = dir_prefix(path);
            under(&s.files, &prefix)
                .map(|(_, (_, m))| *m)
                .max()
                .map(|modified| FileInfo {
                    size: 0,
                    is_dir: true,
                    modified,
                })
                .ok_or_else(|| StorageError::NotFound(path.to_owned()))
        })
    }

    async fn list(&self, path: &str) -> Result<Vec<String>, StorageError> {
        check_path(path)?;
        let prefix = dir_prefix(path);
        let names: Vec<String> = self.with(|s| {
            let mut out: Vec<String> = under(&s.files, &prefix)
                .filter_map(|(k, _)| k[prefix.len()..].split('/').next().map(str::to_owned))
                .collect();
            out.dedup();
            out
        });
        if names.is_empty() {
            return Err(StorageError::NotFound(path.to_owned()));
        }
        Ok(names)
    }

    async fn move_path(&self, from: &str, to: &str) -> Result<(), StorageError> {
        check_path(from)?;
        check_path(to)?;
        let (from_dir, to_dir) = (dir_prefix(from), dir_prefix(to));
        self.with(|s| {
            if let Some(v) = s.files.remove(from) {
                s.files.retain(|k, _| !k.starts_with(&to_dir));
                s.files.insert(to.to_owned(), v);
                return Ok(());
            }
            let moved: Vec<String> = under(&s.files, &from_dir).map(|(k, _)| k.clone()).collect();
            if moved.is_empty() {
                return Err(StorageError::NotFound(from.to_owned()));
            }
            s.files.retain(|k, _| k != to && !k.starts_with(&to_dir));
            for k in moved {
                if let Some(v) = s.files.remove(&k) {
                    s.files.insert(format!("{to}/{}", &k[from_dir.len()..]), v);
                }
            }
            Ok(())
        })
    }

    async fn delete(&self, path: &str) -> Result<(), StorageError> {
        check_path(path)?;
        let prefix = dir_prefix(path);
        self.with(|s| {
            let before = s.files.len() + s.uploads.len();
            s.files.retain(|k, _| k != path && !k.starts_with(&prefix));
            s.uploads
                .retain(|k, _| k != path && !k.starts_with(&prefix));
            if s.files.len() + s.uploads.len() == before {
                Err(StorageError::NotFound(path.to_owned()))
            } else {
                Ok(())
            }
        })
    }
}
