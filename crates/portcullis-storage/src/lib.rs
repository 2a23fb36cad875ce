//! Storage drivers: a small path-addressed file system abstraction with a
//! filesystem and an in-memory backend, plus the distribution on-disk layout
//! (`paths`). Every backend passes the same driver test suite (`tests.rs`).

mod durable;
mod fs;
mod memory;
pub mod paths;
mod readahead;
#[cfg(test)]
mod tests;

use async_trait::async_trait;
use bytes::Bytes;
use std::time::SystemTime;
use tokio::io::{AsyncRead, AsyncWrite};

pub use fs::FsDriver;
pub use futures;
pub use memory::MemoryDriver;

/// A boxed reader of a stored file.
pub type Reader = Box<dyn AsyncRead + Send + Unpin>;
/// A stream of a file's bytes in large chunks.
pub type ByteStream = std::pin::Pin<Box<dyn futures::Stream<Item = std::io::Result<Bytes>> + Send>>;
/// A batch of consecutive chunks, shared without copying.
pub type Chunks = std::sync::Arc<[Bytes]>;
/// A boxed appending writer of a stored file.
pub type Writer = Box<dyn AsyncWrite + Send + Unpin>;

/// Errors from a storage driver.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("path not found: {0}")]
    NotFound(String),
    #[error("invalid storage path: {0}")]
    InvalidPath(String),
    #[error("storage I/O error at {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The filesystem (or the quota) has no room left: ENOSPC or EDQUOT.
    #[error("storage is full writing {path} ({}): {source}", free_text(*.available))]
    Full {
        path: String,
        /// Bytes still available to the registry on that filesystem, when known.
        available: Option<u64>,
        #[source]
        source: std::io::Error,
    },
}

fn free_text(available: Option<u64>) -> String {
    available.map_or_else(
        || "free space unknown".to_owned(),
        |n| format!("{n} bytes free"),
    )
}

impl StorageError {
    #[must_use]
    pub fn is_not_found(&self) -> bool {
        matches!(self, StorageError::NotFound(_))
    }

    /// Whether the storage ran out of space (or quota).
    #[must_use]
    pub fn is_full(&self) -> bool {
        matches!(self, StorageError::Full { .. })
    }

    /// Classifies an I/O error at `path`: missing paths become `NotFound`,
    /// ENOSPC and EDQUOT become `Full`, anything else `Io`.
    #[must_use]
    pub fn io(path: &str, source: std::io::Error) -> Self {
        use std::io::ErrorKind as K;
        match source.kind() {
            K::NotFound => StorageError::NotFound(path.to_owned()),
            K::StorageFull | K::QuotaExceeded => StorageError::Full {
                path: path.to_owned(),
                available: None,
                source,
            },
            _ => StorageError::Io {
                path: path.to_owned(),
                source,
            },
        }
    }
}

/// What `stat` reports about a path.
#[derive(Debug, Clone, Copy)]
pub struct FileInfo {
    pub size: u64,
    pub is_dir: bool,
    pub modified: SystemTime,
}

/// A storage backend. Paths are absolute, `/`-separated, and never contain
/// `.` or `..` components.
#[async_trait]
pub trait Driver: Send + Sync + 'static {
    /// Reads a whole (small) file.
    async fn get_content(&self, path: &str) -> Result<Bytes, StorageError>;
    /// Writes a whole file atomically: readers see the old or the new content,
    /// never a mix. Once it returns, the file survives a crash (on drivers
    /// with durable storage).
    async fn put_content(&self, path: &str, data: Bytes) -> Result<(), StorageError>;
    /// Opens a file for reading from `offset`.
    async fn reader(&self, path: &str, offset: u64) -> Result<Reader, StorageError>;
    /// Streams `len` bytes from `offset`. The default reads through
    /// [`Driver::reader`]; drivers override it when they can do better.
    async fn read_stream(
        &self,
        path: &str,
        offset: u64,
        len: u64,
    ) -> Result<ByteStream, StorageError> {
        use tokio::io::AsyncReadExt;
        let r = self.reader(path, offset).await?;
        Ok(Box::pin(tokio_util::io::ReaderStream::with_capacity(
            r.take(len),
            256 * 1024,
        )))
    }
    /// Appends every chunk received on `chunks` to `path` (creating it),
    /// until the sender is dropped; returns the bytes written. The default
    /// goes through [`Driver::appender`].
    async fn append_chunks(
        &self,
        path: &str,
        mut chunks: tokio::sync::mpsc::Receiver<Chunks>,
    ) -> Result<u64, StorageError> {
        use tokio::io::AsyncWriteExt;
        let mut w = self.appender(path).await?;
        let mut n = 0u64;
        while let Some(batch) = chunks.recv().await {
            for b in batch.iter() {
                w.write_all(b)
                    .await
                    .map_err(|e| StorageError::io(path, e))?;
                n += b.len() as u64;
            }
        }
        w.shutdown().await.map_err(|e| StorageError::io(path, e))?;
        Ok(n)
    }
    /// Opens a file for appending, creating it (and its parents) when missing.
    /// Data is visible to `stat`/`reader` once the writer is flushed or shut down.
    async fn appender(&self, path: &str) -> Result<Writer, StorageError>;
    /// Truncates a file to `len` bytes (used to drop a partly written chunk).
    async fn truncate(&self, path: &str, len: u64) -> Result<(), StorageError>;
    async fn stat(&self, path: &str) -> Result<FileInfo, StorageError>;
    /// Names of the direct children of a directory, sorted.
    async fn list(&self, path: &str) -> Result<Vec<String>, StorageError>;
    /// Names of the direct child directories of a directory, sorted. The
    /// default lists and stats each child; drivers override it when they can
    /// tell directories apart while listing.
    async fn list_dirs(&self, path: &str) -> Result<Vec<String>, StorageError> {
        let mut out = Vec::new();
        for name in self.list(path).await? {
            if self
                .stat(&format!("{path}/{name}"))
                .await
                .is_ok_and(|s| s.is_dir)
            {
                out.push(name);
            }
        }
        Ok(out)
    }
    /// Moves a file atomically, replacing the destination and creating its
    /// parents. Once it returns, the file's data and its new name survive a
    /// crash (on drivers with durable storage): this is how an upload is
    /// published, so its data is flushed here, once, and not per chunk.
    async fn rename(&self, from: &str, to: &str) -> Result<(), StorageError>;
    /// Deletes a file or a directory tree.
    async fn delete(&self, path: &str) -> Result<(), StorageError>;
}

/// Rejects paths that could escape the storage root.
pub(crate) fn check_path(path: &str) -> Result<(), StorageError> {
    let ok = path.starts_with('/')
        && !path.contains('\0')
        && path
            .split('/')
            .skip(1)
            .all(|c| !c.is_empty() && c != "." && c != "..");
    if ok || path == "/" {
        Ok(())
    } else {
        Err(StorageError::InvalidPath(path.to_owned()))
    }
}
