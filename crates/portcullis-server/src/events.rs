//! The server's side of the event port: the request's context (id, client)
//! that every event carries, the decision log as a sink ([`LogSink`]), and
//! the pipeline's events layer, which turns a successful write's route and
//! response into a change event, so no handler has to emit one.

use std::sync::Arc;
use std::time::SystemTime;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use portcullis_auth::identity::Identity;
use portcullis_types::event::{ChangeKind, Event, EventSink, Kind, What};

use crate::AppState;
use crate::route::{self, Route};

/// The request an event happened in, set by the first layer.
#[derive(Debug, Clone, Default)]
pub struct RequestInfo {
    pub id: Arc<str>,
    pub client: Option<String>,
    /// The chain through trusted proxies, client first (empty without one).
    pub forwarded: Arc<[String]>,
    pub user_agent: Option<HeaderValue>,
    pub host: Option<HeaderValue>,
    pub method: Method,
}

/// A header's text, without control characters, at most 256 characters.
fn text(v: Option<&HeaderValue>) -> Option<String> {
    // `to_str` admits visible ASCII and tabs only: a short value without a
    // tab is already clean.
    let v = v?.to_str().ok()?;
    if v.len() <= 256 && !v.contains('\t') {
        return Some(v.to_owned());
    }
    Some(v.chars().filter(|c| !c.is_control()).take(256).collect())
}

impl RequestInfo {
    /// An event by `actor` in this request.
    #[must_use]
    pub fn event(&self, actor: &Identity, what: What) -> Event {
        Event {
            at: SystemTime::now(),
            actor: actor.subject(),
            client: self.client.clone(),
            request_id: Some(self.id.to_string()),
            user_agent: text(self.user_agent.as_ref()),
            forwarded: self.forwarded.to_vec(),
            method: Some(self.method.as_str().to_owned()),
            host: text(self.host.as_ref()),
            what,
        }
    }
}

/// Emits a decision (a denial, or an allow when a sink wants those).
pub(crate) fn decision(
    state: &AppState,
    info: &RequestInfo,
    actor: &Identity,
    repository: Option<&str>,
    action: &str,
    allowed: bool,
    explanation: &str,
) {
    let kind = if allowed {
        Kind::Decision
    } else {
        Kind::Denial
    };
    state.events.emit(kind, || {
        info.event(
            actor,
            What::Decision {
                repository: repository.map(str::to_owned),
                action: action.to_owned(),
                allowed,
                explanation: explanation.to_owned(),
            },
        )
    });
}

/// The decision log: refusals and failed logins at info (with who and why,
/// never a secret), everything else at debug.
#[derive(Debug, Default)]
pub struct LogSink;

/// What a log line may show of text from a request.
fn clean(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(200).collect()
}

impl EventSink for LogSink {
    fn name(&self) -> &'static str {
        "log"
    }

    fn wants(&self, kind: Kind) -> bool {
        matches!(
            kind,
            Kind::Denial | Kind::Authentication | Kind::Admin | Kind::Abuse
        ) || tracing::enabled!(tracing::Level::DEBUG)
    }

    fn emit(&self, e: &Event) {
        let subject = clean(&e.actor);
        let request_id = e.request_id.as_deref().unwrap_or("-");
        match &e.what {
            What::Decision {
                allowed: false,
                explanation,
                ..
            } => tracing::info!(%subject, decision = %explanation, request_id, "access denied"),
            What::Decision { explanation, .. } => {
                tracing::debug!(%subject, decision = %explanation, request_id, "access allowed");
            }
            What::Authentication {
                user,
                ok: false,
                provider,
                reason,
            } => tracing::info!(
                user = %clean(user),
                reason = reason.as_deref().unwrap_or("-"),
                provider = provider.unwrap_or("none"),
                request_id,
                "authentication failed"
            ),
            What::Authentication { user, provider, .. } => tracing::debug!(
                user = %clean(user), provider = provider.unwrap_or("none"), request_id, "authenticated"
            ),
            What::TokenIssued { scopes } => {
                tracing::debug!(%subject, scopes = %scopes.join(" "), request_id, "token issued");
            }
            What::Change {
                kind,
                repository,
                reference,
                digest,
                ..
            } => tracing::debug!(
                %subject, change = kind.as_str(), repository = %repository,
                reference = reference.as_deref().unwrap_or("-"),
                digest = digest.as_deref().unwrap_or("-"), request_id, "repository changed"
            ),
            What::Pull {
                repository,
                reference,
                bytes,
                ..
            } => tracing::debug!(
                %subject, repository = %repository, reference = %reference, bytes, request_id, "pulled"
            ),
            What::Lockout {
                account,
                failures,
                retry_after,
            } => tracing::warn!(
                account = %clean(account), failures, retry_after, client = e.client.as_deref().unwrap_or("-"),
                request_id, "login locked out after repeated failures"
            ),
            What::RateLimited {
                class,
                key,
                retry_after,
            } => tracing::info!(
                class, key = %clean(key), retry_after, request_id, "rate limit reached"
            ),
            What::Admin { command, detail } => {
                tracing::info!(%subject, command = %command, detail = %clean(detail), "admin action");
            }
        }
    }
}

/// What the request did to a repository, read off the request before the
/// handler runs (the response says whether it happened).
struct Pending {
    method: Method,
    route: Route,
    mounted: bool,
    media_type: Option<String>,
    size: Option<u64>,
    /// For a manifest put by tag: the digest the tag named before.
    previous: Option<String>,
}

fn header_str(h: &axum::http::HeaderMap, name: axum::http::HeaderName) -> Option<String> {
    h.get(name)?.to_str().ok().map(str::to_owned)
}

fn header_u64(h: &axum::http::HeaderMap, name: axum::http::HeaderName) -> Option<u64> {
    h.get(name)?.to_str().ok()?.parse().ok()
}

/// The events the response to `p` makes: a pull for a manifest or blob
/// read (`GET`, 200 or 206), a change for a write that succeeded (201 or
/// 202), and a tag move when a pushed tag named another manifest before.
fn events_of(p: Pending, resp: &Response) -> Vec<What> {
    use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
    let status = resp.status();
    let h = resp.headers();
    let digest = header_str(
        h,
        axum::http::HeaderName::from_static("docker-content-digest"),
    );
    if p.method == Method::GET {
        if !(status == StatusCode::OK || status == StatusCode::PARTIAL_CONTENT) {
            return Vec::new();
        }
        let (manifest, repo, reference) = match p.route {
            Route::Manifest(n, r) => (true, n, r.to_string()),
            Route::Blob(n, d) => (false, n, d.to_string()),
            _ => return Vec::new(),
        };
        let bytes = axum::body::HttpBody::size_hint(resp.body())
            .exact()
            .or_else(|| header_u64(h, CONTENT_LENGTH))
            .unwrap_or(0);
        return vec![What::Pull {
            manifest,
            repository: repo.as_str().to_owned(),
            reference,
            digest,
            media_type: header_str(h, CONTENT_TYPE),
            bytes,
            status: status.as_u16(),
        }];
    }
    if !(status == StatusCode::CREATED || status == StatusCode::ACCEPTED) {
        return Vec::new();
    }
    let (kind, repo, reference) = match (&p.method, p.route) {
        (&Method::PUT, Route::Manifest(n, r)) => {
            (ChangeKind::ManifestPushed, n, Some(r.to_string()))
        }
        (&Method::DELETE, Route::Manifest(n, r)) => {
            (ChangeKind::ManifestDeleted, n, Some(r.to_string()))
        }
        (&Method::DELETE, Route::Blob(n, d)) => (ChangeKind::BlobDeleted, n, Some(d.to_string())),
        (&Method::PUT, Route::Upload(n, _)) => (ChangeKind::BlobPushed, n, None),
        (&Method::POST, Route::UploadStart(n)) if status == StatusCode::CREATED => (
            if p.mounted {
                ChangeKind::BlobMounted
            } else {
                ChangeKind::BlobPushed
            },
            n,
            None,
        ),
        _ => return Vec::new(),
    };
    let change = |kind, previous| What::Change {
        kind,
        repository: repo.as_str().to_owned(),
        reference: reference.clone(),
        digest: digest.clone(),
        media_type: p.media_type.clone(),
        size: p.size,
        previous,
        status: status.as_u16(),
    };
    let mut out = vec![change(kind, None)];
    if let Some(previous) = p.previous.filter(|prev| Some(prev) != digest.as_ref()) {
        out.push(change(ChangeKind::TagMoved, Some(previous)));
    }
    out
}

/// What a request may do that events are made of, if anything.
async fn pending(
    state: &AppState,
    method: &Method,
    uri: &axum::http::Uri,
    h: &axum::http::HeaderMap,
    body_len: Option<u64>,
) -> Option<Pending> {
    use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
    let method = method.clone();
    let pull = method == Method::GET;
    let wanted = if pull {
        state.events.wants(Kind::Pull)
    } else {
        method != Method::HEAD && state.events.wants(Kind::Change)
    };
    if !wanted {
        return None;
    }
    let rest = uri.path().strip_prefix("/v2/")?;
    let route = route::parse(rest).ok()?;
    if pull && !matches!(route, Route::Manifest(..) | Route::Blob(..)) {
        return None;
    }
    let mut previous = None;
    if let (&Method::PUT, Route::Manifest(n, r @ portcullis_types::Reference::Tag(_))) =
        (&method, &route)
    {
        previous = state
            .registry
            .resolve(n, r)
            .await
            .ok()
            .map(|d| d.to_string());
    }
    Some(Pending {
        mounted: uri.query().is_some_and(|q| q.contains("mount=")),
        media_type: matches!(route, Route::Manifest(..))
            .then(|| header_str(h, CONTENT_TYPE))
            .flatten(),
        size: matches!(route, Route::Manifest(..))
            .then(|| header_u64(h, CONTENT_LENGTH).or(body_len))
            .flatten(),
        method,
        route,
        previous,
    })
}

/// The request's context and its caller (anonymous before authentication).
pub(crate) fn context(req: &Request) -> (RequestInfo, Identity) {
    let info = req
        .extensions()
        .get::<RequestInfo>()
        .cloned()
        .unwrap_or_default();
    let actor = req
        .extensions()
        .get::<Arc<crate::auth::Caller>>()
        .map_or(Identity::Anonymous, |c| c.identity.clone());
    (info, actor)
}

/// The events layer: after the handler, the pull or change the request
/// made, by the caller the authentication layer found.
pub(crate) async fn layer(
    State(state): State<Arc<AppState>>,
    req: Request,
    next: Next,
) -> Response {
    let body_len = axum::body::HttpBody::size_hint(req.body()).exact();
    let Some(p) = pending(&state, req.method(), req.uri(), req.headers(), body_len).await else {
        return next.run(req).await;
    };
    let (info, actor) = context(&req);
    let resp = next.run(req).await;
    for what in events_of(p, &resp) {
        state.events.emit(what.kind(), || info.event(&actor, what));
    }
    resp
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_log_sink_keeps_the_contract() {
        portcullis_types::event::sink_contract(&super::LogSink);
    }
}
