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
//! Like [`crate::refresh`], the store is one JSON file (mode 0600, written
//! atomically) shared by the server and the CLI: every operation re-reads it
//! when it changed on disk, and last-use times are written at most once a
//! minute.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use base64::Engine;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use tracing::instrument;

use crate::filestore::{Entry, FileError, JsonStore, Records, hash_hex, same, secs};
use crate::identity::UserName;

/// Every robot secret starts with this.
pub const SECRET_PREFIX: &str = "pcrt_";
/// Separates owner and name in a robot's login name.
pub const LOGIN_SEPARATOR: char = '+';
/// Actions a robot can be given (`*` means all of them).
pub const ACTIONS: [&str; 4] = ["pull", "push", "delete", "*"];

const ID_LEN: usize = 16;
const SECRET_LEN: usize = 43;
const SECRET_TOTAL_LEN: usize = SECRET_PREFIX.len() + ID_LEN + 1 + SECRET_LEN;
const MAX_NAME_LEN: usize = 64;
const MAX_PATTERNS: usize = 64;
const MAX_PATTERN_LEN: usize = 255;

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
    #[error("invalid repository pattern `{pattern}`: {reason}")]
    InvalidPattern { pattern: String, reason: String },
    #[error("invalid action `{0}`: use pull, push, delete or *")]
    InvalidAction(String),
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

/// One robot account (never its secret).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Robot {
    pub id: String,
    /// Unique per owner, `[a-z0-9_-]{1,64}`.
    pub name: String,
    /// The htpasswd user who created it.
    pub owner: String,
    /// Patterns: `*` is one path segment, `**` one or more, else literal.
    pub repositories: Vec<String>,
    /// `pull`, `push`, `delete`, or `*` for all.
    pub actions: Vec<String>,
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

    /// Whether `action` on `repo` lies inside what the robot was given. The
    /// caller must also check that the owner may do it now.
    #[must_use]
    pub fn permits(&self, repo: &str, action: &str) -> bool {
        self.actions.iter().any(|a| a == "*" || a == action)
            && self.repositories.iter().any(|p| pattern_matches(p, repo))
    }

    /// Whether the robot has expired at `now`.
    #[must_use]
    pub fn is_expired(&self, now: SystemTime) -> bool {
        self.expires.is_some_and(|e| secs(now) >= e)
    }
}

/// Whether `repo` matches `pattern`: `*` matches exactly one `/`-separated
/// segment, `**` one or more, anything else itself. Linear in
/// segments(pattern) × segments(repo), whatever the number of `**`.
#[must_use]
pub fn pattern_matches(pattern: &str, repo: &str) -> bool {
    let name: Vec<&str> = repo.split('/').collect();
    // reach[j]: the pattern so far matches the first j segments of `name`.
    let mut reach = vec![false; name.len() + 1];
    reach[0] = true;
    for seg in pattern.split('/') {
        let mut next = vec![false; name.len() + 1];
        let mut seen = false;
        for j in 0..=name.len() {
            next[j] = match seg {
                "**" => seen,
                "*" => j > 0 && reach[j - 1],
                lit => j > 0 && reach[j - 1] && name[j - 1] == lit,
            };
            seen |= reach[j];
        }
        reach = next;
    }
    reach[name.len()]
}

fn check_pattern(pattern: &str) -> Result<(), RobotError> {
    let bad = |reason: &str| RobotError::InvalidPattern {
        pattern: pattern.to_owned(),
        reason: reason.to_owned(),
    };
    if pattern.is_empty() || pattern.len() > MAX_PATTERN_LEN {
        return Err(bad("use 1 to 255 characters"));
    }
    for seg in pattern.split('/') {
        if seg.is_empty() {
            return Err(bad("empty path segment"));
        }
        if seg != "*"
            && seg != "**"
            && !seg
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        {
            return Err(bad(
                "a segment is `*`, `**`, or lower-case letters, digits, `.`, `_` and `-`",
            ));
        }
    }
    Ok(())
}

/// Whether `name` is a valid robot name: 1 to 64 of `[a-z0-9_-]`.
#[must_use]
pub fn valid_name(name: &str) -> bool {
    (1..=MAX_NAME_LEN).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// The key of the store file's record list.
const FILE_KEY: &str = "robots";

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

/// The store; share it in an `Arc`. Blocking file I/O, small and rare.
pub struct RobotStore {
    store: JsonStore<Robot>,
}

impl std::fmt::Debug for RobotStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RobotStore")
            .field("path", &self.store.path())
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
    /// Opens (or prepares to create) the store at `path`.
    ///
    /// # Errors
    /// When the file exists but cannot be read or parsed.
    pub fn open(path: &Path) -> Result<Self, RobotError> {
        let store = JsonStore::open(path, FILE_KEY).map_err(|e| file_error(path, e))?;
        Ok(Self { store })
    }

    #[must_use]
    pub fn path(&self) -> &Path {
        self.store.path()
    }

    fn err(&self, e: FileError) -> RobotError {
        file_error(self.store.path(), e)
    }

    /// Creates a robot and returns it with its secret, which exists nowhere
    /// else: show it once. Whether `owner` exists is the caller's check.
    ///
    /// # Errors
    /// Invalid owner, name, pattern or action, an empty scope, a name the
    /// owner already uses, a `ttl` that overflows, or an unwritable store.
    #[instrument(skip_all, fields(owner = owner, name = name))]
    pub fn create(
        &self,
        owner: &str,
        name: &str,
        repositories: Vec<String>,
        actions: Vec<String>,
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
        let mut repos: Vec<String> = Vec::new();
        for p in repositories {
            check_pattern(&p)?;
            if !repos.contains(&p) {
                repos.push(p);
            }
        }
        let mut acts: Vec<String> = Vec::new();
        for a in actions {
            if !ACTIONS.contains(&a.as_str()) {
                return Err(RobotError::InvalidAction(a));
            }
            if !acts.contains(&a) {
                acts.push(a);
            }
        }
        if repos.is_empty() || acts.is_empty() {
            return Err(RobotError::EmptyScope);
        }
        if repos.len() > MAX_PATTERNS {
            return Err(RobotError::InvalidPattern {
                pattern: repos[MAX_PATTERNS].clone(),
                reason: format!("at most {MAX_PATTERNS} patterns per robot"),
            });
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
        if st
            .entries
            .values()
            .any(|r| r.owner == owner && r.name == name)
        {
            return Err(RobotError::Exists(robot.login()));
        }
        st.entries.insert(id.clone(), robot.clone());
        self.store.write(&mut st, now).map_err(|e| self.err(e))?;
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
    /// When the file cannot be read.
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
mod tests {
    use std::fs;

    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| (*x).to_owned()).collect()
    }

    fn store() -> (tempfile::TempDir, RobotStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = RobotStore::open(&dir.path().join("portcullis/robots.json")).unwrap();
        (dir, store)
    }

    fn ci(store: &RobotStore, now: SystemTime, ttl: Option<Duration>) -> (Robot, SecretString) {
        store
            .create(
                "alice",
                "ci",
                s(&["team/**"]),
                s(&["pull", "push"]),
                ttl,
                now,
            )
            .unwrap()
    }

    #[test]
    fn create_authenticate_and_file() {
        let (_dir, store) = store();
        let now = SystemTime::now();
        let (robot, secret) = ci(&store, now, Some(Duration::from_secs(60)));
        assert_eq!(robot.login(), "alice+ci");
        let text = secret.expose_secret();
        assert!(RobotStore::looks_like_secret(text), "{text}");
        assert_eq!(text.len(), SECRET_TOTAL_LEN);
        assert!(text.starts_with(&format!("pcrt_{}_", robot.id)));
        let got = store.authenticate("alice+ci", &secret, now).unwrap();
        assert_eq!(got.id, robot.id);
        assert_eq!(got.last_used, secs(now));
        // only a hash is stored, with mode 0600
        let file = fs::read_to_string(store.path()).unwrap();
        // the secret part may itself contain `_`: cut at the fixed offset
        let part = &text[SECRET_PREFIX.len() + ID_LEN + 1..];
        assert!(part.len() == SECRET_LEN && !file.contains(part));
        assert!(file.contains(&robot.hash));
        assert_eq!(
            std::os::unix::fs::MetadataExt::mode(&fs::metadata(store.path()).unwrap()) & 0o777,
            0o600
        );
    }

    #[test]
    fn wrong_login_and_tampered_secret_are_refused() {
        let (_dir, store) = store();
        let now = SystemTime::now();
        let (_, secret) = ci(&store, now, None);
        for login in [
            "alice",
            "bob+ci",
            "alice+cd",
            "ALICE+ci",
            "",
            "robot$alice+ci",
        ] {
            assert!(
                matches!(
                    store.authenticate(login, &secret, now),
                    Err(RobotError::Unknown)
                ),
                "{login}"
            );
        }
        let text = secret.expose_secret();
        let last = if text.ends_with('A') { 'B' } else { 'A' };
        let tampered = format!("{}{last}", &text[..text.len() - 1]);
        assert!(matches!(
            store.authenticate("alice+ci", &SecretString::from(tampered), now),
            Err(RobotError::Unknown)
        ));
        let other_id = format!(
            "pcrt_{}{}",
            "0".repeat(ID_LEN),
            &text[SECRET_PREFIX.len() + ID_LEN..]
        );
        assert!(matches!(
            store.authenticate("alice+ci", &SecretString::from(other_id), now),
            Err(RobotError::Unknown)
        ));
        for bad in [
            "".to_owned(),
            "hunter2".to_owned(),
            format!("{text}x"),
            text.replacen("pcrt_", "pcrx_", 1),
            text[..text.len() - 1].to_owned() + "é",
        ] {
            assert!(!RobotStore::looks_like_secret(&bad), "{bad}");
            assert!(matches!(
                store.authenticate("alice+ci", &SecretString::from(bad), now),
                Err(RobotError::Malformed)
            ));
        }
    }

    #[test]
    fn expiry_is_enforced() {
        let (_dir, store) = store();
        let now = SystemTime::now();
        let (_, secret) = ci(&store, now, Some(Duration::from_secs(60)));
        let almost = now + Duration::from_secs(59);
        store.authenticate("alice+ci", &secret, almost).unwrap();
        assert!(matches!(
            store.authenticate("alice+ci", &secret, now + Duration::from_secs(61)),
            Err(RobotError::Expired)
        ));
        // never expires
        let (_, forever) = store
            .create("bob", "ci", s(&["**"]), s(&["*"]), None, now)
            .unwrap();
        store
            .authenticate(
                "bob+ci",
                &forever,
                now + Duration::from_secs(10 * 365 * 86_400),
            )
            .unwrap();
    }

    #[test]
    fn create_validates_its_input() {
        let (_dir, store) = store();
        let now = SystemTime::now();
        let mk = |owner: &str, name: &str, repos: &[&str], acts: &[&str]| {
            store.create(owner, name, s(repos), s(acts), None, now)
        };
        assert!(matches!(
            mk("alice", "CI", &["a/**"], &["pull"]),
            Err(RobotError::InvalidName(_))
        ));
        assert!(matches!(
            mk("alice", "c+i", &["a/**"], &["pull"]),
            Err(RobotError::InvalidName(_))
        ));
        assert!(matches!(
            mk("alice", &"x".repeat(65), &["a"], &["pull"]),
            Err(RobotError::InvalidName(_))
        ));
        assert!(matches!(
            mk("", "ci", &["a"], &["pull"]),
            Err(RobotError::InvalidOwner { .. })
        ));
        assert!(matches!(
            mk("a:b", "ci", &["a"], &["pull"]),
            Err(RobotError::InvalidOwner { .. })
        ));
        for bad in [
            "",
            "a//b",
            "/a",
            "a/",
            "Team/**",
            "a/b*",
            "${user}/**",
            "a b",
        ] {
            assert!(
                matches!(
                    mk("alice", "ci", &[bad], &["pull"]),
                    Err(RobotError::InvalidPattern { .. })
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            mk("alice", "ci", &["a"], &["catalog"]),
            Err(RobotError::InvalidAction(_))
        ));
        assert!(matches!(
            mk("alice", "ci", &[], &["pull"]),
            Err(RobotError::EmptyScope)
        ));
        assert!(matches!(
            mk("alice", "ci", &["a"], &[]),
            Err(RobotError::EmptyScope)
        ));
        assert!(matches!(
            store.create(
                "alice",
                "ci",
                s(&["a"]),
                s(&["pull"]),
                Some(Duration::MAX),
                now
            ),
            Err(RobotError::TtlTooLong)
        ));
        assert!(store.list().unwrap().is_empty(), "nothing was stored");
        // names are unique per owner, not globally
        let (r, _) = mk("alice", "ci", &["a", "a"], &["pull", "pull"]).unwrap();
        assert_eq!((r.repositories.len(), r.actions.len()), (1, 1));
        assert!(
            matches!(mk("alice", "ci", &["b"], &["push"]), Err(RobotError::Exists(l)) if l == "alice+ci")
        );
        mk("bob", "ci", &["b"], &["push"]).unwrap();
        assert_eq!(store.list().unwrap().len(), 2);
    }

    #[test]
    fn revoke_by_id_login_and_owner() {
        let (_dir, store) = store();
        let now = SystemTime::now();
        let (a, sa) = ci(&store, now, None);
        let (_, sb) = store
            .create("alice", "deploy", s(&["x/*"]), s(&["pull"]), None, now)
            .unwrap();
        let (_, sc) = store
            .create("bob", "ci", s(&["x/*"]), s(&["pull"]), None, now)
            .unwrap();
        assert_eq!(store.revoke("nope", now).unwrap(), 0);
        assert_eq!(store.revoke(&a.id, now).unwrap(), 1);
        assert!(matches!(
            store.authenticate("alice+ci", &sa, now),
            Err(RobotError::Unknown)
        ));
        assert_eq!(store.revoke("alice+deploy", now).unwrap(), 1);
        assert!(store.authenticate("alice+deploy", &sb, now).is_err());
        store.authenticate("bob+ci", &sc, now).unwrap();
        assert_eq!(store.revoke_owner("bob", now).unwrap(), 1);
        assert!(store.authenticate("bob+ci", &sc, now).is_err());
        assert!(store.list().unwrap().is_empty());
        // the name can be reused once revoked, with a new secret
        let (_, again) = ci(&store, now, None);
        assert!(store.authenticate("alice+ci", &sa, now).is_err());
        store.authenticate("alice+ci", &again, now).unwrap();
    }

    #[test]
    fn another_process_revokes_and_sees_creations() {
        let (dir, server) = store();
        let now = SystemTime::now();
        let (_, secret) = ci(&server, now, None);
        server.authenticate("alice+ci", &secret, now).unwrap();
        let cli = RobotStore::open(&dir.path().join("portcullis/robots.json")).unwrap();
        assert_eq!(cli.list().unwrap().len(), 1);
        assert_eq!(cli.list().unwrap()[0].last_used, secs(now));
        let (_, other) = cli
            .create("bob", "ci", s(&["b/**"]), s(&["pull"]), None, now)
            .unwrap();
        server.authenticate("bob+ci", &other, now).unwrap();
        assert_eq!(cli.revoke("alice+ci", now).unwrap(), 1);
        assert!(matches!(
            server.authenticate("alice+ci", &secret, now),
            Err(RobotError::Unknown)
        ));
    }

    #[test]
    fn last_use_is_written_at_most_once_a_minute() {
        let (dir, store) = store();
        let now = SystemTime::now();
        let (_, secret) = ci(&store, now, None);
        let path = dir.path().join("portcullis/robots.json");
        let on_disk = || RobotStore::open(&path).unwrap().list().unwrap()[0].last_used;
        assert_eq!(on_disk(), 0, "never used");
        // the first use is written at once, the next one not within a minute
        store.authenticate("alice+ci", &secret, now).unwrap();
        assert_eq!(on_disk(), secs(now));
        let soonish = now + Duration::from_secs(30);
        store.authenticate("alice+ci", &secret, soonish).unwrap();
        assert_eq!(on_disk(), secs(now));
        let later = now + crate::filestore::LAST_USE_FLUSH;
        store.authenticate("alice+ci", &secret, later).unwrap();
        assert_eq!(on_disk(), secs(later));
        let soon = later + Duration::from_secs(1);
        store.authenticate("alice+ci", &secret, soon).unwrap();
        assert_eq!(on_disk(), secs(later));
        store.flush(soon).unwrap();
        assert_eq!(on_disk(), secs(soon));
    }

    #[test]
    fn corrupt_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("robots.json");
        fs::write(&path, "{not json").unwrap();
        assert!(matches!(
            RobotStore::open(&path),
            Err(RobotError::Corrupt { .. })
        ));
    }

    #[test]
    fn patterns() {
        let yes = [
            ("**", "a"),
            ("**", "a/b/c"),
            ("team/**", "team/app"),
            ("team/**", "team/a/b"),
            ("*", "app"),
            ("team/*", "team/app"),
            ("*/app", "team/app"),
            ("team/**/cache", "team/a/b/cache"),
            ("**/cache", "x/cache"),
            ("a/**/**", "a/b/c"),
            ("team/app", "team/app"),
        ];
        let no = [
            ("team/**", "team"),
            ("team/**", "teams/app"),
            ("team/*", "team/a/b"),
            ("team/*", "team"),
            ("*", "a/b"),
            ("team/**/cache", "team/cache"),
            ("a/**/**", "a/b"),
            ("team/app", "team/app2"),
            ("team/app", "team"),
            ("team", "team/app"),
        ];
        for (p, r) in yes {
            assert!(pattern_matches(p, r), "{p} should match {r}");
        }
        for (p, r) in no {
            assert!(!pattern_matches(p, r), "{p} should not match {r}");
        }
        // many `**` stay cheap
        let long = vec!["x"; 100].join("/");
        assert!(!pattern_matches(&vec!["**"; 50].join("/"), "x/y"));
        assert!(pattern_matches(&vec!["**"; 50].join("/"), &long));
        assert!(!pattern_matches(&(vec!["**"; 50].join("/") + "/y"), &long));
    }

    #[test]
    fn permits_is_scope_and_action() {
        let robot = Robot {
            id: "0".repeat(16),
            name: "ci".into(),
            owner: "alice".into(),
            repositories: s(&["team/**", "tools/*"]),
            actions: s(&["pull", "push"]),
            created: 0,
            last_used: 0,
            expires: None,
            hash: String::new(),
        };
        assert!(robot.permits("team/app", "push"));
        assert!(robot.permits("tools/lint", "pull"));
        assert!(!robot.permits("tools/a/b", "pull"));
        assert!(!robot.permits("team/app", "delete"));
        assert!(!robot.permits("other/app", "pull"));
        let all = Robot {
            actions: s(&["*"]),
            ..robot
        };
        assert!(all.permits("team/app", "delete"));
        assert!(!all.permits("other/app", "delete"));
    }
}
