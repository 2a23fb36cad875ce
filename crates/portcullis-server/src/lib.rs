//! The HTTP edge: axum routes, the OCI error table, the central access
//! check, Basic authentication, response headers, and serving.

pub mod abuse;
pub mod access;
mod auth;
mod authorize;
pub mod cors;
mod early;
pub mod error;
pub mod events;
mod handlers;
mod headers;
pub mod listen;
pub mod metrics;
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

/// The sinks a server starts with: the decision log.
#[must_use]
pub fn default_sinks() -> portcullis_types::event::Sinks {
    portcullis_types::event::Sinks::new(vec![std::sync::Arc::new(events::LogSink)])
}

/// The whole application as a router, for serving or for in-process tests.
///
/// The pipeline, outermost first: early responses (`early.rs`), request id
/// and access log (`headers.rs`), CORS (`cors.rs`: preflights answered
/// here, before authentication); then for `/v2/`: authentication (`auth::layer`, which puts the caller in the request's
/// extensions), rate limits per identity (`abuse::limits`), events
/// (`events::layer`), and dispatch (route, required access, the one
/// decision, a thin handler). `/token` has its own authentication layer
/// (`handlers::token::layer`), so its handler only grants and issues.
pub fn app(state: AppState) -> Router {
    use axum::middleware::from_fn_with_state;
    let state = std::sync::Arc::new(state);
    let v2 = Router::new()
        .route("/v2", any(handlers::dispatch))
        .route("/v2/", any(handlers::dispatch))
        .route("/v2/{*rest}", any(handlers::dispatch))
        .layer(from_fn_with_state(state.clone(), events::layer))
        .layer(from_fn_with_state(state.clone(), abuse::limits::v2_layer))
        .layer(from_fn_with_state(state.clone(), auth::layer));
    Router::new()
        .merge(v2)
        .route(
            "/token",
            axum::routing::get(handlers::token::token)
                .post(handlers::token::token)
                .route_layer(from_fn_with_state(state.clone(), handlers::token::layer)),
        )
        .route(
            "/.well-known/jwks.json",
            axum::routing::get(handlers::token::jwks),
        )
        .fallback(handlers::not_found)
        .layer(DefaultBodyLimit::disable())
        .layer(from_fn_with_state(state.clone(), abuse::limits::app_layer))
        .layer(from_fn_with_state(state.clone(), cors::layer))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            headers::add_headers,
        ))
        .layer(axum::middleware::from_fn(early::guard))
        .with_state(state)
}
