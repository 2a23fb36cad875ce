//! The in-memory driver (distribution's `inmemory`): for tests and throwaway
//! registries. Directories are implied by the files below them.

use std::collections::BTreeMap;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::io::AsyncWrite;

use crate::{Driver, FileInfo, Reader, StorageError, Writer, check_path};

type Files = Arc<Mutex<BTreeMap<String, (Vec<u8>, SystemTime)>>>;

/// Keeps every file in a map; cloning shares the same files.
#[derive(Debug, Clone, Default)]
pub struct MemoryDriver {
    files: Files,
}

impl MemoryDriver {
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn with<R>(&self, f: impl FnOnce(&mut BTreeMap<String, (Vec<u8>, SystemTime)>) -> R) -> R {
        let mut guard = self.files.lock().unwrap_or_else(PoisonError::into_inner);
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

struct MemWriter {
    files: Files,
    path: String,
}

impl AsyncWrite for MemWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut g = self.files.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = g
            .entry(self.path.clone())
            .or_insert_with(|| (Vec::new(), SystemTime::now()));
        entry.0.extend_from_slice(buf);
        entry.1 = SystemTime::now();
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[async_trait]
impl Driver for MemoryDriver {
    async fn get_content(&self, path: &str) -> Result<Bytes, StorageError> {
        check_path(path)?;
        self.with(|f| f.get(path).map(|(d, _)| Bytes::from(d.clone())))
            .ok_or_else(|| StorageError::NotFound(path.to_owned()))
    }

    async fn put_content(&self, path: &str, data: Bytes) -> Result<(), StorageError> {
        check_path(path)?;
        self.with(|f| f.insert(path.to_owned(), (data.to_vec(), SystemTime::now())));
        Ok(())
    }

    async fn reader(&self, path: &str, offset: u64) -> Result<Reader, StorageError> {
        let data = self.get_content(path).await?;
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(data.len());
        Ok(Box::new(io::Cursor::new(data.slice(start..))))
    }

    async fn appender(&self, path: &str) -> Result<Writer, StorageError> {
        check_path(path)?;
        self.with(|f| {
            f.entry(path.to_owned())
                .or_insert_with(|| (Vec::new(), SystemTime::now()));
        });
        Ok(Box::new(MemWriter {
            files: self.files.clone(),
            path: path.to_owned(),
        }))
    }

    async fn truncate(&self, path: &str, len: u64) -> Result<(), StorageError> {
        check_path(path)?;
        self.with(|f| match f.get_mut(path) {
            Some((d, _)) => {
                d.truncate(usize::try_from(len).unwrap_or(usize::MAX));
                Ok(())
            }
            None => Err(StorageError::NotFound(path.to_owned())),
        })
    }

    async fn stat(&self, path: &str) -> Result<FileInfo, StorageError> {
        check_path(path)?;
        self.with(|f| {
            if let Some((d, m)) = f.get(path) {
                return Ok(FileInfo {
                    size: d.len() as u64,
                    is_dir: false,
                    modified: *m,
                });
            }
            let prefix = dir_prefix(path);
            let newest = f
                .range(prefix.clone()..)
                .take_while(|(k, _)| k.starts_with(&prefix))
                .map(|(_, (_, m))| *m)
                .max();
            newest
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
        let names: Vec<String> = self.with(|f| {
            let mut out: Vec<String> = f
                .range(prefix.clone()..)
                .take_while(|(k, _)| k.starts_with(&prefix))
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

    async fn rename(&self, from: &str, to: &str) -> Result<(), StorageError> {
        check_path(from)?;
        check_path(to)?;
        self.with(|f| {
            let v = f
                .remove(from)
                .ok_or_else(|| StorageError::NotFound(from.to_owned()))?;
            f.insert(to.to_owned(), v);
            Ok(())
        })
    }

    async fn delete(&self, path: &str) -> Result<(), StorageError> {
        check_path(path)?;
        let prefix = dir_prefix(path);
        self.with(|f| {
            let before = f.len();
            f.retain(|k, _| k != path && !k.starts_with(&prefix));
            if f.len() == before {
                Err(StorageError::NotFound(path.to_owned()))
            } else {
                Ok(())
            }
        })
    }
}
