//! A cache of verified bearer tokens, keyed by SHA-256 of the token. An
//! entry is only used while the token's own `exp` is in the future, so the
//! cache never extends a token's life; `nbf` was checked when it was added.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use std::sync::Arc;

use parking_lot::RwLock;
use portcullis_auth::identity::{Identity, UserName};
use portcullis_auth::scope::Grants;
use portcullis_auth::token::Claims;
use sha2::{Digest, Sha256};

/// What a verified token means for a request; cheap to share.
#[derive(Debug)]
pub struct Verified {
    pub identity: Identity,
    pub grants: Grants,
    /// The token's `exp`, in Unix seconds.
    pub exp: u64,
}

/// The identity a token's `sub` names (empty or invalid: anonymous).
#[must_use]
pub fn identity_of(sub: &str) -> Identity {
    UserName::new(sub).map_or(Identity::Anonymous, Identity::user_named)
}

impl Verified {
    #[must_use]
    pub fn from_claims(claims: Claims) -> Self {
        Self {
            identity: identity_of(&claims.sub),
            grants: Grants::new(claims.access),
            exp: claims.exp,
        }
    }
}

/// Most tokens remembered; the cache is cleared when it is full.
const CAPACITY: usize = 10_000;

#[derive(Default)]
pub struct TokenCache {
    entries: RwLock<HashMap<[u8; 32], Arc<Verified>>>,
}

fn key(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl TokenCache {
    /// A verified, unexpired token.
    #[must_use]
    pub fn get(&self, token: &str, now: SystemTime) -> Option<Arc<Verified>> {
        let now = now.duration_since(UNIX_EPOCH).ok()?.as_secs();
        let entries = self.entries.read();
        let v = entries.get(&key(token))?;
        (v.exp > now).then(|| v.clone())
    }

    pub fn put(&self, token: &str, verified: Arc<Verified>) {
        let mut entries = self.entries.write();
        if entries.len() >= CAPACITY {
            entries.clear();
        }
        entries.insert(key(token), verified);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_auth::token::Audience;
    use std::time::Duration;

    #[test]
    fn entries_end_with_the_token() {
        let cache = TokenCache::default();
        let claims = Claims {
            iss: "i".into(),
            sub: "alice".into(),
            aud: Audience::one("s"),
            exp: 1_000,
            nbf: 0,
            iat: 0,
            jti: String::new(),
            access: Vec::new(),
        };
        cache.put("tok", Arc::new(Verified::from_claims(claims)));
        let at = |s| UNIX_EPOCH + Duration::from_secs(s);
        let hit = cache.get("tok", at(999)).unwrap();
        assert!(matches!(&hit.identity, Identity::User(u) if u.as_str() == "alice"));
        assert!(cache.get("tok", at(1_000)).is_none());
        assert!(cache.get("other", at(10)).is_none());
    }
}
