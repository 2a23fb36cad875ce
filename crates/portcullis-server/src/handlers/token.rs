//! The token service over HTTP: `GET /token` (Docker token spec),
//! `POST /token` (OAuth2 password and refresh_token grants) and
//! `GET /.well-known/jwks.json`. The decisions live in
//! `portcullis_auth::service`; this maps requests and errors.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use portcullis_auth::identity::Identity;
use portcullis_auth::scope::Scope;
use portcullis_auth::service::{Issued, ServiceError, TokenService};
use secrecy::{ExposeSecret, SecretString};

use crate::AppState;
use crate::auth::{basic_credentials, certificate_identity, check_password};
use crate::tls::ClientCertificate;
use portcullis_types::event::{Kind, What};

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

fn parse_scopes(values: &[&str]) -> Result<Vec<Scope>, Box<Response>> {
    Scope::parse_all(values.iter().copied()).map_err(|e| {
        Box::new(oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            &e.to_string(),
        ))
    })
}

/// `GET /token?service=&scope=&account=&offline_token=&client_id=`.
pub(crate) async fn get_token(
    State(state): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
    certificate: Option<axum::Extension<Arc<ClientCertificate>>>,
    note: Option<axum::Extension<crate::headers::AccessNote>>,
    info: Option<axum::Extension<crate::events::RequestInfo>>,
) -> Response {
    let info = info.map(|i| i.0).unwrap_or_default();
    let Some(svc) = service(&state) else {
        return not_served();
    };
    let query: Vec<(String, String)> = uri
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let param = |k: &str| {
        query
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    if let Err(e) = svc.check_service(param("service")) {
        return service_error(&e);
    }
    let scope_values: Vec<&str> = query
        .iter()
        .filter(|(k, _)| k == "scope")
        .map(|(_, v)| v.as_str())
        .collect();
    let scopes = match parse_scopes(&scope_values) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    // A verified client certificate naming someone stands in for Basic
    // credentials (so `docker pull` works without `docker login`), but gets
    // no refresh token: that would outlive the certificate.
    let mut by_certificate = false;
    let identity = match (basic_credentials(&headers), certificate) {
        (None, Some(axum::Extension(cert))) => {
            by_certificate = true;
            match certificate_identity(&state, svc.access(), &cert, &info).await {
                Ok(identity) => identity,
                Err(e) if e.code == crate::error::Code::TooManyRequests => {
                    return e.into_response();
                }
                Err(e) => {
                    return oauth_error(StatusCode::FORBIDDEN, "access_denied", &e.message);
                }
            }
        }
        (None, None) => Identity::Anonymous,
        (Some(Err(())), _) => {
            return oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_request",
                "malformed Basic credentials",
            );
        }
        (Some(Ok((user, pass))), _) => {
            match check_password(&state, svc.access(), &info, user, pass).await {
                Ok(identity) => identity,
                Err(e) => return refused(e),
            }
        }
    };
    if let Some(axum::Extension(n)) = &note {
        n.identity(identity.subject());
    }
    if let (Some(account), Identity::User(u)) = (param("account"), &identity)
        && !account.is_empty()
        && account != u.as_str()
    {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "account does not match the credentials",
        );
    }
    let offline = (param("offline_token") == Some("true") && !by_certificate)
        .then(|| param("client_id").unwrap_or("docker"));
    // A browser page (it sends `Origin`) that asks, without credentials,
    // for more than anonymous callers get is asked to log in, so a registry
    // UI can show its login form; Docker and other clients get the
    // anonymous token as before.
    let login_challenge = matches!(identity, Identity::Anonymous)
        && !by_certificate
        && headers.contains_key(header::ORIGIN);
    let request = Granting {
        identity: &identity,
        scopes: &scopes,
        offline,
        now: SystemTime::now(),
        oauth: false,
        login_challenge,
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

/// The largest `POST /token` form read.
const MAX_FORM: usize = 64 * 1024;

/// `POST /token`, an OAuth2 form with `grant_type=password|refresh_token`.
pub(crate) async fn post_token(
    State(state): State<Arc<AppState>>,
    note: Option<axum::Extension<crate::headers::AccessNote>>,
    info: Option<axum::Extension<crate::events::RequestInfo>>,
    body: axum::body::Body,
) -> Response {
    let info = info.map(|i| i.0).unwrap_or_default();
    let Some(svc) = service(&state).cloned() else {
        return not_served();
    };
    // Capped while it is read, before anyone is authenticated: a client
    // cannot make the server buffer more than the limit.
    let too_large = || {
        oauth_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request",
            &format!("the form is larger than {} KiB", MAX_FORM / 1024),
        )
    };
    let body: Bytes = {
        use http_body_util::BodyExt;
        // A declared Content-Length over the limit is refused unread.
        if hyper::body::Body::size_hint(&body).lower() > MAX_FORM as u64 {
            return too_large();
        }
        match http_body_util::Limited::new(body, MAX_FORM).collect().await {
            Ok(c) => c.to_bytes(),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => return too_large(),
            Err(e) => {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    &format!("the form could not be read: {e}"),
                );
            }
        }
    };
    let form: HashMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
    let field = |k: &str| form.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let Some(client_id) = field("client_id") else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "client_id is required",
        );
    };
    if let Err(e) = svc.check_service(field("service")) {
        return service_error(&e);
    }
    let scopes = match parse_scopes(&field("scope").into_iter().collect::<Vec<_>>()) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let now = SystemTime::now();
    let (identity, offline) = match field("grant_type") {
        Some("password") => {
            let (Some(user), Some(pass)) = (field("username"), form.get("password")) else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "username and password are required",
                );
            };
            let pass = SecretString::from(pass.clone());
            match check_password(&state, svc.access(), &info, user.to_owned(), pass).await {
                Ok(identity) => {
                    let offline = field("access_type") == Some("offline");
                    if let Some(axum::Extension(n)) = &note {
                        n.identity(identity.subject());
                    }
                    (identity, offline)
                }
                Err(e) => return refused(e),
            }
        }
        Some("refresh_token") => {
            let Some(token) = field("refresh_token") else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "refresh_token is required",
                );
            };
            use crate::abuse::lockout::{REFRESH_ACCOUNT, admit, record};
            if let Err(e) = admit(&state, &info, REFRESH_ACCOUNT) {
                return e.into_response();
            }
            let token = SecretString::from(token.to_owned());
            let client = client_id.to_owned();
            let svc2 = svc.clone();
            let redeemed =
                tokio::task::spawn_blocking(move || svc2.refresh_login(&token, &client, now)).await;
            if let Ok(r) = &redeemed {
                record(&state, &info, REFRESH_ACCOUNT, r.is_ok());
            }
            match redeemed {
                Ok(Ok(u)) => (Identity::user_named(u), false),
                Ok(Err(e)) => return service_error(&e),
                Err(_) => {
                    return oauth_error(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "server_error",
                        "the token service failed",
                    );
                }
            }
        }
        Some(other) => {
            let other: String = other.chars().take(64).collect();
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                &format!("grant_type `{other}` is not supported; use password or refresh_token"),
            );
        }
        None => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "grant_type is required",
            );
        }
    };
    let request = Granting {
        identity: &identity,
        scopes: &scopes,
        offline: offline.then_some(client_id),
        now,
        oauth: true,
        login_challenge: false,
    };
    grant_and_issue(&state, &svc, &info, &request)
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
