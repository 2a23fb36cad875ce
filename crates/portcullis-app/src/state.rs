//! The state store a configuration chooses: a `DirStore` on the state
//! directory (`<rootdirectory>/portcullis/`) with filesystem storage, so the
//! CLI, the server and replicas on the same directory share it; otherwise
//! the process's memory. The token stores kept there (robot and refresh
//! tokens) are opened here, the same way for `serve` and the CLI.
//!
//! Each caller gets its own store over the directory, as each component
//! always had: a `DirStore` serialises its writers, and the lockout check
//! on every login must not wait behind a webhook queue's writes.

use std::path::Path;
use std::sync::Arc;

use portcullis_auth::refresh::{self, RefreshError, RefreshStore};
use portcullis_auth::robots::{self, RobotError, RobotStore};
use portcullis_config::Config;
use portcullis_state::{DirStore, MemoryStore, StateStore, system_clock};

/// A store over `dir`, on the system clock.
#[must_use]
pub fn dir_store(dir: &Path) -> DirStore {
    DirStore::new(dir, system_clock())
}

/// The robot-token store of the state directory `dir` (`robots.json`).
///
/// # Errors
/// A store that exists but cannot be read.
pub fn robot_store(dir: &Path) -> Result<RobotStore, RobotError> {
    RobotStore::open_in(Arc::new(dir_store(dir)), Some(&dir.join(robots::STATE_KEY)))
}

/// The refresh-token store of the state directory `dir`
/// (`refresh-tokens.json`).
///
/// # Errors
/// A store that exists but cannot be read.
pub fn refresh_store(dir: &Path) -> Result<RefreshStore, RefreshError> {
    RefreshStore::open_in(
        Arc::new(dir_store(dir)),
        Some(&dir.join(refresh::STATE_KEY)),
    )
}

/// The store of the state directory, when storage is on the filesystem.
#[must_use]
pub fn store(config: &Config) -> Option<Arc<dyn StateStore>> {
    let dir = config.storage.state_dir()?;
    Some(Arc::new(dir_store(&dir)))
}

/// The store of the state directory, or one in this process's memory.
#[must_use]
pub fn store_or_memory(config: &Config) -> Arc<dyn StateStore> {
    store(config).unwrap_or_else(|| Arc::new(MemoryStore::new(system_clock())))
}
