//! Authorization: checks the access the central computation says a request
//! needs against what the caller has. In Basic mode an authenticated user
//! may do everything (per-repository policy comes later); in bearer mode the
//! token's `access` claim decides, and a refusal is a 401 challenge that
//! names the scope the client must ask for.

use std::time::SystemTime;

use portcullis_auth::identity::Identity;
use portcullis_auth::scope::Grants;
use portcullis_types::Action;

use crate::access::Required;
use crate::auth::{Caller, TokenState, bearer_challenge};
use crate::error::{ApiError, Code};
use crate::route::Route;
use crate::state::{AppState, AuthMode, Bearer};

/// The token scopes that cover `required` (space-separated in a challenge).
#[must_use]
pub fn scopes(required: &Required) -> Vec<String> {
    match required {
        Required::Base => Vec::new(),
        Required::Catalog => vec!["registry:catalog:*".to_owned()],
        Required::Repo {
            name,
            actions,
            mount_from,
        } => {
            let list: Vec<&str> = actions.iter().map(|a| a.as_str()).collect();
            let mut out = vec![format!("repository:{name}:{}", list.join(","))];
            if let Some(from) = mount_from {
                out.push(format!("repository:{from}:pull"));
            }
            out
        }
    }
}

fn allowed(grants: &Grants, required: &Required) -> bool {
    match required {
        Required::Base => true,
        Required::Catalog => grants.allows("registry", "catalog", "*"),
        Required::Repo {
            name,
            actions,
            mount_from,
        } => {
            actions
                .iter()
                .all(|a| grants.allows("repository", name.as_str(), a.as_str()))
                && mount_from
                    .as_ref()
                    .is_none_or(|f| grants.allows("repository", f.as_str(), Action::Pull.as_str()))
        }
    }
}

/// An expired token still opens its own upload session within the grace
/// period, when the session's signed `_state` binds it to that subject.
fn upload_grace(bearer: &Bearer, caller: &Caller, route: &Route, state: Option<&str>) -> bool {
    let (TokenState::Expired(claims), Route::Upload(name, id), Some(st)) =
        (&caller.token, route, state)
    else {
        return false;
    };
    let grants = Grants::new(claims.access.clone());
    grants.allows("repository", name.as_str(), Action::Push.as_str())
        && bearer
            .uploads
            .check(st, &claims.sub, name.as_str(), id, SystemTime::now())
}

/// Upload sessions opened with a token are bound to its subject: every
/// request on the session must carry the session's signed `_state` for the
/// caller. Other routes are not sessions.
fn session_bound(bearer: &Bearer, caller: &Caller, route: &Route, state: Option<&str>) -> bool {
    let Route::Upload(name, id) = route else {
        return true;
    };
    let sub = match &caller.identity {
        Identity::User(u) => u.as_str(),
        Identity::Anonymous => "",
    };
    state.is_some_and(|st| bearer.uploads.bound_to(st, sub, name.as_str(), id))
}

/// Allows the request or returns the error to send.
pub(crate) fn authorize(
    state: &AppState,
    caller: &Caller,
    route: &Route,
    required: &Required,
    upload_state: Option<&str>,
    request_base: &str,
) -> Result<(), ApiError> {
    let AuthMode::Bearer(bearer) = &state.auth else {
        // No auth, or Basic (already verified by `authenticate`).
        return Ok(());
    };
    let scope = scopes(required).join(" ");
    let scope = (!scope.is_empty()).then_some(scope.as_str());
    let challenge =
        |error: Option<&str>, msg: &str| bearer_challenge(bearer, request_base, scope, error, msg);
    match &caller.token {
        TokenState::Absent => Err(challenge(None, "authentication required")),
        TokenState::Invalid(e) => Err(challenge(Some("invalid_token"), &e.to_string())),
        TokenState::Expired(_) => {
            if upload_grace(bearer, caller, route, upload_state) {
                Ok(())
            } else {
                Err(challenge(Some("invalid_token"), "token has expired"))
            }
        }
        TokenState::Valid(grants) => {
            if !session_bound(bearer, caller, route, upload_state) {
                Err(ApiError::msg(
                    Code::Denied,
                    "this upload session belongs to another user or lacks its signed state",
                ))
            } else if allowed(grants, required) {
                Ok(())
            } else {
                Err(challenge(
                    Some("insufficient_scope"),
                    "the token does not grant the access this request needs",
                ))
            }
        }
    }
}
