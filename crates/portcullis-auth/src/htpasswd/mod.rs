//! htpasswd authentication, compatible with registry:2's `auth.htpasswd`.
//!
//! [`Htpasswd`] checks user names and passwords against a file written by
//! `htpasswd -B` (or by [`add_user`]); bcrypt, SHA-256/SHA-512 crypt and
//! Apache MD5 are accepted (see [`Scheme`]). It re-reads the
//! file whenever it changes on disk, and caches successful verifications so
//! that the hashing cost is paid once per credential instead of once per
//! request.
//!
//! Differences from registry:2, all deliberate:
//! - A line that cannot be used (plain text, DES crypt, SHA-1, malformed)
//!   disables that user alone, with a warning naming the file, line, user,
//!   cause and fix ([`HtpasswdWarning`]), and [`Htpasswd::disabled`] tells
//!   the server why that user cannot log in. registry:2 says nothing.
//! - The file is reloaded on change, without a restart. A reload that fails
//!   (the file is gone or unreadable, or its last line is cut off, as while
//!   it is being written) keeps the previous users and logs one warning per
//!   change.
//! - An unknown or disabled user costs as much as a known one (a
//!   verification in the file's most common scheme at its highest cost), so
//!   timing does not reveal which users exist.
//!
//! Like registry:2, when a user appears twice the later line wins.

mod parse;
mod scheme;
mod warn;
mod write;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_schemes;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use secrecy::{ExposeSecret as _, SecretString};
use sha2::{Digest as _, Sha256};
use tracing::instrument;

use crate::identity::UserName;
use parse::{Entries, FileStamp};

pub use scheme::{Scheme, Unusable};
pub use warn::{DisabledUser, HtpasswdWarning, LineProblem};
pub use write::{GENERATED_PASSWORD_LEN, add_user, generate_password};

/// bcrypt cost used when portcullis creates users (`htpasswd -B` defaults to
/// 5, which is too cheap for today's hardware; 12 takes about 250 ms).
pub const DEFAULT_COST: u32 = 12;

/// How long a verified credential is remembered. Bounds how long a password
/// that was changed by some means we cannot observe keeps working.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_mins(5);

/// Most credentials remembered at once; when full, expired entries are
/// dropped, and if that is not enough the whole cache is cleared.
pub const DEFAULT_CACHE_CAPACITY: usize = 10_000;

/// Authentication failed. Unknown user and wrong password are deliberately
/// the same error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The user does not exist or the password is wrong.
    #[error("invalid user name or password")]
    InvalidCredentials,
}

/// Problems reading or writing an htpasswd file. Messages name the file and,
/// for parse errors, the line; they never contain password hashes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HtpasswdError {
    /// The file could not be opened or read.
    #[error("cannot read htpasswd file {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// On reload, the file's last line is unusable and not terminated: it is
    /// most likely being written, so the users loaded before are kept.
    #[error(
        "htpasswd file {} ends in a cut-off line (being written?); fix the last line",
        path.display()
    )]
    Incomplete {
        /// The file.
        path: PathBuf,
    },
    /// Writing the new file (or its temporary file) failed.
    #[error("cannot write htpasswd file {}", path.display())]
    Write {
        /// The file being written (the temporary file if that failed).
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The requested bcrypt cost is not in 4..=31.
    #[error("bcrypt cost {0} is outside the allowed range 4..=31")]
    InvalidCost(u32),
    /// The user name is valid but cannot be written so that it reads back
    /// the same (e.g. it starts with `#` and would become a comment).
    #[error("user name {name:?} cannot be stored in an htpasswd file: {reason}")]
    UnrepresentableUserName {
        /// The rejected name.
        name: String,
        /// Why.
        reason: &'static str,
    },
    /// bcrypt failed to hash the password (e.g. no OS randomness).
    #[error("cannot hash password: {0}")]
    Hash(String),
}

/// Counters, for metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HtpasswdStats {
    /// Password hash verifications performed (cache misses, including
    /// unknown and disabled users), whatever the scheme.
    pub bcrypt_verifications: u64,
    /// Successful authentications answered from the cache.
    pub cache_hits: u64,
    /// Times the file was re-read successfully after a change.
    pub reloads: u64,
    /// Times a changed file could not be loaded (old users kept).
    pub failed_reloads: u64,
}

/// Source of the current time; replaceable in tests so expiry can be tested
/// without sleeping.
type Clock = Arc<dyn Fn() -> Instant + Send + Sync>;

/// A remembered successful verification.
struct CachedCredential {
    user: UserName,
    expires: Instant,
}

/// Everything that changes together when the file is reloaded.
struct State {
    /// The users being served (the last version that loaded successfully).
    entries: Arc<Entries>,
    /// The last file version we looked at, whether or not it loaded. A
    /// failed version is not retried (or warned about) again until the file
    /// changes once more.
    observed: FileStamp,
    /// Bumped whenever the cache is dropped, so a verification that started
    /// before a reload cannot put a stale credential into the new cache.
    generation: u64,
    /// SHA-256(salt, user, NUL, password) -> user. Never the password itself.
    cache: HashMap<[u8; 32], CachedCredential>,
}

impl State {
    fn drop_cache(&mut self) {
        self.generation += 1;
        self.cache = HashMap::new();
    }
}

/// Users and bcrypt hashes from an htpasswd file, reloaded when it changes.
///
/// `Send + Sync`; share it in an `Arc`. [`Htpasswd::authenticate`] blocks
/// (bcrypt and file I/O), so call it from a blocking thread in async code.
pub struct Htpasswd {
    path: PathBuf,
    /// Random per-instance salt for cache keys, so the cache reveals nothing
    /// even if memory is dumped.
    salt: [u8; 32],
    state: RwLock<State>,
    /// Serialises reloads so that one change is read (and warned about) once.
    reload_lock: Mutex<()>,
    cache_ttl: Duration,
    cache_capacity: usize,
    clock: Clock,
    bcrypt_verifications: AtomicU64,
    cache_hits: AtomicU64,
    reloads: AtomicU64,
    failed_reloads: AtomicU64,
}

impl fmt::Debug for Htpasswd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state.read();
        f.debug_struct("Htpasswd")
            .field("path", &self.path)
            .field("users", &state.entries.users.len())
            .field("cached_credentials", &state.cache.len())
            .finish_non_exhaustive()
    }
}

impl Htpasswd {
    /// Loads the file.
    ///
    /// Lines that cannot be used disable their user and are logged as
    /// warnings (see [`Self::warnings`]); they never make loading fail.
    ///
    /// # Errors
    /// The file is missing or unreadable ([`HtpasswdError::Read`]).
    #[instrument(skip_all, fields(path = %path.display()))]
    pub fn load(path: &Path) -> Result<Self, HtpasswdError> {
        let (entries, stamp) = parse::read(path)?;
        log_warnings(&entries);
        tracing::debug!(users = entries.users.len(), "loaded htpasswd file");
        Ok(Self {
            path: path.to_owned(),
            salt: rand::random(),
            state: RwLock::new(State {
                entries: Arc::new(entries),
                observed: stamp,
                generation: 0,
                cache: HashMap::new(),
            }),
            reload_lock: Mutex::new(()),
            cache_ttl: DEFAULT_CACHE_TTL,
            cache_capacity: DEFAULT_CACHE_CAPACITY,
            clock: Arc::new(Instant::now),
            bcrypt_verifications: AtomicU64::new(0),
            cache_hits: AtomicU64::new(0),
            reloads: AtomicU64::new(0),
            failed_reloads: AtomicU64::new(0),
        })
    }

    /// Sets how long a verified credential is remembered
    /// (default [`DEFAULT_CACHE_TTL`]; zero disables the cache).
    #[must_use]
    pub fn with_cache_ttl(mut self, ttl: Duration) -> Self {
        self.cache_ttl = ttl;
        self
    }

    /// Sets how many credentials are remembered at most
    /// (default [`DEFAULT_CACHE_CAPACITY`]; zero disables the cache).
    #[must_use]
    pub fn with_cache_capacity(mut self, capacity: usize) -> Self {
        self.cache_capacity = capacity;
        self
    }

    #[cfg(test)]
    fn with_clock(mut self, clock: impl Fn() -> Instant + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The file this was loaded from.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of users currently served.
    #[must_use]
    pub fn user_count(&self) -> usize {
        self.state.read().entries.users.len()
    }

    /// The problems found in the lines of the version being served.
    #[must_use]
    pub fn warnings(&self) -> Vec<HtpasswdWarning> {
        self.state.read().entries.warnings.clone()
    }

    /// Why `user` cannot log in, when the file names them on a line that
    /// cannot be used (e.g. "user bob's htpasswd line 3 uses SHA-1 ...,
    /// which portcullis refuses"). For the server's log only: tell the
    /// client no more than for any failed login. Re-reads the file first if
    /// it changed.
    #[must_use]
    pub fn disabled(&self, user: &str) -> Option<DisabledUser> {
        self.reload_if_changed();
        self.state.read().entries.disabled.get(user).cloned()
    }

    /// Counters since this instance was created.
    #[must_use]
    pub fn stats(&self) -> HtpasswdStats {
        HtpasswdStats {
            bcrypt_verifications: self.bcrypt_verifications.load(Ordering::Relaxed),
            cache_hits: self.cache_hits.load(Ordering::Relaxed),
            reloads: self.reloads.load(Ordering::Relaxed),
            failed_reloads: self.failed_reloads.load(Ordering::Relaxed),
        }
    }

    /// Checks `user` and `password`. Blocking: a cache miss runs the hash
    /// (about 250 ms for bcrypt at cost 12), and the file is re-read first if
    /// it changed on disk (which also drops the cache).
    ///
    /// # Errors
    /// [`AuthError::InvalidCredentials`] for an unknown user, a disabled user
    /// (see [`Self::disabled`] for why) or a wrong password alike; all take
    /// about the same time.
    #[instrument(skip_all)]
    pub fn authenticate(&self, user: &str, password: &SecretString) -> Result<UserName, AuthError> {
        let stamp = FileStamp::current(&self.path);
        let key = self.cache_key(user, password);
        let now = (self.clock)();

        let snapshot = {
            let state = self.state.read();
            if state.observed == stamp {
                if let Some(hit) = Self::cached(&state, &key, now) {
                    self.cache_hits.fetch_add(1, Ordering::Relaxed);
                    return Ok(hit);
                }
                Some((Arc::clone(&state.entries), state.generation))
            } else {
                None
            }
        };
        let (entries, generation) = snapshot.unwrap_or_else(|| {
            self.reload_if_changed();
            let state = self.state.read();
            (Arc::clone(&state.entries), state.generation)
        });

        // Unknown and disabled users are checked against the dummy hash so
        // they cost as much as known ones.
        let entry = entries.users.get(user);
        let hash = entry.map_or(&entries.dummy, |e| &e.hash);
        self.bcrypt_verifications.fetch_add(1, Ordering::Relaxed);
        let matches = hash.verify(password.expose_secret());
        let Some(entry) = entry.filter(|_| matches) else {
            return Err(AuthError::InvalidCredentials);
        };

        if !self.cache_ttl.is_zero() && self.cache_capacity > 0 {
            let mut state = self.state.write();
            if state.generation == generation {
                self.insert_cached(&mut state, key, entry.name.clone(), now);
            }
        }
        Ok(entry.name.clone())
    }

    /// A short fingerprint of the user's stored hash (not of the password),
    /// re-reading the file first if it changed. It changes when the password
    /// changes, so tokens derived from a login can be tied to it; `None`
    /// when the user no longer exists.
    #[must_use]
    pub fn password_fingerprint(&self, user: &str) -> Option<String> {
        self.reload_if_changed();
        let state = self.state.read();
        let entry = state.entries.users.get(user)?;
        let digest = Sha256::digest(entry.hash.as_str().as_bytes());
        Some(digest[..12].iter().map(|b| format!("{b:02x}")).collect())
    }

    /// The non-blocking fast path: `Some` when these credentials were verified
    /// recently and the file has not changed since. It never runs bcrypt, so
    /// an async caller can try it inline and fall back to [`Self::authenticate`]
    /// on a blocking thread.
    #[must_use]
    pub fn authenticate_cached(&self, user: &str, password: &SecretString) -> Option<UserName> {
        let stamp = FileStamp::current(&self.path);
        let key = self.cache_key(user, password);
        let now = (self.clock)();
        let state = self.state.read();
        if state.observed != stamp {
            return None;
        }
        let hit = Self::cached(&state, &key, now)?;
        self.cache_hits.fetch_add(1, Ordering::Relaxed);
        Some(hit)
    }

    /// The cache key: SHA-256 over the per-instance salt, the user, a NUL
    /// (which a valid user name cannot contain, so (user, password) pairs
    /// cannot collide by shifting bytes), and the password.
    fn cache_key(&self, user: &str, password: &SecretString) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update(self.salt);
        hasher.update(user.as_bytes());
        hasher.update([0u8]);
        hasher.update(password.expose_secret().as_bytes());
        hasher.finalize().into()
    }

    fn cached(state: &State, key: &[u8; 32], now: Instant) -> Option<UserName> {
        state
            .cache
            .get(key)
            .filter(|c| now < c.expires)
            .map(|c| c.user.clone())
    }

    fn insert_cached(&self, state: &mut State, key: [u8; 32], user: UserName, now: Instant) {
        if state.cache.len() >= self.cache_capacity {
            state.cache.retain(|_, c| now < c.expires);
            if state.cache.len() >= self.cache_capacity {
                // Only valid credentials are cached, so this takes many real
                // users; starting over is simpler than tracking recency.
                state.cache.clear();
            }
        }
        let expires = now + self.cache_ttl;
        state.cache.insert(key, CachedCredential { user, expires });
    }

    /// Re-reads the file if it differs from the version last looked at.
    #[instrument(skip_all, fields(path = %self.path.display()))]
    fn reload_if_changed(&self) {
        let _reloading = self.reload_lock.lock();
        // Another thread may have handled this change while we waited.
        let stamp = FileStamp::current(&self.path);
        if self.state.read().observed == stamp {
            return;
        }
        let read = parse::read(&self.path).and_then(|(entries, stamp)| {
            if entries.incomplete {
                Err(HtpasswdError::Incomplete {
                    path: self.path.clone(),
                })
            } else {
                Ok((entries, stamp))
            }
        });
        match read {
            Ok((entries, read_stamp)) => {
                log_warnings(&entries);
                let users = entries.users.len();
                let mut state = self.state.write();
                state.entries = Arc::new(entries);
                state.observed = read_stamp;
                state.drop_cache();
                drop(state);
                self.reloads.fetch_add(1, Ordering::Relaxed);
                tracing::info!(users, "htpasswd file changed; reloaded it");
            }
            Err(error) => {
                let mut state = self.state.write();
                let users = state.entries.users.len();
                state.observed = stamp;
                // Whatever the change was meant to do (e.g. revoke someone),
                // stop trusting remembered credentials.
                state.drop_cache();
                drop(state);
                self.failed_reloads.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    error = %error_chain(&error),
                    users,
                    "htpasswd file changed but cannot be loaded; still serving the users loaded before"
                );
            }
        }
    }
}

/// Reads `path` and returns the problems of its lines, without logging them
/// or keeping the users (for `config check`).
///
/// # Errors
/// The file is missing or unreadable.
pub fn check_file(path: &Path) -> Result<Vec<HtpasswdWarning>, HtpasswdError> {
    parse::read(path).map(|(entries, _)| entries.warnings)
}

fn log_warnings(entries: &Entries) {
    for warning in &entries.warnings {
        tracing::warn!("{warning}");
    }
}

/// `error` and its sources, joined with ": ".
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        out.push_str(": ");
        out.push_str(&e.to_string());
        source = e.source();
    }
    out
}
