//! Blobs as seen through a repository: a blob is visible in a repository only
//! when the repository links to it (`_layers/.../link`).

use bytes::Bytes;
use portcullis_storage::{StorageError, paths};
use portcullis_types::{Digest, RepoName};

use crate::{CoreError, Registry};

impl Registry {
    /// Whether `name` links `digest` as a layer or as a manifest revision.
    pub(crate) async fn is_linked(
        &self,
        name: &RepoName,
        digest: &Digest,
    ) -> Result<bool, CoreError> {
        for link in [
            paths::layer_link(name, digest),
            paths::revision_link(name, digest),
        ] {
            match self.driver.stat(&link).await {
                Ok(_) => return Ok(true),
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(false)
    }

    /// Size of the stored blob content, if present in the global blob store.
    pub(crate) async fn blob_size(&self, digest: &Digest) -> Result<Option<u64>, CoreError> {
        match self.driver.stat(&paths::blob_data(digest)).await {
            Ok(st) if !st.is_dir => Ok(Some(st.size)),
            Ok(_) => Ok(None),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Size of a blob visible in `name`.
    ///
    /// # Errors
    /// `BlobUnknown` when the repository does not link it or its data is gone.
    pub async fn stat_blob(&self, name: &RepoName, digest: &Digest) -> Result<u64, CoreError> {
        if !self.is_linked(name, digest).await? {
            return Err(CoreError::BlobUnknown);
        }
        self.blob_size(digest).await?.ok_or(CoreError::BlobUnknown)
    }

    /// Streams `len` bytes of a blob from `offset`.
    ///
    /// # Errors
    /// `BlobUnknown` when the blob is not visible in `name`.
    pub async fn blob_stream(
        &self,
        name: &RepoName,
        digest: &Digest,
        offset: u64,
        len: u64,
    ) -> Result<portcullis_storage::ByteStream, CoreError> {
        if !self.is_linked(name, digest).await? {
            return Err(CoreError::BlobUnknown);
        }
        self.driver
            .read_stream(&paths::blob_data(digest), offset, len)
            .await
            .map_err(|e| CoreError::not_found_as(e, CoreError::BlobUnknown))
    }

    /// Unlinks a blob from a repository (the data stays until garbage collection,
    /// as in distribution).
    ///
    /// # Errors
    /// `DeleteDisabled`, `ReadOnly`, or `BlobUnknown`.
    pub async fn delete_blob(&self, name: &RepoName, digest: &Digest) -> Result<(), CoreError> {
        self.check_delete()?;
        self.driver
            .delete(&paths::layer_dir(name, digest))
            .await
            .map_err(|e| CoreError::not_found_as(e, CoreError::BlobUnknown))
    }

    /// Links an existing blob into `name`.
    pub(crate) async fn link_layer(
        &self,
        name: &RepoName,
        digest: &Digest,
    ) -> Result<(), CoreError> {
        self.driver
            .put_content(
                &paths::layer_link(name, digest),
                Bytes::from(digest.to_string()),
            )
            .await
            .map_err(CoreError::from)
    }

    /// Cross-repository mount. Returns `false` when the blob is not available from
    /// the source, so the caller falls back to opening an upload session.
    ///
    /// # Errors
    /// `ReadOnly` or storage failures.
    pub async fn mount_blob(
        &self,
        name: &RepoName,
        digest: &Digest,
        from: Option<&RepoName>,
    ) -> Result<bool, CoreError> {
        self.check_writable()?;
        let available = match from {
            Some(src) => self.is_linked(src, digest).await?,
            None => self.opts.automount,
        };
        if !available || self.blob_size(digest).await?.is_none() {
            return Ok(false);
        }
        self.link_layer(name, digest).await?;
        self.note_repository(name);
        Ok(true)
    }

    /// Whether the repository exists at all (has any manifests, layers or uploads).
    pub(crate) async fn repo_exists(&self, name: &RepoName) -> Result<bool, CoreError> {
        match self.driver.stat(&paths::repo(name)).await {
            Ok(st) => Ok(st.is_dir),
            Err(StorageError::NotFound(_)) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}
