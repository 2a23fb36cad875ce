//! The built-in token service: authenticates a user (password via htpasswd,
//! or a refresh token), decides what the caller may have of what it asked
//! for, and signs an access token. The HTTP shape (GET/POST /token) lives in
//! the server; this is the decision and the signing.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::RngCore;
use secrecy::SecretString;

use crate::access::AccessControl;
use crate::authn::Account;
use crate::identity::{Identity, UserName};
use crate::refresh::{RefreshError, RefreshStore};
use crate::scope::Scope;
use crate::token::{self, Audience, Claims, KeySet, ResourceAccess, TokenError};
use portcullis_types::{Action, ScopeAction};

/// Settings of the token service.
#[derive(Debug, Clone)]
pub struct ServiceSettings {
    pub issuer: String,
    /// The `aud` of issued tokens.
    pub service: String,
    pub ttl: Duration,
    /// `None` when refresh tokens are disabled.
    pub refresh_ttl: Option<Duration>,
}

/// What `/token` returns.
#[derive(Debug)]
pub struct Issued {
    pub token: String,
    pub expires_in: u64,
    pub issued_at: SystemTime,
    /// Granted scopes, in spec form (for the OAuth2 `scope` field).
    pub scope: Vec<String>,
    pub refresh_token: Option<SecretString>,
}

/// Why a token request failed; the server maps these to OAuth2 errors.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("invalid username or password")]
    InvalidCredentials,
    #[error("{0}")]
    InvalidGrant(String),
    #[error("refresh tokens are disabled on this server")]
    RefreshDisabled,
    #[error("service `{0}` is not served here")]
    WrongService(String),
    #[error(transparent)]
    Refresh(#[from] RefreshError),
    #[error(transparent)]
    Token(#[from] TokenError),
}

/// The token service. Share it in an `Arc`; methods that check passwords
/// are blocking (bcrypt on a cache miss).
pub struct TokenService {
    keys: Arc<KeySet>,
    access: Arc<AccessControl>,
    refresh: Option<Arc<RefreshStore>>,
    settings: ServiceSettings,
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl TokenService {
    /// The service, or `None` when no identity provider holds a directory
    /// of users who could log in.
    #[must_use]
    pub fn new(
        keys: Arc<KeySet>,
        access: Arc<AccessControl>,
        refresh: Option<Arc<RefreshStore>>,
        settings: ServiceSettings,
    ) -> Option<Self> {
        if !access.identities.has_directory() {
            return None;
        }
        Some(Self {
            keys,
            access,
            refresh,
            settings,
        })
    }

    #[must_use]
    pub fn access(&self) -> &Arc<AccessControl> {
        &self.access
    }

    #[must_use]
    pub fn settings(&self) -> &ServiceSettings {
        &self.settings
    }

    #[must_use]
    pub fn keys(&self) -> &KeySet {
        &self.keys
    }

    /// Checks that a request names this service (an empty service is allowed,
    /// as Docker sometimes omits it).
    ///
    /// # Errors
    /// `WrongService`.
    pub fn check_service(&self, service: Option<&str>) -> Result<(), ServiceError> {
        match service {
            Some(s) if !s.is_empty() && s != self.settings.service => {
                Err(ServiceError::WrongService(s.chars().take(100).collect()))
            }
            _ => Ok(()),
        }
    }

    /// Password login (blocking): a user, or a robot token.
    ///
    /// # Errors
    /// `InvalidCredentials`.
    #[tracing::instrument(skip_all)]
    pub fn password_login(
        &self,
        user: &str,
        password: &SecretString,
    ) -> Result<Identity, ServiceError> {
        if let Some(identity) = self.access.login_cached(user, password) {
            return Ok(identity);
        }
        self.access
            .login(user, password)
            .map_err(|_| ServiceError::InvalidCredentials)
    }

    /// Redeems a refresh token. The user must still exist with the same
    /// password; otherwise every token of that user is revoked.
    ///
    /// # Errors
    /// `InvalidGrant`, `RefreshDisabled`.
    #[tracing::instrument(skip_all)]
    pub fn refresh_login(
        &self,
        token: &SecretString,
        client_id: &str,
        now: SystemTime,
    ) -> Result<UserName, ServiceError> {
        let store = self.refresh.as_ref().ok_or(ServiceError::RefreshDisabled)?;
        let record = store.redeem(token, client_id, now).map_err(|e| match e {
            RefreshError::Io { .. } | RefreshError::Corrupt { .. } => ServiceError::Refresh(e),
            other => ServiceError::InvalidGrant(other.to_string()),
        })?;
        let current = self.access.identities.account(&record.user);
        if !matches!(&current, Account::Present { stamp } if *stamp == record.password_fingerprint)
        {
            let _ = store.revoke_user(&record.user, now);
            return Err(ServiceError::InvalidGrant(
                "the user's password changed or the user was removed; run `docker login` again"
                    .to_owned(),
            ));
        }
        UserName::new(&record.user).map_err(|_| {
            ServiceError::InvalidGrant("refresh token names an invalid user".to_owned())
        })
    }

    /// What `identity` gets of `requested`: each requested action that the
    /// policy (and, for robots, the robot's own scope) allows. Unknown
    /// actions and resource types are dropped, as the spec says.
    /// `refused` hears of each action left out: the repository, the
    /// action, and the policy's explanation (the same as `access explain`'s;
    /// never a secret), for the decision events.
    pub fn grant(
        &self,
        identity: &Identity,
        requested: &[Scope],
        // (repository, action, why); the catalog is refused with an empty
        // repository and the action `catalog`.
        mut refused: impl FnMut(&str, Action, &str),
    ) -> Vec<ResourceAccess> {
        let policy = self.access.policy.current();
        let mut out: Vec<ResourceAccess> = Vec::new();
        for s in requested {
            let mut actions: Vec<String> = Vec::new();
            let mut allow = |name: &str, action: Action| {
                let d = crate::access::decide(&policy, identity, name, action);
                if !d.allowed {
                    refused(name, action, &d.explanation);
                }
                d.allowed
            };
            match s.kind.as_str() {
                "repository" => {
                    for a in &s.actions {
                        for &action in a.repository_actions() {
                            let name = action.as_str();
                            if allow(&s.name, action) && !actions.iter().any(|x| x == name) {
                                actions.push(name.to_owned());
                            }
                        }
                    }
                }
                "registry" if s.name == "catalog" && s.actions.contains(&ScopeAction::All) => {
                    if self.access.may_list_catalog(identity) {
                        actions.push(ScopeAction::All.as_str().to_owned());
                    } else {
                        let d = self.access.decide(identity, "", Action::Catalog);
                        refused("", Action::Catalog, &d.explanation);
                    }
                }
                _ => {}
            }
            if actions.is_empty() {
                continue;
            }
            match out
                .iter_mut()
                .find(|a| a.kind == s.kind && a.name == s.name)
            {
                Some(existing) => {
                    for a in actions {
                        if !existing.actions.contains(&a) {
                            existing.actions.push(a);
                        }
                    }
                }
                None => out.push(ResourceAccess {
                    kind: s.kind.clone(),
                    name: s.name.clone(),
                    actions,
                }),
            }
        }
        out
    }

    /// Signs an access token for `identity` with `access`, and optionally
    /// issues a refresh token (only for users, and only when enabled).
    ///
    /// # Errors
    /// Signing or refresh-store failures.
    pub fn issue(
        &self,
        identity: &Identity,
        access: Vec<ResourceAccess>,
        offline: Option<&str>,
        now: SystemTime,
    ) -> Result<Issued, ServiceError> {
        let sub = identity.subject();
        let mut jti = [0u8; 16];
        rand::rng().fill_bytes(&mut jti);
        let iat = unix(now);
        let scope = access
            .iter()
            .map(|a| format!("{}:{}:{}", a.kind, a.name, a.actions.join(",")))
            .collect();
        let claims = Claims {
            iss: self.settings.issuer.clone(),
            sub,
            aud: Audience::one(self.settings.service.clone()),
            exp: iat + self.settings.ttl.as_secs(),
            nbf: iat,
            iat,
            jti: jti.iter().map(|b| format!("{b:02x}")).collect(),
            access,
        };
        let token = token::issue(self.keys.signing(), &claims)?;
        let refresh_token = match (identity, offline, &self.refresh, self.settings.refresh_ttl) {
            (Identity::User(u), Some(client_id), Some(store), Some(ttl)) => {
                let fp = match self.access.identities.account(u.as_str()) {
                    Account::Present { stamp } => stamp,
                    Account::Missing | Account::Unknown => String::new(),
                };
                Some(store.issue(u, client_id, &fp, ttl, now)?)
            }
            _ => None,
        };
        Ok(Issued {
            token,
            expires_in: self.settings.ttl.as_secs(),
            issued_at: now,
            scope,
            refresh_token,
        })
    }
}
