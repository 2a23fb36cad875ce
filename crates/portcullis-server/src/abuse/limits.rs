//! The rate-limit layers. Inside authentication ([`v2_layer`]): manifest
//! pulls and pushes, per identity, or per client address for anonymous
//! callers, with Docker Hub's `RateLimit-*` headers on manifest responses.
//! Outside it ([`app_layer`]): token requests and failed authentications,
//! per client address.

use std::net::IpAddr;
use std::sync::Arc;

use crate::auth::TokenState;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use portcullis_auth::identity::Identity;
use portcullis_types::event::{Kind, What};

use super::{Class, Measured, Subject, too_many};
use crate::AppState;
use crate::auth::Caller;
use crate::events::RequestInfo;
use crate::state::AuthMode;

/// The client's address, and its text as the first layer wrote it (the
/// text the counter key and `Docker-RateLimit-Source` use, so it is not
/// formatted again).
fn client_ip(req: &Request) -> Option<(IpAddr, String)> {
    let text = req.extensions().get::<RequestInfo>()?.client.as_deref()?;
    Some((text.parse().ok()?, text.to_owned()))
}

/// `100;w=21600`: a count and the window in seconds, as Docker Hub writes.
fn with_window(n: u32, m: &Measured) -> HeaderValue {
    let mut v = Vec::with_capacity(24);
    v.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
    v.extend_from_slice(b";w=");
    v.extend_from_slice(
        itoa::Buffer::new()
            .format(m.rate.window.as_secs())
            .as_bytes(),
    );
    HeaderValue::from_maybe_shared(bytes::Bytes::from(v))
        .unwrap_or_else(|_| HeaderValue::from_static("0"))
}

const RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
const RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
const RATELIMIT_SOURCE: HeaderName = HeaderName::from_static("docker-ratelimit-source");

fn add_headers(h: &mut axum::http::HeaderMap, m: &Measured) {
    h.insert(RATELIMIT_LIMIT, with_window(m.rate.limit, m));
    h.insert(RATELIMIT_REMAINING, with_window(m.remaining, m));
    if let Ok(v) = HeaderValue::from_str(&m.source) {
        h.insert(RATELIMIT_SOURCE, v);
    }
}

/// The refusal of a request over its limit, and its event.
fn refuse(state: &AppState, req: &Request, class: Class, m: &Measured) -> Response {
    let (info, actor) = crate::events::context(req);
    let retry = super::retry_secs(m.retry_after);
    state.events.emit(Kind::Abuse, || {
        info.event(
            &actor,
            What::RateLimited {
                class: class.as_str(),
                key: m.source.clone(),
                retry_after: retry,
            },
        )
    });
    let window = portcullis_config::format_duration(m.rate.window);
    let mut resp = too_many(
        format!(
            "you have reached the {} rate limit for {} ({} per {window}); try again in {retry} s",
            class.as_str(),
            m.source,
            m.rate.limit,
        ),
        m.retry_after,
    )
    .into_response();
    if class == Class::Pull {
        add_headers(resp.headers_mut(), m);
    }
    resp
}

/// Pulls and pushes, after authentication has found the caller.
pub(crate) async fn v2_layer(
    State(state): State<Arc<AppState>>,
    req: Request,
    next: Next,
) -> Response {
    let Some(limits) = &state.abuse.limits else {
        return next.run(req).await;
    };
    let method = req.method().clone();
    let class = match method {
        Method::GET | Method::HEAD if crate::route::is_manifest_path(req.uri().path()) => {
            Class::Pull
        }
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE => Class::Push,
        _ => return next.run(req).await,
    };
    if !limits.limits(class) {
        return next.run(req).await;
    }
    let caller = req.extensions().get::<Arc<Caller>>().cloned();
    let in_group = |group: &str| match caller.as_ref().map(|c| &c.identity) {
        Some(Identity::User(u)) => {
            state
                .access
                .policy
                .current()
                .in_group(u.as_str(), &u.groups, group)
        }
        Some(Identity::Robot(r)) => {
            state
                .access
                .policy
                .current()
                .in_group(r.owner.as_str(), &[], group)
        }
        _ => false,
    };
    let who = Subject {
        user: caller.as_ref().and_then(|c| match &c.identity {
            Identity::Anonymous => None,
            id => Some(id.subject()),
        }),
        ip: client_ip(&req),
        in_group: &in_group,
    };
    // In token mode a request without a token is answered with a challenge
    // and sent again with one: only a request that is served is charged.
    let challenged = matches!(state.auth, AuthMode::Bearer(_))
        && caller
            .as_ref()
            .is_none_or(|c| matches!(c.token, TokenState::Absent) && !c.by_certificate);
    let charge = method != Method::HEAD;
    let mut measured = limits.measure(class, &who, charge && !challenged);
    if let Some(m) = &measured
        && !m.allowed
    {
        return refuse(&state, &req, class, m);
    }
    let mut resp = next.run(req).await;
    if charge && challenged && resp.status().is_success() {
        measured = limits.measure(class, &who, true).or(measured);
    }
    if class == Class::Pull
        && let Some(m) = &measured
    {
        add_headers(resp.headers_mut(), m);
    }
    resp
}

/// Whether a request checks a secret the way a guesser would use: Basic
/// credentials, or a `POST /token` form.
fn presents_secret(req: &Request, token: bool) -> bool {
    let basic = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.len() > 6 && v[..6].eq_ignore_ascii_case("basic "));
    basic || (token && req.method() == Method::POST)
}

/// Token requests and failed authentications, per client address, before
/// anything else is done.
pub(crate) async fn app_layer(
    State(state): State<Arc<AppState>>,
    req: Request,
    next: Next,
) -> Response {
    let Some(limits) = &state.abuse.limits else {
        return next.run(req).await;
    };
    let token = req.uri().path() == "/token";
    let who = Subject {
        user: None,
        ip: client_ip(&req),
        in_group: &super::no_group,
    };
    if token
        && let Some(m) = limits.measure(Class::Token, &who, true)
        && !m.allowed
    {
        return refuse(&state, &req, Class::Token, &m);
    }
    let secret = limits.limits(Class::AuthFailure) && presents_secret(&req, token);
    if secret
        && let Some(m) = limits.measure(Class::AuthFailure, &who, false)
        && !m.allowed
    {
        return refuse(&state, &req, Class::AuthFailure, &m);
    }
    let resp = next.run(req).await;
    if secret && resp.status() == StatusCode::UNAUTHORIZED {
        limits.measure(Class::AuthFailure, &who, true);
    }
    resp
}
