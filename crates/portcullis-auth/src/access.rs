//! Decisions for an [`Identity`]: the policy's decision, narrowed for robot
//! tokens to the scope they were given. The server's authorization and the
//! token service's grants both decide here, so Basic and token mode agree.

use std::sync::Arc;

use secrecy::SecretString;

use crate::authn::{CertificateNames, Credential, IdentityProvider, ProviderChain, Refusal};
use crate::identity::Identity;
use crate::policy::{Action, Decision, Policy, Principal};

/// The policy principal of an identity.
#[must_use]
pub fn principal(identity: &Identity) -> Principal {
    match identity {
        Identity::Anonymous => Principal::Anonymous,
        Identity::User(u) if u.groups.is_empty() => Principal::User(u.as_str().to_owned()),
        Identity::User(u) => Principal::Member {
            name: u.as_str().to_owned(),
            groups: u.groups.clone(),
        },
        Identity::Robot(r) => Principal::Robot {
            name: r.name.clone(),
            owner: r.owner.as_str().to_owned(),
        },
    }
}

/// Whether `identity` may do `action` on `repo`, and why: the one decision
/// that Basic mode, token grants, certificates, the catalog and `access
/// explain` all make. A robot may do what its owner may within the scope
/// it was given, and, like every authenticated identity, whatever anonymous
/// callers may.
#[must_use]
pub fn decide(policy: &Policy, identity: &Identity, repo: &str, action: Action) -> Decision {
    decide_as(policy, identity, repo, action, true)
}

/// [`decide`] without the explanation (for filtering many repositories).
#[must_use]
pub fn allows(policy: &Policy, identity: &Identity, repo: &str, action: Action) -> bool {
    decide_as(policy, identity, repo, action, false).allowed
}

fn decide_as(
    policy: &Policy,
    identity: &Identity,
    repo: &str,
    action: Action,
    explain: bool,
) -> Decision {
    let who = principal(identity);
    let d = if explain {
        policy.decide(&who, repo, action)
    } else {
        Decision {
            allowed: policy.allows(&who, repo, action),
            rule: None,
            explanation: String::new(),
        }
    };
    match identity {
        Identity::Robot(r)
            if action != Action::Catalog
                && d.allowed
                && !r.permits(repo, action)
                && !policy.allows(&Principal::Anonymous, repo, action) =>
        {
            Decision {
                allowed: false,
                rule: None,
                explanation: if explain {
                    format!(
                        "deny: robot {} was given {} on {}, which does not include {} on {repo}",
                        r.login(),
                        portcullis_types::ScopeAction::join(&r.actions, ","),
                        r.repositories.join(" "),
                        action.as_str()
                    )
                } else {
                    String::new()
                },
            }
        }
        _ => d,
    }
}

/// Everything that decides who a caller is and what they may do: the
/// policy and the identity providers. Shared by the registry (Basic mode),
/// the token service and `access explain`.
pub struct AccessControl {
    pub policy: std::sync::Arc<crate::policy::PolicyStore>,
    /// The identity providers, in the order they are asked.
    pub identities: ProviderChain,
}

impl AccessControl {
    /// The chain of today's providers: robot tokens, then htpasswd users,
    /// then the names of verified client certificates.
    #[must_use]
    pub fn new(
        policy: Arc<crate::policy::PolicyStore>,
        users: Option<Arc<crate::htpasswd::Htpasswd>>,
        robots: Option<Arc<crate::robots::RobotStore>>,
    ) -> Self {
        let mut providers: Vec<Arc<dyn IdentityProvider>> = Vec::new();
        if let Some(r) = robots {
            providers.push(r);
        }
        if let Some(u) = users {
            providers.push(u);
        }
        providers.push(Arc::new(CertificateNames));
        Self {
            policy,
            identities: ProviderChain::new(providers),
        }
    }

    /// Decides with the current policy.
    #[must_use]
    pub fn decide(&self, identity: &Identity, repo: &str, action: Action) -> Decision {
        decide(&self.policy.current(), identity, repo, action)
    }

    /// The non-blocking path: a user whose password was verified recently.
    #[must_use]
    pub fn login_cached(&self, user: &str, password: &SecretString) -> Option<Identity> {
        self.identities.verify_cached(&Credential::Password {
            user,
            secret: password,
        })
    }

    /// Verifies a login (blocking: bcrypt or a robot-store read) through the
    /// identity providers.
    ///
    /// # Errors
    /// [`Refusal`] for any wrong, unknown, expired or revoked credential,
    /// with the reason for the log (never for the client).
    #[tracing::instrument(skip_all)]
    pub fn login(&self, user: &str, password: &SecretString) -> Result<Identity, Refusal> {
        self.identities.verify(
            &Credential::Password {
                user,
                secret: password,
            },
            std::time::SystemTime::now(),
        )
    }

    /// The identity a verified client certificate's name stands for:
    /// `<owner>+<name>` is a robot, which must be live and whose owner must
    /// still exist; any other name is a user, who must be a user of the
    /// registry when it has a directory of users. Blocking: may read the
    /// robot store.
    ///
    /// # Errors
    /// Why the name gives no identity (the client may be told: it knows the
    /// name it presented); the caller must refuse the request.
    pub fn certificate_login(&self, name: &str) -> Result<Identity, Refusal> {
        self.identities.verify(
            &Credential::Certificate { name },
            std::time::SystemTime::now(),
        )
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
        let d = self.decide(identity, "", Action::Catalog);
        d.allowed || (!matches!(identity, Identity::Anonymous) && d.rule.is_none())
    }
}
