//! The registry's domain logic on top of a storage driver: blobs, resumable
//! uploads, manifests (parse, validate, referrers), tags, the catalog and
//! upload purging. It knows nothing about HTTP or authentication.

mod blobs;
mod cache;
mod error;
mod hashstate;
pub mod leases;
mod listing;
mod locks;
mod manifest;
mod manifests;
mod purge;
mod releases;
mod repo_index;
mod upload_write;
mod uploads;

use std::sync::Arc;

use portcullis_storage::Driver;
use portcullis_types::{RepoName, Tag};

pub use error::CoreError;
pub use listing::{Page, Referrers};
pub use manifest::{Descriptor, ParsedManifest};
pub use manifests::{ManifestRead, PutOutcome, TagCondition, digest_of};
pub use purge::PurgeReport;
pub use uploads::UploadStatus;

/// Behaviour switches taken from the configuration.
#[derive(Debug, Clone)]
pub struct Options {
    /// `storage.delete.enabled`: allow DELETE of blobs and manifests.
    pub delete_enabled: bool,
    /// `storage.maintenance.readonly.enabled`: refuse every write.
    pub read_only: bool,
    /// Mount a blob without `?from=` when it already exists in storage.
    pub automount: bool,
    /// Largest manifest accepted, in bytes.
    pub manifest_max_bytes: u64,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            delete_enabled: false,
            read_only: false,
            automount: false,
            manifest_max_bytes: 4 * 1024 * 1024,
        }
    }
}

/// The registry: cheap to clone, shared by every request.
#[derive(Clone)]
pub struct Registry {
    driver: Arc<dyn Driver>,
    opts: Arc<Options>,
    uploads: Arc<uploads::Sessions>,
    manifests: Arc<cache::ManifestCache>,
    index: Arc<repo_index::RepoIndex>,
    locks: Arc<Locks>,
    /// Upload-session leases shared with other processes, when set.
    leases: Option<Arc<leases::Leases>>,
}

/// The locks that order this process's writes.
#[derive(Default)]
struct Locks {
    /// Held exclusively while a tag is checked and written.
    tags: locks::KeyedLocks<(RepoName, Tag)>,
    /// Shared by manifest writes, exclusive for a blob delete that must not
    /// race a manifest that references the blob.
    repos: locks::KeyedLocks<RepoName>,
}

impl Registry {
    #[must_use]
    pub fn new(driver: Arc<dyn Driver>, opts: Options) -> Self {
        Self {
            driver,
            opts: Arc::new(opts),
            uploads: Arc::default(),
            manifests: Arc::default(),
            index: Arc::default(),
            locks: Arc::default(),
            leases: None,
        }
    }

    /// Takes upload-session leases in `store` (shared by the processes that
    /// share this storage), so two of them never write one session at once.
    #[must_use]
    pub fn with_leases(mut self, store: Arc<dyn portcullis_state::StateStore>) -> Self {
        self.leases = Some(Arc::new(leases::Leases::new(store)));
        self
    }

    #[must_use]
    pub fn options(&self) -> &Options {
        &self.opts
    }

    fn check_writable(&self) -> Result<(), CoreError> {
        if self.opts.read_only {
            Err(CoreError::ReadOnly)
        } else {
            Ok(())
        }
    }

    fn check_delete(&self) -> Result<(), CoreError> {
        self.check_writable()?;
        if self.opts.delete_enabled {
            Ok(())
        } else {
            Err(CoreError::DeleteDisabled)
        }
    }
}
