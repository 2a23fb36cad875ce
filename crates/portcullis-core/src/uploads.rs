//! Resumable blob uploads. Data streams through the driver's writer to
//! `_uploads/<id>/data`, uncommitted until the upload completes. After each
//! chunk the running SHA-256 state is saved at
//! `_uploads/<id>/hashstates/sha256/<offset>` (registry:2's path and
//! format, `hashstate.rs`), so any process, this one after a restart
//! included, resumes at the right offset without rereading the data; when
//! no state matches the upload's size, the data is hashed once more after
//! it is committed. A blob becomes visible only after its digest has been
//! verified and its committed data moved into the blob store.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use futures::Stream;
use portcullis_storage::{FileWriter, paths};
use portcullis_types::{Algorithm, Digest, RepoName};
use sha2::{Digest as _, Sha256, Sha512};
use tokio::io::AsyncReadExt;

use crate::upload_write::{Open, write_body};
use crate::{CoreError, Registry, hashstate};

/// Running hash of an upload's data, valid for exactly `offset` bytes.
#[derive(Clone)]
pub(crate) struct HashState {
    offset: u64,
    sha: Sha256,
}

type Slot = Arc<tokio::sync::Mutex<Option<HashState>>>;

/// A held session: this process's lock, with the hash state it last saw,
/// and the session's lease among processes when they share a state store.
pub(crate) struct SlotGuard {
    slot: tokio::sync::OwnedMutexGuard<Option<HashState>>,
    _lease: Option<crate::leases::LeaseGuard>,
}

impl std::ops::Deref for SlotGuard {
    type Target = Option<HashState>;
    fn deref(&self) -> &Self::Target {
        &self.slot
    }
}

impl std::ops::DerefMut for SlotGuard {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.slot
    }
}

/// Per-session locks and the hash states last seen by this process.
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
        let w = self
            .driver
            .writer(&paths::upload_data(name, &id), false)
            .await?;
        w.close().await?;
        self.note_repository(name);
        Ok(id)
    }

    /// The session's uncommitted data, resumed at its size.
    async fn open_upload(
        &self,
        name: &RepoName,
        id: &str,
    ) -> Result<Box<dyn FileWriter>, CoreError> {
        self.driver
            .writer(&paths::upload_data(name, id), true)
            .await
            .map_err(|e| CoreError::not_found_as(e, CoreError::UploadUnknown))
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
        let w = self.open_upload(name, id).await?;
        let size = w.size();
        w.close().await?;
        Ok(UploadStatus { size })
    }

    /// Locks a session, opens its upload, checks that the client's `start`
    /// is where the upload stands, and finds the hash of what it holds.
    async fn begin(
        &self,
        name: &RepoName,
        id: &str,
        start: Option<u64>,
    ) -> Result<Open, CoreError> {
        self.check_writable()?;
        // Only sessions that exist get a lock slot, so unknown ids cannot grow the map.
        self.upload_status(name, id).await?;
        let mut guard = self.hold_session(id).await?;
        let writer = match self.open_upload(name, id).await {
            Ok(w) => w,
            Err(e) => {
                drop(guard);
                self.uploads.forget(id);
                return Err(e);
            }
        };
        let have = writer.size();
        if let Some(start) = start
            && start != have
        {
            writer.close().await?;
            return Err(CoreError::RangeInvalid { start, have });
        }
        let sha = match guard.take() {
            Some(s) if s.offset == have => Some(s.sha),
            _ => self.saved_hash_state(name, id, have).await,
        };
        Ok(Open { writer, guard, sha })
    }

    /// The hash state saved for the upload's first `offset` bytes.
    async fn saved_hash_state(&self, name: &RepoName, id: &str, offset: u64) -> Option<Sha256> {
        if offset == 0 {
            return Some(Sha256::new());
        }
        let path = paths::upload_hash_state(name, id, Algorithm::Sha256, offset);
        let saved = self.driver.get_content(&path).await.ok()?;
        match hashstate::decode(&saved) {
            Some((sha, len)) if len == offset => Some(sha),
            _ => {
                tracing::warn!(
                    path,
                    "ignoring a hash state that is not one; the upload will be rehashed"
                );
                None
            }
        }
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
        let open = self.begin(name, id, start).await?;
        let have = open.writer.size();
        let Open {
            writer,
            mut guard,
            sha,
        } = write_body(open, body).await?;
        let size = writer.close().await?;
        if let Some(sha) = sha {
            if size != have {
                self.save_hash_state(name, id, have, size, &sha).await;
            }
            *guard = Some(HashState { offset: size, sha });
        }
        Ok(UploadStatus { size })
    }

    /// Saves the state after `size` bytes and drops the one after `before`.
    /// A failure costs only a rehash later, so it is logged, not returned.
    async fn save_hash_state(
        &self,
        name: &RepoName,
        id: &str,
        before: u64,
        size: u64,
        sha: &Sha256,
    ) {
        let path = paths::upload_hash_state(name, id, Algorithm::Sha256, size);
        if let Err(e) = self
            .driver
            .put_content(&path, Bytes::from(hashstate::encode(sha)))
            .await
        {
            tracing::warn!(error = %e, upload = id, "could not save the upload's hash state");
            return;
        }
        if before > 0 {
            let old = paths::upload_hash_state(name, id, Algorithm::Sha256, before);
            if let Err(e) = self.driver.delete(&old).await
                && !e.is_not_found()
            {
                tracing::debug!(error = %e, upload = id, "could not drop an old hash state");
            }
        }
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

    /// The digest of committed data, read back.
    async fn rehash(&self, path: &str, alg: Algorithm) -> Result<String, CoreError> {
        Ok(match alg {
            Algorithm::Sha256 => {
                let mut sha = Sha256::new();
                self.hash_file(path, |b| sha.update(b)).await?;
                hex::encode(sha.finalize())
            }
            Algorithm::Sha512 => {
                let mut sha = Sha512::new();
                self.hash_file(path, |b| sha.update(b)).await?;
                hex::encode(sha.finalize())
            }
        })
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
        let mut open = self.begin(name, id, start).await?;
        if digest.algorithm() != Algorithm::Sha256 {
            open.sha = None; // hashed once, after commit
        }
        let Open { writer, guard, sha } = write_body(open, body).await?;
        let size = writer.size();
        let data = paths::upload_data(name, id);
        let exists = self.blob_size(digest).await?.is_some();
        let verified = match sha {
            Some(sha) => {
                let actual = hex::encode(sha.finalize());
                if actual == digest.hex() && exists {
                    writer.cancel().await?; // the blob store has it already
                } else if actual == digest.hex() {
                    writer.commit().await?;
                } else {
                    let _ = writer.cancel().await;
                }
                actual
            }
            None => {
                writer.commit().await?;
                self.rehash(&data, digest.algorithm()).await?
            }
        };
        if verified != digest.hex() {
            drop(guard);
            self.remove_session(name, id).await;
            return Err(CoreError::DigestInvalid(format!(
                "the uploaded content has digest {}:{verified}, not {digest}",
                digest.algorithm().as_str()
            )));
        }
        if !exists {
            self.driver
                .move_path(&data, &paths::blob_data(digest))
                .await?;
        }
        self.link_layer(name, digest).await?;
        drop(guard);
        self.remove_session(name, id).await;
        Ok(size)
    }

    /// Cancels an upload and deletes its data.
    ///
    /// # Errors
    /// `UploadUnknown` when there is no such session.
    pub async fn cancel_upload(&self, name: &RepoName, id: &str) -> Result<(), CoreError> {
        self.check_writable()?;
        self.upload_status(name, id).await?;
        let guard = self.hold_session(id).await?;
        if let Ok(w) = self.open_upload(name, id).await {
            w.cancel().await?;
        }
        self.driver
            .delete(&paths::upload_dir(name, id))
            .await
            .map_err(|e| CoreError::not_found_as(e, CoreError::UploadUnknown))?;
        drop(guard);
        self.uploads.forget(id);
        Ok(())
    }

    /// Holds session `id`: this process's lock first, then the lease.
    async fn hold_session(&self, id: &str) -> Result<SlotGuard, CoreError> {
        let slot = self.uploads.slot(id).lock_owned().await;
        let lease = match &self.leases {
            Some(l) => l.hold(id).await?,
            None => None,
        };
        Ok(SlotGuard {
            slot,
            _lease: lease,
        })
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
