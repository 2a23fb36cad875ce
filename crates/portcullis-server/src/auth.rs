//! Authentication at the edge: parses `Authorization`, verifies Basic
//! credentials against htpasswd (cached; bcrypt on a blocking thread) or a
//! bearer token against the trusted issuers, and builds the 401 challenges.
//! What the caller may do is decided in `handlers::authorize` from the
//! central access computation.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, HeaderValue, header};
use base64::Engine;
use portcullis_auth::access::AccessControl;
use portcullis_auth::identity::Identity;
use portcullis_auth::scope::Grants;
use portcullis_auth::token::{self, Claims, TokenError};
use secrecy::SecretString;

use crate::error::{ApiError, Code};
use crate::events::RequestInfo;
use crate::state::{AppState, AuthMode, Bearer};
use crate::tls::ClientCertificate;
use crate::token_cache::{Verified, identity_of};
use portcullis_types::event::{Kind, What};

/// Longest Authorization header we will decode.
const MAX_AUTH_HEADER: usize = 16 * 1024;

/// What the request's bearer token turned out to be.
pub(crate) enum TokenState {
    /// Not bearer mode, or no token presented.
    Absent,
    Valid(Grants),
    /// Verified except for expiry, and expired less than the upload grace
    /// period ago: usable only on upload sessions bound to its subject.
    Expired(Box<Claims>),
    Invalid(TokenError),
}

/// Who is calling, and with which token.
pub(crate) struct Caller {
    pub identity: Identity,
    pub token: TokenState,
    /// The identity comes from a verified client certificate
    /// (`http.tls.clientidentity`), with no `Authorization` header.
    pub by_certificate: bool,
}

/// The identity a connection's client certificate names (no `Authorization`
/// header was sent). A certificate that names nobody usable is refused with
/// a 403 saying why: the client presented an identity, so it is not asked to
/// authenticate again.
pub(crate) async fn certificate_identity(
    state: &AppState,
    access: &Arc<AccessControl>,
    certificate: &ClientCertificate,
    info: &RequestInfo,
) -> Result<Identity, ApiError> {
    let refuse = |why: String| {
        let user = certificate.name.clone().unwrap_or_default();
        state.events.emit(Kind::Authentication, || {
            info.event(
                &Identity::Anonymous,
                What::Authentication {
                    user,
                    ok: false,
                    provider: Some("certificate"),
                    reason: Some(format!("client certificate refused: {why}")),
                },
            )
        });
        ApiError::msg(Code::Denied, format!("client certificate: {why}"))
    };
    let shown: String = certificate
        .name
        .as_deref()
        .unwrap_or("(unnamed certificate)")
        .chars()
        .take(100)
        .collect();
    crate::abuse::lockout::admit(state, info, &shown)?;
    let name = certificate.name.clone().map_err(|why| {
        crate::abuse::lockout::record(state, info, &shown, false);
        refuse(why)
    })?;
    let result = if name.contains(portcullis_auth::robots::LOGIN_SEPARATOR) {
        // A robot: the store is a file read, so off the async threads.
        let access = access.clone();
        match tokio::task::spawn_blocking(move || access.certificate_login(&name)).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "certificate login task failed");
                return Err(ApiError::new(Code::Unknown));
            }
        }
    } else {
        access.certificate_login(&name)
    };
    crate::abuse::lockout::record(state, info, &shown, result.is_ok());
    result.map_err(|e| refuse(e.to_string()))
}

/// A bearer token's subject as the identity the policy should see: a token
/// issued to a robot (`owner+name`) names the robot, whose scope narrows
/// what it may do (the catalog, which a token's grants do not cover), as long
/// as it is still live and its owner exists; a robot that is gone sees only
/// what anonymous callers see. Other identities pass through.
pub(crate) async fn policy_identity(state: &Arc<AppState>, caller: &Caller) -> Identity {
    let Identity::User(user) = &caller.identity else {
        return caller.identity.clone();
    };
    let from_token = matches!(caller.token, TokenState::Valid(_) | TokenState::Expired(_));
    if !from_token
        || !user
            .as_str()
            .contains(portcullis_auth::robots::LOGIN_SEPARATOR)
        || !state.access.identities.has("robots")
    {
        return caller.identity.clone();
    }
    let access = state.access.clone();
    let login = user.as_str().to_owned();
    match tokio::task::spawn_blocking(move || access.certificate_login(&login)).await {
        Ok(Ok(robot @ Identity::Robot(_))) => robot,
        Ok(_) | Err(_) => Identity::Anonymous,
    }
}

pub(crate) fn basic_challenge(realm: &str, msg: &str) -> ApiError {
    let realm = realm.replace(['"', '\\'], "");
    ApiError::msg(Code::Unauthorized, msg).header(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_str(&format!("Basic realm=\"{realm}\", charset=\"UTF-8\""))
            .unwrap_or(HeaderValue::from_static("Basic realm=\"registry\"")),
    )
}

/// `Bearer realm=...,service=...[,scope=...][,error=...]`.
pub(crate) fn bearer_challenge(
    bearer: &Bearer,
    request_base: &str,
    scope: Option<&str>,
    error: Option<&str>,
    msg: &str,
) -> ApiError {
    let realm = bearer
        .realm
        .clone()
        .unwrap_or_else(|| format!("{request_base}{}", bearer.realm_path));
    let clean = |s: &str| s.replace(['"', '\\'], "");
    let mut value = format!(
        "Bearer realm=\"{}\",service=\"{}\"",
        clean(&realm),
        clean(&bearer.service)
    );
    if let Some(s) = scope {
        value.push_str(&format!(",scope=\"{}\"", clean(s)));
    }
    if let Some(e) = error {
        // RFC 6750's description: Go clients (docker, containerd, skopeo,
        // podman) show it instead of a generic "access denied".
        let description: String = clean(msg)
            .chars()
            .filter(|c| !c.is_control())
            .take(1000)
            .collect();
        value.push_str(&format!(
            ",error=\"{e}\",error_description=\"{description}\""
        ));
    }
    ApiError::msg(Code::Unauthorized, msg).header(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static("Bearer")),
    )
}

fn authorization(headers: &HeaderMap) -> Option<Result<(String, String), ()>> {
    let raw = headers.get(header::AUTHORIZATION)?;
    Some((|| {
        let value = raw.to_str().map_err(|_| ())?;
        if value.len() > MAX_AUTH_HEADER {
            return Err(());
        }
        let (scheme, rest) = value.split_once(' ').ok_or(())?;
        Ok((scheme.to_ascii_lowercase(), rest.trim().to_owned()))
    })())
}

/// Decodes Basic credentials (`user:password`, base64).
pub(crate) fn decode_basic(encoded: &str) -> Result<(String, SecretString), ()> {
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|_| ())?;
    let text = String::from_utf8(decoded).map_err(|_| ())?;
    let (user, pass) = text.split_once(':').ok_or(())?;
    Ok((user.to_owned(), SecretString::from(pass.to_owned())))
}

/// Basic credentials from the request, if any.
pub(crate) fn basic_credentials(headers: &HeaderMap) -> Option<Result<(String, SecretString), ()>> {
    match authorization(headers)? {
        Ok((scheme, rest)) if scheme == "basic" => Some(decode_basic(&rest)),
        _ => Some(Err(())),
    }
}

/// Checks a login (a user's password or a robot secret): the cache inline,
/// bcrypt or the robot store on a blocking thread. A full verification's
/// outcome is an authentication event (a cache hit repeats one already
/// reported).
pub(crate) async fn check_password(
    state: &AppState,
    access: &Arc<AccessControl>,
    info: &RequestInfo,
    user: String,
    pass: SecretString,
) -> Result<Identity, ApiError> {
    // Bounded here; the sinks that write text clean it (`events::LogSink`).
    let shown: String = user.chars().take(100).collect();
    // A locked-out pair is refused even with the right password.
    crate::abuse::lockout::admit(state, info, &shown)?;
    if let Some(identity) = access.login_cached(&user, &pass) {
        return Ok(identity);
    }
    let access = access.clone();
    let login = move || access.login(&user, &pass);
    let result = tokio::task::spawn_blocking(login).await;
    if let Ok(r) = &result {
        crate::abuse::lockout::record(state, info, &shown, r.is_ok());
        let (ok, provider, reason) = match r {
            Ok(_) => (true, None, None),
            Err(refusal) => (false, refusal.provider, Some(refusal.reason.clone())),
        };
        let actor = r.as_ref().map_or(Identity::Anonymous, Clone::clone);
        state.events.emit(Kind::Authentication, || {
            info.event(
                &actor,
                What::Authentication {
                    user: shown,
                    ok,
                    provider,
                    reason,
                },
            )
        });
    }
    match result {
        Ok(Ok(identity)) => Ok(identity),
        Ok(Err(_)) => Err(ApiError::msg(
            Code::Unauthorized,
            "invalid username or password",
        )),
        Err(e) => {
            tracing::error!(error = %e, "authentication task failed");
            Err(ApiError::new(Code::Unknown))
        }
    }
}

/// Verifies a bearer token against every trusted issuer, remembering
/// verified tokens until they expire (a signature check costs far more than
/// the request it guards).
fn verify_bearer(
    bearer: &Bearer,
    token: &str,
    now: SystemTime,
) -> Result<Arc<Verified>, TokenError> {
    if let Some(v) = bearer.cache.get(token, now) {
        return Ok(v);
    }
    let verified = Arc::new(Verified::from_claims(verify_uncached(bearer, token, now)?));
    bearer.cache.put(token, verified.clone());
    Ok(verified)
}

fn verify_uncached(bearer: &Bearer, token: &str, now: SystemTime) -> Result<Claims, TokenError> {
    let mut first_err = None;
    for v in &bearer.verifiers {
        match v.verify(token, now) {
            Ok(c) => return Ok(c),
            Err(e) => {
                if first_err.is_none() || matches!(e, TokenError::Expired) {
                    first_err = Some(e);
                }
            }
        }
    }
    Err(first_err.unwrap_or(TokenError::UnknownKey))
}

/// For an expired token: its claims if it verifies at the last instant it
/// was valid (so signature, issuer and audience are all checked).
fn verify_expired(
    bearer: &Bearer,
    grace: Duration,
    token: &str,
    now: SystemTime,
) -> Option<Claims> {
    let unverified = token::decode_unverified(token).ok()?;
    let exp = unverified.claims.exp?;
    let at = UNIX_EPOCH + Duration::from_secs(exp.saturating_sub(1));
    let claims = verify_uncached(bearer, token, at).ok()?;
    let age = now
        .duration_since(UNIX_EPOCH + Duration::from_secs(claims.exp))
        .unwrap_or_default();
    (age <= grace).then_some(claims)
}

/// The pipeline's authentication layer: finds out who is calling and puts
/// the [`Caller`] in the request's extensions for everything after it
/// (limits, events, dispatch). A wrong Basic password ends the request
/// here with a 401; everything else (anonymous callers, bearer tokens that
/// fail) goes on, because the answer depends on the access the route needs.
pub(crate) async fn layer(
    axum::extract::State(state): axum::extract::State<Arc<AppState>>,
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let certificate = req.extensions().get::<Arc<ClientCertificate>>().cloned();
    let info = req
        .extensions()
        .get::<RequestInfo>()
        .cloned()
        .unwrap_or_default();
    match authenticate(&state, req.headers(), certificate.as_deref(), &info).await {
        Ok(caller) => {
            if let Some(n) = req.extensions().get::<crate::headers::AccessNote>() {
                n.identity(caller.identity.subject());
            }
            req.extensions_mut().insert(Arc::new(caller));
            next.run(req).await
        }
        Err(e) => e.into_response(),
    }
}

/// Who is calling. In Basic mode a missing or wrong password is a 401 here;
/// in bearer mode the decision waits for the required access, because the
/// challenge must name the scope.
#[tracing::instrument(skip_all)]
pub(crate) async fn authenticate(
    state: &Arc<AppState>,
    headers: &HeaderMap,
    certificate: Option<&ClientCertificate>,
    info: &RequestInfo,
) -> Result<Caller, ApiError> {
    let caller = |identity, token| Caller {
        identity,
        token,
        by_certificate: false,
    };
    // Explicit credentials win; without them a verified client certificate
    // that names someone identifies the caller in every mode.
    if let Some(cert) = certificate
        && headers.get(header::AUTHORIZATION).is_none()
    {
        let identity = certificate_identity(state, &state.access, cert, info).await?;
        return Ok(Caller {
            identity,
            token: TokenState::Absent,
            by_certificate: true,
        });
    }
    match &state.auth {
        AuthMode::None => Ok(caller(Identity::Anonymous, TokenState::Absent)),
        AuthMode::Basic { realm } => match basic_credentials(headers) {
            // No credentials: anonymous; the policy decides (a denial is a 401).
            None => Ok(caller(Identity::Anonymous, TokenState::Absent)),
            Some(Err(())) => Err(basic_challenge(realm, "malformed Basic credentials")),
            Some(Ok((user, pass))) => {
                match check_password(state, &state.access, info, user, pass).await {
                    Ok(identity) => Ok(caller(identity, TokenState::Absent)),
                    Err(e) if e.code == Code::Unauthorized => {
                        Err(basic_challenge(realm, "invalid username or password"))
                    }
                    Err(e) => Err(e),
                }
            }
        },
        AuthMode::Bearer(bearer) => {
            let Some(auth) = authorization(headers) else {
                return Ok(caller(Identity::Anonymous, TokenState::Absent));
            };
            let token = match auth {
                Ok((scheme, rest)) if scheme == "bearer" => rest,
                _ => {
                    let e = TokenError::Malformed("expected a Bearer token".into());
                    return Ok(caller(Identity::Anonymous, TokenState::Invalid(e)));
                }
            };
            let now = SystemTime::now();
            match verify_bearer(bearer, &token, now) {
                Ok(v) => Ok(caller(
                    v.identity.clone(),
                    TokenState::Valid(v.grants.clone()),
                )),
                Err(TokenError::Expired) => {
                    match verify_expired(bearer, state.uploads.grace(), &token, now) {
                        Some(claims) => Ok(caller(
                            identity_of(&claims.sub),
                            TokenState::Expired(Box::new(claims)),
                        )),
                        None => Ok(caller(
                            Identity::Anonymous,
                            TokenState::Invalid(TokenError::Expired),
                        )),
                    }
                }
                Err(e) => {
                    tracing::info!(error = %e, "bearer token rejected");
                    Ok(caller(Identity::Anonymous, TokenState::Invalid(e)))
                }
            }
        }
    }
}
