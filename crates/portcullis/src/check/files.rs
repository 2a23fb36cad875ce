//! What only the files a configuration points at can tell, checked with the
//! code `serve` uses at start: the TLS certificate and key (dates, names,
//! chain, key match), the storage root's writability, the token signing
//! and verify keys and refresh-token store, and `auth.token`'s bundle.

use std::fs::OpenOptions;

use portcullis_app::keys::token_algorithm;
use portcullis_app::tls::{TlsSettings, load};
use portcullis_auth::refresh;
use portcullis_auth::token::{Algorithm, SigningKey, Verifier, VerifyKey};
use portcullis_config::{Config, Named, SigningAlgorithm};

use super::Findings;

/// `message. Fix: fix` as the two halves of a [`portcullis_config::ConfigError`].
fn split_fix(message: &str, default_fix: &str) -> (String, String) {
    match message.split_once(". Fix: ") {
        Some((m, fix)) => (m.to_owned(), fix.trim_end_matches('.').to_owned()),
        None => (
            message.trim_end_matches('.').to_owned(),
            default_fix.to_owned(),
        ),
    }
}

impl Findings {
    /// The TLS files, loaded exactly as `serve` loads them before binding.
    pub(super) fn tls(&mut self, config: &Config) {
        let Some(tls) = &config.http.tls else {
            return;
        };
        if self.reported("http.tls") || self.reported("http.host") {
            return;
        }
        let loaded = TlsSettings::from_config(tls, config.http.host.as_deref())
            .and_then(|settings| load(&settings, time::OffsetDateTime::now_utc()));
        match loaded {
            Ok(loaded) => self.warnings.extend(
                loaded
                    .warnings
                    .iter()
                    .map(|w| config.warning_at("http.tls.certificate", w)),
            ),
            Err(e) => {
                let (message, mut fix) = split_fix(&e.message, "fix the TLS files");
                if fix == "renew it" {
                    fix = format!(
                        "renew it: install a new certificate from your CA at {} (portcullis picks it up without a restart), \
                         or for a private CA run `portcullis cert generate --host NAME --ca CA_DIR --out DIR`",
                        tls.certificate
                    );
                }
                self.errors.push(config.error_at(&e.key, message, fix));
            }
        }
    }

    /// The storage root (and portcullis's state directory under it, where
    /// generated keys and token stores live) must be creatable and writable:
    /// probed by creating and removing a file in the nearest directory that
    /// exists.
    pub(super) fn storage_root(&mut self, config: &Config) {
        let Some(state) = config.storage.state_dir() else {
            return;
        };
        let key = "storage.filesystem.rootdirectory";
        if self.reported(key) {
            return;
        }
        let mut probe = state.as_path();
        while !probe.exists() {
            match probe.parent() {
                Some(parent) if !parent.as_os_str().is_empty() => probe = parent,
                _ => return,
            }
        }
        let test = probe.join(format!(".portcullis-check-{}", std::process::id()));
        let result = OpenOptions::new().write(true).create_new(true).open(&test);
        let _ = std::fs::remove_file(&test);
        if let Err(e) = result {
            let what = if probe == state {
                format!("files in {}", state.display())
            } else {
                format!("{} under {}", state.display(), probe.display())
            };
            self.errors.push(config.error_at(
                key,
                format!("portcullis cannot create {what}: {e}"),
                format!(
                    "give the user portcullis runs as write access to {} (for example `chown -R USER {}`), or choose another rootdirectory",
                    probe.display(),
                    probe.display()
                ),
            ));
        }
    }

    /// The token service's keys: a configured (or previously generated)
    /// signing key must load and match its certificate; verify-only
    /// certificates must parse.
    pub(super) fn signing_keys(&mut self, config: &Config) {
        let Some(ts) = &config.auth.tokenserver else {
            return;
        };
        if self.reported("auth.tokenserver.keys") {
            return;
        }
        let configured = ts.keys.signing.is_some();
        if let Some((key, cert)) = portcullis_app::keys::signing_paths(config, ts)
            && (configured || key.exists())
            && let Err(e) = SigningKey::load_pem(&key, &cert)
        {
            let (at, fix) = if configured {
                (
                    "auth.tokenserver.keys.signing.key",
                    "point keys.signing.key and keys.signing.certificate at a matching PEM key and certificate \
                     (`portcullis keys generate --out DIR` writes a pair)"
                        .to_owned(),
                )
            } else {
                (
                    "auth.tokenserver",
                    format!(
                        "restore the generated key from a backup, or move {} away and run `portcullis keys generate{}` \
                         (tokens signed by the old key stop verifying)",
                        key.display(),
                        config_flag(config)
                    ),
                )
            };
            self.errors.push(config.error_at(at, e.to_string(), fix));
        }
        // `serve` opens the refresh-token store at start.
        if ts.refresh.enabled
            && let Some(dir) = config.storage.state_dir()
            && dir.join(refresh::STATE_KEY).exists()
            && let Err(e) = portcullis_app::state::refresh_store(&dir)
        {
            self.errors.push(config.error_at(
                "auth.tokenserver.refresh",
                e.to_string(),
                "restore the file from a backup, or move it away (every refresh token is lost: users run `docker login` again)",
            ));
        }
        for (i, path) in ts.keys.verify.iter().enumerate() {
            if let Err(e) = VerifyKey::load_cert_pem(path) {
                self.errors.push(config.error_at(
                    &format!("auth.tokenserver.keys.verify[{i}]"),
                    e.to_string(),
                    "point it at the PEM certificate of a verify-only key",
                ));
            }
        }
    }

    /// `auth.token`: the bundle and JWKS must hold keys portcullis can use,
    /// and at least one listed algorithm must be supported.
    pub(super) fn token_issuer(&mut self, config: &Config) {
        let Some(token) = &config.auth.token else {
            return;
        };
        let loads = [
            (
                "auth.token.rootcertbundle",
                token
                    .rootcertbundle
                    .as_deref()
                    .map(Verifier::load_bundle_file),
            ),
            (
                "auth.token.jwks",
                token.jwks.as_deref().map(Verifier::load_jwks_file),
            ),
        ];
        for (key, loaded) in loads {
            if let Some(Err(e)) = loaded
                && !self.reported(key)
            {
                self.errors.push(config.error_at(
                    key,
                    e.to_string(),
                    "point it at the token server's certificates (PEM) or JWKS",
                ));
            }
        }
        let supported = token
            .signingalgorithms
            .iter()
            .any(|a| listed_algorithm(a).is_some());
        if !token.signingalgorithms.is_empty()
            && !supported
            && !self.reported("auth.token.signingalgorithms")
        {
            self.errors.push(config.error_at(
                "auth.token.signingalgorithms",
                "none of the listed algorithms can be verified by portcullis",
                "list ES256, RS256 or EdDSA (or remove the key to accept all three)",
            ));
        }
    }

    /// `serve` refuses the `silly` test authenticator.
    pub(super) fn unsupported(&mut self, config: &Config) {
        if config.auth.silly.is_some() {
            self.errors.push(config.error_at(
                "auth.silly",
                "the `silly` test authenticator is not supported",
                "use auth.htpasswd",
            ));
        }
    }
}

/// A JOSE algorithm name in any case (`rs256` is `RS256`), when portcullis
/// signs and verifies with it.
pub(crate) fn parse_algorithm(name: &str) -> Option<Algorithm> {
    SigningAlgorithm::from_name_ignore_case(name).and_then(token_algorithm)
}

/// An algorithm of `auth.token.signingalgorithms`, when portcullis verifies it.
pub(super) fn listed_algorithm(listed: &Named<SigningAlgorithm>) -> Option<Algorithm> {
    listed.known().and_then(token_algorithm)
}

/// ` --config FILE` for a command to suggest, or nothing for the default.
pub(super) fn config_flag(config: &Config) -> String {
    if config.source().is_empty() || config.source() == crate::defaults::DEFAULT_SOURCE {
        String::new()
    } else {
        format!(" --config {}", config.source())
    }
}
