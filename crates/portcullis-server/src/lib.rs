//! The HTTP edge: axum routes, the OCI error table, the central access
//! check, Basic authentication, response headers, and serving.

pub mod access;
mod auth;
pub mod error;
mod handlers;
mod headers;
pub mod route;
mod serve;
mod state;

pub use serve::{ServeError, build_state, serve, spawn_upload_purger};
pub use state::{AppState, AuthMode, UrlPolicy};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::any;

/// The whole application as a router, for serving or for in-process tests.
pub fn app(state: AppState) -> Router {
    let state = std::sync::Arc::new(state);
    Router::new()
        .route("/v2", any(handlers::dispatch))
        .route("/v2/", any(handlers::dispatch))
        .route("/v2/{*rest}", any(handlers::dispatch))
        .fallback(handlers::not_found)
        .layer(DefaultBodyLimit::disable())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            headers::add_headers,
        ))
        .with_state(state)
}
