//! The token service's key set from the configuration: the configured
//! signing key, or one generated on first start into the data directory
//! (`<rootdirectory>/portcullis/keys/`, key file mode 0600), plus
//! verify-only certificates. Shared by `serve` and `portcullis keys`.

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
    let signing = match signing_paths(config, ts) {
        Some((key, cert)) if ts.keys.signing.is_some() || key.exists() => {
            SigningKey::load_pem(&key, &cert)?
        }
        Some((key, cert)) => {
            let k = SigningKey::generate(alg, &ts.issuer)?;
            write_new(&k, &key, &cert)?;
            tracing::info!(key = %key.display(), kid = k.kid(), "generated a token signing key");
            k
        }
        None => SigningKey::generate(alg, &ts.issuer)?,
    };
    let mut verify_only: Vec<VerifyKey> = Vec::new();
    for path in &ts.keys.verify {
        verify_only.extend(VerifyKey::load_cert_pem(path)?);
    }
    Ok(KeySet::new(signing, verify_only))
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
