//! `http.cors`: which web origins may call the registry from a browser.
//!
//! Guides for distribution put `Access-Control-*` lines in `http.headers`,
//! which sends them on every response but cannot answer a preflight (so
//! every UI that reads a digest or deletes breaks on `OPTIONS`). When
//! `http.cors` is absent, those lines are read as CORS settings instead
//! ([`Config::cors`]), and `config check` says so.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::duration::go;
use crate::model::Config;

/// `http.cors`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CorsConfig {
    /// Exact origins (`https://ui.example.com`, with a port when not the
    /// scheme's default), or `*` for any origin without credentials.
    pub allowedorigins: Vec<String>,
    /// Methods a preflight allows; empty means every method the registry
    /// serves.
    pub allowedmethods: Vec<String>,
    /// Request headers a preflight allows; empty means the ones registry
    /// clients send (`Authorization`, `Accept`, `Content-Type`, `Range`, …).
    pub allowedheaders: Vec<String>,
    /// Response headers scripts may read; empty means the registry's own
    /// (`Docker-Content-Digest`, `WWW-Authenticate`, `Link`, `Location`,
    /// `Range`, `OCI-*`, `RateLimit-*`, …).
    pub exposedheaders: Vec<String>,
    /// Whether cookies and `Authorization` may be sent; default true
    /// unless the origins are `*`.
    pub allowcredentials: Option<bool>,
    /// How long a browser may cache a preflight; default 10m.
    #[serde(with = "go::opt")]
    pub maxage: Option<Duration>,
}

/// The methods the registry serves.
pub const DEFAULT_METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"];

/// The request headers registry clients send.
pub const DEFAULT_HEADERS: &[&str] = &[
    "Authorization",
    "Accept",
    "Content-Type",
    "Content-Range",
    "Range",
    "If-None-Match",
    "Docker-Content-Digest",
];

/// The response headers a registry UI reads.
pub const DEFAULT_EXPOSED: &[&str] = &[
    "Docker-Content-Digest",
    "Docker-Distribution-API-Version",
    "Docker-Upload-UUID",
    "WWW-Authenticate",
    "Link",
    "Location",
    "Range",
    "Content-Range",
    "Content-Length",
    "Retry-After",
    "OCI-Subject",
    "OCI-Filters-Applied",
    "OCI-Chunk-Min-Length",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "Docker-RateLimit-Source",
];

/// Where the effective CORS settings came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CorsSource {
    /// `http.cors`.
    Cors,
    /// `http.headers: Access-Control-*`, read as CORS settings.
    Headers,
}

/// Whether an `http.headers` name is one that CORS settings replace.
#[must_use]
pub fn is_cors_header(name: &str) -> bool {
    name.len() > 15 && name[..15].eq_ignore_ascii_case("access-control-")
}

fn header<'a>(config: &'a Config, name: &str) -> Option<&'a [String]> {
    config
        .http
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_slice())
}

/// `["GET, HEAD", "PUT"]` → `["GET", "HEAD", "PUT"]`.
fn split(values: &[String]) -> Vec<String> {
    values
        .iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

impl CorsConfig {
    /// Whether credentials are allowed, after the default.
    #[must_use]
    pub fn credentials(&self) -> bool {
        self.allowcredentials
            .unwrap_or(!self.allowedorigins.iter().any(|o| o == "*"))
    }

    /// The preflight cache time, after the default.
    #[must_use]
    pub fn max_age(&self) -> Duration {
        self.maxage.unwrap_or(Duration::from_secs(600))
    }
}

impl Config {
    /// The CORS settings in force: `http.cors`, or else the
    /// `Access-Control-*` entries of `http.headers` (which the server then
    /// stops sending as plain headers); `None` when neither is set.
    #[must_use]
    pub fn cors(&self) -> Option<(CorsConfig, CorsSource)> {
        if let Some(c) = &self.http.cors {
            return Some((c.clone(), CorsSource::Cors));
        }
        let origins = split(header(self, "Access-Control-Allow-Origin")?);
        let credentials = header(self, "Access-Control-Allow-Credentials")
            .map(|v| v.iter().any(|s| s.trim().eq_ignore_ascii_case("true")));
        let maxage = header(self, "Access-Control-Max-Age")
            .and_then(|v| v.first())
            .and_then(|s| s.trim().parse().ok())
            .map(Duration::from_secs);
        let list = |name| header(self, name).map(split).unwrap_or_default();
        Some((
            CorsConfig {
                allowedorigins: origins.clone(),
                allowedmethods: list("Access-Control-Allow-Methods"),
                allowedheaders: list("Access-Control-Allow-Headers"),
                exposedheaders: list("Access-Control-Expose-Headers"),
                allowcredentials: credentials.map(|c| c && !origins.iter().any(|o| o == "*")),
                maxage,
            },
            CorsSource::Headers,
        ))
    }
}

/// Whether `origin` is a browser origin: `scheme://host[:port]`, lower
/// case, no path.
#[must_use]
pub fn is_origin(origin: &str) -> bool {
    let Some((scheme, authority)) = origin.split_once("://") else {
        return false;
    };
    let lower = |extra: &[u8], s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || extra.contains(&b))
    };
    lower(b"+-.", scheme) && lower(b"-.:[]_", authority)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(http: &str) -> Config {
        let yaml =
            format!("version: 0.1\nstorage:\n  inmemory:\nhttp:\n  addr: 127.0.0.1:5000\n{http}");
        Config::from_yaml(&yaml, "c.yml", &[])
            .expect("loads")
            .config
    }

    #[test]
    fn http_cors_is_read_with_its_defaults() {
        let c = load("  cors:\n    allowedorigins: [\"https://ui.example.com\"]\n    maxage: 1h\n");
        let (cors, source) = c.cors().expect("cors");
        assert_eq!(source, CorsSource::Cors);
        assert_eq!(cors.allowedorigins, ["https://ui.example.com"]);
        assert!(cors.credentials());
        assert_eq!(cors.max_age(), Duration::from_secs(3600));
        assert!(c.validate().is_ok());
        assert!(c.advice().is_empty(), "{:?}", c.advice());
    }

    #[test]
    fn access_control_headers_become_cors_settings_and_are_advised() {
        let c = load(
            "  headers:\n    Access-Control-Allow-Origin: ['http://localhost:8080']\n    \
             Access-Control-Allow-Methods: ['HEAD, GET, OPTIONS, DELETE']\n    \
             Access-Control-Allow-Credentials: [true]\n    \
             Access-Control-Expose-Headers: ['Docker-Content-Digest']\n    \
             Access-Control-Max-Age: [1728000]\n",
        );
        let (cors, source) = c.cors().expect("cors");
        assert_eq!(source, CorsSource::Headers);
        assert_eq!(cors.allowedorigins, ["http://localhost:8080"]);
        assert_eq!(cors.allowedmethods, ["HEAD", "GET", "OPTIONS", "DELETE"]);
        assert_eq!(cors.exposedheaders, ["Docker-Content-Digest"]);
        assert_eq!(cors.allowcredentials, Some(true));
        assert_eq!(cors.max_age(), Duration::from_secs(1_728_000));
        let advice = c.advice().join("\n");
        assert!(advice.contains("Move them to http.cors"), "{advice}");
        assert!(is_cors_header("access-control-allow-origin"));
        assert!(!is_cors_header("X-Frame-Options"));
    }

    #[test]
    fn a_wildcard_turns_credentials_off_and_bad_origins_are_named() {
        let wild = load("  cors:\n    allowedorigins: ['*']\n");
        assert!(!wild.cors().expect("cors").0.credentials());
        let both = load("  cors:\n    allowedorigins: ['*']\n    allowcredentials: true\n");
        let e = both.validate().expect_err("refused").to_string();
        assert!(e.contains("http.cors.allowcredentials"), "{e}");
        let bad = load("  cors:\n    allowedorigins: ['https://UI.example.com/app/']\n");
        let e = bad.validate().expect_err("refused").to_string();
        assert!(e.contains("http.cors.allowedorigins[0]"), "{e}");
        assert!(
            e.contains("`https://ui.example.com/app`") || e.contains("scheme://host"),
            "{e}"
        );
        let empty = load("  cors:\n    allowedorigins: []\n");
        assert!(empty.validate().is_err());
        assert!(is_origin("http://[::1]:8080"));
        assert!(!is_origin("ui.example.com"));
    }
}
