//! `storage`: the driver (filesystem, in memory, or one portcullis lacks,
//! kept with its parameters so `validate()` can name it), deletes, redirects
//! and maintenance.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::duration::go;

/// `storage`. Exactly one driver is set: `filesystem`, `inmemory`, or one that
/// portcullis does not implement (kept in `other_driver`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StorageConfig {
    pub filesystem: Option<FilesystemConfig>,
    /// `storage.inmemory:` is present (distribution's test driver).
    pub inmemory: bool,
    /// A driver distribution has and portcullis does not (`s3`, `azure`, ...).
    pub other_driver: Option<OtherStorageDriver>,
    pub delete: DeleteConfig,
    pub redirect: RedirectConfig,
    pub maintenance: MaintenanceConfig,
}

/// The storage driver a configuration selects.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum StorageDriver<'a> {
    Filesystem(&'a FilesystemConfig),
    InMemory,
    Other(&'a OtherStorageDriver),
}

impl StorageConfig {
    /// Where portcullis keeps its own state (signing keys, refresh tokens):
    /// `<rootdirectory>/portcullis`, beside distribution's `docker/` tree,
    /// which registry:2 ignores. `None` without filesystem storage.
    #[must_use]
    pub fn state_dir(&self) -> Option<PathBuf> {
        self.filesystem
            .as_ref()
            .map(|fs| fs.rootdirectory.join("portcullis"))
    }

    /// The driver, or `None` when none or more than one is set.
    #[must_use]
    pub fn driver(&self) -> Option<StorageDriver<'_>> {
        let mut drivers = Vec::new();
        if let Some(fs) = &self.filesystem {
            drivers.push(StorageDriver::Filesystem(fs));
        }
        if self.inmemory {
            drivers.push(StorageDriver::InMemory);
        }
        if let Some(other) = &self.other_driver {
            drivers.push(StorageDriver::Other(other));
        }
        if drivers.len() == 1 {
            drivers.pop()
        } else {
            None
        }
    }

    /// The names of the drivers that are set.
    #[must_use]
    pub fn driver_names(&self) -> Vec<&str> {
        let mut names = Vec::new();
        if self.filesystem.is_some() {
            names.push("filesystem");
        }
        if self.inmemory {
            names.push("inmemory");
        }
        if let Some(other) = &self.other_driver {
            names.push(other.name.as_str());
        }
        names
    }
}

/// `storage.filesystem`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FilesystemConfig {
    /// Default `/var/lib/registry`.
    pub rootdirectory: PathBuf,
    /// Limit on concurrent filesystem operations (distribution: at least 25,
    /// default 100).
    pub maxthreads: Option<u32>,
}

impl Default for FilesystemConfig {
    fn default() -> Self {
        Self {
            rootdirectory: PathBuf::from("/var/lib/registry"),
            maxthreads: None,
        }
    }
}

/// A storage driver portcullis does not implement, with its parameters.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct OtherStorageDriver {
    pub name: String,
    #[serde(skip_serializing)]
    pub params: serde_json::Map<String, serde_json::Value>,
}

/// Parameters may hold credentials (`secretkey`, `accountkey`), so only their
/// names are shown.
impl fmt::Debug for OtherStorageDriver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtherStorageDriver")
            .field("name", &self.name)
            .field("params", &self.params.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// `storage.delete`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DeleteConfig {
    pub enabled: bool,
}

/// `storage.redirect`. portcullis's drivers never redirect, so `disable` only
/// restates that.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RedirectConfig {
    pub disable: bool,
}

/// `storage.maintenance`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MaintenanceConfig {
    pub uploadpurging: UploadPurging,
    pub readonly: ReadOnly,
}

/// `storage.maintenance.uploadpurging`: delete abandoned uploads.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct UploadPurging {
    /// Default `true`.
    pub enabled: bool,
    /// Uploads older than this are deleted; default `168h`.
    #[serde(with = "go")]
    pub age: Duration,
    /// How often to look; default `24h`.
    #[serde(with = "go")]
    pub interval: Duration,
    /// Only log what would be deleted.
    pub dryrun: bool,
}

impl Default for UploadPurging {
    fn default() -> Self {
        Self {
            enabled: true,
            age: Duration::from_secs(168 * 3600),
            interval: Duration::from_secs(24 * 3600),
            dryrun: false,
        }
    }
}

/// `storage.maintenance.readonly`: refuse every write.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReadOnly {
    pub enabled: bool,
}
