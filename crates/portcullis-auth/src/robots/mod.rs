//! Robot accounts (personal access tokens): credentials for CI jobs that
//! carry less power than the user who made them.
//!
//! A robot belongs to an owner (an htpasswd user), has a name unique for that
//! owner, a list of repository patterns and a list of actions. It logs in
//! with `docker login -u <owner>+<name> -p <secret>`: the `+` convention is
//! Quay's (Harbor's `robot$name` needs quoting in every shell). The login
//! name must match the robot the secret belongs to exactly; a secret
//! presented under any other name is refused, so a leaked secret cannot be
//! used to pose as someone else.
//!
//! A secret is `pcrt_<id>_<secret>`: `id` (16 hex digits) is public and
//! names the robot in `portcullis token list`; `secret` is 256 random bits
//! in unpadded base64url (43 characters). Only SHA-256 of `secret` is stored.
//! [`RobotStore::looks_like_secret`] recognises the shape cheaply, so the
//! caller can send such passwords here instead of to bcrypt.
//!
//! What a robot may do is [`Robot::permits`] intersected with what its owner
//! may do *now*; the second half is the policy's job, not this module's.
//!
//! A robot's repository patterns are written in the access policy's dialect
//! ([`portcullis_types::pattern`]), checked by the same compiler when the
//! robot is created and compiled when the store is read (`scope.rs`), so one
//! pattern text means the same in a rule and in a robot scope: `**` at the
//! end is one or more segments and elsewhere zero or more (`a/**/b` matches
//! `a/b`), `*` inside a segment is a glob (`app-*`), and `${user}` is the
//! robot's owner. (Before, robots had a dialect of their own, in which `**`
//! was always one or more segments and globs and `${user}` were refused.)
//! Actions are [`ScopeAction`]s: `pull`, `push`, `delete` or `*`.
//!
//! Like [`crate::refresh`], the store is one JSON document under
//! [`STATE_KEY`] of a [`StateStore`] (in the state directory, the file
//! `robots.json`, mode 0600), written by compare-and-set and shared by the
//! server and the CLI: every operation re-reads it when it changed, and
//! last-use times are written at most once a minute.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine;
use portcullis_state::StateStore;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use tracing::instrument;

use crate::identity::UserName;
use crate::records::{Entry, FileError, RecordStore, Records, hash_hex, same, secs};
use portcullis_types::pattern::PatternError;
use portcullis_types::{Action, ScopeAction};

mod scope;

pub use scope::RobotRepos;
pub(crate) use scope::permits;

/// Every robot secret starts with this.
pub const SECRET_PREFIX: &str = "pcrt_";
/// Separates owner and name in a robot's login name.
pub const LOGIN_SEPARATOR: char = '+';
/// Actions a robot can be given (`*` means all of them).
pub const ACTIONS: [ScopeAction; 4] = ScopeAction::ALL;

const ID_LEN: usize = 16;
const SECRET_LEN: usize = 43;
const SECRET_TOTAL_LEN: usize = SECRET_PREFIX.len() + ID_LEN + 1 + SECRET_LEN;
const MAX_NAME_LEN: usize = 64;
const MAX_PATTERNS: usize = 64;

/// Errors of the robot store. Wrong secret, wrong login name and revoked
/// robot are one error ([`RobotError::Unknown`]) on purpose.
#[derive(Debug, thiserror::Error)]
pub enum RobotError {
    #[error("robot token is malformed")]
    Malformed,
    #[error("robot token is unknown or revoked, or does not belong to this login name")]
    Unknown,
    #[error("robot token has expired")]
    Expired,
    #[error("invalid robot name `{0}`: use 1 to 64 lower-case letters, digits, `-` and `_`")]
    InvalidName(String),
    #[error("invalid owner `{owner}`: {reason}")]
    InvalidOwner { owner: String, reason: String },
    /// The message names the pattern, what is wrong and the fix.
    #[error("invalid robot scope: {0}")]
    InvalidPattern(#[from] PatternError),
    #[error("a robot needs at least one repository pattern and one action")]
    EmptyScope,
    #[error("the expiry time is too far in the future")]
    TtlTooLong,
    #[error(
        "robot `{0}` already exists; revoke it first with `portcullis token revoke --robot {0}`"
    )]
    Exists(String),
    #[error("cannot read or write the robot store {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("robot store {path} is corrupt: {message}")]
    Corrupt { path: PathBuf, message: String },
}

/// A stored action list, without the words that name no action.
fn known_actions<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<ScopeAction>, D::Error> {
    let words = Vec::<String>::deserialize(d)?;
    Ok(words
        .iter()
        .filter_map(|w| {
            let a = ScopeAction::parse(w);
            if a.is_none() {
                tracing::warn!(action = %w.chars().take(40).collect::<String>(),
                    "robots.json: a robot's action is not pull, push, delete or *; ignored (the robot cannot do it)");
            }
            a
        })
        .collect())
}

/// One robot account (never its secret).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Robot {
    pub id: String,
    /// Unique per owner, `[a-z0-9_-]{1,64}`.
    pub name: String,
    /// The htpasswd user who created it.
    pub owner: String,
    /// Patterns in the policy's dialect, stored as their texts.
    pub repositories: RobotRepos,
    /// `pull`, `push`, `delete`, or `*` for all. A stored word that is none
    /// of these (only a hand edit can make one) is dropped with a warning:
    /// the robot loses it, and every other robot keeps working.
    #[serde(deserialize_with = "known_actions")]
    pub actions: Vec<ScopeAction>,
    /// Unix seconds.
    pub created: u64,
    /// Unix seconds; 0 when never used.
    pub last_used: u64,
    /// Unix seconds; `None` never expires.
    pub expires: Option<u64>,
    /// Hex SHA-256 of the secret part.
    pub hash: String,
}

impl Robot {
    /// The login name: `<owner>+<name>`.
    #[must_use]
    pub fn login(&self) -> String {
        format!("{}{LOGIN_SEPARATOR}{}", self.owner, self.name)
    }

    /// Whether `action` on `repo` lies inside what the robot was given
    /// (`${user}` in a pattern is the owner). The caller must also check
    /// that the owner may do it now.
    #[must_use]
    pub fn permits(&self, repo: &str, action: Action) -> bool {
        permits(&self.repositories, &self.actions, &self.owner, repo, action)
    }

    /// Whether the robot has expired at `now`.
    #[must_use]
    pub fn is_expired(&self, now: SystemTime) -> bool {
        self.expires.is_some_and(|e| secs(now) >= e)
    }
}

/// Whether `name` is a valid robot name: 1 to 64 of `[a-z0-9_-]`.
#[must_use]
pub fn valid_name(name: &str) -> bool {
    (1..=MAX_NAME_LEN).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// The name of the document's record list.
const LIST: &str = "robots";

/// The store's key in a [`StateStore`]; in the state directory, the file
/// that was the store before there was a state store.
pub const STATE_KEY: &str = "robots.json";

impl Entry for Robot {
    fn id(&self) -> &str {
        &self.id
    }
    fn last_used(&self) -> u64 {
        self.last_used
    }
    fn set_last_used(&mut self, secs: u64) {
        self.last_used = secs;
    }
}

/// The store; share it in an `Arc`. Blocking I/O, small and rare.
pub struct RobotStore {
    store: RecordStore<Robot>,
}

impl std::fmt::Debug for RobotStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RobotStore")
            .field("path", &self.store.location())
            .finish_non_exhaustive()
    }
}

/// Splits `pcrt_<id>_<secret>` into id and secret; `None` if it is not one.
fn split_secret(s: &str) -> Option<(&str, &str)> {
    let rest = s.strip_prefix(SECRET_PREFIX)?;
    if s.len() != SECRET_TOTAL_LEN || !rest.is_char_boundary(ID_LEN) {
        return None;
    }
    let (id, tail) = rest.split_at(ID_LEN);
    let secret = tail.strip_prefix('_')?;
    let id_ok = id
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let secret_ok = secret
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    (id_ok && secret_ok).then_some((id, secret))
}

fn file_error(path: &Path, e: FileError) -> RobotError {
    match e {
        FileError::Io(source) => RobotError::Io {
            path: path.to_owned(),
            source,
        },
        FileError::Corrupt(message) => RobotError::Corrupt {
            path: path.to_owned(),
            message,
        },
    }
}

impl RobotStore {
    /// Opens (or prepares to create) the store that is the file `path`
    /// (a directory state store over its directory).
    ///
    /// # Errors
    /// When the file exists but cannot be read or parsed.
    pub fn open(path: &Path) -> Result<Self, RobotError> {
        let store = RecordStore::open_file(path, LIST).map_err(|e| file_error(path, e))?;
        Ok(Self { store })
    }

    /// Opens the store in `state`, first importing the store file `legacy`
    /// (renamed `<file>.migrated` afterwards) if `state` has no store yet.
    ///
    /// # Errors
    /// When the state store or the old file cannot be read, or either does
    /// not parse.
    pub fn open_in(state: Arc<dyn StateStore>, legacy: Option<&Path>) -> Result<Self, RobotError> {
        let location = PathBuf::from(state.location(STATE_KEY));
        let store = RecordStore::open(state, STATE_KEY, LIST, legacy)
            .map_err(|e| file_error(&location, e))?;
        Ok(Self { store })
    }

    /// Where the store is (a file's path in a directory state store).
    #[must_use]
    pub fn path(&self) -> &Path {
        self.store.location()
    }

    fn err(&self, e: FileError) -> RobotError {
        file_error(self.store.location(), e)
    }

    /// Creates a robot and returns it with its secret, which exists nowhere
    /// else: show it once. Whether `owner` exists is the caller's check.
    ///
    /// # Errors
    /// Invalid owner, name or pattern, an empty scope, a name the owner
    /// already uses, a `ttl` that overflows, or an unwritable store.
    #[instrument(skip_all, fields(owner = owner, name = name))]
    pub fn create(
        &self,
        owner: &str,
        name: &str,
        repositories: Vec<String>,
        actions: Vec<ScopeAction>,
        ttl: Option<Duration>,
        now: SystemTime,
    ) -> Result<(Robot, SecretString), RobotError> {
        UserName::new(owner).map_err(|e| RobotError::InvalidOwner {
            owner: owner.to_owned(),
            reason: e.to_string(),
        })?;
        if !valid_name(name) {
            return Err(RobotError::InvalidName(name.to_owned()));
        }
        let repos = RobotRepos::compile(&repositories)?;
        let mut acts: Vec<ScopeAction> = Vec::new();
        for a in actions {
            if !acts.contains(&a) {
                acts.push(a);
            }
        }
        if repos.is_empty() || acts.is_empty() {
            return Err(RobotError::EmptyScope);
        }
        if repos.len() > MAX_PATTERNS {
            let extra = repos.texts().nth(MAX_PATTERNS).unwrap_or_default();
            return Err(RobotError::InvalidPattern(PatternError {
                message: format!(
                    "repository pattern `{extra}` is one too many: a robot has at most {MAX_PATTERNS}"
                ),
                fix: "cover the repositories with fewer patterns, such as `team/**`".to_owned(),
            }));
        }
        let expires = match ttl {
            None => None,
            Some(ttl) => Some(secs(now.checked_add(ttl).ok_or(RobotError::TtlTooLong)?)),
        };
        let mut id_bytes = [0u8; 8];
        let mut secret_bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut id_bytes);
        rand::rng().fill_bytes(&mut secret_bytes);
        let id: String = id_bytes.iter().map(|b| format!("{b:02x}")).collect();
        let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret_bytes);
        let robot = Robot {
            id: id.clone(),
            name: name.to_owned(),
            owner: owner.to_owned(),
            repositories: repos,
            actions: acts,
            created: secs(now),
            last_used: 0,
            expires,
            hash: hash_hex(&secret),
        };
        let mut st = self.store.lock().map_err(|e| self.err(e))?;
        self.store
            .update(&mut st, now, |entries| {
                if entries.values().any(|r| r.owner == owner && r.name == name) {
                    return Err(RobotError::Exists(robot.login()));
                }
                entries.insert(id.clone(), robot.clone());
                Ok(())
            })
            .map_err(|e| self.err(e))??;
        Ok((
            robot,
            SecretString::from(format!("{SECRET_PREFIX}{id}_{secret}")),
        ))
    }

    /// Whether `password` has the shape of a robot secret. Cheap: no I/O and
    /// no hashing, so every Basic password can be routed with it.
    #[must_use]
    pub fn looks_like_secret(password: &str) -> bool {
        split_secret(password).is_some()
    }

    /// Checks a secret presented with the login name `login` (which must be
    /// the robot's `<owner>+<name>`), checks expiry, and records the use.
    ///
    /// # Errors
    /// `Malformed`, `Unknown` (revoked, wrong secret or wrong login name),
    /// `Expired`, or a store that cannot be read.
    #[instrument(skip_all)]
    pub fn authenticate(
        &self,
        login: &str,
        secret: &SecretString,
        now: SystemTime,
    ) -> Result<Robot, RobotError> {
        let (id, secret) = split_secret(secret.expose_secret()).ok_or(RobotError::Malformed)?;
        let presented = hash_hex(secret);
        let mut st = self.store.lock().map_err(|e| self.err(e))?;
        let robot = st.entries.get_mut(id).ok_or(RobotError::Unknown)?;
        if !same(&robot.hash, &presented) || robot.login() != login {
            return Err(RobotError::Unknown);
        }
        self.record_use(&mut st, id, now)
    }

    /// The live robot whose login is `login`, for a caller whose identity
    /// was established another way (a verified client certificate naming
    /// `<owner>+<name>`). Records the use like a login.
    ///
    /// # Errors
    /// `Unknown` (no such robot, or revoked), `Expired`, or a store that
    /// cannot be read.
    #[instrument(skip_all)]
    pub fn find_login(&self, login: &str, now: SystemTime) -> Result<Robot, RobotError> {
        let mut st = self.store.lock().map_err(|e| self.err(e))?;
        let id = st
            .entries
            .values()
            .find(|r| r.login() == login)
            .map(|r| r.id.clone())
            .ok_or(RobotError::Unknown)?;
        self.record_use(&mut st, &id, now)
    }

    /// Checks expiry and records a use of robot `id` (present in `st`).
    fn record_use(
        &self,
        st: &mut Records<Robot>,
        id: &str,
        now: SystemTime,
    ) -> Result<Robot, RobotError> {
        let robot = st.entries.get_mut(id).ok_or(RobotError::Unknown)?;
        if robot.is_expired(now) {
            return Err(RobotError::Expired);
        }
        // The first use is written at once, so `token list` never says
        // "never used" about a robot in use; later ones once a minute.
        let first_use = robot.last_used == 0;
        robot.last_used = secs(now);
        let out = robot.clone();
        self.store.note_use(st, now, first_use);
        Ok(out)
    }

    /// Every robot, oldest first.
    ///
    /// # Errors
    /// When the store cannot be read.
    pub fn list(&self) -> Result<Vec<Robot>, RobotError> {
        self.store
            .list_by(|r| (r.created, r.id.clone()))
            .map_err(|e| self.err(e))
    }

    fn revoke_where(
        &self,
        pred: impl Fn(&Robot) -> bool,
        now: SystemTime,
    ) -> Result<usize, RobotError> {
        self.store.revoke_where(pred, now).map_err(|e| self.err(e))
    }

    /// Revokes the robot with this id or login name; returns how many (0 or 1).
    ///
    /// # Errors
    /// When the store cannot be written.
    pub fn revoke(&self, id_or_login: &str, now: SystemTime) -> Result<usize, RobotError> {
        self.revoke_where(|r| r.id == id_or_login || r.login() == id_or_login, now)
    }

    /// Revokes every robot of `owner`.
    ///
    /// # Errors
    /// When the store cannot be written.
    pub fn revoke_owner(&self, owner: &str, now: SystemTime) -> Result<usize, RobotError> {
        self.revoke_where(|r| r.owner == owner, now)
    }

    /// Writes pending last-use times (e.g. at shutdown).
    ///
    /// # Errors
    /// When the store cannot be written.
    pub fn flush(&self, now: SystemTime) -> Result<(), RobotError> {
        self.store.flush(now).map_err(|e| self.err(e))
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_scope;
