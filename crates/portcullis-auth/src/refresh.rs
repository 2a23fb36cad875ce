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
//! The store is one JSON file, written atomically. The server and the CLI
//! (`token revoke`) share it: every operation re-reads the file when it
//! changed on disk, and last-use times are written at most once a minute.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use base64::Engine;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::filestore::{Entry, FileError, JsonStore, hash_hex, same, secs};
use crate::identity::UserName;

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

/// The key of the store file's record list.
const FILE_KEY: &str = "tokens";

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

/// The store; share it in an `Arc`. Blocking file I/O, small and rare.
pub struct RefreshStore {
    store: JsonStore<Record>,
}

impl std::fmt::Debug for RefreshStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefreshStore")
            .field("path", &self.store.path())
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
    /// Opens (or prepares to create) the store at `path`.
    ///
    /// # Errors
    /// When the file exists but cannot be read or parsed.
    pub fn open(path: &Path) -> Result<Self, RefreshError> {
        let store = JsonStore::open(path, FILE_KEY).map_err(|e| file_error(path, e))?;
        Ok(Self { store })
    }

    #[must_use]
    pub fn path(&self) -> &Path {
        self.store.path()
    }

    fn err(&self, e: FileError) -> RefreshError {
        file_error(self.store.path(), e)
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
        st.entries.insert(id.clone(), record);
        self.store.write(&mut st, now).map_err(|e| self.err(e))?;
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
    /// When the file cannot be read.
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

    use super::*;

    fn user(n: &str) -> UserName {
        UserName::new(n).unwrap()
    }

    #[test]
    fn issue_redeem_revoke() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/refresh.json");
        let store = RefreshStore::open(&path).unwrap();
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
        // only a hash is stored, with mode 0600
        let text = fs::read_to_string(&path).unwrap();
        let secret = t.expose_secret().rsplit('.').next().unwrap().to_owned();
        assert!(!text.contains(&secret));
        assert_eq!(
            std::os::unix::fs::MetadataExt::mode(&fs::metadata(&path).unwrap()) & 0o777,
            0o600
        );
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
        let cli = RefreshStore::open(&path).unwrap();
        assert_eq!(cli.list().unwrap().len(), 1);
        assert_eq!(cli.revoke_user("alice", now).unwrap(), 1);
        let revoked = store.redeem(&t, "docker", now);
        assert!(matches!(revoked, Err(RefreshError::Unknown)));
        // The user is told what to do about it.
        let message = revoked.unwrap_err().to_string();
        assert!(
            message.contains("revoked; run `docker login` again"),
            "{message}"
        );
    }

    #[test]
    fn revoke_by_id_keeps_others() {
        let dir = tempfile::tempdir().unwrap();
        let store = RefreshStore::open(&dir.path().join("r.json")).unwrap();
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
}
