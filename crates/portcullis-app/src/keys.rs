//! The token service's key set from the configuration: the configured
//! signing key, or one generated on first start into the data directory
//! (`<rootdirectory>/portcullis/keys/`, key file mode 0600) under a lease of
//! the state store, so processes sharing the directory agree on one key;
//! plus verify-only certificates. Shared by `serve`, `portcullis keys` and
//! `config check`.

use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;

use portcullis_auth::token::{Algorithm, KeySet, SigningKey, TokenError, VerifyKey};
use portcullis_config::{Config, SigningAlgorithm, TokenServerConfig};

/// The token crate's algorithm for one named in the configuration: the one
/// place the configuration's algorithm names meet the token code. `None` for
/// the JOSE algorithms portcullis neither signs nor verifies with (HMAC, the
/// other sizes, PSS).
#[must_use]
pub fn token_algorithm(alg: SigningAlgorithm) -> Option<Algorithm> {
    use SigningAlgorithm as S;
    match alg {
        S::Es256 => Some(Algorithm::Es256),
        S::Rs256 => Some(Algorithm::Rs256),
        S::EdDsa => Some(Algorithm::EdDsa),
        S::Hs256
        | S::Hs384
        | S::Hs512
        | S::Rs384
        | S::Rs512
        | S::Es384
        | S::Es512
        | S::Ps256
        | S::Ps384
        | S::Ps512 => None,
    }
}

/// Where a generated signing key lives.
#[must_use]
pub fn default_key_paths(config: &Config) -> Option<(PathBuf, PathBuf)> {
    let dir = config.storage.state_dir()?.join("keys");
    Some((dir.join("signing.key"), dir.join("signing.crt")))
}

/// The configured signing key paths, or the default ones.
#[must_use]
pub fn signing_paths(config: &Config, ts: &TokenServerConfig) -> Option<(PathBuf, PathBuf)> {
    match &ts.keys.signing {
        Some(s) => Some((s.key.clone(), s.certificate.clone())),
        None => default_key_paths(config),
    }
}

/// Loads the key set, generating the signing key when none is configured and
/// none was generated before. With in-memory storage a generated key lives
/// only as long as the process.
///
/// # Errors
/// A configured key that cannot be read or does not match its certificate,
/// or a generated key that cannot be written.
pub fn load_or_generate(config: &Config, ts: &TokenServerConfig) -> Result<KeySet, TokenError> {
    let alg = token_algorithm(ts.algorithm)
        .ok_or_else(|| TokenError::UnsupportedAlgorithm(ts.algorithm.to_string()))?;
    let signing = match (signing_paths(config, ts), config.storage.state_dir()) {
        (Some((key, cert)), _) if ts.keys.signing.is_some() => SigningKey::load_pem(&key, &cert)?,
        (Some((key, cert)), Some(dir)) => generate_once(&dir, alg, ts, &key, &cert)?,
        _ => SigningKey::generate(alg, &ts.issuer)?,
    };
    let mut verify_only: Vec<VerifyKey> = Vec::new();
    for path in &ts.keys.verify {
        verify_only.extend(VerifyKey::load_cert_pem(path)?);
    }
    Ok(KeySet::new(signing, verify_only))
}

/// The generated key: loaded, or generated and written by whichever process
/// (a registry, the CLI, a replica on the same state directory) first holds
/// the state store's lease on it, so they all sign with the same key.
fn generate_once(
    state_dir: &std::path::Path,
    alg: Algorithm,
    ts: &TokenServerConfig,
    key: &std::path::Path,
    cert: &std::path::Path,
) -> Result<SigningKey, TokenError> {
    use portcullis_state::StateStore;
    const LEASE: &str = "locks/signing-key";
    let store = crate::state::dir_store(state_dir);
    let holder = format!("pid-{}-{:016x}", std::process::id(), rand::random::<u64>());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let failed = |e: portcullis_state::StateError| TokenError::Key(format!("{e}"));
    loop {
        if let Some(lease) = store
            .acquire(LEASE, &holder, std::time::Duration::from_secs(60))
            .map_err(failed)?
        {
            let result = if key.exists() {
                SigningKey::load_pem(key, cert)
            } else {
                SigningKey::generate(alg, &ts.issuer).and_then(|k| {
                    write_new(&k, key, cert)?;
                    tracing::info!(key = %key.display(), kid = k.kid(), "generated a token signing key");
                    Ok(k)
                })
            };
            store.release(&lease).map_err(failed)?;
            return result;
        }
        if std::time::Instant::now() > deadline {
            return Err(TokenError::Key(format!(
                "another process has held the lease {LEASE} in {} for 30 s while generating the signing key; if none is running, remove {}",
                state_dir.display(),
                state_dir.join(LEASE).display()
            )));
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Writes a key pair, creating the directory (mode 0700) first.
///
/// # Errors
/// When the directory or the files cannot be written.
pub fn write_new(
    k: &SigningKey,
    key: &std::path::Path,
    cert: &std::path::Path,
) -> Result<(), TokenError> {
    for dir in [key.parent(), cert.parent()].into_iter().flatten() {
        if !dir.as_os_str().is_empty() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| TokenError::Key(format!("cannot create {}: {e}", dir.display())))?;
        }
    }
    k.write_pem(key, cert)
}

#[cfg(test)]
mod tests {
    /// Processes starting together on one state directory (here threads,
    /// each with its own store over the directory) end up with one key.
    #[test]
    fn concurrent_starts_generate_one_key() {
        let dir = tempfile::tempdir().unwrap();
        let yaml = format!(
            "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\nauth:\n  htpasswd:\n    realm: r\n    path: /dev/null\n  tokenserver:\n    issuer: i\n    service: s\n",
            dir.path().display()
        );
        let config = portcullis_config::Config::from_yaml(&yaml, "t.yml", &[])
            .unwrap()
            .config;
        let ts = config.auth.tokenserver.clone().unwrap();
        let kids: Vec<String> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..6)
                .map(|_| {
                    s.spawn(|| {
                        super::load_or_generate(&config, &ts)
                            .unwrap()
                            .signing()
                            .kid()
                            .to_owned()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(kids.iter().all(|k| *k == kids[0]), "{kids:?}");
        let state = config.storage.state_dir().unwrap();
        assert!(state.join("keys/signing.key").exists());
        assert!(
            !state.join("locks/signing-key").exists(),
            "the lease is released"
        );
    }
}
