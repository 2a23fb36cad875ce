//! Robot scopes: the policy's pattern dialect, and the same answer as the
//! policy for the same pattern text.

use super::tests::{acts, s};
use super::*;
use crate::policy::{Policy, Principal};

fn robot(owner: &str, repositories: &[&str], actions: &[&str]) -> Robot {
    Robot {
        id: "0".repeat(16),
        name: "ci".into(),
        owner: owner.into(),
        repositories: RobotRepos::compile(&s(repositories)).unwrap(),
        actions: acts(actions),
        created: 0,
        last_used: 0,
        expires: None,
        hash: String::new(),
    }
}

#[test]
fn patterns() {
    let yes = [
        ("**", "a"),
        ("**", "a/b/c"),
        ("team/**", "team/app"),
        ("team/**", "team/a/b"),
        ("*", "app"),
        ("team/*", "team/app"),
        ("*/app", "team/app"),
        ("team/**/cache", "team/a/b/cache"),
        ("**/cache", "x/cache"),
        ("a/**/**", "a/b/c"),
        ("team/app", "team/app"),
        // What the policy's dialect adds: a middle or leading `**` may
        // match no segment, globs inside a segment, `${user}` the owner.
        ("team/**/cache", "team/cache"),
        ("**/cache", "cache"),
        ("a/**/**", "a/b"),
        ("team/app-*", "team/app-web"),
        ("team/*-cache", "team/build-cache"),
        ("${user}/**", "alice/app"),
        ("home/${user}-*", "home/alice-dev"),
    ];
    let no = [
        ("team/**", "team"),
        ("team/**", "teams/app"),
        ("team/*", "team/a/b"),
        ("team/*", "team"),
        ("*", "a/b"),
        ("team/app", "team/app2"),
        ("team/app", "team"),
        ("team", "team/app"),
        ("team/app-*", "team/app"),
        ("team/app-*", "team/app-x/y"),
        ("${user}/**", "bob/app"),
        ("${user}/**", "alice"),
    ];
    for (p, r) in yes {
        let robot = robot("alice", &[p], &["pull"]);
        assert!(robot.permits(r, Action::Pull), "{p} should match {r}");
    }
    for (p, r) in no {
        let robot = robot("alice", &[p], &["pull"]);
        assert!(!robot.permits(r, Action::Pull), "{p} should not match {r}");
    }
    // many `**` stay cheap
    let long = vec!["x"; 100].join("/");
    let many = |p: String| robot("alice", &[p.as_str()], &["pull"]);
    assert!(many(vec!["**"; 50].join("/")).permits("x/y", Action::Pull));
    assert!(many(vec!["**"; 50].join("/")).permits(&long, Action::Pull));
    assert!(!many(vec!["**"; 50].join("/") + "/y").permits(&long, Action::Pull));
}

#[test]
fn permits_is_scope_and_action() {
    let robot = robot("alice", &["team/**", "tools/*"], &["pull", "push"]);
    assert!(robot.permits("team/app", Action::Push));
    assert!(robot.permits("tools/lint", Action::Pull));
    assert!(!robot.permits("tools/a/b", Action::Pull));
    assert!(!robot.permits("team/app", Action::Delete));
    assert!(!robot.permits("other/app", Action::Pull));
    let all = Robot {
        actions: acts(&["*"]),
        ..robot
    };
    assert!(all.permits("team/app", Action::Delete));
    assert!(!all.permits("other/app", Action::Delete));
}

/// One pattern text, one answer: a policy rule giving user `alice` the
/// pattern, and a robot of `alice` given the same pattern, agree on every
/// name.
#[test]
fn robot_scopes_and_policy_rules_agree() {
    let patterns = [
        "**",
        "team/**",
        "team/*",
        "*",
        "*/app",
        "team/**/cache",
        "**/cache",
        "a/**/b",
        "a/**/**",
        "team/app",
        "team/app-*",
        "*-cache/*",
        "team/*/*",
        "${user}",
        "${user}/**",
        "home/${user}-*",
        "**/${user}/x",
    ];
    let names = [
        "a",
        "a/b",
        "a/x/b",
        "a/x/y/b",
        "team",
        "team/app",
        "team/app-web",
        "team/app-web/x",
        "team/cache",
        "team/a/cache",
        "team/a/b/cache",
        "teams/app",
        "x/app",
        "cache",
        "build-cache/x",
        "alice",
        "alice/app",
        "bob/app",
        "home/alice-dev",
        "home/bob-dev",
        "q/alice/x",
        "alice/x",
    ];
    let alice = Principal::User("alice".to_owned());
    let mut agreed = [0usize; 2];
    for pattern in patterns {
        let yaml = format!(
            "rules:\n  - subjects: [\"user:alice\"]\n    repositories: [\"{pattern}\"]\n    actions: [pull]\n"
        );
        let policy = Policy::from_yaml(&yaml, "access.yml", 0).unwrap();
        let robot = robot("alice", &[pattern], &["pull"]);
        for name in names {
            let by_policy = policy.allows(&alice, name, Action::Pull);
            assert_eq!(
                robot.permits(name, Action::Pull),
                by_policy,
                "pattern {pattern} on {name}"
            );
            agreed[usize::from(by_policy)] += 1;
        }
    }
    assert!(agreed[0] > 50 && agreed[1] > 30, "{agreed:?}");
}

/// Robot records keep their patterns as texts; a stored pattern that
/// today's compiler refuses (written under the old, laxer checks) loads,
/// matches nothing, and is written back unchanged.
#[test]
fn stored_patterns_round_trip() {
    let json = serde_json::json!({
        "id": "0000000000000000", "name": "ci", "owner": "alice",
        "repositories": ["team/**", "a/../b"], "actions": ["push", "pull"],
        "created": 1, "last_used": 0, "expires": null, "hash": ""
    });
    let robot: Robot = serde_json::from_value(json.clone()).unwrap();
    assert!(robot.permits("team/app", Action::Push));
    assert!(!robot.permits("a/../b", Action::Pull));
    assert_eq!(robot.repositories.join(","), "team/**,a/../b");
    assert_eq!(serde_json::to_value(&robot).unwrap(), json);
    // A clone shares the compiled patterns.
    assert_eq!(robot.clone().repositories, robot.repositories);
    let bad_action = serde_json::json!({
        "id": "0", "name": "ci", "owner": "alice", "repositories": ["a"],
        "actions": ["fly", "pull"], "created": 1, "last_used": 0, "expires": null, "hash": ""
    });
    // A hand-edited word that names no action is dropped: the robot keeps
    // what it names, and the store still loads for every other robot.
    let robot: Robot = serde_json::from_value(bad_action).unwrap();
    assert_eq!(robot.actions, vec![ScopeAction::One(Action::Pull)]);
    assert!(robot.permits("a", Action::Pull));
    assert!(!robot.permits("a", Action::Push));
}
