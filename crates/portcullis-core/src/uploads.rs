//! Resumable blob uploads. Data streams straight to `_uploads/<id>/data`;
//! the running SHA-256 state stays in memory, keyed by session, and is rebuilt
//! from the data file after a restart. A blob becomes visible only after its
//! digest has been verified and its data renamed into the blob store.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use portcullis_storage::{Chunks, paths};
use portcullis_types::{Algorithm, Digest, RepoName};
use sha2::{Digest as _, Sha256, Sha512};
use tokio::io::AsyncReadExt;

use crate::{CoreError, Registry};

/// Running hash of an upload's data, valid for exactly `offset` bytes.
#[derive(Clone)]
struct HashState {
    offset: u64,
    sha: Sha256,
}

type Slot = Arc<tokio::sync::Mutex<Option<HashState>>>;

/// Per-session locks and hash states.
#[derive(Default)]
pub(crate) struct Sessions {
    slots: parking_lot::Mutex<HashMap<String, Slot>>,
}

impl Sessions {
    fn slot(&self, id: &str) -> Slot {
        self.slots.lock().entry(id.to_owned()).or_default().clone()
    }

    fn forget(&self, id: &str) {
        self.slots.lock().remove(id);
    }
}

/// Where an upload stands.
#[derive(Debug, Clone, Copy)]
pub struct UploadStatus {
    /// Bytes received so far.
    pub size: u64,
}

fn check_id(id: &str) -> Result<(), CoreError> {
    match uuid::Uuid::try_parse(id) {
        Ok(u) if u.hyphenated().to_string() == id => Ok(()),
        _ => Err(CoreError::UploadUnknown),
    }
}

/// Bytes gathered before a batch goes to the writer and the hasher.
const BATCH_BYTES: usize = 512 * 1024;
/// Batches in flight to each of them (bounds memory per upload).
const QUEUE: usize = 2;

impl Registry {
    /// Opens a new upload session and returns its id.
    ///
    /// # Errors
    /// `ReadOnly` or storage failures.
    pub async fn start_upload(&self, name: &RepoName) -> Result<String, CoreError> {
        self.check_writable()?;
        let id = uuid::Uuid::new_v4().hyphenated().to_string();
        let started = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        self.driver
            .put_content(&paths::upload_started(name, &id), Bytes::from(started))
            .await?;
        let w = self.driver.appender(&paths::upload_data(name, &id)).await?;
        drop(w);
        self.note_repository(name);
        Ok(id)
    }

    /// Bytes received so far by a session.
    ///
    /// # Errors
    /// `UploadUnknown` for an unknown or foreign session.
    pub async fn upload_status(
        &self,
        name: &RepoName,
        id: &str,
    ) -> Result<UploadStatus, CoreError> {
        check_id(id)?;
        let st = self
            .driver
            .stat(&paths::upload_data(name, id))
            .await
            .map_err(|e| CoreError::not_found_as(e, CoreError::UploadUnknown))?;
        Ok(UploadStatus { size: st.size })
    }

    /// Appends a chunk. `start` is the first byte offset the client claims to send
    /// (from `Content-Range`); it must equal the bytes already received.
    /// A failed or interrupted chunk is rolled back completely.
    ///
    /// # Errors
    /// `UploadUnknown`, `RangeInvalid` (416), `Body` when the client stream fails.
    pub async fn append_upload<S, E>(
        &self,
        name: &RepoName,
        id: &str,
        start: Option<u64>,
        body: S,
    ) -> Result<UploadStatus, CoreError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send + Unpin,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        self.check_writable()?;
        // Only sessions that exist get a lock slot, so unknown ids cannot grow the map.
        self.upload_status(name, id).await?;
        let slot = self.uploads.slot(id);
        let mut guard = slot.lock().await;
        let have = match self.upload_status(name, id).await {
            Ok(st) => st.size,
            Err(e) => {
                drop(guard);
                self.uploads.forget(id);
                return Err(e);
            }
        };
        if let Some(start) = start
            && start != have
        {
            return Err(CoreError::RangeInvalid { start, have });
        }
        let state = self.hash_state(name, id, guard.take(), have).await?;
        let new_state = self.write_chunk(name, id, state, body).await?;
        let size = new_state.offset;
        *guard = Some(new_state);
        Ok(UploadStatus { size })
    }

    /// Rebuilds the hash state from the data file when the cached one is stale.
    async fn hash_state(
        &self,
        name: &RepoName,
        id: &str,
        cached: Option<HashState>,
        have: u64,
    ) -> Result<HashState, CoreError> {
        if let Some(s) = cached
            && s.offset == have
        {
            return Ok(s);
        }
        let mut sha = Sha256::new();
        let offset = self
            .hash_file(&paths::upload_data(name, id), |b| sha.update(b))
            .await?;
        Ok(HashState { offset, sha })
    }

    async fn hash_file(&self, path: &str, mut f: impl FnMut(&[u8])) -> Result<u64, CoreError> {
        let mut r = self.driver.reader(path, 0).await?;
        let mut buf = vec![0u8; 256 * 1024];
        let mut total = 0u64;
        loop {
            let n = r.read(&mut buf).await.map_err(|e| io_err(path, e))?;
            if n == 0 {
                return Ok(total);
            }
            f(&buf[..n]);
            total += n as u64;
        }
    }

    async fn write_chunk<S, E>(
        &self,
        name: &RepoName,
        id: &str,
        state: HashState,
        mut body: S,
    ) -> Result<HashState, CoreError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send + Unpin,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let data = paths::upload_data(name, id);
        let start = state.offset;
        // Chunks are gathered into ~1 MiB batches, shared (not copied) with a
        // hashing thread and the driver's writer, which run in parallel with
        // receiving.
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Chunks>(QUEUE);
        let mut sha = state.sha.clone();
        let hasher = tokio::task::spawn_blocking(move || {
            while let Some(batch) = rx.blocking_recv() {
                for b in batch.iter() {
                    sha.update(b);
                }
            }
            sha
        });
        let (wtx, wrx) = tokio::sync::mpsc::channel::<Chunks>(QUEUE);
        let driver = self.driver.clone();
        let target = data.clone();
        let writer = tokio::spawn(async move { driver.append_chunks(&target, wrx).await });
        let mut offset = start;
        let received: Result<(), CoreError> = async {
            let mut batch: Vec<Bytes> = Vec::new();
            let mut batch_len = 0usize;
            loop {
                let next = body.next().await;
                let end = next.is_none();
                if let Some(chunk) = next {
                    let chunk =
                        chunk.map_err(|e| CoreError::Body(std::io::Error::other(e.into())))?;
                    offset += chunk.len() as u64;
                    batch_len += chunk.len();
                    batch.push(chunk);
                }
                if (end && !batch.is_empty()) || batch_len >= BATCH_BYTES {
                    let shared: Chunks = std::mem::take(&mut batch).into();
                    batch_len = 0;
                    if wtx.send(shared.clone()).await.is_err() || tx.send(shared).await.is_err() {
                        break; // the writer or hasher stopped; its error is reported below
                    }
                }
                if end {
                    break;
                }
            }
            Ok(())
        }
        .await;
        drop((tx, wtx));
        let written = writer.await;
        let hashed = hasher.await;
        let result = received.and_then(|()| match written {
            Ok(Ok(n)) if n == offset - start => Ok(()),
            Ok(Ok(_)) => Err(io_err(&data, std::io::Error::other("short write"))),
            Ok(Err(e)) => Err(CoreError::Storage(e)),
            Err(e) => Err(io_err(&data, std::io::Error::other(e))),
        });
        if let Err(e) = result {
            // Roll back whatever part of the chunk reached the file.
            let _ = self.driver.truncate(&data, start).await;
            return Err(e);
        }
        let sha = hashed.map_err(|e| io_err(&data, std::io::Error::other(e)))?;
        Ok(HashState { offset, sha })
    }

    /// Finishes an upload: appends the last chunk, verifies the digest, and moves
    /// the data into the blob store. On a digest mismatch the session is removed
    /// and nothing becomes visible.
    ///
    /// # Errors
    /// `DigestInvalid`, `UploadUnknown`, `RangeInvalid`, `Body`.
    pub async fn complete_upload<S, E>(
        &self,
        name: &RepoName,
        id: &str,
        digest: &Digest,
        start: Option<u64>,
        body: S,
    ) -> Result<u64, CoreError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send + Unpin,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        self.append_upload(name, id, start, body).await?;
        let slot = self.uploads.slot(id);
        let mut guard = slot.lock().await;
        // Another request may have completed or cancelled the session while we waited.
        let status = self.upload_status(name, id).await?;
        let data = paths::upload_data(name, id);
        let actual = match digest.algorithm() {
            Algorithm::Sha256 => {
                let state = self.hash_state(name, id, guard.take(), status.size).await?;
                hex::encode(state.sha.finalize())
            }
            Algorithm::Sha512 => {
                let mut sha = Sha512::new();
                self.hash_file(&data, |b| sha.update(b)).await?;
                hex::encode(sha.finalize())
            }
        };
        if actual != digest.hex() {
            drop(guard);
            self.remove_session(name, id).await;
            return Err(CoreError::DigestInvalid(format!(
                "the uploaded content has digest {}:{actual}, not {digest}",
                digest.algorithm().as_str()
            )));
        }
        if self.blob_size(digest).await?.is_none() {
            self.driver.rename(&data, &paths::blob_data(digest)).await?;
        }
        self.link_layer(name, digest).await?;
        drop(guard);
        self.remove_session(name, id).await;
        Ok(status.size)
    }

    /// Cancels an upload and deletes its data.
    ///
    /// # Errors
    /// `UploadUnknown` when there is no such session.
    pub async fn cancel_upload(&self, name: &RepoName, id: &str) -> Result<(), CoreError> {
        self.check_writable()?;
        self.upload_status(name, id).await?;
        let slot = self.uploads.slot(id);
        let guard = slot.lock().await;
        self.driver
            .delete(&paths::upload_dir(name, id))
            .await
            .map_err(|e| CoreError::not_found_as(e, CoreError::UploadUnknown))?;
        drop(guard);
        self.uploads.forget(id);
        Ok(())
    }

    pub(crate) fn uploads_forget(&self, id: &str) {
        self.uploads.forget(id);
    }

    async fn remove_session(&self, name: &RepoName, id: &str) {
        if let Err(e) = self.driver.delete(&paths::upload_dir(name, id)).await
            && !e.is_not_found()
        {
            tracing::warn!(error = %e, upload = id, "could not remove upload session");
        }
        self.uploads.forget(id);
    }

    /// When a session started (for purging), falling back to its data's mtime.
    pub(crate) async fn upload_started(&self, name: &RepoName, id: &str) -> Option<SystemTime> {
        if let Ok(raw) = self
            .driver
            .get_content(&paths::upload_started(name, id))
            .await
            && let Ok(s) = std::str::from_utf8(&raw)
            && let Ok(t) = time::OffsetDateTime::parse(
                s.trim(),
                &time::format_description::well_known::Rfc3339,
            )
        {
            return Some(t.into());
        }
        self.driver
            .stat(&paths::upload_dir(name, id))
            .await
            .ok()
            .map(|s| s.modified)
    }
}

fn io_err(path: &str, e: std::io::Error) -> CoreError {
    CoreError::Storage(portcullis_storage::StorageError::io(path, e))
}
