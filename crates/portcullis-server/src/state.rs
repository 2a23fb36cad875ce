//! Shared application state: the registry, how clients authenticate, how
//! URLs are written, and the configured response headers.

use std::sync::Arc;

use axum::http::HeaderMap;
use portcullis_auth::htpasswd::Htpasswd;
use portcullis_core::Registry;

/// How requests are authenticated.
pub enum AuthMode {
    /// No authentication: everyone may do everything (distribution without `auth`).
    None,
    /// `auth.htpasswd`: HTTP Basic against an htpasswd file.
    Htpasswd { realm: String, file: Arc<Htpasswd> },
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
    /// `catalog.maxentries`: the largest catalog page.
    pub catalog_max: usize,
}
