//! The token service over HTTP: `GET /token` (Docker token spec),
//! `POST /token` (OAuth2 password and refresh_token grants) and
//! `GET /.well-known/jwks.json`. [`request::layer`] reads a token request
//! and authenticates its caller (a password, a client certificate or a
//! refresh token) before the handler runs, as `auth::layer` does for
//! `/v2/`; the handler only grants and issues. The decisions live in
//! `portcullis_auth::service`; this maps requests and errors.

mod request;

use std::sync::Arc;
use std::time::SystemTime;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use portcullis_auth::identity::Identity;
use portcullis_auth::scope::Scope;
use portcullis_auth::service::{Issued, ServiceError, TokenService};
use secrecy::ExposeSecret;

use crate::AppState;
use portcullis_types::event::{Kind, What};
pub(crate) use request::{TokenRequest, layer};

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    // OAuth2's fields, plus distribution's `errors` list so that the Docker
    // client prints `unauthorized: <description>` instead of a parse error.
    let body = serde_json::json!({
        "error": error,
        "error_description": description,
        "errors": [{ "code": "UNAUTHORIZED", "message": description }],
    });
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn service_error(e: &ServiceError) -> Response {
    match e {
        ServiceError::InvalidCredentials => oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_grant",
            "invalid username or password",
        ),
        ServiceError::InvalidGrant(m) => oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", m),
        ServiceError::RefreshDisabled => oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            &e.to_string(),
        ),
        ServiceError::WrongService(_) => {
            oauth_error(StatusCode::BAD_REQUEST, "invalid_request", &e.to_string())
        }
        ServiceError::Refresh(_) | ServiceError::Token(_) => {
            tracing::error!(error = %e, "token service failure");
            oauth_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "the token service failed",
            )
        }
    }
}

fn issued_response(issued: &Issued, oauth: bool) -> Response {
    let issued_at = time::OffsetDateTime::from(issued.issued_at)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let mut body = serde_json::json!({
        "token": issued.token,
        "access_token": issued.token,
        "expires_in": issued.expires_in,
        "issued_at": issued_at,
    });
    if oauth {
        body["scope"] = serde_json::Value::String(issued.scope.join(" "));
    }
    if let Some(r) = &issued.refresh_token {
        body["refresh_token"] = serde_json::Value::String(r.expose_secret().to_owned());
    }
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body.to_string(),
    )
        .into_response()
}

fn service(state: &AppState) -> Option<&Arc<TokenService>> {
    state.token_service.as_ref()
}

fn not_served() -> Response {
    oauth_error(
        StatusCode::NOT_FOUND,
        "invalid_request",
        "this registry has no token service (auth.tokenserver)",
    )
}

/// `GET /token` and `POST /token`, once [`request::layer`] has read the
/// request and authenticated its caller: grant what the policy allows and
/// answer with the token.
pub(crate) async fn token(
    State(state): State<Arc<AppState>>,
    axum::Extension(req): axum::Extension<Arc<TokenRequest>>,
    info: Option<axum::Extension<crate::events::RequestInfo>>,
) -> Response {
    let info = info.map(|i| i.0).unwrap_or_default();
    let Some(svc) = service(&state) else {
        return not_served();
    };
    let request = Granting {
        identity: &req.identity,
        scopes: &req.scopes,
        offline: req.offline.as_deref(),
        now: req.at,
        oauth: req.oauth,
        login_challenge: req.login_challenge,
    };
    grant_and_issue(&state, svc, &info, &request)
}

/// The answer to a password that was not accepted: a lockout's 429 as
/// it is, anything else as invalid credentials.
fn refused(e: crate::error::ApiError) -> Response {
    if e.code == crate::error::Code::TooManyRequests {
        return e.into_response();
    }
    service_error(&ServiceError::InvalidCredentials)
}

/// What a token request asks for, once its caller is known.
struct Granting<'a> {
    identity: &'a Identity,
    scopes: &'a [Scope],
    offline: Option<&'a str>,
    now: SystemTime,
    /// The OAuth2 form of the response (`POST /token`).
    oauth: bool,
    /// Answer a refusal with a Basic challenge instead of a narrower token.
    login_challenge: bool,
}

/// Grants what the policy allows of the scopes, with a decision event for
/// each refused action and one for the token, and answers with the token.
fn grant_and_issue(
    state: &AppState,
    svc: &TokenService,
    info: &crate::events::RequestInfo,
    g: &Granting<'_>,
) -> Response {
    let mut refused = false;
    let access = svc.grant(g.identity, g.scopes, |repo, action, why| {
        refused = true;
        let repo = (!repo.is_empty()).then_some(repo);
        crate::events::decision(state, info, g.identity, repo, action.as_str(), false, why);
    });
    if refused && g.login_challenge {
        let realm = svc.settings().service.replace('"', "");
        let mut resp = oauth_error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "log in: anonymous callers may not have all of the requested access",
        );
        if let Ok(v) = axum::http::HeaderValue::from_str(&format!("Basic realm=\"{realm}\"")) {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        return resp;
    }
    match svc.issue(g.identity, access, g.offline, g.now) {
        Ok(issued) => {
            state.events.emit(Kind::TokenIssued, || {
                info.event(
                    g.identity,
                    What::TokenIssued {
                        scopes: issued.scope.clone(),
                    },
                )
            });
            issued_response(&issued, g.oauth)
        }
        Err(e) => service_error(&e),
    }
}

/// `GET /.well-known/jwks.json`: the public keys tokens are signed with.
pub(crate) async fn jwks(State(state): State<Arc<AppState>>) -> Response {
    let Some(svc) = service(&state) else {
        return not_served();
    };
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        svc.keys().jwks().to_string(),
    )
        .into_response()
}
