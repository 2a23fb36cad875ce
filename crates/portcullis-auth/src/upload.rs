//! Long pushes (moby/moby#33558): an upload session opened with a valid
//! token carries a signed `_state` in its URL that binds it to the token's
//! subject, the repository and the session id. A later request on that
//! session may present the same subject's *expired* token, within a grace
//! period from the session start; nobody else can reuse the session.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;

/// Signs and checks upload-session states. The key comes from `http.secret`
/// (or is random per process, so states do not survive a restart).
pub struct UploadStates {
    key: hmac::Key,
    grace: Duration,
}

impl std::fmt::Debug for UploadStates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UploadStates")
            .field("grace", &self.grace)
            .finish_non_exhaustive()
    }
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn message(sub: &str, repo: &str, id: &str, started: u64) -> String {
    format!("portcullis-upload-v1\n{sub}\n{repo}\n{id}\n{started}")
}

impl UploadStates {
    #[must_use]
    pub fn new(secret: &[u8], grace: Duration) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
            grace,
        }
    }

    #[must_use]
    pub fn grace(&self) -> Duration {
        self.grace
    }

    /// The `_state` value for a new session.
    #[must_use]
    pub fn sign(&self, sub: &str, repo: &str, id: &str, now: SystemTime) -> String {
        let started = unix(now);
        let tag = hmac::sign(&self.key, message(sub, repo, id, started).as_bytes());
        format!("{started}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
    }

    /// When the session started, if `state` was issued for exactly this
    /// subject, repository and session.
    fn started(&self, state: &str, sub: &str, repo: &str, id: &str) -> Option<u64> {
        let (started, tag) = state.split_once('.')?;
        let started = started.parse::<u64>().ok()?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        hmac::verify(&self.key, message(sub, repo, id, started).as_bytes(), &tag).ok()?;
        Some(started)
    }

    /// Whether `state` binds the session to this subject and repository
    /// (checked on every request of a session, whatever the token).
    #[must_use]
    pub fn bound_to(&self, state: &str, sub: &str, repo: &str, id: &str) -> bool {
        self.started(state, sub, repo, id).is_some()
    }

    /// [`Self::bound_to`], and the session is still within the grace period
    /// (for a request made with an expired token).
    #[must_use]
    pub fn check(&self, state: &str, sub: &str, repo: &str, id: &str, now: SystemTime) -> bool {
        self.started(state, sub, repo, id)
            .is_some_and(|started| unix(now).saturating_sub(started) <= self.grace.as_secs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_subject_repo_and_session() {
        let s = UploadStates::new(b"secret", Duration::from_secs(60));
        let now = SystemTime::now();
        let st = s.sign("alice", "team/app", "id1", now);
        assert!(s.check(&st, "alice", "team/app", "id1", now));
        assert!(!s.check(&st, "bob", "team/app", "id1", now));
        assert!(!s.check(&st, "alice", "team/other", "id1", now));
        assert!(!s.check(&st, "alice", "team/app", "id2", now));
        assert!(!s.check(
            &st,
            "alice",
            "team/app",
            "id1",
            now + Duration::from_secs(61)
        ));
        assert!(
            !UploadStates::new(b"other", Duration::from_secs(60))
                .check(&st, "alice", "team/app", "id1", now)
        );
        assert!(!s.check("garbage", "alice", "team/app", "id1", now));
    }
}
