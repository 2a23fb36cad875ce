//! Shared application state: the registry, how clients authenticate, how
//! URLs are written, and the configured response headers.

use std::sync::Arc;

use axum::http::HeaderMap;
use portcullis_auth::access::AccessControl;
use portcullis_auth::service::TokenService;
use portcullis_auth::token::Verifier;
use portcullis_auth::upload::UploadStates;
use portcullis_core::Registry;

/// How requests are authenticated.
pub enum AuthMode {
    /// No authentication: everyone may do everything (distribution without `auth`).
    None,
    /// `auth.htpasswd`: HTTP Basic against the htpasswd users (and robot
    /// tokens) of [`AppState::access`].
    Basic { realm: String },
    /// Bearer tokens (`auth.token` and/or the built-in `auth.tokenserver`).
    Bearer(Box<Bearer>),
}

/// Bearer-token verification on the registry side.
pub struct Bearer {
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
    /// Tokens verified recently.
    pub cache: crate::token_cache::TokenCache,
}

/// How `Location` and `Link` URLs are written.
#[derive(Debug, Clone, Default)]
pub struct UrlPolicy {
    /// `http.host`: the external base URL, e.g. `https://registry.example.com`.
    pub host: Option<String>,
    /// `http.relativeurls`: write paths only.
    pub relative: bool,
    /// `http.prefix`, without a trailing slash (e.g. `/registry`).
    pub prefix: String,
    /// `http.trustedproxies`: peers whose forwarded headers are believed.
    pub trusted_proxies: crate::proxy::TrustedProxies,
}

/// Everything a request handler needs.
pub struct AppState {
    pub registry: Registry,
    pub auth: AuthMode,
    pub urls: UrlPolicy,
    /// `http.headers`, added to every response.
    pub headers: HeaderMap,
    /// One log line per request unless `log.accesslog.disabled`.
    pub access_log: bool,
    /// Request metrics, when they are served (`http.debug.prometheus`).
    pub metrics: Option<Arc<crate::metrics::Metrics>>,
    /// `catalog.maxentries`: the largest catalog page.
    pub catalog_max: usize,
    /// The built-in token service (`/token`, `/.well-known/jwks.json`).
    pub token_service: Option<Arc<TokenService>>,
    /// Users, robot tokens and the per-repository policy.
    pub access: Arc<AccessControl>,
    /// Whether the policy applies. Off only without authentication and
    /// without an `access` section: then everyone may do everything, as in
    /// distribution.
    pub enforce_policy: bool,
    /// Signs upload-session states: a session is bound to the identity that
    /// opened it (in Basic and token mode), and an expired token keeps
    /// working on its own session for the upload grace period.
    pub uploads: UploadStates,
    /// Where events go (the decision log, and later audit and webhooks).
    pub events: portcullis_types::event::Sinks,
    /// `http.cors` (or `http.headers: Access-Control-*` read as it).
    pub cors: Option<Arc<crate::cors::Cors>>,
    /// The audit log, also among `events` (kept for its queue's numbers
    /// and the flush at shutdown).
    pub audit: Option<Arc<portcullis_audit::AuditSink>>,
    /// Webhook notifications, also among `events` (kept for metrics).
    pub notifier: Option<Arc<portcullis_notify::Notifier>>,
    /// Rate limits and lockout.
    pub abuse: crate::abuse::Abuse,
}
