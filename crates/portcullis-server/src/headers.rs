//! Headers on every response: the API version and the configured
//! `http.headers`; a request log line with a request id and the client's
//! address (see [`crate::proxy::client_addr`]); and the request metrics.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use crate::AppState;

pub(crate) async fn add_headers(
    State(state): State<Arc<AppState>>,
    req: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().chars().take(512).collect::<String>();
    let id = uuid::Uuid::new_v4().simple().to_string();
    let client = state.access_log.then(|| {
        let peer = req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        crate::proxy::client_addr(req.headers(), peer, &state.urls.trusted_proxies)
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
    }
    let Some(client) = client else {
        return resp;
    };
    let status = resp.status().as_u16();
    let client = client.as_deref().unwrap_or("-");
    tracing::info!(request_id = %id, %method, path, status, client, elapsed_ms = elapsed.as_millis() as u64, "request");
    resp
}
