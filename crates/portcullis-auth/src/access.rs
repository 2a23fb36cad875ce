//! Decisions for an [`Identity`]: the policy's decision, narrowed for robot
//! tokens to the scope they were given. The server's authorization and the
//! token service's grants both decide here, so Basic and token mode agree.

use crate::identity::Identity;
use crate::policy::{Decision, Policy, PolicyAction, Principal};

/// The policy principal of an identity.
#[must_use]
pub fn principal(identity: &Identity) -> Principal {
    match identity {
        Identity::Anonymous => Principal::Anonymous,
        Identity::User(u) => Principal::User(u.as_str().to_owned()),
        Identity::Robot(r) => Principal::Robot {
            name: r.name.clone(),
            owner: r.owner.as_str().to_owned(),
        },
    }
}

/// Whether `identity` may do `action` on `repo`, and why. A robot may do
/// what its owner may within the scope it was given, and, like every
/// authenticated identity, whatever anonymous callers may.
#[must_use]
pub fn decide(policy: &Policy, identity: &Identity, repo: &str, action: PolicyAction) -> Decision {
    let d = policy.decide(&principal(identity), repo, action);
    if let Identity::Robot(r) = identity
        && action != PolicyAction::Catalog
        && d.allowed
        && !r.permits(repo, action.as_str())
        && !policy.allows(&Principal::Anonymous, repo, action)
    {
        return Decision {
            allowed: false,
            rule: None,
            explanation: format!(
                "deny: robot {} was given {} on {}, which does not include {} on {repo}",
                r.login(),
                r.actions.join(","),
                r.repositories.join(" "),
                action.as_str()
            ),
        };
    }
    d
}

/// [`decide`] without the explanation (for filtering many repositories).
#[must_use]
pub fn allows(policy: &Policy, identity: &Identity, repo: &str, action: PolicyAction) -> bool {
    policy.allows(&principal(identity), repo, action)
        && match identity {
            Identity::Robot(r) if action != PolicyAction::Catalog => {
                r.permits(repo, action.as_str())
                    || policy.allows(&Principal::Anonymous, repo, action)
            }
            _ => true,
        }
}

/// Everything that decides who a caller is and what they may do: the
/// policy, the htpasswd users and the robot tokens. Shared by the registry
/// (Basic mode) and the token service.
pub struct AccessControl {
    pub policy: std::sync::Arc<crate::policy::PolicyStore>,
    pub users: Option<std::sync::Arc<crate::htpasswd::Htpasswd>>,
    pub robots: Option<std::sync::Arc<crate::robots::RobotStore>>,
}

/// Why a login failed. One variant: the caller learns nothing more.
#[derive(Debug, thiserror::Error)]
#[error("invalid username or password")]
pub struct LoginFailed;

impl AccessControl {
    /// Decides with the current policy.
    #[must_use]
    pub fn decide(&self, identity: &Identity, repo: &str, action: PolicyAction) -> Decision {
        decide(&self.policy.current(), identity, repo, action)
    }

    /// The non-blocking path: a user whose password was verified recently.
    #[must_use]
    pub fn login_cached(&self, user: &str, password: &secrecy::SecretString) -> Option<Identity> {
        use secrecy::ExposeSecret;
        if crate::robots::RobotStore::looks_like_secret(password.expose_secret()) {
            return None;
        }
        self.users
            .as_ref()?
            .authenticate_cached(user, password)
            .map(Identity::User)
    }

    /// Verifies a login (blocking: bcrypt or a robot-store read). A password
    /// shaped like a robot secret is checked only against the robot store,
    /// and the robot's owner must still exist.
    ///
    /// # Errors
    /// [`LoginFailed`] for any wrong, unknown, expired or revoked credential.
    #[tracing::instrument(skip_all)]
    pub fn login(
        &self,
        user: &str,
        password: &secrecy::SecretString,
    ) -> Result<Identity, LoginFailed> {
        use secrecy::ExposeSecret;
        let users = self.users.as_ref().ok_or(LoginFailed)?;
        if crate::robots::RobotStore::looks_like_secret(password.expose_secret()) {
            let robots = self.robots.as_ref().ok_or(LoginFailed)?;
            let robot = robots
                .authenticate(user, password, std::time::SystemTime::now())
                .map_err(|_| LoginFailed)?;
            users
                .password_fingerprint(&robot.owner)
                .ok_or(LoginFailed)?;
            let owner = crate::identity::UserName::new(&robot.owner).map_err(|_| LoginFailed)?;
            return Ok(Identity::Robot(crate::identity::RobotIdentity {
                name: robot.name,
                owner,
                repositories: robot.repositories,
                actions: robot.actions,
            }));
        }
        users
            .authenticate(user, password)
            .map(Identity::User)
            .map_err(|_| LoginFailed)
    }
}

/// Why a verified client certificate's name gives no identity.
#[derive(Debug, thiserror::Error)]
pub enum CertificateLoginError {
    #[error("the certificate names `{0}`, which is not a valid user name")]
    InvalidName(String),
    #[error("the certificate names `{0}`, who is not a user of this registry")]
    UnknownUser(String),
    #[error(
        "the certificate names robot `{0}`, which does not exist, was revoked or has expired, or whose owner is gone"
    )]
    UnknownRobot(String),
}

impl AccessControl {
    /// The identity a verified client certificate's name stands for (the
    /// client CA vouches for the name; `http.tls.clientidentity` says which
    /// name). `<owner>+<name>` is a robot, which must be live and whose
    /// owner must still exist; any other name is a user, who must be in the
    /// htpasswd file when there is one. Blocking: may read the robot store.
    ///
    /// # Errors
    /// Why the name gives no identity; the caller must refuse the request.
    pub fn certificate_login(&self, name: &str) -> Result<Identity, CertificateLoginError> {
        let user = |n: &str| {
            crate::identity::UserName::new(n)
                .map_err(|_| CertificateLoginError::InvalidName(n.to_owned()))
        };
        let exists = |n: &str| {
            self.users
                .as_ref()
                .is_none_or(|u| u.password_fingerprint(n).is_some())
        };
        if let Some((owner, _)) = name.split_once(crate::robots::LOGIN_SEPARATOR) {
            let unknown = || CertificateLoginError::UnknownRobot(name.to_owned());
            let robots = self.robots.as_ref().ok_or_else(unknown)?;
            let robot = robots
                .find_login(name, std::time::SystemTime::now())
                .map_err(|_| unknown())?;
            if !exists(owner) {
                return Err(unknown());
            }
            return Ok(Identity::Robot(crate::identity::RobotIdentity {
                name: robot.name,
                owner: user(owner)?,
                repositories: robot.repositories,
                actions: robot.actions,
            }));
        }
        let name_ok = user(name)?;
        if !exists(name) {
            return Err(CertificateLoginError::UnknownUser(name.to_owned()));
        }
        Ok(Identity::User(name_ok))
    }
}

impl AccessControl {
    /// Whether `identity` may call `/v2/_catalog` at all (what it lists is
    /// filtered by pull). A rule granting `catalog` allows it; without one,
    /// every authenticated identity may still list, since a filtered list
    /// shows nothing it could not pull, unless a deny rule names it.
    /// Anonymous callers need a rule.
    #[must_use]
    pub fn may_list_catalog(&self, identity: &Identity) -> bool {
        let d = self.decide(identity, "", PolicyAction::Catalog);
        d.allowed || (!matches!(identity, Identity::Anonymous) && d.rule.is_none())
    }
}
