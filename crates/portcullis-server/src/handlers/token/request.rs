//! The token endpoint's authentication layer: it reads a `GET /token`
//! query or a `POST /token` form, checks the service and the scopes, and
//! authenticates the caller (Basic credentials, a client certificate, a
//! password grant or a refresh grant), every secret check under lockout.
//! The handler gets the result as a [`TokenRequest`] in the request's
//! extensions; a request that fails here is answered here, in the token
//! spec's (or OAuth2's) error form.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use portcullis_auth::identity::Identity;
use portcullis_auth::scope::Scope;
use portcullis_auth::service::TokenService;
use secrecy::SecretString;

use super::{not_served, oauth_error, refused, service, service_error};
use crate::AppState;
use crate::auth::{basic_credentials, certificate_identity, check_password};
use crate::events::RequestInfo;
use crate::headers::AccessNote;
use crate::tls::ClientCertificate;

/// A token request that has been read and whose caller is known.
#[derive(Debug)]
pub(crate) struct TokenRequest {
    pub identity: Identity,
    pub scopes: Vec<Scope>,
    /// The client id a refresh token is bound to, when one is wanted.
    pub offline: Option<String>,
    pub at: SystemTime,
    /// The OAuth2 form of the response (`POST /token`).
    pub oauth: bool,
    /// Answer a refusal with a Basic challenge instead of a narrower token.
    pub login_challenge: bool,
}

/// The layer: reads and authenticates, then runs the handler with the
/// [`TokenRequest`] in the extensions.
pub(crate) async fn layer(
    State(state): State<Arc<AppState>>,
    req: Request,
    next: Next,
) -> Response {
    let Some(svc) = service(&state).cloned() else {
        return not_served();
    };
    let info = req
        .extensions()
        .get::<RequestInfo>()
        .cloned()
        .unwrap_or_default();
    let note = req.extensions().get::<AccessNote>().cloned();
    let (parts, body) = req.into_parts();
    let read = if parts.method == Method::POST {
        from_form(&state, &svc, &info, body).await
    } else {
        from_query(&state, &svc, &info, &parts).await
    };
    match read {
        Ok(token) => {
            if let Some(n) = &note {
                n.identity(token.identity.subject());
            }
            let mut req = Request::from_parts(parts, axum::body::Body::empty());
            req.extensions_mut().insert(Arc::new(token));
            next.run(req).await
        }
        Err(resp) => *resp,
    }
}

type Refusal = Box<Response>;

fn bad(status: StatusCode, error: &str, description: &str) -> Refusal {
    Box::new(oauth_error(status, error, description))
}

fn parse_scopes(values: &[&str]) -> Result<Vec<Scope>, Refusal> {
    Scope::parse_all(values.iter().copied())
        .map_err(|e| bad(StatusCode::BAD_REQUEST, "invalid_scope", &e.to_string()))
}

/// `GET /token?service=&scope=&account=&offline_token=&client_id=`.
async fn from_query(
    state: &AppState,
    svc: &TokenService,
    info: &RequestInfo,
    req: &axum::http::request::Parts,
) -> Result<TokenRequest, Refusal> {
    let query: Vec<(String, String)> = req
        .uri
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let param = |k: &str| {
        query
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    svc.check_service(param("service"))
        .map_err(|e| Box::new(service_error(&e)))?;
    let scope_values: Vec<&str> = query
        .iter()
        .filter(|(k, _)| k == "scope")
        .map(|(_, v)| v.as_str())
        .collect();
    let scopes = parse_scopes(&scope_values)?;
    let headers: &HeaderMap = &req.headers;
    let certificate = req.extensions.get::<Arc<ClientCertificate>>().cloned();
    // A verified client certificate naming someone stands in for Basic
    // credentials (so `docker pull` works without `docker login`), but gets
    // no refresh token: that would outlive the certificate.
    let mut by_certificate = false;
    let identity = match (basic_credentials(headers), certificate) {
        (None, Some(cert)) => {
            by_certificate = true;
            match certificate_identity(state, svc.access(), &cert, info).await {
                Ok(identity) => identity,
                Err(e) if e.code == crate::error::Code::TooManyRequests => {
                    return Err(Box::new(e.into_response()));
                }
                Err(e) => return Err(bad(StatusCode::FORBIDDEN, "access_denied", &e.message)),
            }
        }
        (None, None) => Identity::Anonymous,
        (Some(Err(())), _) => {
            return Err(bad(
                StatusCode::UNAUTHORIZED,
                "invalid_request",
                "malformed Basic credentials",
            ));
        }
        (Some(Ok((user, pass))), _) => check_password(state, svc.access(), info, user, pass)
            .await
            .map_err(|e| Box::new(refused(e)))?,
    };
    if let (Some(account), Identity::User(u)) = (param("account"), &identity)
        && !account.is_empty()
        && account != u.as_str()
    {
        return Err(bad(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "account does not match the credentials",
        ));
    }
    let offline = (param("offline_token") == Some("true") && !by_certificate)
        .then(|| param("client_id").unwrap_or("docker").to_owned());
    // A browser page (it sends `Origin`) that asks, without credentials,
    // for more than anonymous callers get is asked to log in, so a registry
    // UI can show its login form; Docker and other clients get the
    // anonymous token as before.
    let login_challenge = matches!(identity, Identity::Anonymous)
        && !by_certificate
        && headers.contains_key(header::ORIGIN);
    Ok(TokenRequest {
        identity,
        scopes,
        offline,
        at: SystemTime::now(),
        oauth: false,
        login_challenge,
    })
}

/// The largest `POST /token` form read.
const MAX_FORM: usize = 64 * 1024;

/// Reads the form, capped while it is read, before anyone is
/// authenticated: a client cannot make the server buffer more than the
/// limit.
async fn read_form(body: axum::body::Body) -> Result<HashMap<String, String>, Refusal> {
    use http_body_util::BodyExt;
    let too_large = || {
        bad(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request",
            &format!("the form is larger than {} KiB", MAX_FORM / 1024),
        )
    };
    // A declared Content-Length over the limit is refused unread.
    if hyper::body::Body::size_hint(&body).lower() > MAX_FORM as u64 {
        return Err(too_large());
    }
    let body: Bytes = match http_body_util::Limited::new(body, MAX_FORM).collect().await {
        Ok(c) => c.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => return Err(too_large()),
        Err(e) => {
            return Err(bad(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                &format!("the form could not be read: {e}"),
            ));
        }
    };
    Ok(form_urlencoded::parse(&body).into_owned().collect())
}

/// `POST /token`, an OAuth2 form with `grant_type=password|refresh_token`.
async fn from_form(
    state: &AppState,
    svc: &Arc<TokenService>,
    info: &RequestInfo,
    body: axum::body::Body,
) -> Result<TokenRequest, Refusal> {
    let form = read_form(body).await?;
    let field = |k: &str| form.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let Some(client_id) = field("client_id") else {
        return Err(bad(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "client_id is required",
        ));
    };
    svc.check_service(field("service"))
        .map_err(|e| Box::new(service_error(&e)))?;
    let scopes = parse_scopes(&field("scope").into_iter().collect::<Vec<_>>())?;
    let now = SystemTime::now();
    let (identity, offline) = match field("grant_type") {
        Some("password") => {
            let (Some(user), Some(pass)) = (field("username"), form.get("password")) else {
                return Err(bad(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "username and password are required",
                ));
            };
            let pass = SecretString::from(pass.clone());
            let identity = check_password(state, svc.access(), info, user.to_owned(), pass)
                .await
                .map_err(|e| Box::new(refused(e)))?;
            (identity, field("access_type") == Some("offline"))
        }
        Some("refresh_token") => {
            let Some(token) = field("refresh_token") else {
                return Err(bad(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "refresh_token is required",
                ));
            };
            let token = SecretString::from(token.to_owned());
            (
                redeem(state, svc, info, token, client_id, now).await?,
                false,
            )
        }
        Some(other) => {
            let other: String = other.chars().take(64).collect();
            return Err(bad(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                &format!("grant_type `{other}` is not supported; use password or refresh_token"),
            ));
        }
        None => {
            return Err(bad(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "grant_type is required",
            ));
        }
    };
    Ok(TokenRequest {
        identity,
        scopes,
        offline: offline.then(|| client_id.to_owned()),
        at: now,
        oauth: true,
        login_challenge: false,
    })
}

/// A refresh grant: the refresh token is a secret, checked under lockout.
async fn redeem(
    state: &AppState,
    svc: &Arc<TokenService>,
    info: &RequestInfo,
    token: SecretString,
    client_id: &str,
    now: SystemTime,
) -> Result<Identity, Refusal> {
    use crate::abuse::lockout::{REFRESH_ACCOUNT, admit, record};
    admit(state, info, REFRESH_ACCOUNT).map_err(|e| Box::new(e.into_response()))?;
    let client = client_id.to_owned();
    let svc = svc.clone();
    let redeemed =
        tokio::task::spawn_blocking(move || svc.refresh_login(&token, &client, now)).await;
    if let Ok(r) = &redeemed {
        record(state, info, REFRESH_ACCOUNT, r.is_ok());
    }
    match redeemed {
        Ok(Ok(u)) => Ok(Identity::user_named(u)),
        Ok(Err(e)) => Err(Box::new(service_error(&e))),
        Err(_) => Err(bad(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "the token service failed",
        )),
    }
}
