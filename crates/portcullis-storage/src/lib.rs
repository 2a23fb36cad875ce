//! Storage drivers: a small path-addressed file store that an object store
//! can implement too (whole-file puts, resumable uploads through a
//! [`FileWriter`] that is committed or cancelled, move, walk, redirect
//! URLs), with a filesystem and an in-memory backend, plus the distribution
//! on-disk layout (`paths`). Every backend passes the same contract suite
//! (`tests.rs`).

mod durable;
mod fs;
mod fs_writer;
mod memory;
pub mod paths;
mod readahead;
#[cfg(test)]
mod tests;
mod walk;

use async_trait::async_trait;
use bytes::Bytes;
use std::time::SystemTime;
use tokio::io::AsyncRead;

pub use fs::FsDriver;
pub use futures;
pub use memory::MemoryDriver;

/// A boxed reader of a stored file.
pub type Reader = Box<dyn AsyncRead + Send + Unpin>;
/// A stream of a file's bytes in large chunks.
pub type ByteStream = std::pin::Pin<Box<dyn futures::Stream<Item = std::io::Result<Bytes>> + Send>>;
/// A batch of consecutive chunks, shared without copying.
pub type Chunks = std::sync::Arc<[Bytes]>;

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

/// What a redirect URL would be used for (distribution's `URLFor` method).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedirectMethod {
    Get,
    Head,
}

/// A storage backend. Paths are absolute, `/`-separated, and never contain
/// `.` or `..` components. Every driver passes the contract suite in
/// `tests.rs`.
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
    /// Opens an upload to `path` (see [`FileWriter`]). With `append`, it
    /// resumes the uncommitted upload there at its current size, and is
    /// `NotFound` when there is none; without, it starts a new, empty one
    /// (creating the parents), replacing any uncommitted upload. One writer
    /// per path at a time: callers serialize them.
    async fn writer(&self, path: &str, append: bool) -> Result<Box<dyn FileWriter>, StorageError>;
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
    /// Visits everything under the directory `path`, depth first: each
    /// directory before its contents, siblings in name order. `visit` says
    /// whether to go on, skip the directory it was just shown, or stop.
    /// `NotFound` when `path` does not exist. The default lists and stats
    /// (`walk.rs`); object stores override it with one flat listing.
    async fn walk(&self, path: &str, visit: &mut WalkFn<'_>) -> Result<(), StorageError> {
        walk::walk_by_listing(self, path, visit).await
    }
    /// Moves a file (or a directory) to `to`, replacing what is there and
    /// creating the parents; readers see the old or the new file at `to`,
    /// never a mix. Once it returns, the new name survives a crash (on
    /// drivers with durable storage); the data itself was made durable by
    /// [`Driver::put_content`] or [`FileWriter::commit`], so committing an
    /// upload and moving it flushes its data once.
    async fn move_path(&self, from: &str, to: &str) -> Result<(), StorageError>;
    /// Deletes a file or a directory tree, uncommitted uploads in it
    /// included.
    async fn delete(&self, path: &str) -> Result<(), StorageError>;
    /// A URL the client may fetch `path` from directly (an object store's
    /// presigned URL), or `None` when the registry must serve it itself, as
    /// the filesystem and memory drivers always do.
    fn redirect_url(&self, path: &str, method: RedirectMethod) -> Option<String> {
        let _ = (path, method);
        None
    }
}

/// An upload to one path, distribution's `FileWriter`: data is appended
/// with [`FileWriter::write`] and becomes part of the upload only when the
/// writer is closed or committed.
///
/// - [`close`](FileWriter::close) keeps it uncommitted: a later
///   `writer(path, true)` resumes at [`size`](FileWriter::size). (Object
///   stores keep it as a multipart upload, not at `path`; the filesystem
///   driver keeps it in the file itself, so there it can be read.)
/// - [`commit`](FileWriter::commit) ends the upload: the data is flushed
///   and is the file at `path`, to be read or moved.
/// - [`discard`](FileWriter::discard) forgets what this writer wrote: the
///   upload is as it was when the writer was opened. A writer dropped
///   without one of these is discarded too, possibly after the drop.
/// - [`cancel`](FileWriter::cancel) deletes the whole uncommitted upload.
#[async_trait]
pub trait FileWriter: Send {
    /// Appends a batch of chunks, shared (not copied) with the caller.
    async fn write(&mut self, chunks: Chunks) -> Result<(), StorageError>;
    /// The upload's size: what it had when opened plus what was written.
    fn size(&self) -> u64;
    /// Keeps the data, uncommitted; returns the size.
    async fn close(self: Box<Self>) -> Result<u64, StorageError>;
    /// Flushes the data and makes it the file at the writer's path; returns the size.
    async fn commit(self: Box<Self>) -> Result<u64, StorageError>;
    /// Drops what this writer wrote; returns the size the upload is back at.
    async fn discard(self: Box<Self>) -> Result<u64, StorageError>;
    /// Deletes the uncommitted upload.
    async fn cancel(self: Box<Self>) -> Result<(), StorageError>;
}

/// One entry seen by [`Driver::walk`].
#[derive(Debug, Clone)]
pub struct WalkEntry {
    /// The full path.
    pub path: String,
    pub info: FileInfo,
}

/// What [`Driver::walk`] does after showing an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalkStep {
    Continue,
    /// Do not descend into this directory (on a file, the same as `Continue`).
    SkipDir,
    /// End the walk (successfully).
    Stop,
}

/// The visitor of a walk.
pub type WalkFn<'a> = dyn FnMut(&WalkEntry) -> WalkStep + Send + 'a;

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
