//! The active policy, reloaded from its file when the file changes.
//!
//! [`PolicyStore::current`] is on every request's path, so it costs a read
//! lock and an `Arc` clone; at most once per second one caller also looks at
//! the file's metadata (size, modification and change times, inode) and
//! reloads it if any changed. A file that no longer parses, or has vanished,
//! leaves the previous policy in force: the problem is logged once per change
//! of the file and kept for [`PolicyStore::last_error`].

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use parking_lot::{Mutex, RwLock};

use super::{Policy, PolicyError};

/// How often the file's metadata is looked at, at most.
const CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// What identifies one version of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fingerprint {
    Missing,
    File {
        len: u64,
        modified: Option<SystemTime>,
        /// Inode, device and change time (Unix): an editor that replaces the
        /// file gives it a new inode even when size and mtime match.
        ino: u64,
        dev: u64,
        ctime: (i64, i64),
    },
}

fn fingerprint(path: &Path) -> Fingerprint {
    let Ok(meta) = fs::metadata(path) else {
        return Fingerprint::Missing;
    };
    #[cfg(unix)]
    let (ino, dev, ctime) = {
        use std::os::unix::fs::MetadataExt as _;
        (meta.ino(), meta.dev(), (meta.ctime(), meta.ctime_nsec()))
    };
    #[cfg(not(unix))]
    let (ino, dev, ctime) = (0, 0, (0, 0));
    Fingerprint::File {
        len: meta.len(),
        modified: meta.modified().ok(),
        ino,
        dev,
        ctime,
    }
}

#[derive(Debug)]
struct Watch {
    path: PathBuf,
    state: Mutex<WatchState>,
}

#[derive(Debug)]
struct WatchState {
    last_check: Instant,
    /// The version the current policy came from.
    loaded: Fingerprint,
    /// A later version that was refused (already logged).
    rejected: Option<Fingerprint>,
    last_error: Option<PolicyError>,
}

/// Holds the policy in force, and reloads it when its file changes.
#[derive(Debug)]
pub struct PolicyStore {
    current: RwLock<Arc<Policy>>,
    watch: Option<Watch>,
}

/// Every problem of a policy file (for `config check`), not just the first.
///
/// # Errors
/// All the errors found.
pub fn check_file(path: &Path) -> Result<(), Vec<PolicyError>> {
    read_policy(path).map(|_| ())
}

fn read_policy(path: &Path) -> Result<Policy, Vec<PolicyError>> {
    let source = path.display().to_string();
    let text = fs::read_to_string(path).map_err(|e| {
        vec![PolicyError {
            source: source.clone(),
            line: None,
            message: format!("cannot read the access policy: {e}"),
            fix: "check that the file exists, is UTF-8 text, and that portcullis may read it"
                .to_owned(),
        }]
    })?;
    Policy::from_file_text(&text, &source)
}

fn log_warnings(policy: &Policy) {
    for warning in policy.warnings() {
        tracing::warn!("access policy: {warning}");
    }
}

impl PolicyStore {
    /// A store whose policy never changes (from `config.yml`, or built in).
    #[must_use]
    pub fn fixed(policy: Policy) -> Self {
        log_warnings(&policy);
        Self {
            current: RwLock::new(Arc::new(policy)),
            watch: None,
        }
    }

    /// Loads the policy file at `path` (the contents of an `access` section:
    /// `groups`, `rules`, `immutable`; an enclosing `access:` key is
    /// accepted), and watches it for changes.
    ///
    /// # Errors
    /// The first problem in the file, or why it cannot be read.
    pub fn from_file(path: &Path) -> Result<Self, PolicyError> {
        let loaded = fingerprint(path);
        let policy = read_policy(path).map_err(|mut errors| errors.swap_remove(0))?;
        log_warnings(&policy);
        Ok(Self {
            current: RwLock::new(Arc::new(policy)),
            watch: Some(Watch {
                path: path.to_owned(),
                state: Mutex::new(WatchState {
                    last_check: Instant::now(),
                    loaded,
                    rejected: None,
                    last_error: None,
                }),
            }),
        })
    }

    /// The policy in force. Cheap: call it for every request.
    pub fn current(&self) -> Arc<Policy> {
        if let Some(watch) = &self.watch {
            // One caller checks; the others go on with the current policy.
            if let Some(mut state) = watch.state.try_lock()
                && state.last_check.elapsed() >= CHECK_INTERVAL
            {
                self.check(&watch.path, &mut state);
            }
        }
        Arc::clone(&self.current.read())
    }

    /// Looks at the file now, without waiting for the next interval.
    /// `Ok(true)` if a new policy was loaded, `Ok(false)` if nothing changed
    /// (or the store has no file).
    ///
    /// # Errors
    /// Why the file's current version was refused; the previous policy stays
    /// in force.
    pub fn check_now(&self) -> Result<bool, PolicyError> {
        let Some(watch) = &self.watch else {
            return Ok(false);
        };
        let mut state = watch.state.lock();
        let reloaded = self.check(&watch.path, &mut state);
        match (&state.rejected, &state.last_error) {
            (Some(_), Some(error)) => Err(error.clone()),
            _ => Ok(reloaded),
        }
    }

    /// Why the file's latest version was refused, while the previous policy
    /// stays in force; `None` when the policy in force is the file's.
    #[must_use]
    pub fn last_error(&self) -> Option<PolicyError> {
        let watch = self.watch.as_ref()?;
        watch.state.lock().last_error.clone()
    }

    /// The file this store reloads from, if any.
    #[must_use]
    pub fn path(&self) -> Option<&Path> {
        self.watch.as_ref().map(|w| w.path.as_path())
    }

    fn check(&self, path: &Path, state: &mut WatchState) -> bool {
        state.last_check = Instant::now();
        let now = fingerprint(path);
        if now == state.loaded || state.rejected == Some(now) {
            return false;
        }
        match read_policy(path) {
            Ok(policy) => {
                tracing::info!(
                    path = %path.display(),
                    rules = policy.rule_count(),
                    "access policy reloaded"
                );
                log_warnings(&policy);
                *self.current.write() = Arc::new(policy);
                state.loaded = now;
                state.rejected = None;
                state.last_error = None;
                true
            }
            Err(errors) => {
                let more = match errors.len() {
                    1 => String::new(),
                    n => format!(" (and {} more problems)", n - 1),
                };
                tracing::warn!(
                    "access policy {} not reloaded, the previous policy stays in force: {}{more}",
                    path.display(),
                    errors[0]
                );
                state.rejected = Some(now);
                state.last_error = errors.into_iter().next();
                false
            }
        }
    }
}
