//! Shared helpers for the core's integration tests: push blobs through an
//! upload session and build image manifests and indexes that reference them.

#![allow(
    dead_code,
    unused_imports,
    reason = "each test binary uses a different subset of the helpers"
)]

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use portcullis_core::{Registry, digest_of};
use portcullis_storage::{
    Chunks, Driver, FileInfo, FileWriter, MemoryDriver, Reader, StorageError,
};
pub use portcullis_testkit::oci::{OCI_INDEX, OCI_MANIFEST};
use portcullis_types::{Algorithm, Digest, RepoName};
use tokio::sync::oneshot;

/// A one-chunk request body.
pub fn body(
    data: Bytes,
) -> futures::stream::Iter<std::vec::IntoIter<Result<Bytes, std::io::Error>>> {
    futures::stream::iter(vec![Ok(data)])
}

/// Uploads `data` as a blob of `name` and returns its digest.
pub async fn push_blob(reg: &Registry, name: &RepoName, data: &[u8]) -> Digest {
    let digest = digest_of(Algorithm::Sha256, data);
    let id = reg.start_upload(name).await.unwrap();
    reg.complete_upload(name, &id, &digest, None, body(Bytes::copy_from_slice(data)))
        .await
        .unwrap();
    digest
}

fn descriptor(media_type: &str, digest: &Digest, size: usize) -> serde_json::Value {
    serde_json::json!({ "mediaType": media_type, "digest": digest.to_string(), "size": size })
}

/// An OCI image manifest with a config and layers (each `(digest, size)`);
/// `note` makes otherwise equal manifests differ.
pub fn image(config: &(Digest, usize), layers: &[(Digest, usize)], note: &str) -> Bytes {
    let layers: Vec<_> = layers
        .iter()
        .map(|(d, n)| descriptor(portcullis_testkit::oci::OCI_LAYER, d, *n))
        .collect();
    let m = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(portcullis_testkit::oci::OCI_CONFIG, &config.0, config.1),
        "layers": layers,
        "annotations": { "note": note },
    });
    Bytes::from(serde_json::to_vec(&m).unwrap())
}

/// An OCI index of child manifests (each `(digest, size)`).
pub fn index(children: &[(Digest, usize)]) -> Bytes {
    let children: Vec<_> = children
        .iter()
        .map(|(d, n)| descriptor(OCI_MANIFEST, d, *n))
        .collect();
    let m =
        serde_json::json!({ "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children });
    Bytes::from(serde_json::to_vec(&m).unwrap())
}

/// A config blob and one layer pushed to `name`, ready for `image`.
pub async fn config_and_layer(
    reg: &Registry,
    name: &RepoName,
    seed: &str,
) -> ((Digest, usize), (Digest, usize)) {
    let config = format!("{{\"seed\":\"{seed}\"}}");
    let layer = format!("layer of {seed}");
    let c = push_blob(reg, name, config.as_bytes()).await;
    let l = push_blob(reg, name, layer.as_bytes()).await;
    ((c, config.len()), (l, layer.len()))
}

/// A memory driver with two hooks. `gate`, when armed, holds the next read
/// of a tag's current link after the read and before it returns (the moment
/// a reader has the old digest in hand). `full`, when set, makes every write
/// to a path it accepts fail as a full disk (ENOSPC).
/// Which written paths find the disk full.
pub type FullWhen = fn(&str) -> bool;

/// `reads` counts the readers opened.
pub struct HookedDriver {
    inner: Box<dyn Driver>,
    pub gate: Mutex<Option<(oneshot::Sender<()>, oneshot::Receiver<()>)>>,
    pub full: Mutex<Option<FullWhen>>,
    pub reads: AtomicUsize,
}

impl Default for HookedDriver {
    fn default() -> Self {
        Self::over(MemoryDriver::new())
    }
}

impl HookedDriver {
    /// Hooks put on another driver.
    pub fn over(inner: impl Driver) -> Self {
        Self {
            inner: Box::new(inner),
            gate: Mutex::default(),
            full: Mutex::default(),
            reads: AtomicUsize::new(0),
        }
    }

    fn check_space(&self, path: &str) -> Result<(), StorageError> {
        match *self.full.lock().unwrap() {
            Some(hit) if hit(path) => Err(StorageError::io(
                path,
                std::io::Error::from(std::io::ErrorKind::StorageFull),
            )),
            _ => Ok(()),
        }
    }
}

#[async_trait]
impl Driver for HookedDriver {
    async fn get_content(&self, path: &str) -> Result<Bytes, StorageError> {
        let got = self.inner.get_content(path).await;
        if path.ends_with("/current/link") {
            let gate = self.gate.lock().unwrap().take();
            if let Some((read_done, release)) = gate {
                let _ = read_done.send(());
                let _ = release.await;
            }
        }
        got
    }
    async fn put_content(&self, path: &str, data: Bytes) -> Result<(), StorageError> {
        self.check_space(path)?;
        self.inner.put_content(path, data).await
    }
    async fn reader(&self, path: &str, offset: u64) -> Result<Reader, StorageError> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.reader(path, offset).await
    }
    async fn writer(&self, path: &str, append: bool) -> Result<Box<dyn FileWriter>, StorageError> {
        let inner = self.inner.writer(path, append).await?;
        let full = *self.full.lock().unwrap();
        Ok(Box::new(HookedWriter {
            inner,
            full: full.filter(|hit| hit(path)).map(|_| path.to_owned()),
        }))
    }
    async fn stat(&self, path: &str) -> Result<FileInfo, StorageError> {
        self.inner.stat(path).await
    }
    async fn list(&self, path: &str) -> Result<Vec<String>, StorageError> {
        self.inner.list(path).await
    }
    async fn move_path(&self, from: &str, to: &str) -> Result<(), StorageError> {
        self.check_space(to)?;
        self.inner.move_path(from, to).await
    }
    async fn delete(&self, path: &str) -> Result<(), StorageError> {
        self.inner.delete(path).await
    }
}

/// A writer whose writes find the disk full when `full` names its path
/// (decided when it was opened).
struct HookedWriter {
    inner: Box<dyn FileWriter>,
    full: Option<String>,
}

#[async_trait]
impl FileWriter for HookedWriter {
    async fn write(&mut self, chunks: Chunks) -> Result<(), StorageError> {
        if let Some(path) = &self.full {
            return Err(StorageError::io(
                path,
                std::io::Error::from(std::io::ErrorKind::StorageFull),
            ));
        }
        self.inner.write(chunks).await
    }
    fn size(&self) -> u64 {
        self.inner.size()
    }
    async fn close(self: Box<Self>) -> Result<u64, StorageError> {
        self.inner.close().await
    }
    async fn commit(self: Box<Self>) -> Result<u64, StorageError> {
        self.inner.commit().await
    }
    async fn discard(self: Box<Self>) -> Result<u64, StorageError> {
        self.inner.discard().await
    }
    async fn cancel(self: Box<Self>) -> Result<(), StorageError> {
        self.inner.cancel().await
    }
}
