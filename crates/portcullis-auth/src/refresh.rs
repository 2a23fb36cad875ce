//! Refresh (identity) tokens: what `docker login` stores as `identitytoken`.
//!
//! A token is `pcr1.<id>.<secret>`: `id` is public (it names the token in
//! `portcullis token list`), `secret` is 256 random bits. Only SHA-256 of the
//! secret is stored, with the user, the OAuth `client_id`, creation time,
//! last use, expiry, and a fingerprint of the user's password hash, so a
//! password change or removal invalidates every token of that user.
//!
//! Tokens are **not rotated on use**: the Docker client keeps the first one
//! it got (moby/moby#39718).
//!
//! The store is one JSON document under [`STATE_KEY`] of a [`StateStore`]
//! (in the state directory, the file `refresh-tokens.json`), written by
//! compare-and-set. The server and the CLI (`token revoke`) share it: every
//! operation re-reads it when it changed, and last-use times are written at
//! most once a minute.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine;
use portcullis_state::StateStore;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::identity::UserName;
use crate::records::{Entry, FileError, RecordStore, hash_hex, same, secs};

const PREFIX: &str = "pcr1";

/// Errors of the refresh-token store.
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    #[error("refresh token is malformed")]
    Malformed,
    #[error("refresh token is unknown or revoked; run `docker login` again")]
    Unknown,
    #[error("refresh token has expired; run `docker login` again")]
    Expired,
    #[error("refresh token was issued to another client; run `docker login` again")]
    WrongClient,
    #[error("cannot read or write the refresh token store {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("refresh token store {path} is corrupt: {message}")]
    Corrupt { path: PathBuf, message: String },
}

/// One stored token (never the secret itself).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Record {
    pub id: String,
    /// Hex SHA-256 of the secret part.
    pub hash: String,
    pub user: String,
    pub client_id: String,
    /// Unix seconds.
    pub created: u64,
    pub last_used: u64,
    pub expires: u64,
    /// [`crate::htpasswd::Htpasswd::password_fingerprint`] at issue time.
    pub password_fingerprint: String,
}

/// The name of the document's record list.
const LIST: &str = "tokens";

/// The store's key in a [`StateStore`]; in the state directory, the file
/// that was the store before there was a state store.
pub const STATE_KEY: &str = "refresh-tokens.json";

impl Entry for Record {
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
pub struct RefreshStore {
    store: RecordStore<Record>,
}

impl std::fmt::Debug for RefreshStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefreshStore")
            .field("path", &self.store.location())
            .finish_non_exhaustive()
    }
}

fn file_error(path: &Path, e: FileError) -> RefreshError {
    match e {
        FileError::Io(source) => RefreshError::Io {
            path: path.to_owned(),
            source,
        },
        FileError::Corrupt(message) => RefreshError::Corrupt {
            path: path.to_owned(),
            message,
        },
    }
}

impl RefreshStore {
    /// Opens (or prepares to create) the store that is the file `path`
    /// (a directory state store over its directory).
    ///
    /// # Errors
    /// When the file exists but cannot be read or parsed.
    pub fn open(path: &Path) -> Result<Self, RefreshError> {
        let store = RecordStore::open_file(path, LIST).map_err(|e| file_error(path, e))?;
        Ok(Self { store })
    }

    /// Opens the store in `state`, first importing the store file `legacy`
    /// (renamed `<file>.migrated` afterwards) if `state` has no store yet.
    ///
    /// # Errors
    /// When the state store or the old file cannot be read, or either does
    /// not parse.
    pub fn open_in(
        state: Arc<dyn StateStore>,
        legacy: Option<&Path>,
    ) -> Result<Self, RefreshError> {
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

    fn err(&self, e: FileError) -> RefreshError {
        file_error(self.store.location(), e)
    }

    /// Issues a new token for `user` and returns it (shown to the client once).
    ///
    /// # Errors
    /// When the store cannot be written.
    pub fn issue(
        &self,
        user: &UserName,
        client_id: &str,
        password_fingerprint: &str,
        ttl: Duration,
        now: SystemTime,
    ) -> Result<SecretString, RefreshError> {
        let mut id_bytes = [0u8; 8];
        let mut secret_bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut id_bytes);
        rand::rng().fill_bytes(&mut secret_bytes);
        let id: String = id_bytes.iter().map(|b| format!("{b:02x}")).collect();
        let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret_bytes);
        let record = Record {
            id: id.clone(),
            hash: hash_hex(&secret),
            user: user.as_str().to_owned(),
            client_id: client_id.chars().take(128).collect(),
            created: secs(now),
            last_used: secs(now),
            expires: secs(now + ttl),
            password_fingerprint: password_fingerprint.to_owned(),
        };
        let mut st = self.store.lock().map_err(|e| self.err(e))?;
        self.store
            .modify(&mut st, now, |entries| {
                entries.insert(id.clone(), record.clone());
            })
            .map_err(|e| self.err(e))?;
        Ok(SecretString::from(format!("{PREFIX}.{id}.{secret}")))
    }

    /// Checks a presented token and records its use. The caller must still
    /// check the password fingerprint against the user's current one.
    ///
    /// # Errors
    /// `Malformed`, `Unknown` (including revoked), `Expired`, `WrongClient`.
    pub fn redeem(
        &self,
        token: &SecretString,
        client_id: &str,
        now: SystemTime,
    ) -> Result<Record, RefreshError> {
        let mut parts = token.expose_secret().splitn(3, '.');
        let (Some(PREFIX), Some(id), Some(secret)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(RefreshError::Malformed);
        };
        if id.len() != 16 || secret.len() > 64 {
            return Err(RefreshError::Malformed);
        }
        let mut st = self.store.lock().map_err(|e| self.err(e))?;
        let record = st.entries.get_mut(id).ok_or(RefreshError::Unknown)?;
        if !same(&record.hash, &hash_hex(secret)) {
            return Err(RefreshError::Unknown);
        }
        if secs(now) >= record.expires {
            return Err(RefreshError::Expired);
        }
        if !record.client_id.is_empty() && !client_id.is_empty() && record.client_id != client_id {
            return Err(RefreshError::WrongClient);
        }
        record.last_used = secs(now);
        let out = record.clone();
        self.store.note_use(&mut st, now, false);
        Ok(out)
    }

    /// Every stored token, oldest first.
    ///
    /// # Errors
    /// When the store cannot be read.
    pub fn list(&self) -> Result<Vec<Record>, RefreshError> {
        self.store
            .list_by(|r| (r.created, r.id.clone()))
            .map_err(|e| self.err(e))
    }

    /// Revokes the tokens matching `pred`; returns how many.
    fn revoke_where(
        &self,
        pred: impl Fn(&Record) -> bool,
        now: SystemTime,
    ) -> Result<usize, RefreshError> {
        self.store.revoke_where(pred, now).map_err(|e| self.err(e))
    }

    /// Revokes every token of a user.
    ///
    /// # Errors
    /// When the store cannot be written.
    pub fn revoke_user(&self, user: &str, now: SystemTime) -> Result<usize, RefreshError> {
        self.revoke_where(|r| r.user == user, now)
    }

    /// Revokes one token by id.
    ///
    /// # Errors
    /// When the store cannot be written.
    pub fn revoke_id(&self, id: &str, now: SystemTime) -> Result<usize, RefreshError> {
        self.revoke_where(|r| r.id == id, now)
    }

    /// Writes pending last-use times (e.g. at shutdown).
    ///
    /// # Errors
    /// When the store cannot be written.
    pub fn flush(&self, now: SystemTime) -> Result<(), RefreshError> {
        self.store.flush(now).map_err(|e| self.err(e))
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use portcullis_state::{DirStore, MemoryStore, system_clock};

    use super::*;
    use crate::records::testing::{Backend, for_each_store};

    fn user(n: &str) -> UserName {
        UserName::new(n).unwrap()
    }

    fn issue_redeem_revoke_in(b: &Backend) {
        let store = RefreshStore::open_in(b.state(), None).unwrap();
        let now = SystemTime::now();
        let t = store
            .issue(
                &user("alice"),
                "docker",
                "fp1",
                Duration::from_secs(60),
                now,
            )
            .unwrap();
        let r = store.redeem(&t, "docker", now).unwrap();
        assert_eq!(
            (r.user.as_str(), r.password_fingerprint.as_str()),
            ("alice", "fp1")
        );
        // not rotated: the same token works again
        store.redeem(&t, "docker", now).unwrap();
        // only a hash is stored, in a file with mode 0600
        let stored = b.state().get(STATE_KEY).unwrap().unwrap().value;
        let text = String::from_utf8(stored).unwrap();
        let secret = t.expose_secret().rsplit('.').next().unwrap().to_owned();
        assert!(!text.contains(&secret), "{}", b.name);
        if let Some(path) = b.file(STATE_KEY) {
            assert_eq!(fs::read_to_string(&path).unwrap(), text);
            assert_eq!(
                std::os::unix::fs::MetadataExt::mode(&fs::metadata(&path).unwrap()) & 0o777,
                0o600
            );
        }
        // wrong client, tampered secret, malformed
        assert!(matches!(
            store.redeem(&t, "other", now),
            Err(RefreshError::WrongClient)
        ));
        let tampered = SecretString::from(format!("{}x", t.expose_secret()));
        assert!(matches!(
            store.redeem(&tampered, "docker", now),
            Err(RefreshError::Unknown)
        ));
        assert!(matches!(
            store.redeem(&SecretString::from("nope".to_owned()), "docker", now),
            Err(RefreshError::Malformed)
        ));
        // expiry
        let later = now + Duration::from_secs(61);
        assert!(matches!(
            store.redeem(&t, "docker", later),
            Err(RefreshError::Expired)
        ));
        // a second process (the CLI) revokes; the first sees it
        let cli = RefreshStore::open_in(b.state(), None).unwrap();
        assert_eq!(cli.list().unwrap().len(), 1);
        assert_eq!(cli.revoke_user("alice", now).unwrap(), 1);
        let revoked = store.redeem(&t, "docker", now);
        assert!(matches!(revoked, Err(RefreshError::Unknown)), "{}", b.name);
        // The user is told what to do about it.
        let message = revoked.unwrap_err().to_string();
        assert!(
            message.contains("revoked; run `docker login` again"),
            "{message}"
        );
    }

    #[test]
    fn issue_redeem_revoke() {
        for_each_store(issue_redeem_revoke_in);
    }

    fn revoke_by_id_keeps_others_in(backend: &Backend) {
        let store = RefreshStore::open_in(backend.state(), None).unwrap();
        let now = SystemTime::now();
        let a = store
            .issue(&user("a"), "", "f", Duration::from_secs(60), now)
            .unwrap();
        let b = store
            .issue(&user("b"), "", "f", Duration::from_secs(60), now)
            .unwrap();
        let id = store.redeem(&a, "", now).unwrap().id;
        assert_eq!(store.revoke_id(&id, now).unwrap(), 1);
        assert!(store.redeem(&a, "", now).is_err());
        assert!(store.redeem(&b, "", now).is_ok());
    }

    #[test]
    fn revoke_by_id_keeps_others() {
        for_each_store(revoke_by_id_keeps_others_in);
    }

    /// `open(path)` is the directory store over the file's directory: the
    /// file is the store, and `open_in` over that directory shares it.
    #[test]
    fn a_path_is_a_directory_store_over_its_directory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join(STATE_KEY);
        let store = RefreshStore::open(&path).unwrap();
        assert_eq!(store.path(), path);
        let now = SystemTime::now();
        let t = store
            .issue(&user("alice"), "", "f", Duration::from_secs(60), now)
            .unwrap();
        assert_eq!(
            std::os::unix::fs::MetadataExt::mode(&fs::metadata(&path).unwrap()) & 0o777,
            0o600
        );
        let state = Arc::new(DirStore::new(dir.path().join("sub"), system_clock()));
        let other = RefreshStore::open_in(state, Some(&path)).unwrap();
        assert_eq!(other.path(), path);
        other.redeem(&t, "", now).unwrap();
        assert!(path.exists(), "the store's own file is not migrated away");
    }

    /// A store file from before the state store: its tokens still redeem
    /// after the import, and the file is kept as `.migrated`.
    #[test]
    fn an_old_store_file_is_imported_once() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join(STATE_KEY);
        let now = SystemTime::now();
        let token = RefreshStore::open(&old)
            .unwrap()
            .issue(&user("alice"), "docker", "fp", Duration::from_secs(60), now)
            .unwrap();
        let before = fs::read(&old).unwrap();
        let state = Arc::new(MemoryStore::default());
        let store = RefreshStore::open_in(state.clone(), Some(&old)).unwrap();
        assert_eq!(store.redeem(&token, "docker", now).unwrap().user, "alice");
        assert!(!old.exists());
        let kept = dir.path().join(format!("{STATE_KEY}.migrated"));
        assert_eq!(fs::read(&kept).unwrap(), before);
        // once: the state store has it now
        let again = RefreshStore::open_in(state, Some(&old)).unwrap();
        assert_eq!(again.list().unwrap().len(), 1);
    }
}
