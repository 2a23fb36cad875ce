//! Lockout around every secret check: Basic and `/token` passwords, robot
//! secrets (they are checked as passwords), refresh tokens and client
//! certificates. The account is the name presented, whether or not it
//! exists, and the store is asked the same questions either way, so a
//! known and an unknown user are answered alike.

use portcullis_auth::identity::Identity;
use portcullis_types::event::{Kind, What};

use super::too_many;
use crate::AppState;
use crate::error::ApiError;
use crate::events::RequestInfo;

/// The account refresh-token failures are counted under: the token names
/// its user only once it is verified.
pub(crate) const REFRESH_ACCOUNT: &str = "(refresh token)";

fn client(info: &RequestInfo) -> &str {
    info.client.as_deref().unwrap_or("-")
}

/// Refuses the check when `account` from this client must still wait.
/// A store that cannot answer refuses too: lockout fails closed.
///
/// # Errors
/// 429 `TOOMANYREQUESTS` with `Retry-After`.
pub(crate) fn admit(state: &AppState, info: &RequestInfo, account: &str) -> Result<(), ApiError> {
    let Some(lockout) = &state.abuse.lockout else {
        return Ok(());
    };
    match lockout.wait(account, client(info)) {
        Ok(None) => Ok(()),
        Ok(Some(wait)) => Err(too_many(
            format!(
                "too many failed logins for {account} from {}; try again in {} s",
                client(info),
                super::retry_secs(wait)
            ),
            wait,
        )),
        Err(e) => {
            tracing::error!(error = %e, "lockout store failed; login refused");
            Err(too_many(
                "the login throttle cannot be read; try again shortly".into(),
                std::time::Duration::from_secs(1),
            ))
        }
    }
}

/// Records the outcome of a full check of `account`'s secret.
pub(crate) fn record(state: &AppState, info: &RequestInfo, account: &str, ok: bool) {
    let Some(lockout) = &state.abuse.lockout else {
        return;
    };
    let c = client(info);
    if ok {
        if let Err(e) = lockout.succeed(account, c) {
            tracing::warn!(error = %e, "lockout store failed clearing failures");
        }
        return;
    }
    match lockout.fail(account, c) {
        Ok(Some(wait)) if wait >= lockout.policy().lockout => {
            let failures = lockout.policy().lock_after;
            state.events.emit(Kind::Abuse, || {
                info.event(
                    &Identity::Anonymous,
                    What::Lockout {
                        account: account.to_owned(),
                        failures,
                        retry_after: super::retry_secs(wait),
                    },
                )
            });
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "lockout store failed counting a failure"),
    }
}
