//! Headers on every response: the API version and the configured
//! `http.headers`; and a request log line with a request id.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
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
    let status = resp.status().as_u16();
    if !state.access_log {
        return resp;
    }
    tracing::info!(request_id = %id, %method, path, status, elapsed_ms = started.elapsed().as_millis() as u64, "request");
    resp
}
