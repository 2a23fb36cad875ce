//! A cache of verified bearer tokens, keyed by SHA-256 of the token. An
//! entry is only used while the token's own `exp` is in the future, so the
//! cache never extends a token's life; `nbf` was checked when it was added.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::RwLock;
use portcullis_auth::token::Claims;
use sha2::{Digest, Sha256};

/// Most tokens remembered; the cache is cleared when it is full.
const CAPACITY: usize = 10_000;

#[derive(Default)]
pub struct TokenCache {
    entries: RwLock<HashMap<[u8; 32], Claims>>,
}

fn key(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl TokenCache {
    /// The claims of a verified, unexpired token.
    #[must_use]
    pub fn get(&self, token: &str, now: SystemTime) -> Option<Claims> {
        let now = now.duration_since(UNIX_EPOCH).ok()?.as_secs();
        let entries = self.entries.read();
        let claims = entries.get(&key(token))?;
        (claims.exp > now).then(|| claims.clone())
    }

    pub fn put(&self, token: &str, claims: &Claims) {
        let mut entries = self.entries.write();
        if entries.len() >= CAPACITY {
            entries.clear();
        }
        entries.insert(key(token), claims.clone());
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
        cache.put("tok", &claims);
        let at = |s| UNIX_EPOCH + Duration::from_secs(s);
        assert_eq!(
            cache.get("tok", at(999)).map(|c| c.sub),
            Some("alice".into())
        );
        assert!(cache.get("tok", at(1_000)).is_none());
        assert!(cache.get("other", at(10)).is_none());
    }
}
