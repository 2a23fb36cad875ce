//! Authentication at the edge: parses `Authorization`, verifies Basic
//! credentials against htpasswd on a blocking thread, and builds the 401
//! challenge. Authorization (what an identity may do) is applied by the
//! caller from the central access computation.

use std::sync::Arc;

use axum::http::{HeaderMap, HeaderValue, header};
use base64::Engine;
use portcullis_auth::identity::Identity;
use secrecy::SecretString;

use crate::error::{ApiError, Code};
use crate::state::{AppState, AuthMode};

/// Longest Authorization header we will decode.
const MAX_AUTH_HEADER: usize = 8 * 1024;

fn challenge(realm: &str, msg: &str) -> ApiError {
    let realm = realm.replace(['"', '\\'], "");
    ApiError::msg(Code::Unauthorized, msg).header(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_str(&format!("Basic realm=\"{realm}\", charset=\"UTF-8\""))
            .unwrap_or(HeaderValue::from_static("Basic realm=\"registry\"")),
    )
}

fn basic_credentials(headers: &HeaderMap) -> Option<Result<(String, SecretString), ()>> {
    let raw = headers.get(header::AUTHORIZATION)?;
    let parsed = (|| {
        let value = raw.to_str().map_err(|_| ())?;
        if value.len() > MAX_AUTH_HEADER {
            return Err(());
        }
        let (scheme, rest) = value.split_once(' ').ok_or(())?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return Err(());
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest.trim())
            .map_err(|_| ())?;
        let text = String::from_utf8(decoded).map_err(|_| ())?;
        let (user, pass) = text.split_once(':').ok_or(())?;
        Ok((user.to_owned(), SecretString::from(pass.to_owned())))
    })();
    Some(parsed)
}

/// Who is calling. Fails with a 401 challenge when credentials are required
/// and missing or wrong.
#[tracing::instrument(skip_all)]
pub(crate) async fn authenticate(
    state: &Arc<AppState>,
    headers: &HeaderMap,
) -> Result<Identity, ApiError> {
    match &state.auth {
        AuthMode::None => Ok(Identity::Anonymous),
        AuthMode::Htpasswd { realm, file } => match basic_credentials(headers) {
            None => Err(challenge(realm, "authentication required")),
            Some(Err(())) => Err(challenge(realm, "malformed Basic credentials")),
            Some(Ok((user, pass))) => {
                if let Some(name) = file.authenticate_cached(&user, &pass) {
                    return Ok(Identity::User(name));
                }
                let file = file.clone();
                let result =
                    tokio::task::spawn_blocking(move || file.authenticate(&user, &pass)).await;
                match result {
                    Ok(Ok(name)) => Ok(Identity::User(name)),
                    Ok(Err(_)) => {
                        tracing::info!("basic authentication failed");
                        Err(challenge(realm, "invalid username or password"))
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "authentication task failed");
                        Err(ApiError::new(Code::Unknown))
                    }
                }
            }
        },
    }
}
