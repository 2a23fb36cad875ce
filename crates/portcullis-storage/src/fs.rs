//! The filesystem driver: files under a root directory, written with
//! temp-file-and-rename so a crash never leaves a partly written file
//! visible, and flushed (`durable.rs`) before a write is reported done.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;
use tokio::fs;

use crate::durable;
use crate::readahead;
use crate::{ByteStream, Chunks, Driver, FileInfo, Reader, StorageError, Writer, check_path};

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
    fn write_error(&self, path: &str, e: std::io::Error) -> StorageError {
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
    async fn blocking<T: Send + 'static>(
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

    /// Writes on one blocking thread with plain `write` calls: the chunks go
    /// from the request straight to the kernel, without the extra buffer
    /// copy and per-write thread hand-off of `tokio::fs::File`. Large
    /// uploads are flushed ahead in the background (`durable::FlushAhead`),
    /// so publishing them later has little left to write back.
    async fn append_chunks(
        &self,
        path: &str,
        mut chunks: tokio::sync::mpsc::Receiver<Chunks>,
    ) -> Result<u64, StorageError> {
        let full = self.full(path)?;
        ensure_parent(self, path, &full).await?;
        self.blocking(path, move || {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&full)?;
            let mut n = 0u64;
            let mut flush = durable::FlushAhead::default();
            while let Some(batch) = chunks.blocking_recv() {
                let wrote = write_all_vectored(&mut f, &batch)?;
                flush.wrote(&f, wrote)?;
                n += wrote;
            }
            flush.finish()?;
            Ok(n)
        })
        .await
    }

    async fn appender(&self, path: &str) -> Result<Writer, StorageError> {
        let full = self.full(path)?;
        ensure_parent(self, path, &full).await?;
        let f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&full)
            .await
            .map_err(|e| self.write_error(path, e))?;
        Ok(Box::new(f))
    }

    async fn truncate(&self, path: &str, len: u64) -> Result<(), StorageError> {
        let full = self.full(path)?;
        let f = fs::OpenOptions::new()
            .write(true)
            .open(&full)
            .await
            .map_err(|e| StorageError::io(path, e))?;
        f.set_len(len).await.map_err(|e| self.write_error(path, e))
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

    /// Flushes the source's data (once, however many chunks wrote it), moves
    /// it, and flushes the destination directory, in one blocking hop.
    async fn rename(&self, from: &str, to: &str) -> Result<(), StorageError> {
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

/// Writes every chunk with as few `writev` calls as the kernel allows.
fn write_all_vectored(f: &mut std::fs::File, chunks: &[Bytes]) -> std::io::Result<u64> {
    use std::io::{IoSlice, Write};
    let total: usize = chunks.iter().map(Bytes::len).sum();
    let (mut idx, mut off, mut done) = (0usize, 0usize, 0usize);
    while done < total {
        let mut slices: Vec<IoSlice<'_>> = Vec::with_capacity((chunks.len() - idx).min(1024));
        slices.push(IoSlice::new(&chunks[idx][off..]));
        slices.extend(chunks[idx + 1..].iter().take(1023).map(|b| IoSlice::new(b)));
        let mut n = f.write_vectored(&slices)?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        done += n;
        while n > 0 {
            let left = chunks[idx].len() - off;
            if n >= left {
                n -= left;
                idx += 1;
                off = 0;
            } else {
                off += n;
                n = 0;
            }
        }
        while idx < chunks.len() && chunks[idx].len() == off {
            idx += 1;
            off = 0;
        }
    }
    Ok(total as u64)
}
