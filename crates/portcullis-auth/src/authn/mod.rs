//! Authentication as a port: an [`IdentityProvider`] turns a credential into
//! a verified [`Identity`], and a [`ProviderChain`] asks its providers in the
//! configured order. Basic mode, the token service and client certificates
//! all authenticate through the chain, so a new backend (an LDAP bind, an
//! OIDC token) is one more provider and nothing else changes.
//!
//! Providers today: htpasswd users ([`crate::htpasswd::Htpasswd`]), robot
//! tokens ([`crate::robots::RobotStore`]) and the names of verified client
//! certificates ([`CertificateNames`]).

mod providers;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::SystemTime;

use secrecy::SecretString;

use crate::identity::Identity;

pub use providers::CertificateNames;

/// What a caller presented.
#[derive(Clone, Copy)]
pub enum Credential<'a> {
    /// A user name and a password (or a robot secret), from Basic auth or
    /// the token service's password grant.
    Password {
        user: &'a str,
        secret: &'a SecretString,
    },
    /// The name a verified client certificate carries (the client CA
    /// vouches for it; `http.tls.clientidentity` says which name).
    Certificate { name: &'a str },
}

impl std::fmt::Debug for Credential<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Password { user, .. } => write!(f, "Password {{ user: {user:?}, .. }}"),
            Self::Certificate { name } => write!(f, "Certificate {{ name: {name:?} }}"),
        }
    }
}

/// One provider's answer.
#[derive(Debug)]
pub enum Outcome {
    /// The credential is good: this is who presented it.
    Verified(Identity),
    /// Not this provider's kind of credential; ask the next one.
    NotMine,
    /// This provider is the authority for the credential and refuses it;
    /// the reason is for the operator's log (and, for certificates, the
    /// client, who already knows the name it presented).
    Refused(String),
}

/// Whether a user exists, as far as one provider can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Account {
    /// Not this provider's to say (it holds no directory of users).
    Unknown,
    /// The provider's directory has no such user.
    Missing,
    /// The user exists; `stamp` changes whenever their credential does, so
    /// tokens derived from a login (refresh tokens) die with a password
    /// change.
    Present { stamp: String },
}

/// A source of identities.
pub trait IdentityProvider: Send + Sync {
    /// A short name for logs and `config check` ("htpasswd", "robots").
    fn kind(&self) -> &'static str;

    /// The non-blocking path: `Some` when the provider can vouch for the
    /// credential without blocking (a recently verified password).
    fn verify_cached(&self, _credential: &Credential<'_>) -> Option<Identity> {
        None
    }

    /// Verifies a credential. May block (bcrypt, a file read, a network
    /// round trip): call it off the async threads.
    fn verify(&self, credential: &Credential<'_>, now: SystemTime) -> Outcome;

    /// Whether `user` exists in this provider's directory.
    fn account(&self, _user: &str) -> Account {
        Account::Unknown
    }

    /// Whether the provider holds a directory of users (whose passwords it
    /// checks), so [`Self::account`] can say [`Account::Missing`].
    fn is_directory(&self) -> bool {
        false
    }
}

/// Why a chain refused a credential: for the operator's log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Refusal {
    /// The provider that refused, or `None` when no provider took it.
    pub provider: Option<&'static str>,
    pub reason: String,
}

/// The configured providers, asked in order: the first that verifies or
/// refuses a credential decides. A verified robot's owner, and a
/// certificate's user, must still exist in the users' directory when there
/// is one.
#[derive(Clone, Default)]
pub struct ProviderChain {
    providers: Vec<Arc<dyn IdentityProvider>>,
}

impl std::fmt::Debug for ProviderChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.providers.iter().map(|p| p.kind()))
            .finish()
    }
}

impl ProviderChain {
    #[must_use]
    pub fn new(providers: Vec<Arc<dyn IdentityProvider>>) -> Self {
        Self { providers }
    }

    /// The providers' kinds, in order.
    #[must_use]
    pub fn kinds(&self) -> Vec<&'static str> {
        self.providers.iter().map(|p| p.kind()).collect()
    }

    /// Whether a provider of this kind is configured.
    #[must_use]
    pub fn has(&self, kind: &str) -> bool {
        self.providers.iter().any(|p| p.kind() == kind)
    }

    /// Whether some provider holds a directory of users.
    #[must_use]
    pub fn has_directory(&self) -> bool {
        self.providers.iter().any(|p| p.is_directory())
    }

    /// The first provider's non-blocking answer, if any can give one.
    #[must_use]
    pub fn verify_cached(&self, credential: &Credential<'_>) -> Option<Identity> {
        self.providers
            .iter()
            .find_map(|p| p.verify_cached(credential))
    }

    /// Verifies a credential through the chain. Blocking.
    ///
    /// # Errors
    /// [`Refusal`] with the reason, for the log; the caller tells the
    /// client no more than "invalid username or password".
    pub fn verify(
        &self,
        credential: &Credential<'_>,
        now: SystemTime,
    ) -> Result<Identity, Refusal> {
        for p in &self.providers {
            match p.verify(credential, now) {
                Outcome::NotMine => {}
                Outcome::Refused(reason) => {
                    return Err(Refusal {
                        provider: Some(p.kind()),
                        reason,
                    });
                }
                Outcome::Verified(identity) => {
                    return self
                        .still_known(identity, credential)
                        .map_err(|reason| Refusal {
                            provider: Some(p.kind()),
                            reason,
                        });
                }
            }
        }
        Err(Refusal {
            provider: None,
            reason: unclaimed(credential),
        })
    }

    /// The first directory's answer for `user`; [`Account::Unknown`] when
    /// no provider holds a directory.
    #[must_use]
    pub fn account(&self, user: &str) -> Account {
        self.providers
            .iter()
            .map(|p| p.account(user))
            .find(|a| *a != Account::Unknown)
            .unwrap_or(Account::Unknown)
    }

    /// A verified robot needs its owner, a certificate's user needs to be a
    /// user: when a directory exists it must know them.
    fn still_known(
        &self,
        identity: Identity,
        credential: &Credential<'_>,
    ) -> Result<Identity, String> {
        let (who, missing) = match (&identity, credential) {
            (Identity::Robot(r), Credential::Certificate { name }) => {
                (r.owner.as_str().to_owned(), providers::unknown_robot(name))
            }
            (Identity::Robot(r), Credential::Password { .. }) => (
                r.owner.as_str().to_owned(),
                format!(
                    "robot {}'s owner {} is no longer a user",
                    r.login(),
                    r.owner
                ),
            ),
            (Identity::User(u), Credential::Certificate { name }) => (
                u.as_str().to_owned(),
                format!("the certificate names `{name}`, who is not a user of this registry"),
            ),
            _ => return Ok(identity),
        };
        match self.account(&who) {
            Account::Missing => Err(missing),
            Account::Present { .. } | Account::Unknown => Ok(identity),
        }
    }
}

/// The reason when no provider took a credential.
fn unclaimed(credential: &Credential<'_>) -> String {
    use secrecy::ExposeSecret;
    match credential {
        Credential::Password { secret, .. }
            if crate::robots::RobotStore::looks_like_secret(secret.expose_secret()) =>
        {
            "the robot token is unknown, revoked or expired (no robot tokens are configured)"
                .to_owned()
        }
        Credential::Password { .. } => "no htpasswd users are configured".to_owned(),
        Credential::Certificate { name } => {
            format!("the certificate names `{name}`, which no identity provider accepts")
        }
    }
}
