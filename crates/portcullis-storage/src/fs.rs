//! The filesystem driver: files under a root directory, written with
//! temp-file-and-rename so a crash never leaves a partly written file
//! visible, and flushed (`durable.rs`) before a write is reported done.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;
use tokio::fs;

use crate::durable;
use crate::fs_writer;
use crate::readahead;
use crate::{ByteStream, Driver, FileInfo, FileWriter, Reader, StorageError, check_path};

/// Adapts a channel receiver into a stream.
fn tokio_stream_from<T: Send + 'static>(
    rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> + Send {
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|v| (v, rx)) })
}

/// Stores files under `root`, exactly where distribution's filesystem driver does.
#[derive(Debug, Clone)]
pub struct FsDriver {
    root: PathBuf,
}

impl FsDriver {
    #[must_use]
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn full(&self, path: &str) -> Result<PathBuf, StorageError> {
        check_path(path)?;
        Ok(self.root.join(path.trim_start_matches('/')))
    }

    /// The error of a failed write at `path`; a full filesystem is reported
    /// with the space left on it.
    pub(crate) fn write_error(&self, path: &str, e: std::io::Error) -> StorageError {
        match StorageError::io(path, e) {
            StorageError::Full { path, source, .. } => StorageError::Full {
                available: durable::available_space(&self.root),
                path,
                source,
            },
            other => other,
        }
    }

    /// Runs blocking file work for `path` on a blocking thread.
    pub(crate) async fn blocking<T: Send + 'static>(
        &self,
        path: &str,
        work: impl FnOnce() -> std::io::Result<T> + Send + 'static,
    ) -> Result<T, StorageError> {
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| StorageError::io(path, std::io::Error::other(e)))?
            .map_err(|e| self.write_error(path, e))
    }
}

/// Creates the parents of a working file (an upload's data), which is not
/// published by its name, so the new directories need no flush.
async fn ensure_parent(d: &FsDriver, path: &str, full: &Path) -> Result<(), StorageError> {
    if let Some(parent) = full.parent() {
        fs::create_dir_all(parent)
            .await
            .map_err(|e| d.write_error(path, e))?;
    }
    Ok(())
}

fn temp_sibling(full: &Path) -> PathBuf {
    let name = full.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    full.with_file_name(format!(".{name}.tmp-{}", uuid::Uuid::new_v4().simple()))
}

#[async_trait]
impl Driver for FsDriver {
    async fn get_content(&self, path: &str) -> Result<Bytes, StorageError> {
        let full = self.full(path)?;
        let data = fs::read(&full)
            .await
            .map_err(|e| StorageError::io(path, e))?;
        Ok(Bytes::from(data))
    }

    /// One blocking hop: create the parents, write a temp file, flush it,
    /// rename it into place, flush the directory.
    async fn put_content(&self, path: &str, data: Bytes) -> Result<(), StorageError> {
        let full = self.full(path)?;
        let tmp = temp_sibling(&full);
        self.blocking(path, move || durable::write_file(&tmp, &full, &data))
            .await
    }

    async fn reader(&self, path: &str, offset: u64) -> Result<Reader, StorageError> {
        use tokio::io::AsyncSeekExt;
        let full = self.full(path)?;
        let mut f = fs::File::open(&full)
            .await
            .map_err(|e| StorageError::io(path, e))?;
        if offset > 0 {
            f.seek(std::io::SeekFrom::Start(offset))
                .await
                .map_err(|e| StorageError::io(path, e))?;
        }
        Ok(Box::new(f))
    }

    /// Streams through `readahead`: 256 KiB chunks read on a blocking
    /// thread while the client keeps up, no thread held while it does not.
    async fn read_stream(
        &self,
        path: &str,
        offset: u64,
        len: u64,
    ) -> Result<ByteStream, StorageError> {
        let full = self.full(path)?;
        let file = readahead::open_at(full, offset)
            .await
            .map_err(|e| StorageError::io(path, e))?;
        Ok(Box::pin(tokio_stream_from(readahead::spawn(file, len))))
    }

    /// See `fs_writer.rs`: one blocking thread per writer that writes
    /// the chunks straight to the kernel and flushes ahead in the background.
    async fn writer(&self, path: &str, append: bool) -> Result<Box<dyn FileWriter>, StorageError> {
        let full = self.full(path)?;
        if !append {
            ensure_parent(self, path, &full).await?;
        }
        let w = fs_writer::FsWriter::open(self.clone(), path, full, append).await?;
        Ok(Box::new(w))
    }

    async fn stat(&self, path: &str) -> Result<FileInfo, StorageError> {
        let full = self.full(path)?;
        let md = fs::metadata(&full)
            .await
            .map_err(|e| StorageError::io(path, e))?;
        Ok(FileInfo {
            size: md.len(),
            is_dir: md.is_dir(),
            modified: md.modified().map_err(|e| StorageError::io(path, e))?,
        })
    }

    async fn list(&self, path: &str) -> Result<Vec<String>, StorageError> {
        let full = self.full(path)?;
        let mut rd = fs::read_dir(&full)
            .await
            .map_err(|e| StorageError::io(path, e))?;
        let mut out = Vec::new();
        while let Some(entry) = rd
            .next_entry()
            .await
            .map_err(|e| StorageError::io(path, e))?
        {
            if let Some(name) = entry.file_name().to_str()
                && !name.starts_with('.')
            {
                out.push(name.to_owned());
            }
        }
        out.sort();
        Ok(out)
    }

    async fn list_dirs(&self, path: &str) -> Result<Vec<String>, StorageError> {
        let full = self.full(path)?;
        let owned = path.to_owned();
        tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            for entry in std::fs::read_dir(&full)? {
                let entry = entry?;
                if entry.file_type()?.is_dir()
                    && let Some(name) = entry.file_name().to_str()
                    && !name.starts_with('.')
                {
                    out.push(name.to_owned());
                }
            }
            out.sort();
            Ok::<_, std::io::Error>(out)
        })
        .await
        .map_err(|e| StorageError::io(&owned, std::io::Error::other(e)))?
        .map_err(|e| StorageError::io(&owned, e))
    }

    /// Moves it and flushes the destination directory (and the parents of
    /// the directories it creates), in one blocking hop. The data is not
    /// flushed again: `put_content` and `commit` did that.
    async fn move_path(&self, from: &str, to: &str) -> Result<(), StorageError> {
        let src = self.full(from)?;
        let dst = self.full(to)?;
        self.blocking(from, move || durable::publish(&src, &dst))
            .await
    }

    async fn delete(&self, path: &str) -> Result<(), StorageError> {
        let full = self.full(path)?;
        let md = fs::symlink_metadata(&full)
            .await
            .map_err(|e| StorageError::io(path, e))?;
        let res = if md.is_dir() {
            fs::remove_dir_all(&full).await
        } else {
            fs::remove_file(&full).await
        };
        res.map_err(|e| StorageError::io(path, e))
    }
}
