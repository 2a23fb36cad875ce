use std::fs;
use std::time::Duration;

use super::PolicyAction::{Catalog, Delete, Pull, Push};
use super::*;

/// The policy of the issue, plus a catalog rule; line numbers matter.
const EXAMPLE: &str = r#"groups:
  devs: [alice, bob]
immutable: ["release/**"]
rules:
  - subjects: [anonymous]
    repositories: ["public/**"]
    actions: [pull]
  - subjects: ["group:devs"]
    repositories: ["team/**"]
    actions: [pull, push]
  - subjects: [authenticated]
    repositories: ["${user}/**"]
    actions: [pull, push, delete]
  - subjects: ["user:admin"]
    repositories: ["**"]
    actions: ["*"]
  - subjects: ["user:bob"]
    repositories: ["team/secret/**"]
    actions: [pull, push]
    effect: deny
"#;

fn example() -> Policy {
    Policy::from_yaml(EXAMPLE, "access.yml", 0).unwrap()
}

fn user(name: &str) -> Principal {
    Principal::User(name.to_owned())
}

fn robot(name: &str, owner: &str) -> Principal {
    Principal::Robot {
        name: name.to_owned(),
        owner: owner.to_owned(),
    }
}

/// `decide` and `allows` must always agree.
fn may(policy: &Policy, who: &Principal, repo: &str, action: PolicyAction) -> bool {
    let decision = policy.decide(who, repo, action);
    assert_eq!(
        decision.allowed,
        policy.allows(who, repo, action),
        "{decision}"
    );
    assert!(!decision.explanation.contains('\n'));
    decision.allowed
}

fn error(text: &str) -> PolicyError {
    match Policy::from_yaml(text, "access.yml", 0) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e,
    }
}

/// Asserts that `text` is refused at `line` with a message containing
/// `message`, and that the error says how to fix it.
fn refused(text: &str, line: usize, message: &str) -> PolicyError {
    let e = error(text);
    assert_eq!(e.line, Some(line), "{e}");
    assert!(e.message.contains(message), "{e}");
    assert!(!e.fix.is_empty(), "{e}");
    e
}

#[test]
fn the_example_end_to_end() {
    let p = example();
    let anon = Principal::Anonymous;
    assert!(may(&p, &anon, "public/ubuntu", Pull));
    assert!(may(&p, &anon, "public/a/b", Pull));
    assert!(!may(&p, &anon, "public/ubuntu", Push));
    assert!(
        !may(&p, &anon, "public", Pull),
        "public/** does not match public"
    );
    assert!(!may(&p, &anon, "team/app", Pull));

    let alice = user("alice");
    assert!(may(&p, &alice, "team/app", Push));
    assert!(may(&p, &alice, "team/secret/x", Push));
    assert!(!may(&p, &alice, "team/app", Delete));
    assert!(may(&p, &alice, "alice/tool", Delete));
    assert!(!may(&p, &alice, "alice", Pull));
    assert!(!may(&p, &alice, "carol/tool", Pull));

    let bob = user("bob");
    assert!(may(&p, &bob, "team/app", Push));
    assert!(!may(&p, &bob, "team/secret/x", Pull));
    assert!(!may(&p, &bob, "team/secret/x", Push));
    assert!(may(&p, &bob, "bob/x", Push));

    let admin = user("admin");
    for action in PolicyAction::ALL {
        assert!(may(&p, &admin, "anything/at/all", action));
    }
    assert!(may(&p, &admin, "team/secret/x", Delete));

    let carol = user("carol");
    assert!(!may(&p, &carol, "team/app", Pull));
    assert!(!may(&p, &carol, "private/x", Pull));
    assert!(may(&p, &carol, "carol/x", Push));
    assert!(may(&p, &carol, "public/x", Pull));
    assert!(!may(&p, &carol, "", Catalog));
}

#[test]
fn explanations_name_the_rule() {
    let p = example();
    let d = p.decide(&user("bob"), "team/secret/x", Push);
    assert_eq!(
        d.explanation,
        "deny: rule 5 at access.yml:17 (subjects user:bob, repositories team/secret/**) \
         denies push on team/secret/x for user bob"
    );
    assert_eq!(
        d.rule,
        Some(RuleRef {
            source: "access.yml".to_owned(),
            line: 17,
            index: 4,
            effect: Effect::Deny,
        })
    );
    assert_eq!(d.rule.unwrap().to_string(), "rule 5 at access.yml:17");

    let d = p.decide(&user("alice"), "team/app", Push);
    assert_eq!(
        d.explanation,
        "allow: rule 2 at access.yml:8 (subjects group:devs, repositories team/**) \
         allows push on team/app for user alice"
    );
    assert_eq!(d.rule.as_ref().map(|r| r.effect), Some(Effect::Allow));

    let d = p.decide(&user("carol"), "x", Push);
    assert_eq!(
        d.explanation,
        "deny: no rule allows push on x for user carol (nothing is allowed by default)"
    );
    assert_eq!(d.rule, None);

    let d = p.decide(&robot("ci", "alice"), "y", Pull);
    assert!(
        d.explanation
            .ends_with("for robot ci (owner alice) (nothing is allowed by default)")
    );
    let d = p.decide(&Principal::Anonymous, "", Catalog);
    assert_eq!(
        d.explanation,
        "deny: no rule allows catalog for anonymous (nothing is allowed by default)"
    );
    // Names with control characters cannot break the line.
    let d = p.decide(&user("eve\nallow: forged"), "a\rb", Pull);
    assert!(!d.explanation.contains(['\n', '\r']), "{d}");
}

#[test]
fn line_offset_applies_to_rules_and_errors() {
    let p = Policy::from_yaml(EXAMPLE, "config.yml", 40).unwrap();
    let d = p.decide(&user("bob"), "team/secret/x", Pull);
    assert_eq!(d.rule.as_ref().unwrap().line, 57);
    assert!(d.explanation.contains("at config.yml:57 "), "{d}");
    let e = Policy::from_yaml("rules:\n  - subjects: [nobody]\n", "config.yml", 10).unwrap_err();
    assert_eq!(e.line, Some(12));
    assert!(
        e.to_string()
            .starts_with("config.yml:12: rules[0].subjects: unknown subject `nobody`. Fix: "),
        "{e}"
    );
}

#[test]
fn first_matching_allow_is_reported() {
    let text = "rules:\n  - subjects: [authenticated]\n    repositories: [\"a/**\"]\n    actions: [pull]\n  - subjects: [\"user:x\"]\n    repositories: [\"**\"]\n    actions: [pull]\n";
    let p = Policy::from_yaml(text, "f", 0).unwrap();
    assert_eq!(p.decide(&user("x"), "a/b", Pull).rule.unwrap().index, 0);
    assert_eq!(p.decide(&user("x"), "b/b", Pull).rule.unwrap().index, 1);
}

#[test]
fn anonymous_extends_to_everyone() {
    let text = r#"
rules:
  - subjects: [anonymous]
    repositories: ["public/**", "docs"]
    actions: [pull]
  - subjects: [anonymous]
    repositories: ["public/internal/**"]
    actions: [pull]
    effect: deny
  - subjects: ["user:mallory"]
    repositories: ["public/**"]
    actions: [pull]
    effect: deny
"#;
    let p = Policy::from_yaml(text, "f", 0).unwrap();
    for who in [user("carol"), robot("ci", "carol")] {
        assert!(may(&p, &who, "public/x", Pull));
        assert!(may(&p, &who, "docs", Pull));
        assert!(!may(&p, &who, "public/x", Push));
        // A deny for anonymous means "not without signing in".
        assert!(may(&p, &who, "public/internal/x", Pull));
    }
    assert!(!may(&p, &Principal::Anonymous, "public/internal/x", Pull));
    assert!(may(&p, &Principal::Anonymous, "public/x", Pull));
    // A deny naming the user still wins.
    assert!(!may(&p, &user("mallory"), "public/x", Pull));
    assert!(!may(&p, &robot("ci", "mallory"), "public/x", Pull));
}

#[test]
fn deny_wins_whatever_the_order() {
    let text = r#"
groups:
  ops: [dave]
rules:
  - subjects: ["group:ops"]
    repositories: ["infra/**"]
    actions: [delete]
    effect: deny
  - subjects: ["user:dave"]
    repositories: ["**"]
    actions: ["*"]
  - subjects: [authenticated]
    repositories: ["infra/vault"]
    actions: ["*"]
    effect: deny
"#;
    let p = Policy::from_yaml(text, "f", 0).unwrap();
    let dave = user("dave");
    assert!(may(&p, &dave, "infra/x", Push));
    assert!(!may(&p, &dave, "infra/x", Delete));
    let d = p.decide(&dave, "infra/vault", Delete);
    assert!(!d.allowed);
    assert_eq!(
        d.rule.unwrap().index,
        0,
        "the first matching deny is reported"
    );
    let d = p.decide(&dave, "infra/vault", Pull);
    assert_eq!(d.rule.unwrap().index, 2);
    assert!(may(&p, &dave, "", Catalog));
}

#[test]
fn robots_get_their_owner_minus_their_denies() {
    let text = r#"
groups:
  devs: [alice]
rules:
  - subjects: ["group:devs"]
    repositories: ["team/**"]
    actions: [pull, push]
  - subjects: [authenticated]
    repositories: ["${user}/**"]
    actions: ["*"]
  - subjects: ["robot:ci"]
    repositories: ["team/prod/**"]
    actions: [push]
    effect: deny
  - subjects: ["robot:wide"]
    repositories: ["**"]
    actions: ["*"]
"#;
    let p = Policy::from_yaml(text, "f", 0).unwrap();
    let ci = robot("ci", "alice");
    assert!(may(&p, &ci, "team/app", Push));
    assert!(may(&p, &ci, "team/prod/app", Pull));
    let d = p.decide(&ci, "team/prod/app", Push);
    assert!(!d.allowed);
    assert_eq!(d.rule.as_ref().unwrap().index, 2);
    assert!(
        d.explanation
            .ends_with("denies push on team/prod/app for robot ci (owner alice)"),
        "{d}"
    );
    // ${user} is the owner's name.
    assert!(may(&p, &ci, "alice/x", Delete));
    assert!(!may(&p, &ci, "ci/x", Pull));
    // A robot of another owner gets that owner's rights.
    assert!(!may(&p, &robot("ci", "carol"), "team/app", Pull));
    assert!(may(&p, &robot("ci", "carol"), "carol/app", Push));
    // An allow rule cannot widen a robot beyond its owner, and says so.
    assert!(!may(&p, &robot("wide", "carol"), "team/app", Pull));
    assert!(!may(&p, &robot("wide", "carol"), "", Catalog));
    assert_eq!(p.warnings().len(), 1);
    assert_eq!(p.warnings()[0].line, Some(15));
    assert!(
        p.warnings()[0].message.contains("robot:wide"),
        "{}",
        p.warnings()[0]
    );
    // `user:ci` rules do not apply to a robot named ci.
    assert!(!may(&p, &user("ci"), "team/app", Pull));
}

#[test]
fn catalog_is_registry_wide() {
    let text = r#"
rules:
  - subjects: [anonymous]
    actions: [catalog]
  - subjects: ["user:lead"]
    repositories: ["team/**"]
    actions: ["*"]
  - subjects: ["user:root"]
    repositories: ["team/**", "**"]
    actions: ["*"]
  - subjects: ["user:hidden"]
    actions: [catalog]
    effect: deny
"#;
    let p = Policy::from_yaml(text, "f", 0).unwrap();
    assert!(may(&p, &Principal::Anonymous, "", Catalog));
    assert!(may(&p, &user("anyone"), "", Catalog));
    assert!(may(&p, &robot("r", "anyone"), "", Catalog));
    assert!(!may(&p, &user("hidden"), "", Catalog));
    assert!(!may(&p, &robot("r", "hidden"), "", Catalog));
    // The repository argument is ignored for catalog.
    assert!(may(&p, &user("anyone"), "whatever/x", Catalog));

    // `*` on some repositories does not grant or deny catalog.
    let text = r#"
rules:
  - subjects: ["user:lead"]
    repositories: ["team/**"]
    actions: ["*"]
  - subjects: ["user:root"]
    repositories: ["**"]
    actions: ["*"]
  - subjects: ["user:root"]
    repositories: ["team/secret/**"]
    actions: ["*"]
    effect: deny
"#;
    let p = Policy::from_yaml(text, "f", 0).unwrap();
    assert!(may(&p, &user("lead"), "team/x", Delete));
    assert!(!may(&p, &user("lead"), "", Catalog));
    assert!(
        may(&p, &user("root"), "", Catalog),
        "a narrow deny does not deny catalog"
    );
    assert!(!may(&p, &user("root"), "team/secret/x", Pull));
    // Only a catalog rule may leave out repositories.
    refused(
        "rules:\n  - subjects: [anonymous]\n    actions: [pull]\n",
        2,
        "missing `repositories`",
    );
    refused(
        "rules:\n  - subjects: [anonymous]\n    repositories: [\"team/**\"]\n    actions: [pull, catalog]\n",
        4,
        "`catalog` is registry-wide",
    );
}

#[test]
fn single_and_double_stars() {
    let text = r#"
rules:
  - subjects: ["user:one"]
    repositories: ["team/*"]
    actions: [pull]
  - subjects: ["user:any"]
    repositories: ["team/**"]
    actions: [pull]
  - subjects: ["user:mid"]
    repositories: ["a/*/c", "x/**/z", "**/cache", "app-*/v*-rc*"]
    actions: [pull]
  - subjects: ["user:all"]
    repositories: ["**"]
    actions: [pull]
  - subjects: ["user:own"]
    repositories: ["home/${user}", "u-${user}-*/**"]
    actions: [pull]
"#;
    let p = Policy::from_yaml(text, "f", 0).unwrap();
    let one = user("one");
    assert!(may(&p, &one, "team/app", Pull));
    assert!(!may(&p, &one, "team/a/b", Pull));
    assert!(!may(&p, &one, "team", Pull));
    let any = user("any");
    assert!(may(&p, &any, "team/app", Pull));
    assert!(may(&p, &any, "team/a/b/c", Pull));
    assert!(!may(&p, &any, "team", Pull));
    assert!(!may(&p, &any, "teams/app", Pull));
    let mid = user("mid");
    assert!(may(&p, &mid, "a/b/c", Pull));
    assert!(!may(&p, &mid, "a/c", Pull));
    assert!(!may(&p, &mid, "a/b/b/c", Pull));
    assert!(may(&p, &mid, "x/z", Pull));
    assert!(may(&p, &mid, "x/y/y/z", Pull));
    assert!(!may(&p, &mid, "x/z/q", Pull));
    assert!(may(&p, &mid, "cache", Pull));
    assert!(may(&p, &mid, "a/b/cache", Pull));
    assert!(!may(&p, &mid, "a/cache/b", Pull));
    assert!(may(&p, &mid, "app-web/v1-rc2", Pull));
    assert!(may(&p, &mid, "app-/v-rc", Pull));
    assert!(!may(&p, &mid, "app-web/v1", Pull));
    assert!(!may(&p, &mid, "app/v1-rc1", Pull));
    let all = user("all");
    assert!(may(&p, &all, "x", Pull));
    assert!(may(&p, &all, "x/y/z", Pull));
    let own = user("own");
    assert!(may(&p, &own, "home/own", Pull));
    assert!(!may(&p, &own, "home/own/x", Pull));
    assert!(may(&p, &own, "u-own-1/x", Pull));
    assert!(!may(&p, &own, "u-other-1/x", Pull));
}

#[test]
fn user_variable_stays_in_its_segment() {
    let text = "rules:\n  - subjects: [authenticated]\n    repositories: [\"${user}/**\", \"h/${user}\"]\n    actions: [push]\n";
    let p = Policy::from_yaml(text, "f", 0).unwrap();
    assert!(may(&p, &user("team"), "team/x", Push));
    // A name with `/` never matches, so it cannot reach into a deeper namespace.
    assert!(!may(&p, &user("team/secret"), "team/secret/x", Push));
    assert!(!may(&p, &user("h/x"), "h/h/x", Push));
    assert!(!may(&p, &user(""), "/x", Push));
    assert_eq!(p.pull_prefixes(&user("team/secret")), Some(vec![]));
    // Upper-case names never match lower-case repositories.
    assert!(!may(&p, &user("Alice"), "alice/x", Push));
}

#[test]
fn immutable_repositories() {
    let p = example();
    assert!(p.is_immutable("release/app"));
    assert!(p.is_immutable("release/a/b"));
    assert!(!p.is_immutable("release"));
    assert!(!p.is_immutable("team/release"));
    assert!(!Policy::empty().is_immutable("release/app"));
    assert!(!Policy::allow_all().is_immutable("release/app"));
    let p = Policy::from_yaml("immutable: [\"*/stable\", prod]\n", "f", 0).unwrap();
    assert!(p.is_immutable("app/stable"));
    assert!(p.is_immutable("prod"));
    assert!(!p.is_immutable("prod/x"));
    refused("immutable:\n  - \"${user}/**\"\n", 2, "immutable[0]");
    refused("immutable:\n  - ok/**\n  - \"Bad\"\n", 3, "upper-case");
}

#[test]
fn built_in_policies() {
    let empty = Policy::empty();
    for action in PolicyAction::ALL {
        assert!(!may(&empty, &user("admin"), "x", action));
        assert!(!may(&empty, &Principal::Anonymous, "x", action));
    }
    assert_eq!(empty.pull_prefixes(&user("a")), Some(vec![]));

    let all = Policy::allow_all();
    for action in PolicyAction::ALL {
        assert!(may(&all, &user("anyone"), "x/y", action));
        assert!(may(&all, &robot("r", "anyone"), "x/y", action));
        assert!(!may(&all, &Principal::Anonymous, "x/y", action));
    }
    assert_eq!(all.pull_prefixes(&user("a")), None);
    assert_eq!(all.pull_prefixes(&Principal::Anonymous), Some(vec![]));
    let d = all.decide(&Principal::Anonymous, "x", Pull);
    assert!(d.explanation.starts_with("deny: "), "{d}");
    assert_eq!(d.rule, None);

    let open = Policy::open();
    assert!(may(&open, &Principal::Anonymous, "x", Delete));
    assert_eq!(open.pull_prefixes(&Principal::Anonymous), None);

    // An empty section, or one that only names a file, has no rules.
    assert_eq!(Policy::from_yaml("", "f", 0).unwrap().rule_count(), 0);
    assert_eq!(
        Policy::from_yaml("rules: []\n", "f", 0)
            .unwrap()
            .rule_count(),
        0
    );
    assert_eq!(
        Policy::from_yaml("path: /etc/a.yml\n", "f", 0)
            .unwrap()
            .rule_count(),
        0
    );
}

#[test]
fn pull_prefixes_for_the_catalog() {
    let p = example();
    assert_eq!(
        p.pull_prefixes(&Principal::Anonymous),
        Some(vec!["public/".to_owned()])
    );
    assert_eq!(
        p.pull_prefixes(&user("alice")),
        Some(vec![
            "alice/".to_owned(),
            "public/".to_owned(),
            "team/".to_owned()
        ])
    );
    // Deny rules are not reflected: the caller still decides per name.
    assert_eq!(
        p.pull_prefixes(&user("bob")),
        Some(vec![
            "bob/".to_owned(),
            "public/".to_owned(),
            "team/".to_owned()
        ])
    );
    assert_eq!(
        p.pull_prefixes(&robot("ci", "carol")),
        Some(vec!["carol/".to_owned(), "public/".to_owned()])
    );
    assert_eq!(p.pull_prefixes(&user("admin")), None);

    let text = r#"
rules:
  - subjects: ["user:x"]
    repositories: ["a/b/**", "a/**", "exact/name", "app-*/x", "a/b"]
    actions: [pull]
  - subjects: ["user:x"]
    repositories: ["pushonly/**"]
    actions: [push]
  - subjects: ["user:y"]
    repositories: ["*/x"]
    actions: [pull]
"#;
    let p = Policy::from_yaml(text, "f", 0).unwrap();
    assert_eq!(
        p.pull_prefixes(&user("x")),
        Some(vec![
            "a/".to_owned(),
            "app-".to_owned(),
            "exact/name".to_owned()
        ])
    );
    assert_eq!(p.pull_prefixes(&user("y")), None);
    assert_eq!(p.pull_prefixes(&user("nobody")), Some(vec![]));
}

#[test]
fn groups_and_members() {
    let text = r#"
groups:
  a: [u1, u2]
  b: [u2]
  empty: []
  none:
  same: &team [t1, t2]
  copy: *team
rules:
  - subjects: ["group:a"]
    repositories: ["a/**"]
    actions: [pull]
  - subjects: ["group:b", "group:empty", "group:none"]
    repositories: ["b/**"]
    actions: [pull]
  - subjects: ["group:copy"]
    repositories: ["c/**"]
    actions: [pull]
"#;
    let p = Policy::from_yaml(text, "f", 0).unwrap();
    assert!(may(&p, &user("u1"), "a/x", Pull));
    assert!(!may(&p, &user("u1"), "b/x", Pull));
    assert!(may(&p, &user("u2"), "a/x", Pull));
    assert!(may(&p, &user("u2"), "b/x", Pull));
    assert!(may(&p, &user("t2"), "c/x", Pull));
}

#[test]
fn lenient_spellings() {
    // A single scalar for a list, any case for keywords, a description, an
    // enclosing `access:` key, and YAML merge keys are all accepted.
    let text = r#"
access:
  rules:
    - description: everyone reads
      subjects: Anonymous
      repositories: "**"
      actions: PULL
      effect: Allow
"#;
    let p = Policy::from_yaml(text, "f", 0).unwrap();
    assert!(may(&p, &Principal::Anonymous, "x", Pull));
    assert_eq!(
        p.decide(&Principal::Anonymous, "x", Pull)
            .rule
            .unwrap()
            .line,
        4
    );
    assert_eq!("Delete".parse::<PolicyAction>(), Ok(Delete));
    assert!("drop".parse::<PolicyAction>().is_err());
}

#[test]
fn validation_errors_have_lines_and_fixes() {
    let e = refused(
        "groups:\n  devs: [alice]\nrules:\n  - subjects: [\"grup:devs\"]\n    repositories: [x]\n    actions: [pull]\n",
        4,
        "rules[0].subjects: unknown subject `grup:devs`",
    );
    assert!(e.fix.contains("group:devs"), "{e}");
    assert_eq!(
        e.to_string(),
        format!(
            "access.yml:4: rules[0].subjects: unknown subject `grup:devs`. Fix: {}",
            e.fix
        )
    );
    let e = refused(
        "rules:\n  - subjects: [alice]\n    repositories: [x]\n    actions: [pull]\n",
        2,
        "unknown subject `alice`",
    );
    assert!(e.fix.contains("user:alice"), "{e}");
    let e = refused(
        "rules:\n  - subjects: [anonymus]\n    repositories: [x]\n    actions: [pull]\n",
        2,
        "unknown subject",
    );
    assert!(e.fix.contains("`anonymous`"), "{e}");
    refused(
        "rules:\n  - subjects: [\"user:\"]\n    repositories: [x]\n    actions: [pull]\n",
        2,
        "no name",
    );
    // An undefined group, with the nearest defined one.
    let e = refused(
        "groups:\n  developers: [a]\nrules:\n  - subjects: [\"group:develpers\"]\n    repositories: [x]\n    actions: [pull]\n",
        4,
        "group `develpers` is not defined",
    );
    assert!(e.fix.contains("group:developers"), "{e}");
    // Unknown actions, with the nearest.
    let e = refused(
        "rules:\n  - subjects: [anonymous]\n    repositories: [x]\n    actions:\n      - pull\n      - puhs\n",
        6,
        "unknown action `puhs`",
    );
    assert!(e.fix.contains("push"), "{e}");
    let e = refused(
        "rules:\n  - subjects: [anonymous]\n    repositories: [x]\n    actions: [read]\n",
        4,
        "unknown action `read`",
    );
    assert!(e.fix.contains("pull"), "{e}");
    // Unknown keys, with the nearest.
    let e = refused(
        "rules:\n  - subjects: [anonymous]\n    repository: [x]\n    actions: [pull]\n",
        3,
        "rules[0].repository: unknown key",
    );
    assert!(e.fix.contains("`repositories`"), "{e}");
    let e = refused("rule:\n  - subjects: [anonymous]\n", 1, "rule: unknown key");
    assert!(e.fix.contains("`rules`"), "{e}");
    // Effects.
    let e = refused(
        "rules:\n  - subjects: [anonymous]\n    repositories: [x]\n    actions: [pull]\n    effect: denied\n",
        5,
        "unknown effect `denied`",
    );
    assert!(e.fix.contains("`deny`"), "{e}");
    // Missing parts.
    refused(
        "rules:\n  - repositories: [x]\n    actions: [pull]\n",
        2,
        "missing `subjects`",
    );
    refused(
        "rules:\n  - subjects: [anonymous]\n    repositories: [x]\n",
        2,
        "missing `actions`",
    );
    refused(
        "rules:\n  - subjects: [anonymous]\n    repositories: []\n    actions: [pull]\n",
        3,
        "lists no repositories",
    );
    refused("rules:\n  - anonymous\n", 2, "expected a rule");
    refused(
        "rules:\n  - subjects: {a: b}\n    repositories: [x]\n    actions: [pull]\n",
        2,
        "expected a list of subjects",
    );
    refused("groups:\n  devs: [\"user:alice\"]\n", 2, "plain user names");
    refused("groups:\n  \"de vs\": [alice]\n", 2, "group name");
    refused("groups: [a, b]\n", 1, "map of group names");
    refused("- a\n- b\n", 1, "must be a map");
}

#[test]
fn bad_patterns_are_refused() {
    let rule = |pattern: &str| {
        format!(
            "rules:\n  - subjects: [authenticated]\n    actions: [pull]\n    repositories:\n      - ok/**\n      - {pattern}\n"
        )
    };
    for (pattern, message) in [
        ("\"\"", "empty repository pattern"),
        ("\"a/***\"", "`***`"),
        ("\"a**\"", "whole path segment"),
        ("a/../b", "`..`"),
        ("Team/**", "upper-case"),
        ("a//b", "empty path segment"),
        ("team/", "empty path segment"),
        ("/team", "empty path segment"),
        ("\"team/?\"", "contains `?`"),
        ("\"$user/**\"", "misspells the variable"),
        ("\"{user}/**\"", "misspells the variable"),
        ("\"${USER}/**\"", "lower case"),
        ("\"${name}/**\"", "unknown variable `${name}`"),
        ("\"${user}/${team}\"", "unknown variable `${team}`"),
        ("\"a$b\"", "outside `${user}`"),
    ] {
        let e = refused(&rule(pattern), 6, message);
        assert!(e.message.starts_with("rules[0].repositories: "), "{e}");
    }
    let e = refused(&rule("team/"), 6, "empty path segment");
    assert!(e.fix.contains("team/**"), "{e}");
    let e = refused(&rule("Team/**"), 6, "upper-case");
    assert!(e.fix.contains("`team/**`"), "{e}");
    // ${user} for anonymous alone could never match.
    refused(
        "rules:\n  - subjects: [anonymous]\n    repositories: [\"${user}/**\"]\n    actions: [pull]\n",
        2,
        "never matches for anonymous",
    );
}

#[test]
fn yaml_problems_have_lines() {
    // An unquoted `*` starts a YAML alias.
    let e =
        error("rules:\n  - subjects: [anonymous]\n    repositories: [**]\n    actions: [pull]\n");
    assert_eq!(e.line, Some(3), "{e}");
    assert!(e.fix.contains("quote"), "{e}");
    let e = error("rules:\n  - subjects: [anonymous]\n    subjects: [anonymous]\n");
    assert_eq!(e.line, Some(3), "{e}");
    assert!(e.message.contains("duplicate key"), "{e}");
    let e = error("groups: [a\nrules: []\n");
    assert!(e.line.is_some(), "{e}");
    // `path` with a policy beside it is refused; a file cannot name another.
    refused("path: /a.yml\nrules: []\n", 2, "`path` names a policy file");
}

#[test]
fn all_problems_are_listed() {
    let text = "rules:\n  - subjects: [nobody]\n    repositories: [x]\n    actions: [pul]\n  - subjects: [anonymous]\n    repositories: [X]\n    actions: [pull]\n";
    let errors = Policy::from_yaml_all(text, "f", 0).unwrap_err();
    let lines: Vec<_> = errors.iter().map(|e| e.line.unwrap()).collect();
    assert_eq!(lines, [2, 4, 6], "{errors:?}");
}

#[test]
fn many_rules_and_users() {
    // Indexing must not change answers: a policy with many groups and rules.
    let mut text = String::from("groups:\n");
    for g in 0..50 {
        text.push_str(&format!("  g{g}: ["));
        for u in 0..20 {
            text.push_str(&format!("u{}, ", g * 20 + u));
        }
        text.push_str("]\n");
    }
    text.push_str("rules:\n");
    for g in 0..50 {
        text.push_str(&format!(
            "  - subjects: [\"group:g{g}\"]\n    repositories: [\"p{g}/**\", \"*/shared{g}\"]\n    actions: [pull, push]\n"
        ));
    }
    text.push_str("  - subjects: [\"group:g7\"]\n    repositories: [\"p7/locked/**\"]\n    actions: [push]\n    effect: deny\n");
    let p = Policy::from_yaml(&text, "f", 0).unwrap();
    let u = user("u145"); // in g7
    assert!(may(&p, &u, "p7/x", Push));
    assert!(may(&p, &u, "any/shared7", Pull));
    assert!(!may(&p, &u, "any/shared8", Pull));
    assert!(!may(&p, &u, "p7/locked/x", Push));
    assert!(may(&p, &u, "p7/locked/x", Pull));
    assert!(!may(&p, &u, "p8/x", Pull));
    assert_eq!(p.pull_prefixes(&u), None);
}

fn write(path: &std::path::Path, text: &str) {
    // A new inode each time, as editors and config managers do.
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, text).unwrap();
    fs::rename(&tmp, path).unwrap();
}

#[test]
fn store_reloads_and_keeps_the_old_policy_on_a_broken_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("access.yml");
    write(
        &path,
        "rules:\n  - subjects: [anonymous]\n    repositories: [\"a/**\"]\n    actions: [pull]\n",
    );
    let store = PolicyStore::from_file(&path).unwrap();
    assert_eq!(store.path(), Some(path.as_path()));
    assert!(may(&store.current(), &Principal::Anonymous, "a/x", Pull));
    assert_eq!(store.check_now(), Ok(false));

    write(
        &path,
        "rules:\n  - subjects: [anonymous]\n    repositories: [\"b/**\"]\n    actions: [pull]\n",
    );
    assert_eq!(store.check_now(), Ok(true));
    assert!(!may(&store.current(), &Principal::Anonymous, "a/x", Pull));
    assert!(may(&store.current(), &Principal::Anonymous, "b/x", Pull));

    write(
        &path,
        "rules:\n  - subjects: [anonymous]\n    repositories: [\"c/**\"]\n    actions: [pul]\n",
    );
    let e = store.check_now().unwrap_err();
    assert_eq!(e.line, Some(4));
    assert!(e.source.ends_with("access.yml"), "{e}");
    assert!(
        may(&store.current(), &Principal::Anonymous, "b/x", Pull),
        "old policy kept"
    );
    assert_eq!(store.last_error().map(|e| e.line), Some(Some(4)));
    // Still broken, still reported, not reloaded.
    assert!(store.check_now().is_err());

    fs::remove_file(&path).unwrap();
    let e = store.check_now().unwrap_err();
    assert!(e.message.contains("cannot read"), "{e}");
    assert!(may(&store.current(), &Principal::Anonymous, "b/x", Pull));

    write(
        &path,
        "rules:\n  - subjects: [anonymous]\n    repositories: [\"d/**\"]\n    actions: [pull]\n",
    );
    assert_eq!(store.check_now(), Ok(true));
    assert_eq!(store.last_error(), None);
    assert!(may(&store.current(), &Principal::Anonymous, "d/x", Pull));
}

#[test]
fn store_checks_the_file_from_current() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("access.yml");
    write(&path, "rules: []\n");
    let store = PolicyStore::from_file(&path).unwrap();
    assert!(!may(&store.current(), &Principal::Anonymous, "a", Pull));
    write(
        &path,
        "rules:\n  - subjects: [anonymous]\n    repositories: [a]\n    actions: [pull]\n",
    );
    // current() looks at most once a second.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !may(&store.current(), &Principal::Anonymous, "a", Pull) {
        assert!(std::time::Instant::now() < deadline, "not reloaded");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn store_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.yml");
    let e = PolicyStore::from_file(&missing).unwrap_err();
    assert!(e.message.contains("cannot read"), "{e}");
    let path = dir.path().join("access.yml");
    write(&path, "path: other.yml\n");
    let e = PolicyStore::from_file(&path).unwrap_err();
    assert!(e.message.contains("path: unknown key"), "{e}");
    write(
        &path,
        "rules:\n  - subjects: [\"user:a\"]\n    repositories: [x]\n    actions: [pull]\n",
    );
    let store = PolicyStore::from_file(&path).unwrap();
    assert!(
        store
            .current()
            .decide(&user("a"), "x", Pull)
            .explanation
            .contains("access.yml:2 ")
    );
    let fixed = PolicyStore::fixed(Policy::empty());
    assert_eq!(fixed.check_now(), Ok(false));
    assert_eq!(fixed.path(), None);
}

#[test]
fn policy_is_shareable() {
    fn check<T: Send + Sync>() {}
    check::<Policy>();
    check::<PolicyStore>();
}

/// A slow, obviously correct matcher to check the compiled one against.
fn reference_match(pattern: &[&str], repo: &[&str]) -> bool {
    fn glob(p: &[u8], s: &[u8]) -> bool {
        match p.split_first() {
            None => s.is_empty(),
            Some((b'*', rest)) => (0..=s.len()).any(|i| glob(rest, &s[i..])),
            Some((c, rest)) => s.first() == Some(c) && glob(rest, &s[1..]),
        }
    }
    match pattern.split_first() {
        None => repo.is_empty(),
        Some((&"**", [])) => !repo.is_empty(),
        Some((&"**", rest)) => (0..=repo.len()).any(|k| reference_match(rest, &repo[k..])),
        Some((seg, rest)) => {
            !repo.is_empty()
                && glob(seg.as_bytes(), repo[0].as_bytes())
                && reference_match(rest, &repo[1..])
        }
    }
}

#[test]
fn matcher_agrees_with_a_reference() {
    let pattern_segs = ["a", "b", "*", "**", "a*", "*b", "a*b", "*a*", "ab"];
    let repo_segs = ["a", "b", "ab", "ba", "aab", "abab", "bb"];
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        usize::try_from(seed % n as u64).unwrap()
    };
    let mut outcomes = [0usize; 2];
    for _ in 0..3000 {
        let pattern: Vec<&str> = (0..=next(4))
            .map(|_| pattern_segs[next(pattern_segs.len())])
            .collect();
        let text = pattern.join("/");
        let Ok(compiled) = pattern::Pattern::compile(&text) else {
            continue;
        };
        for _ in 0..20 {
            let repo: Vec<&str> = (0..=next(5))
                .map(|_| repo_segs[next(repo_segs.len())])
                .collect();
            let name = repo.join("/");
            let expected = reference_match(&pattern, &repo);
            assert_eq!(
                compiled.matches(&name, &repo, Some("u")),
                expected,
                "pattern {text} on {name}"
            );
            outcomes[usize::from(expected)] += 1;
        }
    }
    assert!(outcomes[0] > 10_000 && outcomes[1] > 5_000, "{outcomes:?}");
}
