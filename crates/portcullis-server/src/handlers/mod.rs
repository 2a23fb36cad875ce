//! Request dispatch: parse the route, compute the access it needs, check it,
//! then call a thin handler that maps a core call to a response.

mod blobs;
mod lists;
mod manifests;
pub(crate) mod token;
mod uploads;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use portcullis_types::RepoName;

use crate::AppState;
use crate::access;
use crate::auth::{Caller, TokenState};
use crate::authorize::{authorize, challenge_unauthenticated};
use crate::error::{ApiError, Code};
use crate::route::{self, Route};
use crate::state::AuthMode;

/// What every handler gets besides its route.
pub(crate) struct Ctx {
    pub state: Arc<AppState>,
    pub method: Method,
    pub headers: HeaderMap,
    pub query: Vec<(String, String)>,
    /// Who is calling, from the authentication layer.
    pub caller: Arc<Caller>,
    /// The request's id and client, for events.
    pub info: crate::events::RequestInfo,
    /// The TCP peer, when the server was built with `ConnectInfo`.
    pub peer: Option<std::net::IpAddr>,
    /// portcullis terminated TLS on this request's connection.
    pub tls: bool,
    /// The request URI's authority (HTTP/2 has no `Host` header).
    pub authority: Option<String>,
    /// This server's end of the connection (from the accept loop).
    pub local: Option<crate::proxy::LocalEnd>,
    /// The repository is immutable (`access.immutable`), as the required
    /// access says: a manifest put may only create its tag, and a blob
    /// delete spares what a tag needs.
    pub immutable: bool,
}

impl Ctx {
    pub fn param(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// An URL for a path, following `http.host` and `http.relativeurls`.
    pub fn url(&self, path: &str) -> String {
        if self.state.urls.relative {
            return format!("{}{path}", self.state.urls.prefix);
        }
        self.absolute_url(path)
    }

    /// An absolute URL when one can be built (token realms must be absolute):
    /// from `http.host`, else from the forwarded headers of a trusted proxy,
    /// else from the request's `Host`.
    pub fn absolute_url(&self, path: &str) -> String {
        let urls = &self.state.urls;
        let path = format!("{}{path}", urls.prefix);
        if let Some(host) = &urls.host {
            return format!("{}{path}", host.trim_end_matches('/'));
        }
        let conn = crate::proxy::Connection {
            peer: self.peer,
            tls: self.tls,
            authority: self.authority.as_deref(),
            local: self.local.as_ref(),
        };
        match crate::proxy::origin_on(&self.headers, conn, &urls.trusted_proxies) {
            Some(origin) => format!("{origin}{path}"),
            None => path,
        }
    }

    /// The signed `_state` for an upload session's URL: carried over from
    /// the request, or made for a new session opened with a valid token.
    pub fn upload_state(&self, name: &RepoName, id: &str) -> Option<String> {
        if let Some(existing) = self.param("_state") {
            return Some(existing.to_owned());
        }
        match &self.state.auth {
            AuthMode::None => return None,
            AuthMode::Bearer(_)
                if !matches!(self.caller.token, TokenState::Valid(_))
                    && !self.caller.by_certificate =>
            {
                return None;
            }
            _ => {}
        }
        let sub = self.caller.identity.subject();
        Some(
            self.state
                .uploads
                .sign(&sub, name.as_str(), id, std::time::SystemTime::now()),
        )
    }
}

pub(crate) async fn not_found() -> Response {
    ApiError::new(Code::NotFound).into_response()
}

pub(crate) async fn dispatch(State(state): State<Arc<AppState>>, req: Request) -> Response {
    match handle(state, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn handle(state: Arc<AppState>, req: Request) -> Result<Response, ApiError> {
    let (parts, body) = req.into_parts();
    let rest = parts.uri.path().strip_prefix("/v2").unwrap_or_default();
    let rest = rest.strip_prefix('/').unwrap_or(rest);
    let query: Vec<(String, String)> = parts
        .uri
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();

    // The authentication layer ran first, so that probing for names or
    // routes needs credentials.
    let Some(caller) = parts.extensions.get::<Arc<Caller>>().cloned() else {
        tracing::error!("dispatch without the authentication layer");
        return Err(ApiError::new(Code::Unknown));
    };
    let note = parts
        .extensions
        .get::<crate::headers::AccessNote>()
        .cloned();
    let info = parts
        .extensions
        .get::<crate::events::RequestInfo>()
        .cloned()
        .unwrap_or_default();
    let peer = parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    let tls = parts
        .extensions
        .get::<crate::proxy::TlsConnection>()
        .is_some();
    let authority = parts.uri.authority().map(|a| a.as_str().to_owned());
    let local = parts.extensions.get::<crate::proxy::LocalEnd>().cloned();
    let ctx = Ctx {
        state,
        method: parts.method,
        headers: parts.headers,
        query,
        caller,
        info,
        peer,
        tls,
        authority,
        local,
        immutable: false,
    };
    let route = match route::parse_as(rest, route::Intent::of(&ctx.method)) {
        Ok(r) => r,
        Err(e) => {
            return Err(
                challenge_unauthenticated(&ctx.state, &ctx.caller, &ctx.absolute_url(""))
                    .unwrap_or(e),
            );
        }
    };
    if let (Some(n), Some(repo)) = (&note, route.repo()) {
        n.repo(repo.as_str());
    }
    let mount_from = match (&route, ctx.param("from")) {
        (Route::UploadStart(_), Some(from)) if ctx.param("mount").is_some() => {
            Some(from.parse::<RepoName>()?)
        }
        _ => None,
    };
    let policy = ctx.state.access.policy.current();
    let immutable = |n: &RepoName| ctx.state.enforce_policy && policy.is_immutable(n.as_str());
    let Some(required) = access::required(&route, &ctx.method, mount_from, &immutable) else {
        return Err(ApiError::msg(
            Code::MethodNotAllowed,
            format!("{} is not allowed on this endpoint", ctx.method),
        ));
    };
    authorize(
        &ctx.state,
        &ctx.caller,
        &route,
        &required,
        ctx.param("_state"),
        &ctx.absolute_url(""),
        &ctx.info,
    )?;
    drop(policy);
    let ctx = Ctx {
        immutable: required.immutable(),
        ..ctx
    };

    match route {
        Route::Base => Ok((
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            "{}",
        )
            .into_response()),
        Route::Catalog => lists::catalog(&ctx).await,
        Route::Tags(name) => lists::tags(&ctx, &name).await,
        Route::Referrers(name, digest) => lists::referrers(&ctx, &name, &digest).await,
        Route::Blob(name, digest) => blobs::handle(&ctx, &name, &digest).await,
        Route::Manifest(name, reference) => manifests::handle(&ctx, &name, &reference, body).await,
        Route::UploadStart(name) => uploads::start(&ctx, &name, body).await,
        Route::Upload(name, id) => uploads::handle(&ctx, &name, &id, body).await,
    }
}

/// Streams a request body as `Bytes` chunks.
pub(crate) fn body_stream(
    body: Body,
) -> impl futures::Stream<Item = Result<bytes::Bytes, axum::Error>> + Send + Unpin {
    body.into_data_stream()
}

/// Builds a header value from trusted text (digests, sizes, our own URLs).
pub(crate) fn hv(s: &str) -> axum::http::HeaderValue {
    axum::http::HeaderValue::from_str(s).unwrap_or(axum::http::HeaderValue::from_static(""))
}
