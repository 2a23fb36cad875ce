//! CORS (`http.cors`): answers preflights before authentication, and adds
//! the CORS headers to responses for allowed origins only.
//!
//! A preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`)
//! from an allowed origin gets 204 with the allowed methods and headers,
//! whatever the path; from any other origin, 403 with no CORS headers, so
//! the browser blocks the page. Every response to a request that carries
//! `Origin` says `Vary: Origin`, so a cache never hands one origin's answer
//! to another.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use portcullis_config::{CorsConfig, DEFAULT_EXPOSED, DEFAULT_HEADERS, DEFAULT_METHODS};

use crate::AppState;
use crate::error::{ApiError, Code};

/// The CORS settings, turned into header values once.
#[derive(Debug, Clone)]
pub struct Cors {
    origins: Vec<String>,
    any_origin: bool,
    credentials: bool,
    methods: HeaderValue,
    /// Lower-case names, to compare with a preflight's request headers.
    allowed_headers: Vec<String>,
    headers: HeaderValue,
    exposed: HeaderValue,
    max_age: HeaderValue,
}

fn joined(configured: &[String], default: &[&str]) -> Option<HeaderValue> {
    let list: Vec<&str> = if configured.is_empty() {
        default.to_vec()
    } else {
        configured.iter().map(String::as_str).collect()
    };
    HeaderValue::try_from(list.join(", ")).ok()
}

impl Cors {
    /// Builds the header values; `None` when a configured name is not a
    /// valid header value (validation has refused such configurations).
    #[must_use]
    pub fn new(c: &CorsConfig) -> Option<Self> {
        let mut methods: Vec<String> = c.allowedmethods.clone();
        if !methods.is_empty() && !methods.iter().any(|m| m.eq_ignore_ascii_case("OPTIONS")) {
            methods.push("OPTIONS".into());
        }
        Some(Self {
            origins: c
                .allowedorigins
                .iter()
                .filter(|o| *o != "*")
                .map(|o| o.trim_end_matches('/').to_owned())
                .collect(),
            any_origin: c.allowedorigins.iter().any(|o| o == "*"),
            credentials: c.credentials(),
            methods: joined(&methods, DEFAULT_METHODS)?,
            allowed_headers: if c.allowedheaders.is_empty() {
                DEFAULT_HEADERS
                    .iter()
                    .map(|h| h.to_ascii_lowercase())
                    .collect()
            } else {
                c.allowedheaders
                    .iter()
                    .map(|h| h.to_ascii_lowercase())
                    .collect()
            },
            headers: joined(&c.allowedheaders, DEFAULT_HEADERS)?,
            exposed: joined(&c.exposedheaders, DEFAULT_EXPOSED)?,
            max_age: HeaderValue::from(c.max_age().as_secs()),
        })
    }

    fn allows(&self, origin: &str) -> bool {
        self.any_origin || self.origins.iter().any(|o| o == origin)
    }

    /// `Access-Control-Allow-Origin` (and `-Credentials`) for an allowed
    /// origin.
    fn allow_origin(&self, origin: &HeaderValue, h: &mut HeaderMap) {
        if self.any_origin && !self.credentials {
            h.insert(
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            );
        } else {
            h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        }
        if self.credentials {
            h.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
    }

    fn preflight(&self, origin: &HeaderValue, request_headers: Option<&HeaderValue>) -> Response {
        let mut h = HeaderMap::new();
        self.allow_origin(origin, &mut h);
        h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, self.methods.clone());
        // Echo the requested headers that are allowed, so a browser that asks
        // for fewer sees exactly those; otherwise the configured list.
        let asked = request_headers
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.split(',')
                    .map(|s| s.trim().to_ascii_lowercase())
                    .filter(|s| !s.is_empty())
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        let granted: Vec<&String> = asked
            .iter()
            .filter(|a| self.allowed_headers.contains(a))
            .collect();
        let allow_headers = if granted.is_empty() || granted.len() < asked.len() {
            self.headers.clone()
        } else {
            HeaderValue::try_from(
                granted
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            )
            .unwrap_or_else(|_| self.headers.clone())
        };
        h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, allow_headers);
        h.insert(header::ACCESS_CONTROL_MAX_AGE, self.max_age.clone());
        vary(&mut h);
        (StatusCode::NO_CONTENT, h).into_response()
    }
}

fn vary(h: &mut HeaderMap) {
    let already = h.get_all(header::VARY).iter().any(|v| {
        v.to_str()
            .is_ok_and(|s| s.to_ascii_lowercase().contains("origin"))
    });
    if !already {
        h.append(header::VARY, HeaderValue::from_static("Origin"));
    }
}

const REQUEST_METHOD: HeaderName = header::ACCESS_CONTROL_REQUEST_METHOD;

/// The CORS layer: outside authentication, inside the access log.
pub async fn layer(State(state): State<Arc<AppState>>, req: Request<Body>, next: Next) -> Response {
    let Some(cors) = state.cors.as_deref() else {
        return next.run(req).await;
    };
    let Some(origin) = req.headers().get(header::ORIGIN).cloned() else {
        return next.run(req).await;
    };
    let allowed = origin.to_str().is_ok_and(|o| cors.allows(o));
    if req.method() == Method::OPTIONS && req.headers().contains_key(REQUEST_METHOD) {
        if !allowed {
            let mut r = ApiError::msg(
                Code::Denied,
                format!(
                    "origin {} is not allowed to call this registry (http.cors.allowedorigins)",
                    origin.to_str().unwrap_or("(not text)")
                ),
            )
            .into_response();
            vary(r.headers_mut());
            return r;
        }
        return cors.preflight(
            &origin,
            req.headers().get(header::ACCESS_CONTROL_REQUEST_HEADERS),
        );
    }
    let mut response = next.run(req).await;
    let h = response.headers_mut();
    if allowed {
        cors.allow_origin(&origin, h);
        h.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, cors.exposed.clone());
    }
    vary(h);
    response
}
