//! How clients authenticate, from `auth`: no authentication, HTTP Basic
//! against `auth.htpasswd`, or bearer tokens from the built-in token service
//! (`auth.tokenserver`) and/or an external issuer (`auth.token`); plus the
//! key that binds upload sessions to their owner (`http.secret`).

use std::sync::Arc;
use std::time::Duration;

use portcullis_auth::access::AccessControl;
use portcullis_auth::refresh::RefreshStore;
use portcullis_auth::service::{ServiceSettings, TokenService};
use portcullis_auth::token::{Algorithm, Verifier};
use portcullis_auth::upload::UploadStates;
use portcullis_config::{Config, ExposeSecret, TokenConfig, TokenServerConfig};

use crate::AssembleError;
use crate::keys;

/// How long an expired token keeps working on its own upload session,
/// unless `auth.tokenserver.uploadgrace` says otherwise.
const DEFAULT_UPLOAD_GRACE: Duration = Duration::from_secs(6 * 3600);

/// How requests are authenticated.
pub enum Authentication {
    /// No authentication: everyone may do everything (distribution without `auth`).
    None,
    /// `auth.htpasswd`: HTTP Basic against the htpasswd users and robot tokens.
    Basic { realm: String },
    /// Bearer tokens (`auth.token` and/or the built-in `auth.tokenserver`).
    Bearer(BearerSetup),
}

/// What the registry needs to verify bearer tokens and to challenge for them.
pub struct BearerSetup {
    /// Token issuers this registry trusts (the built-in service first).
    pub verifiers: Vec<Verifier>,
    /// The challenge's realm; `None` means the request's own host followed
    /// by `realm_path`.
    pub realm: Option<String>,
    /// `/token` for the built-in service; `auth.token.autoredirectpath`
    /// with `autoredirect`.
    pub realm_path: String,
    /// The challenge's service (the audience clients ask tokens for).
    pub service: String,
}

/// The authentication a configuration asks for.
pub struct Auth {
    pub mode: Authentication,
    /// The built-in token service, with `auth.tokenserver`.
    pub token_service: Option<Arc<TokenService>>,
    /// Signs upload-session states.
    pub uploads: UploadStates,
}

/// The built-in token service and what the registry side takes from it.
struct BuiltIn {
    service: Arc<TokenService>,
    verifier: Verifier,
    realm: Option<String>,
}

/// The authentication mode, the token service and the upload-state key.
///
/// # Errors
/// A signing key, refresh store or issuer key that cannot be loaded, or a
/// token setting that cannot work, with the key at fault.
pub fn assemble(config: &Config, access: &Arc<AccessControl>) -> Result<Auth, AssembleError> {
    let builtin = config
        .auth
        .tokenserver
        .as_ref()
        .map(|ts| token_server(config, ts, access))
        .transpose()?;
    let external = config
        .auth
        .token
        .as_ref()
        .map(external_verifier)
        .transpose()?;
    let grace = config
        .auth
        .tokenserver
        .as_ref()
        .map_or(DEFAULT_UPLOAD_GRACE, |ts| ts.uploadgrace);
    let token_service = builtin.as_ref().map(|b| b.service.clone());
    let mode = match bearer(config, builtin, external) {
        Some(bearer) => Authentication::Bearer(bearer),
        None => match &config.auth.htpasswd {
            Some(h) => Authentication::Basic {
                realm: h.realm.clone(),
            },
            None => Authentication::None,
        },
    };
    Ok(Auth {
        token_service,
        mode,
        uploads: upload_states(config, grace),
    })
}

/// The built-in token service of `auth.tokenserver`.
fn token_server(
    config: &Config,
    ts: &TokenServerConfig,
    access: &Arc<AccessControl>,
) -> Result<BuiltIn, AssembleError> {
    let keys =
        keys::load_or_generate(config, ts).map_err(AssembleError::at("auth.tokenserver.keys"))?;
    let verifier = Verifier::new(
        keys.verify_keys(),
        ts.issuer.clone(),
        ts.service.clone(),
        ts.leeway,
        Vec::new(),
    );
    let refresh = refresh_store(config, ts)?;
    let settings = ServiceSettings {
        issuer: ts.issuer.clone(),
        service: ts.service.clone(),
        ttl: ts.expiration,
        refresh_ttl: refresh.as_ref().map(|_| ts.refresh.expiration),
    };
    let service =
        TokenService::new(Arc::new(keys), access.clone(), refresh, settings).ok_or_else(|| {
            AssembleError {
                key: "auth.tokenserver",
                message: "needs auth.htpasswd.path for its users".into(),
            }
        })?;
    Ok(BuiltIn {
        service: Arc::new(service),
        verifier,
        realm: ts.realm.clone().or_else(|| default_realm(config)),
    })
}

/// The refresh-token store, with `auth.tokenserver.refresh` and a state
/// directory to keep it in.
fn refresh_store(
    config: &Config,
    ts: &TokenServerConfig,
) -> Result<Option<Arc<RefreshStore>>, AssembleError> {
    let (true, Some(dir)) = (ts.refresh.enabled, config.storage.state_dir()) else {
        return Ok(None);
    };
    crate::state::refresh_store(&dir)
        .map(|store| Some(Arc::new(store)))
        .map_err(AssembleError::at("auth.tokenserver.refresh"))
}

/// `<http.host><http.prefix>/token`, when `http.host` is set.
fn default_realm(config: &Config) -> Option<String> {
    let host = config.http.host.as_ref().filter(|h| !h.is_empty())?;
    Some(format!(
        "{}{}/token",
        host.trim_end_matches('/'),
        config.http.prefix.trim_end_matches('/')
    ))
}

/// The verifier of the external issuer of `auth.token`.
fn external_verifier(t: &TokenConfig) -> Result<Verifier, AssembleError> {
    let mut keys = Vec::new();
    if let Some(bundle) = &t.rootcertbundle {
        keys.extend(
            Verifier::load_bundle_file(bundle)
                .map_err(AssembleError::at("auth.token.rootcertbundle"))?,
        );
    }
    if let Some(jwks) = &t.jwks {
        keys.extend(Verifier::load_jwks_file(jwks).map_err(AssembleError::at("auth.token.jwks"))?);
    }
    // Listed algorithms portcullis cannot verify are skipped; a list
    // with none it can verify refuses to start rather than allow all.
    let algorithms: Vec<Algorithm> = t
        .signingalgorithms
        .iter()
        .filter_map(|a| a.known().and_then(keys::token_algorithm))
        .collect();
    if !t.signingalgorithms.is_empty() && algorithms.is_empty() {
        return Err(AssembleError {
            key: "auth.token.signingalgorithms",
            message: "none of the listed algorithms is supported; use ES256, RS256 or EdDSA"
                .to_owned(),
        });
    }
    let leeway = Duration::from_secs(60);
    Ok(Verifier::new(
        keys,
        t.issuer.clone(),
        t.service.clone(),
        leeway,
        algorithms,
    ))
}

/// Bearer mode, when a token service or an external issuer is configured.
fn bearer(
    config: &Config,
    builtin: Option<BuiltIn>,
    external: Option<Verifier>,
) -> Option<BearerSetup> {
    let mut verifiers = Vec::new();
    let mut realm = None;
    let mut realm_path = "/token".to_owned();
    let mut audience = None;
    if let (Some(b), Some(ts)) = (builtin, &config.auth.tokenserver) {
        verifiers.push(b.verifier);
        realm = b.realm;
        audience = Some(ts.service.clone());
    }
    if let (Some(v), Some(t)) = (external, &config.auth.token) {
        verifiers.push(v);
        if t.autoredirect {
            // distribution's autoredirect: the realm follows the request's host.
            realm = None;
            realm_path = t
                .autoredirectpath
                .clone()
                .unwrap_or_else(|| "/auth/token".to_owned());
        } else if realm.is_none() && config.auth.tokenserver.is_none() {
            realm = Some(t.realm.clone());
        }
        audience.get_or_insert_with(|| t.service.clone());
    }
    Some(BearerSetup {
        verifiers,
        realm,
        realm_path,
        service: audience?,
    })
}

/// The key that binds upload sessions to their owner (`http.secret`).
#[must_use]
pub fn upload_states(config: &Config, grace: Duration) -> UploadStates {
    if let Some(s) = config
        .http
        .secret
        .as_ref()
        .map(ExposeSecret::expose_secret)
        .filter(|s| !s.is_empty())
    {
        return UploadStates::new(s.as_bytes(), grace);
    }
    // Without http.secret, `Config::advice` has warned at start.
    let mut b = vec![0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut b);
    UploadStates::new(&b, grace)
}
