//! The HTTP edge: axum routes, the OCI error table, the central access
//! check, Basic authentication, response headers, and serving.

pub mod access;
mod auth;
mod authorize;
mod early;
pub mod error;
mod handlers;
mod headers;
pub mod keys;
pub mod listen;
pub mod metrics;
pub mod policy;
pub mod proxy;
pub mod route;
mod serve;
mod state;
pub mod tls;
pub mod token_cache;

pub use serve::{ServeError, build_state, serve, spawn_upload_purger, tls_reloader};
pub use state::{AppState, AuthMode, Bearer, UrlPolicy};

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
        .route(
            "/token",
            axum::routing::get(handlers::token::get_token).post(handlers::token::post_token),
        )
        .route(
            "/.well-known/jwks.json",
            axum::routing::get(handlers::token::jwks),
        )
        .fallback(handlers::not_found)
        .layer(DefaultBodyLimit::disable())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            headers::add_headers,
        ))
        .layer(axum::middleware::from_fn(early::guard))
        .with_state(state)
}
