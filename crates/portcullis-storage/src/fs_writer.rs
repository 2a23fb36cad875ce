//! The filesystem driver's [`FileWriter`]: an uncommitted upload is the
//! file itself (where distribution's filesystem driver keeps it too), so
//! registry:2 and portcullis can resume each other's uploads.
//!
//! The first write starts one blocking thread that receives the chunks and
//! writes them with plain `writev` calls, straight from the request's
//! buffers to the kernel, without `tokio::fs::File`'s extra copy and
//! per-write thread hand-off. Large uploads are flushed ahead in the
//! background (`durable::FlushAhead`), so the one flush at commit has little
//! left to write back. When the channel closes, the thread closes, commits
//! (flushes) or discards (truncates back to the size the writer was opened
//! at), as the writer decided; a writer dropped without deciding discards.

use std::io::{self, IoSlice, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::mpsc;

use crate::{Chunks, FileWriter, FsDriver, StorageError, durable};

const DISCARD: u8 = 0;
const CLOSE: u8 = 1;
const COMMIT: u8 = 2;
/// Batches in flight to the writing thread (bounds memory per upload).
const QUEUE: usize = 2;

/// The writing thread of a writer that has written.
struct Worker {
    tx: mpsc::Sender<Chunks>,
    mode: Arc<AtomicU8>,
    done: tokio::task::JoinHandle<io::Result<()>>,
}

pub(crate) struct FsWriter {
    driver: FsDriver,
    path: String,
    full: PathBuf,
    start: u64,
    size: u64,
    worker: Option<Worker>,
    /// A write failed: the thread already truncated back to `start`.
    failed: bool,
}

impl FsWriter {
    /// Opens the upload at `full`: with `append` it must exist; without, it
    /// is created empty (its parents already exist).
    pub(crate) async fn open(
        driver: FsDriver,
        path: &str,
        full: PathBuf,
        append: bool,
    ) -> Result<Self, StorageError> {
        let target = full.clone();
        let start = driver
            .blocking(path, move || {
                if append {
                    let md = std::fs::metadata(&target)?;
                    if md.is_dir() {
                        return Err(io::ErrorKind::NotFound.into());
                    }
                    Ok(md.len())
                } else {
                    std::fs::File::create(&target).map(|_| 0)
                }
            })
            .await?;
        Ok(Self {
            driver,
            path: path.to_owned(),
            full,
            start,
            size: start,
            worker: None,
            failed: false,
        })
    }

    fn spawn(&self) -> Worker {
        let (tx, rx) = mpsc::channel::<Chunks>(QUEUE);
        let mode = Arc::new(AtomicU8::new(DISCARD));
        let decided = mode.clone();
        let (full, start) = (self.full.clone(), self.start);
        let done = tokio::task::spawn_blocking(move || run(&full, start, rx, &decided));
        Worker { tx, mode, done }
    }

    fn error(&self, e: io::Error) -> StorageError {
        self.driver.write_error(&self.path, e)
    }

    /// Ends the thread with `mode`, if one runs, and reports its outcome.
    async fn finish(&mut self, mode: u8) -> Result<(), StorageError> {
        if self.failed {
            return Err(self.error(io::Error::other("an earlier write failed")));
        }
        let Some(w) = self.worker.take() else {
            return Ok(());
        };
        w.mode.store(mode, Ordering::Release);
        drop(w.tx);
        match w.done.await {
            Ok(r) => r.map_err(|e| self.error(e)),
            Err(e) => Err(self.error(io::Error::other(e))),
        }
    }
}

/// The writing thread: appends every batch, then does what `mode` says.
fn run(
    full: &std::path::Path,
    start: u64,
    mut rx: mpsc::Receiver<Chunks>,
    mode: &AtomicU8,
) -> io::Result<()> {
    let f = std::fs::OpenOptions::new().append(true).open(full)?;
    let mut flush = durable::FlushAhead::default();
    let written = (|| {
        while let Some(batch) = rx.blocking_recv() {
            let n = write_all_vectored(&f, &batch)?;
            flush.wrote(&f, n)?;
        }
        Ok(())
    })();
    let flushed = flush.finish();
    let result = written.and(flushed);
    match mode.load(Ordering::Acquire) {
        CLOSE if result.is_ok() => Ok(()),
        COMMIT if result.is_ok() => f.sync_data(),
        _ => {
            // Discarded, dropped, or failed: nothing of this writer stays.
            let _ = f.set_len(start);
            result
        }
    }
}

#[async_trait]
impl FileWriter for FsWriter {
    async fn write(&mut self, chunks: Chunks) -> Result<(), StorageError> {
        if self.failed {
            return Err(self.error(io::Error::other("an earlier write failed")));
        }
        let n: u64 = chunks.iter().map(|b| b.len() as u64).sum();
        if self.worker.is_none() {
            self.worker = Some(self.spawn());
        }
        let Some(w) = self.worker.as_ref() else {
            unreachable!("started above");
        };
        if w.tx.send(chunks).await.is_ok() {
            self.size += n;
            return Ok(());
        }
        // The thread stopped early: it failed, and truncated back.
        self.failed = true;
        let e = match self.worker.take().map(|w| w.done) {
            Some(done) => match done.await {
                Ok(Err(e)) => e,
                Ok(Ok(())) => io::Error::other("the writing thread stopped"),
                Err(e) => io::Error::other(e),
            },
            None => io::Error::other("the writing thread stopped"),
        };
        Err(self.error(e))
    }

    fn size(&self) -> u64 {
        self.size
    }

    async fn close(mut self: Box<Self>) -> Result<u64, StorageError> {
        self.finish(CLOSE).await?;
        Ok(self.size)
    }

    async fn commit(mut self: Box<Self>) -> Result<u64, StorageError> {
        if self.worker.is_none() && !self.failed {
            // Nothing written by this writer, but what earlier ones wrote
            // still has to reach the disk.
            let full = self.full.clone();
            self.driver
                .blocking(&self.path, move || std::fs::File::open(full)?.sync_data())
                .await?;
            return Ok(self.size);
        }
        self.finish(COMMIT).await?;
        Ok(self.size)
    }

    async fn discard(mut self: Box<Self>) -> Result<u64, StorageError> {
        if let Some(w) = self.worker.take() {
            drop(w.tx);
            let _ = w.done.await; // its error is moot: the chunk is dropped
        }
        Ok(self.start)
    }

    async fn cancel(mut self: Box<Self>) -> Result<(), StorageError> {
        if let Some(w) = self.worker.take() {
            drop(w.tx);
            let _ = w.done.await;
        }
        match tokio::fs::remove_file(&self.full).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StorageError::io(&self.path, e)),
        }
    }
}

/// Writes every chunk with as few `writev` calls as the kernel allows.
fn write_all_vectored(mut f: &std::fs::File, chunks: &[Bytes]) -> io::Result<u64> {
    let total: usize = chunks.iter().map(Bytes::len).sum();
    let (mut idx, mut off, mut done) = (0usize, 0usize, 0usize);
    while done < total {
        let mut slices: Vec<IoSlice<'_>> = Vec::with_capacity((chunks.len() - idx).min(1024));
        slices.push(IoSlice::new(&chunks[idx][off..]));
        slices.extend(chunks[idx + 1..].iter().take(1023).map(|b| IoSlice::new(b)));
        let mut n = f.write_vectored(&slices)?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
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
