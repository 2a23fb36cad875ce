//! Headers on every response: the API version and the configured
//! `http.headers`; a request log line with a request id, the client's
//! address (see [`crate::proxy::client_addr`]), who was calling on which
//! repository, the user agent and the bytes in and out; and the request
//! metrics.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use crate::AppState;

/// What dispatch learns about a request, for its access-log line.
#[derive(Default)]
struct Seen {
    identity: String,
    repo: String,
}

/// Where dispatch records who called, on which repository (present on the
/// request only when the access log is on).
#[derive(Clone, Default)]
pub(crate) struct AccessNote(Arc<parking_lot::Mutex<Seen>>);

impl AccessNote {
    pub(crate) fn identity(&self, subject: String) {
        self.0.lock().identity = subject;
    }

    pub(crate) fn repo(&self, repo: &str) {
        repo.clone_into(&mut self.0.lock().repo);
    }
}

fn header_text(h: &axum::http::HeaderMap, name: axum::http::HeaderName) -> String {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.chars().take(256).collect())
        .unwrap_or_default()
}

pub(crate) async fn add_headers(
    State(state): State<Arc<AppState>>,
    mut req: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().chars().take(512).collect::<String>();
    let id = uuid::Uuid::new_v4().simple().to_string();
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let (client, forwarded) =
        crate::proxy::client_chain(req.headers(), peer, &state.urls.trusted_proxies).unzip();
    let info = crate::events::RequestInfo {
        id: id.as_str().into(),
        client: client.clone(),
        forwarded: forwarded.unwrap_or_default().into(),
        user_agent: req.headers().get(axum::http::header::USER_AGENT).cloned(),
        host: req.headers().get(axum::http::header::HOST).cloned(),
        method: method.clone(),
    };
    req.extensions_mut().insert(info);
    let client = state.access_log.then_some(client);
    let note = state.access_log.then(AccessNote::default);
    let (agent, bytes_in) = match &note {
        Some(n) => {
            req.extensions_mut().insert(n.clone());
            let h = req.headers();
            (
                header_text(h, axum::http::header::USER_AGENT),
                header_text(h, axum::http::header::CONTENT_LENGTH),
            )
        }
        None => Default::default(),
    };
    let received = state.metrics.as_ref().map_or(0, |_| {
        req.headers()
            .get(axum::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
            .unwrap_or(0)
    });
    let span = tracing::info_span!("request", id = %id);
    let mut resp = next.run(req).instrument(span).await;
    let h = resp.headers_mut();
    h.insert(
        "docker-distribution-api-version",
        HeaderValue::from_static("registry/2.0"),
    );
    for (k, v) in &state.headers {
        h.append(k.clone(), v.clone());
    }
    if let Ok(v) = HeaderValue::from_str(&id) {
        h.insert("x-request-id", v);
    }
    let elapsed = started.elapsed();
    if let Some(metrics) = &state.metrics {
        metrics.record_request(&method, resp.status(), elapsed);
        let sent = axum::body::HttpBody::size_hint(resp.body())
            .exact()
            .unwrap_or(0);
        metrics.record_bytes(received, sent);
        let upload = path.contains("/blobs/uploads/");
        match (&method, resp.status().as_u16()) {
            (&axum::http::Method::POST, 202) if upload => metrics.record_upload(true),
            (&axum::http::Method::PUT, 201) | (&axum::http::Method::DELETE, 204) if upload => {
                metrics.record_upload(false);
            }
            _ => {}
        }
    }
    let (Some(client), Some(note)) = (client, note) else {
        return resp;
    };
    let status = resp.status().as_u16();
    let client = client.as_deref().unwrap_or("-");
    let bytes_out = axum::body::HttpBody::size_hint(resp.body())
        .exact()
        .map_or_else(
            || header_text(resp.headers(), axum::http::header::CONTENT_LENGTH),
            |n| n.to_string(),
        );
    let seen = note.0.lock();
    let dash = |s: &str| {
        if s.is_empty() {
            "-".to_owned()
        } else {
            s.to_owned()
        }
    };
    tracing::info!(
        request_id = %id, %method, path, status, client,
        user = %dash(&seen.identity), repo = %dash(&seen.repo),
        user_agent = %dash(&agent), bytes_in = %dash(&bytes_in), bytes_out = %dash(&bytes_out),
        elapsed_ms = elapsed.as_millis() as u64, "request"
    );
    drop(seen);
    resp
}
