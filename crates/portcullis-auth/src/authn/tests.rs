//! The identity-provider contract, run against every provider, and the
//! chain's rules (order, owners and certificate users must still exist).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use secrecy::SecretString;

use super::{Account, CertificateNames, Credential, IdentityProvider, Outcome, ProviderChain};
use crate::htpasswd::Htpasswd;
use crate::identity::Identity;
use crate::robots::RobotStore;

fn secret(s: &str) -> SecretString {
    SecretString::from(s.to_owned())
}

/// What one provider is given to prove it keeps the contract.
struct Case<'a> {
    provider: &'a dyn IdentityProvider,
    /// A credential it must verify, and who it stands for.
    good: Credential<'a>,
    who: &'a str,
    /// A credential of its kind that it must refuse.
    bad: Credential<'a>,
    /// The shapes ([`shape`]) that are its own; to all others it must
    /// answer `NotMine`.
    own: &'a [(bool, bool)],
}

/// Credentials of every kind; each provider must answer `NotMine` to the
/// kinds that are not its own.
fn foreign<'a>(password: &'a SecretString, robot: &'a SecretString) -> [Credential<'a>; 4] {
    [
        Credential::Password {
            user: "nobody",
            secret: password,
        },
        Credential::Password {
            user: "nobody+x",
            secret: robot,
        },
        Credential::Certificate { name: "nobody" },
        Credential::Certificate { name: "nobody+x" },
    ]
}

/// The shape of a credential: (certificate?, robot-shaped?).
fn shape(c: &Credential<'_>) -> (bool, bool) {
    use secrecy::ExposeSecret;
    match c {
        Credential::Password { secret, .. } => {
            (false, RobotStore::looks_like_secret(secret.expose_secret()))
        }
        Credential::Certificate { name } => (true, name.contains('+')),
    }
}

fn contract(case: &Case<'_>) {
    let now = SystemTime::now();
    let kind = case.provider.kind();
    match case.provider.verify(&case.good, now) {
        Outcome::Verified(id) => assert_eq!(id.subject(), case.who, "{kind}: good credential"),
        other => panic!("{kind}: good credential gave {other:?}"),
    }
    match case.provider.verify(&case.bad, now) {
        Outcome::Refused(reason) => assert!(!reason.is_empty(), "{kind}: refusal says why"),
        other => panic!("{kind}: bad credential gave {other:?}"),
    }
    // A cached answer is never something verify would not say.
    if let Some(id) = case.provider.verify_cached(&case.bad) {
        panic!("{kind}: cached answer for a bad credential: {id:?}");
    }
    if let Some(id) = case.provider.verify_cached(&case.good) {
        assert_eq!(id.subject(), case.who, "{kind}: cached good credential");
    }
    let (pw, robot) = (
        secret("pw"),
        secret(&format!("pcrt_{}_{}", "a".repeat(16), "b".repeat(43))),
    );
    for other in foreign(&pw, &robot) {
        if case.own.contains(&shape(&other)) {
            continue;
        }
        assert!(
            matches!(case.provider.verify(&other, now), Outcome::NotMine),
            "{kind}: {other:?} is not its kind"
        );
    }
    // Only a directory may say a user is missing.
    let missing = case.provider.account("surely-nobody");
    if case.provider.is_directory() {
        assert_eq!(missing, Account::Missing, "{kind}");
    } else {
        assert_eq!(missing, Account::Unknown, "{kind}");
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    users: Arc<Htpasswd>,
    robots: Arc<RobotStore>,
    robot_secret: SecretString,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("htpasswd");
    let line = |u: &str, p: &str| format!("{u}:{}\n", bcrypt::hash(p, 4).unwrap());
    std::fs::write(&path, line("alice", "right") + &line("bob", "bobs")).unwrap();
    let users = Arc::new(Htpasswd::load(&path).unwrap());
    let robots = Arc::new(RobotStore::open(&dir.path().join("robots.json")).unwrap());
    let scope = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect();
    let (_, robot_secret) = robots
        .create(
            "alice",
            "ci",
            scope(&["alice/**"]),
            vec![portcullis_types::ScopeAction::One(
                portcullis_types::Action::Pull,
            )],
            Some(Duration::from_secs(3600)),
            SystemTime::now(),
        )
        .unwrap();
    Fixture {
        _dir: dir,
        users,
        robots,
        robot_secret,
    }
}

/// Robot secrets and certificates naming robots.
const ROBOT_SHAPES: &[(bool, bool)] = &[(false, true), (true, true)];

#[test]
fn every_provider_keeps_the_contract() {
    let f = fixture();
    let (right, wrong) = (secret("right"), secret("wrong"));
    let forged = secret(&format!("pcrt_{}_{}", "0".repeat(16), "x".repeat(43)));
    contract(&Case {
        provider: f.users.as_ref(),
        good: Credential::Password {
            user: "alice",
            secret: &right,
        },
        who: "alice",
        bad: Credential::Password {
            user: "alice",
            secret: &wrong,
        },
        own: &[(false, false)],
    });
    contract(&Case {
        provider: f.robots.as_ref(),
        good: Credential::Password {
            user: "alice+ci",
            secret: &f.robot_secret,
        },
        who: "alice+ci",
        bad: Credential::Password {
            user: "alice+ci",
            secret: &forged,
        },
        own: ROBOT_SHAPES,
    });
    contract(&Case {
        provider: f.robots.as_ref(),
        good: Credential::Certificate { name: "alice+ci" },
        who: "alice+ci",
        bad: Credential::Certificate { name: "alice+gone" },
        own: ROBOT_SHAPES,
    });
    contract(&Case {
        provider: &CertificateNames,
        good: Credential::Certificate { name: "carol" },
        who: "carol",
        bad: Credential::Certificate {
            name: "bad\u{7}name",
        },
        // it also refuses certificates naming robots the store did not take
        own: &[(true, false), (true, true)],
    });
}

fn chain(f: &Fixture) -> ProviderChain {
    ProviderChain::new(vec![
        f.robots.clone(),
        f.users.clone(),
        Arc::new(CertificateNames),
    ])
}

#[test]
fn the_chain_asks_in_order_and_says_why() {
    let f = fixture();
    let c = chain(&f);
    assert_eq!(c.kinds(), ["robots", "htpasswd", "certificate"]);
    assert!(c.has_directory());
    let now = SystemTime::now();
    let pw = |user, s| Credential::Password { user, secret: s };
    let right = secret("right");
    assert_eq!(
        c.verify(&pw("alice", &right), now).unwrap().subject(),
        "alice"
    );
    // verified once, then known without blocking
    assert!(c.verify_cached(&pw("alice", &right)).is_some());
    let robot = c.verify(&pw("alice+ci", &f.robot_secret), now).unwrap();
    assert!(matches!(robot, Identity::Robot(_)));
    let nope = secret("nope");
    let wrong = c.verify(&pw("alice", &nope), now).unwrap_err();
    assert_eq!(
        (wrong.provider, wrong.reason.as_str()),
        (Some("htpasswd"), "wrong password")
    );
    let unknown = c.verify(&pw("zed", &right), now).unwrap_err();
    assert_eq!(unknown.reason, "no such user in the htpasswd file");
    // a robot secret is never tried as a password, even under a user's name
    let as_user = c.verify(&pw("alice", &f.robot_secret), now).unwrap_err();
    assert_eq!(as_user.provider, Some("robots"));
    // certificates: users must be users, robots live
    let cert = |name| Credential::Certificate { name };
    assert_eq!(c.verify(&cert("bob"), now).unwrap().subject(), "bob");
    let stranger = c.verify(&cert("carol"), now).unwrap_err();
    assert!(stranger.reason.contains("who is not a user"), "{stranger}");
    assert!(c.verify(&cert("alice+ci"), now).is_ok());
    assert!(
        c.verify(&cert("alice+nope"), now)
            .unwrap_err()
            .reason
            .contains("robot `alice+nope`")
    );
    assert!(matches!(c.account("alice"), Account::Present { .. }));
    assert_eq!(c.account("zed"), Account::Missing);
}

#[test]
fn a_robot_dies_with_its_owner() {
    let f = fixture();
    let now = SystemTime::now();
    // alice removed from the directory: her robot no longer logs in
    let path = f.users.path().to_owned();
    std::fs::write(&path, format!("bob:{}\n", bcrypt::hash("bobs", 4).unwrap())).unwrap();
    let c = chain(&f);
    let pw = Credential::Password {
        user: "alice+ci",
        secret: &f.robot_secret,
    };
    let e = c.verify(&pw, now).unwrap_err();
    assert!(e.reason.contains("no longer a user"), "{e}");
    assert!(
        c.verify(&Credential::Certificate { name: "alice+ci" }, now)
            .is_err()
    );
}

#[test]
fn without_providers_nothing_is_verified() {
    let c = ProviderChain::default();
    assert!(!c.has_directory());
    let s = secret("x");
    let e = c
        .verify(
            &Credential::Password {
                user: "a",
                secret: &s,
            },
            SystemTime::now(),
        )
        .unwrap_err();
    assert_eq!(e.provider, None);
    assert_eq!(c.account("a"), Account::Unknown);
}

/// Groups an identity provider names count as the policy's groups of those
/// names: allow and deny rules alike, in the decision and in the catalog's
/// prefixes; names the policy does not define change nothing.
#[test]
fn provider_groups_are_policy_groups() {
    use crate::identity::{User, UserName};
    use crate::policy::{Action, Policy, PolicyStore};
    let policy = Policy::from_yaml(
        r#"groups:
  devs: [alice]
  ops: []
rules:
  - subjects: ["group:devs"]
    repositories: ["devs/**"]
    actions: [pull, push]
  - subjects: ["group:ops"]
    repositories: ["devs/secret/**"]
    actions: [pull]
    effect: deny
"#,
        "test",
        0,
    )
    .unwrap();
    let access =
        crate::access::AccessControl::new(Arc::new(PolicyStore::fixed(policy)), None, None);
    let zed = |groups: &[&str]| {
        Identity::User(User {
            name: UserName::new("zed").unwrap(),
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        })
    };
    let push = |who: &Identity, repo| access.decide(who, repo, Action::Push).allowed;
    let pull = |who: &Identity, repo| access.decide(who, repo, Action::Pull).allowed;
    assert!(!push(&zed(&[]), "devs/app"));
    assert!(push(&zed(&["devs"]), "devs/app"));
    assert!(push(&zed(&["nosuch", "devs"]), "devs/app"));
    assert!(!push(&zed(&["nosuch"]), "devs/app"));
    assert!(pull(&zed(&["devs"]), "devs/secret/x"));
    assert!(!pull(&zed(&["devs", "ops"]), "devs/secret/x"));
    // alice is in devs by the policy itself; a provider naming it again is the same
    let alice = Identity::User(User {
        name: UserName::new("alice").unwrap(),
        groups: vec!["devs".into()],
    });
    assert!(push(&alice, "devs/app"));
    let prefixes = access
        .policy
        .current()
        .pull_prefixes(&crate::access::principal(&zed(&["devs"])));
    assert_eq!(prefixes, Some(vec!["devs/".to_owned()]));
    assert_eq!(
        access
            .policy
            .current()
            .pull_prefixes(&crate::access::principal(&zed(&[]))),
        Some(vec![])
    );
}
