//! Authorization: checks the access the central computation says a request
//! needs against what the caller has. In Basic mode (and for callers a
//! client certificate identifies) the policy decides; in bearer mode the
//! token's `access` claim decides, and a refusal is a 401 challenge that
//! names the scope the client must ask for.

use crate::events::{self, RequestInfo};
use std::time::SystemTime;

use portcullis_auth::identity::Identity;
use portcullis_auth::scope::Grants;
use portcullis_types::Action;

use crate::access::Required;
use crate::auth::{Caller, TokenState, basic_challenge, bearer_challenge};
use crate::error::{ApiError, Code};
use crate::route::Route;
use crate::state::{AppState, AuthMode};

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
            ..
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
        Required::Catalog => grants.allows("registry", "catalog", Action::Catalog),
        Required::Repo {
            name,
            actions,
            mount_from,
            ..
        } => {
            actions
                .iter()
                .all(|a| grants.allows("repository", name.as_str(), *a))
                && mount_from
                    .as_ref()
                    .is_none_or(|f| grants.allows("repository", f.as_str(), Action::Pull))
        }
    }
}

/// An expired token still opens its own upload session within the grace
/// period, when the session's signed `_state` binds it to that subject.
fn upload_grace(app: &AppState, caller: &Caller, route: &Route, state: Option<&str>) -> bool {
    let (TokenState::Expired(claims), Route::Upload(name, id), Some(st)) =
        (&caller.token, route, state)
    else {
        return false;
    };
    let grants = Grants::new(claims.access.clone());
    grants.allows("repository", name.as_str(), Action::Push)
        && app
            .uploads
            .check(st, &claims.sub, name.as_str(), id, SystemTime::now())
}

/// Basic mode (and no-auth mode with an `access` section): the policy decides
/// each action the request needs. A refused anonymous caller is asked to
/// authenticate (401); a refused authenticated one is told it is denied (403),
/// with the deciding rule in the log.
fn by_policy(
    state: &AppState,
    caller: &Caller,
    required: &Required,
    realm: Option<&String>,
    info: &RequestInfo,
) -> Result<(), ApiError> {
    if !state.enforce_policy {
        return Ok(());
    }
    let anonymous = matches!(caller.identity, Identity::Anonymous);
    let refuse = |(action, why): (&str, String)| -> ApiError {
        let repo = required_repo(required);
        events::decision(state, info, &caller.identity, repo, action, false, &why);
        match (anonymous, realm) {
            (true, Some(realm)) => basic_challenge(realm, "authentication required"),
            _ => ApiError::msg(Code::Denied, why),
        }
    };
    match required {
        Required::Base => {
            if anonymous && realm.is_some() {
                Err(refuse((
                    "login",
                    "the registry requires authentication".to_owned(),
                )))
            } else {
                Ok(())
            }
        }
        Required::Catalog => {
            if state.access.may_list_catalog(&caller.identity) {
                Ok(())
            } else {
                Err(refuse((
                    Action::Catalog.as_str(),
                    "no rule allows anonymous `catalog`".to_owned(),
                )))
            }
        }
        Required::Repo {
            name,
            actions,
            mount_from,
            ..
        } => match first_refusal(state, &caller.identity, name, actions, mount_from.as_ref()) {
            Some(refusal) => Err(refuse(refusal)),
            None => Ok(()),
        },
    }
}

/// The first action `identity` may not take and the policy's explanation,
/// writes before reads: a push that is refused is explained as a push, not
/// as the pull that comes with it.
fn first_refusal(
    state: &AppState,
    identity: &Identity,
    name: &portcullis_types::RepoName,
    actions: &[Action],
    mount_from: Option<&portcullis_types::RepoName>,
) -> Option<(&'static str, String)> {
    let mut ordered: Vec<Action> = actions.to_vec();
    ordered.sort_by_key(|a| *a == Action::Pull);
    ordered
        .iter()
        .map(|a| (name, *a))
        .chain(mount_from.map(|f| (f, Action::Pull)))
        .map(|(repo, action)| (action, state.access.decide(identity, repo.as_str(), action)))
        .find(|(_, d)| !d.allowed)
        .map(|(action, d)| (action.as_str(), d.explanation))
}

/// The repository a request's access is about, if any.
fn required_repo(required: &Required) -> Option<&str> {
    match required {
        Required::Repo { name, .. } => Some(name.as_str()),
        Required::Base | Required::Catalog => None,
    }
}

/// Why a valid token is not enough for `required`.
enum Shortfall {
    /// The policy refuses the caller: no token would help. The reason, in
    /// words the client shows its user (Go clients print a challenge's
    /// `error_description`).
    Refused(String),
    /// The policy would allow it, but this token was issued for less (the
    /// client asked for a narrower scope earlier): a new token helps.
    TooNarrow(String),
}

fn token_shortfall(state: &AppState, caller: &Caller, required: &Required) -> Shortfall {
    let lacks = scopes(required).join(" ");
    let narrow = || {
        Shortfall::TooNarrow(format!(
            "the token does not grant {lacks}; request a token with that scope"
        ))
    };
    if !state.enforce_policy {
        return narrow();
    }
    let (name, actions, mount_from) = match required {
        Required::Repo {
            name,
            actions,
            mount_from,
            ..
        } => (name, actions, mount_from),
        Required::Catalog if !state.access.may_list_catalog(&caller.identity) => {
            return Shortfall::Refused(format!(
                "deny: {} may not list the catalog",
                match &caller.identity {
                    Identity::Anonymous => "an anonymous caller".to_owned(),
                    other => other.subject(),
                }
            ));
        }
        Required::Catalog | Required::Base => return narrow(),
    };
    let mut identity = caller.identity.clone();
    if identity
        .subject()
        .contains(portcullis_auth::robots::LOGIN_SEPARATOR)
    {
        // A robot's token: decide for the robot (its scope ∩ its owner). A
        // small file read, on this refusal path only.
        identity = match state.access.certificate_login(&identity.subject()) {
            Ok(robot) => robot,
            Err(e) => return Shortfall::Refused(format!("deny: {e}")),
        };
    }
    match first_refusal(state, &identity, name, actions, mount_from.as_ref()).map(|(_, why)| why) {
        Some(why) if matches!(identity, Identity::Anonymous) => {
            Shortfall::Refused(format!("{why}; sign in (docker login) first"))
        }
        Some(why) => Shortfall::Refused(why),
        None => narrow(),
    }
}

/// Upload sessions are bound to the identity that opened them (a token's
/// subject, a Basic-mode user or robot, a certificate's name): every request
/// on the session must carry the session's signed `_state` for the caller.
/// Other routes are not sessions.
fn session_bound(app: &AppState, caller: &Caller, route: &Route, state: Option<&str>) -> bool {
    let Route::Upload(name, id) = route else {
        return true;
    };
    let sub = caller.identity.subject();
    state.is_some_and(|st| app.uploads.bound_to(st, &sub, name.as_str(), id))
}

/// The refusal of a request on someone else's upload session.
fn foreign_session() -> ApiError {
    ApiError::msg(
        Code::Denied,
        "this upload session belongs to another user or lacks its signed state (_state in the Location URL); start a new upload",
    )
}

/// The authentication challenge for a caller who has not authenticated,
/// when the registry requires authentication. Requests that fail before
/// their access is known (a malformed name, an unknown endpoint) get it
/// instead of the error, so unauthenticated probes learn nothing.
pub(crate) fn challenge_unauthenticated(
    state: &AppState,
    caller: &Caller,
    request_base: &str,
) -> Option<ApiError> {
    match (&state.auth, &caller.token) {
        (AuthMode::Basic { realm }, _) if matches!(caller.identity, Identity::Anonymous) => {
            Some(basic_challenge(realm, "authentication required"))
        }
        (AuthMode::Bearer(bearer), TokenState::Absent | TokenState::Invalid(_))
            if !caller.by_certificate =>
        {
            Some(bearer_challenge(
                bearer,
                request_base,
                None,
                None,
                "authentication required",
            ))
        }
        _ => None,
    }
}

/// Allows the request or returns the error to send: the caller must have
/// the access, and the write must be one `access.immutable` permits.
pub(crate) fn authorize(
    state: &AppState,
    caller: &Caller,
    route: &Route,
    required: &Required,
    upload_state: Option<&str>,
    request_base: &str,
    info: &RequestInfo,
) -> Result<(), ApiError> {
    has_access(
        state,
        caller,
        route,
        required,
        upload_state,
        request_base,
        info,
    )?;
    if let (
        Route::Manifest(name, _),
        Required::Repo {
            actions,
            immutable: true,
            ..
        },
    ) = (route, required)
        && actions.contains(&Action::Delete)
    {
        let why = crate::access::immutable_denied(name, "its manifests and tags cannot be deleted");
        let repo = Some(name.as_str());
        events::decision(
            state,
            info,
            &caller.identity,
            repo,
            Action::Delete.as_str(),
            false,
            &why,
        );
        return Err(ApiError::msg(Code::Denied, why));
    }
    Ok(())
}

fn has_access(
    state: &AppState,
    caller: &Caller,
    route: &Route,
    required: &Required,
    upload_state: Option<&str>,
    request_base: &str,
    info: &RequestInfo,
) -> Result<(), ApiError> {
    let bearer = match &state.auth {
        AuthMode::Bearer(bearer) => bearer,
        AuthMode::Basic { realm } => {
            if !session_bound(state, caller, route, upload_state) {
                return Err(foreign_session());
            }
            return by_policy(state, caller, required, Some(realm), info);
        }
        AuthMode::None => return by_policy(state, caller, required, None, info),
    };
    let scope = scopes(required).join(" ");
    let scope = (!scope.is_empty()).then_some(scope.as_str());
    let challenge =
        |error: Option<&str>, msg: &str| bearer_challenge(bearer, request_base, scope, error, msg);
    if caller.by_certificate {
        // No token: the policy decides for the certificate's identity, and
        // upload sessions stay bound to it as they would be to a token's.
        if !session_bound(state, caller, route, upload_state) {
            return Err(foreign_session());
        }
        return by_policy(state, caller, required, None, info);
    }
    match &caller.token {
        TokenState::Absent => Err(challenge(None, "authentication required")),
        TokenState::Invalid(e) => Err(challenge(Some("invalid_token"), &e.to_string())),
        TokenState::Expired(_) => {
            if upload_grace(state, caller, route, upload_state) {
                Ok(())
            } else {
                Err(challenge(Some("invalid_token"), "token has expired"))
            }
        }
        TokenState::Valid(grants) => {
            if !session_bound(state, caller, route, upload_state) {
                Err(foreign_session())
            } else if allowed(grants, required) {
                Ok(())
            } else {
                match token_shortfall(state, caller, required) {
                    Shortfall::Refused(why) => {
                        let action = scope.unwrap_or("access");
                        let repo = required_repo(required);
                        events::decision(state, info, &caller.identity, repo, action, false, &why);
                        Err(challenge(Some("insufficient_scope"), &why))
                    }
                    // RFC 6750 §3.1: insufficient_scope is a 403, with the
                    // challenge naming the scope to ask for. Clients that
                    // keep their first token on a 401 (oras-py) ask for a
                    // new one on this 403; Docker asks for every scope up
                    // front and never gets here.
                    Shortfall::TooNarrow(why) => {
                        let mut e = challenge(Some("insufficient_scope"), &why);
                        e.code = Code::Denied;
                        Err(e)
                    }
                }
            }
        }
    }
}
