//! The server's side of the event port: the request's context (id, client)
//! that every event carries, the decision log as a sink ([`LogSink`]), and
//! the pipeline's events layer, which turns a successful write's route and
//! response into a change event, so no handler has to emit one.

use std::sync::Arc;
use std::time::SystemTime;

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
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
        matches!(kind, Kind::Denial | Kind::Authentication | Kind::Admin)
            || tracing::enabled!(tracing::Level::DEBUG)
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
            } => tracing::debug!(
                %subject, change = kind.as_str(), repository = %repository,
                reference = reference.as_deref().unwrap_or("-"),
                digest = digest.as_deref().unwrap_or("-"), request_id, "repository changed"
            ),
            What::Admin { command, detail } => {
                tracing::info!(%subject, command = %command, detail = %clean(detail), "admin action");
            }
        }
    }
}

/// What a successful response to this request changed, if anything.
fn change_of(method: &Method, path: &str, query: Option<&str>, resp: &Response) -> Option<What> {
    let status = resp.status();
    if !(status == StatusCode::CREATED || status == StatusCode::ACCEPTED) {
        return None;
    }
    let rest = path.strip_prefix("/v2/")?;
    let digest = resp
        .headers()
        .get("docker-content-digest")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (kind, repo, reference) = match (method, route::parse(rest).ok()?) {
        (&Method::PUT, Route::Manifest(n, r)) => {
            (ChangeKind::ManifestPushed, n, Some(r.to_string()))
        }
        (&Method::DELETE, Route::Manifest(n, r)) => {
            (ChangeKind::ManifestDeleted, n, Some(r.to_string()))
        }
        (&Method::DELETE, Route::Blob(n, d)) => (ChangeKind::BlobDeleted, n, Some(d.to_string())),
        (&Method::PUT, Route::Upload(n, _)) => (ChangeKind::BlobPushed, n, None),
        (&Method::POST, Route::UploadStart(n)) if status == StatusCode::CREATED => {
            let mounted = query.is_some_and(|q| q.contains("mount="));
            (
                if mounted {
                    ChangeKind::BlobMounted
                } else {
                    ChangeKind::BlobPushed
                },
                n,
                None,
            )
        }
        _ => return None,
    };
    Some(What::Change {
        kind,
        repository: repo.as_str().to_owned(),
        reference,
        digest,
    })
}

/// The events layer: after the handler, a change event for a write that
/// succeeded, by the caller the authentication layer found.
pub(crate) async fn layer(
    State(state): State<Arc<AppState>>,
    req: Request,
    next: Next,
) -> Response {
    if !state.events.wants(Kind::Change) || matches!(*req.method(), Method::GET | Method::HEAD) {
        return next.run(req).await;
    }
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().map(str::to_owned);
    let info = req
        .extensions()
        .get::<RequestInfo>()
        .cloned()
        .unwrap_or_default();
    let actor = req
        .extensions()
        .get::<Arc<crate::auth::Caller>>()
        .map_or(Identity::Anonymous, |c| c.identity.clone());
    let resp = next.run(req).await;
    if let Some(what) = change_of(&method, &path, query.as_deref(), &resp) {
        state.events.emit(Kind::Change, || info.event(&actor, what));
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
