//! Writing one request's body into an upload: chunks are gathered into
//! ~512 KiB batches, shared (not copied) with a hashing thread and the
//! driver's writer, which run in parallel with receiving.
//!
//! The writer runs in a task of its own that also holds the session's lock.
//! If the request goes away mid-chunk, that task discards the chunk before
//! it lets the lock go, so the next request on the session never sees a
//! half-written chunk or one that is still being rolled back.

use bytes::Bytes;
use futures::{Stream, StreamExt};
use portcullis_storage::{Chunks, FileWriter, StorageError};
use sha2::{Digest as _, Sha256};
use tokio::sync::{mpsc, oneshot};

use crate::CoreError;
use crate::uploads::SlotGuard;

/// Bytes gathered before a batch goes to the writer and the hasher.
const BATCH_BYTES: usize = 512 * 1024;
/// Batches in flight to each of them (bounds memory per upload).
const QUEUE: usize = 2;

/// An upload opened under its session's lock.
pub(crate) struct Open {
    pub writer: Box<dyn FileWriter>,
    pub guard: SlotGuard,
    /// The hash of the upload's first `writer.size()` bytes, when known.
    pub sha: Option<Sha256>,
}

type Back = (Box<dyn FileWriter>, Result<(), StorageError>, SlotGuard);

/// Appends `body` through `open.writer` and hashes it with `open.sha`. On
/// success the writer is still open, to be closed, committed or cancelled;
/// on failure the chunk was discarded, and the upload is as it was.
pub(crate) async fn write_body<S, E>(open: Open, mut body: S) -> Result<Open, CoreError>
where
    S: Stream<Item = Result<Bytes, E>> + Send + Unpin,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let Open { writer, guard, sha } = open;
    let start = writer.size();
    let (wtx, wrx) = mpsc::channel::<Chunks>(QUEUE);
    let (back_tx, back_rx) = oneshot::channel::<Back>();
    tokio::spawn(drive(writer, guard, wrx, back_tx));
    let (htx, hasher) = match sha {
        Some(mut sha) => {
            let (htx, mut hrx) = mpsc::channel::<Chunks>(QUEUE);
            let hasher = tokio::task::spawn_blocking(move || {
                while let Some(batch) = hrx.blocking_recv() {
                    for b in batch.iter() {
                        sha.update(b);
                    }
                }
                sha
            });
            (Some(htx), Some(hasher))
        }
        None => (None, None),
    };
    let mut received = 0u64;
    let read: Result<(), CoreError> = async {
        let mut batch: Vec<Bytes> = Vec::new();
        let mut batch_len = 0usize;
        loop {
            let next = body.next().await;
            let end = next.is_none();
            if let Some(chunk) = next {
                let chunk = chunk.map_err(|e| CoreError::Body(std::io::Error::other(e.into())))?;
                received += chunk.len() as u64;
                batch_len += chunk.len();
                batch.push(chunk);
            }
            if (end && !batch.is_empty()) || batch_len >= BATCH_BYTES {
                let shared: Chunks = std::mem::take(&mut batch).into();
                batch_len = 0;
                if wtx.send(shared.clone()).await.is_err() {
                    break; // the writer failed; its error is reported below
                }
                if let Some(htx) = &htx
                    && htx.send(shared).await.is_err()
                {
                    break;
                }
            }
            if end {
                break;
            }
        }
        Ok(())
    }
    .await;
    drop((wtx, htx));
    let Ok((writer, written, guard)) = back_rx.await else {
        return Err(CoreError::Storage(StorageError::io(
            "upload writer",
            std::io::Error::other("the writer task ended"),
        )));
    };
    let sha = match hasher {
        Some(h) => match h.await {
            Ok(sha) => Some(sha),
            Err(e) => {
                let _ = writer.discard().await;
                return Err(CoreError::Storage(StorageError::io(
                    "upload hasher",
                    std::io::Error::other(e),
                )));
            }
        },
        None => None,
    };
    let outcome = read
        .and(written.map_err(CoreError::Storage))
        .and_then(|()| {
            if writer.size() == start + received {
                Ok(())
            } else {
                Err(CoreError::Storage(StorageError::io(
                    "upload writer",
                    std::io::Error::other("short write"),
                )))
            }
        });
    if let Err(e) = outcome {
        // Roll back whatever part of the chunk was written.
        let _ = writer.discard().await;
        return Err(e);
    }
    Ok(Open { writer, guard, sha })
}

/// Feeds the writer; hands it back with the lock, or, when the request is
/// gone, discards the chunk and only then releases the lock.
async fn drive(
    mut writer: Box<dyn FileWriter>,
    guard: SlotGuard,
    mut rx: mpsc::Receiver<Chunks>,
    back: oneshot::Sender<Back>,
) {
    let mut result = Ok(());
    while let Some(batch) = rx.recv().await {
        if let Err(e) = writer.write(batch).await {
            result = Err(e);
            break;
        }
    }
    drop(rx);
    if let Err((writer, _, guard)) = back.send((writer, result, guard)) {
        let _ = writer.discard().await;
        drop(guard);
    }
}
