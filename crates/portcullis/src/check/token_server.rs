//! `config check --token-server PORTCULLIS_CONFIG`: a registry:2-style
//! configuration whose `auth.token` trusts portcullis's token service must
//! agree with portcullis's configuration on the issuer, the service (the
//! tokens' audience), the realm, the signing key (its certificate must be in
//! `rootcertbundle` or its key in `jwks`) and the signing algorithm.

use std::path::Path;

use portcullis_auth::token::{Algorithm, SigningKey, Verifier};
use portcullis_config::{Config, TokenConfig, TokenServerConfig};

use super::Findings;
use super::files::{config_flag, listed_algorithm};
use crate::cli;

impl Findings {
    /// Compares `registry` (the configuration under check) with the
    /// portcullis configuration at `path`.
    pub(super) fn token_server(&mut self, registry: &Config, path: &Path) {
        let Some(token) = &registry.auth.token else {
            self.errors.push(registry.error_at(
                "auth.token",
                "is not set, so this registry does not use a token server",
                format!(
                    "add auth.token with realm, service, issuer and rootcertbundle \
                     (`portcullis keys bundle --config {}` prints the bundle)",
                    path.display()
                ),
            ));
            return;
        };
        let portcullis = match cli::load(Some(path)) {
            Ok(loaded) => loaded.config,
            Err(errors) => {
                self.errors.extend(errors.0);
                return;
            }
        };
        let Some(ts) = &portcullis.auth.tokenserver else {
            self.errors.push(portcullis.error_at(
                "auth.tokenserver",
                "is not set, so portcullis issues no tokens",
                "add auth.tokenserver (with auth.htpasswd for its users)",
            ));
            return;
        };
        let p = path.display();
        for (name, theirs, ours) in [
            ("issuer", &token.issuer, &ts.issuer),
            ("service", &token.service, &ts.service),
        ] {
            if theirs != ours {
                self.errors.push(registry.error_at(
                    &format!("auth.token.{name}"),
                    format!(
                        "is `{theirs}`, but portcullis ({p}) signs tokens with {name} `{ours}`, so this registry would reject every token"
                    ),
                    format!("set auth.token.{name}: {ours} (or auth.tokenserver.{name}: {theirs} in {p})"),
                ));
            }
        }
        self.realm(registry, token, &portcullis, ts);
        self.bundle(registry, token, &portcullis, ts);
    }

    fn realm(
        &mut self,
        registry: &Config,
        token: &TokenConfig,
        portcullis: &Config,
        ts: &TokenServerConfig,
    ) {
        let http = &portcullis.http;
        let expected = ts.realm.clone().or_else(|| {
            http.host.as_deref().filter(|h| !h.is_empty()).map(|h| {
                format!(
                    "{}{}/token",
                    h.trim_end_matches('/'),
                    http.prefix.trim_end_matches('/')
                )
            })
        });
        match expected {
            Some(expected) if token.realm != expected => self.errors.push(registry.error_at(
                "auth.token.realm",
                format!(
                    "is `{}`, but portcullis ({}) serves its token endpoint at `{expected}`",
                    token.realm,
                    portcullis.source()
                ),
                format!("set auth.token.realm: {expected}"),
            )),
            Some(_) => {}
            None if !token.realm.trim_end_matches('/').ends_with("/token") => {
                self.warnings.push(registry.warning_at(
                    "auth.token.realm",
                    &format!(
                        "`{}` does not end in /token, where portcullis serves tokens; set it to portcullis's URL followed by /token \
                         (set http.host in {} so that it can be checked)",
                        token.realm,
                        portcullis.source()
                    ),
                ));
            }
            None => {}
        }
    }

    fn bundle(
        &mut self,
        registry: &Config,
        token: &TokenConfig,
        portcullis: &Config,
        ts: &TokenServerConfig,
    ) {
        let flag = config_flag(portcullis);
        let Some((key, cert)) = portcullis_app::keys::signing_paths(portcullis, ts) else {
            self.errors.push(portcullis.error_at(
                "auth.tokenserver.keys",
                "portcullis keeps no signing key on disk (in-memory storage and no keys.signing), so no bundle can contain it",
                "set auth.tokenserver.keys.signing, or storage.filesystem.rootdirectory",
            ));
            return;
        };
        if ts.keys.signing.is_none() && !key.exists() {
            self.errors.push(portcullis.error_at(
                "auth.tokenserver",
                format!("portcullis has not generated its signing key yet ({})", key.display()),
                format!(
                    "run `portcullis keys generate{flag}` (or start portcullis once), then `portcullis keys bundle{flag} > BUNDLE` for auth.token.rootcertbundle"
                ),
            ));
            return;
        }
        let signing = match SigningKey::load_pem(&key, &cert) {
            Ok(k) => k,
            Err(e) => {
                self.errors.push(portcullis.error_at(
                    "auth.tokenserver.keys",
                    e.to_string(),
                    format!("repair the key, or run `portcullis keys generate{flag} --force`"),
                ));
                return;
            }
        };
        let alg = signing.algorithm();
        let trusted: Vec<String> = [
            token
                .rootcertbundle
                .as_deref()
                .map(Verifier::load_bundle_file),
            token.jwks.as_deref().map(Verifier::load_jwks_file),
        ]
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .flatten()
        .map(|k| k.kid().to_owned())
        .collect();
        if !trusted.iter().any(|kid| kid == signing.kid()) {
            let (at, file) = match (&token.rootcertbundle, &token.jwks) {
                (Some(b), _) => ("auth.token.rootcertbundle", b.display().to_string()),
                (None, Some(j)) => ("auth.token.jwks", j.display().to_string()),
                (None, None) => ("auth.token", "BUNDLE".to_owned()),
            };
            self.errors.push(registry.error_at(
                at,
                format!(
                    "does not contain portcullis's signing key (kid {}, certificate {}), so this registry would reject every token",
                    signing.kid(),
                    cert.display()
                ),
                format!("write it with `portcullis keys bundle{flag} > {file}`"),
            ));
        }
        let listed = &token.signingalgorithms;
        if !listed.is_empty() && !listed.iter().any(|a| listed_algorithm(a) == Some(alg)) {
            self.errors.push(registry.error_at(
                "auth.token.signingalgorithms",
                format!("does not list {alg}, the algorithm of portcullis's signing key"),
                format!("add {alg} to it"),
            ));
        }
        if alg == Algorithm::EdDsa {
            self.warnings.push(registry.warning_at(
                "auth.token",
                &format!(
                    "portcullis signs with EdDSA, which registry:2 (distribution 2.8) cannot verify: it panics on EdDSA keys. \
                     Unless this registry is distribution 3.x, use ES256: `portcullis keys generate{flag} --algorithm ES256 --force`, \
                     then `portcullis keys bundle{flag}`"
                ),
            ));
        }
    }
}
