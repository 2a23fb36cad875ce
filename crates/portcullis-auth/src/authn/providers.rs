//! The identity providers of today: htpasswd users, robot tokens, and the
//! names of verified client certificates.

use std::time::SystemTime;

use secrecy::ExposeSecret;

use super::{Account, Credential, IdentityProvider, Outcome};
use crate::htpasswd::Htpasswd;
use crate::identity::{Identity, RobotIdentity, UserName};
use crate::robots::{LOGIN_SEPARATOR, Robot, RobotStore};

/// A password that has the shape of a robot secret is only ever checked
/// against the robot store, never against htpasswd.
fn robot_shaped(credential: &Credential<'_>) -> bool {
    matches!(credential, Credential::Password { secret, .. }
        if RobotStore::looks_like_secret(secret.expose_secret()))
}

impl IdentityProvider for Htpasswd {
    fn kind(&self) -> &'static str {
        "htpasswd"
    }

    fn verify_cached(&self, credential: &Credential<'_>) -> Option<Identity> {
        match credential {
            Credential::Password { user, secret } if !robot_shaped(credential) => self
                .authenticate_cached(user, secret)
                .map(Identity::user_named),
            _ => None,
        }
    }

    fn verify(&self, credential: &Credential<'_>, _now: SystemTime) -> Outcome {
        let Credential::Password { user, secret } = credential else {
            return Outcome::NotMine;
        };
        if robot_shaped(credential) {
            return Outcome::NotMine;
        }
        match self.authenticate(user, secret) {
            Ok(name) => Outcome::Verified(Identity::user_named(name)),
            Err(_) => Outcome::Refused(match self.disabled(user) {
                Some(why) => why.to_string(),
                None if self.password_fingerprint(user).is_none() => {
                    "no such user in the htpasswd file".to_owned()
                }
                None => "wrong password".to_owned(),
            }),
        }
    }

    fn account(&self, user: &str) -> Account {
        self.password_fingerprint(user)
            .map_or(Account::Missing, |stamp| Account::Present { stamp })
    }

    fn is_directory(&self) -> bool {
        true
    }
}

fn robot_identity(robot: Robot) -> Option<Identity> {
    let owner = UserName::new(&robot.owner).ok()?;
    Some(Identity::Robot(RobotIdentity {
        name: robot.name,
        owner,
        repositories: robot.repositories,
        actions: robot.actions,
    }))
}

/// What a certificate naming a robot that cannot be used is told.
pub(super) fn unknown_robot(name: &str) -> String {
    format!(
        "the certificate names robot `{name}`, which does not exist, was revoked or has expired, or whose owner is gone"
    )
}

impl IdentityProvider for RobotStore {
    fn kind(&self) -> &'static str {
        "robots"
    }

    fn verify(&self, credential: &Credential<'_>, now: SystemTime) -> Outcome {
        match credential {
            Credential::Password { user, secret } if robot_shaped(credential) => {
                match self.authenticate(user, secret, now).ok().and_then(robot_identity) {
                    Some(identity) => Outcome::Verified(identity),
                    None => Outcome::Refused(
                        "the robot token is unknown, revoked or expired, or its owner is no longer a user"
                            .to_owned(),
                    ),
                }
            }
            Credential::Certificate { name } if name.contains(LOGIN_SEPARATOR) => {
                match self.find_login(name, now).ok().and_then(robot_identity) {
                    Some(identity) => Outcome::Verified(identity),
                    None => Outcome::Refused(unknown_robot(name)),
                }
            }
            _ => Outcome::NotMine,
        }
    }
}

/// Client certificates whose name is a user name: the CA vouched for the
/// name, so the name is the user (who must also be in the users' directory
/// when there is one; the chain checks that). Names of robots
/// (`<owner>+<name>`) are the robot store's.
#[derive(Debug, Clone, Copy, Default)]
pub struct CertificateNames;

impl IdentityProvider for CertificateNames {
    fn kind(&self) -> &'static str {
        "certificate"
    }

    fn verify(&self, credential: &Credential<'_>, _now: SystemTime) -> Outcome {
        let Credential::Certificate { name } = credential else {
            return Outcome::NotMine;
        };
        if name.contains(LOGIN_SEPARATOR) {
            return Outcome::Refused(unknown_robot(name));
        }
        match UserName::new(name) {
            Ok(user) => Outcome::Verified(Identity::user_named(user)),
            Err(_) => Outcome::Refused(format!(
                "the certificate names `{name}`, which is not a valid user name"
            )),
        }
    }
}
