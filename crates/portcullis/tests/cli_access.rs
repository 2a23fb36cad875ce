//! `portcullis access explain` (allow or deny, and the rule that decided,
//! with its file and line) and `portcullis config check` on broken
//! policies (exit 1, naming what is wrong and its line). Runs everywhere:
//! no root, no daemon, no server.

mod common;

use std::path::Path;

use common::access::{POLICY_LINES, Setup, portcullis};
use serde_json::Value;

/// The 1-based line of `text` that contains `needle` (exactly one must).
fn line_of(text: &str, needle: &str) -> usize {
    let found: Vec<usize> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.contains(needle))
        .map(|(i, _)| i + 1)
        .collect();
    assert_eq!(found.len(), 1, "{needle:?} must be on exactly one line");
    found[0]
}

/// Whether `text` mentions line `line` the way a diagnostic does:
/// `line 7`, `line: 7`, `:7:` or `:7 ` (and not as part of `17` or `70`).
fn mentions_line(text: &str, line: usize) -> bool {
    let n = line.to_string();
    let lower = text.to_lowercase();
    let bytes = lower.as_bytes();
    lower.match_indices(&n).any(|(at, _)| {
        let after = bytes.get(at + n.len()).copied();
        if after.is_some_and(|b| b.is_ascii_digit()) {
            return false;
        }
        let before = lower[..at].trim_end();
        before.ends_with("line") || before.ends_with("line:") || before.ends_with(':')
    })
}

/// Whether `text` names `file:line` (by the file's name, any directory).
fn names_file_line(text: &str, file: &Path, line: usize) -> bool {
    let name = file
        .file_name()
        .and_then(|n| n.to_str())
        .expect("file name");
    let needle = format!("{name}:{line}");
    text.match_indices(&needle).any(|(at, _)| {
        !text[at + needle.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit())
    })
}

/// `allow` or `deny`, whichever the output says first.
fn decision(text: &str) -> Option<&'static str> {
    let lower = text.to_lowercase();
    match (lower.find("allow"), lower.find("deny")) {
        (Some(a), Some(d)) => Some(if a < d { "allow" } else { "deny" }),
        (Some(_), None) => Some("allow"),
        (None, Some(_)) => Some("deny"),
        (None, None) => None,
    }
}

/// Runs `access explain` for `who` (`--user X`, `--anonymous`, `--robot X`)
/// and checks the decision and, when given, the deciding `file:line`.
fn explain(
    failures: &mut Vec<String>,
    config: &Path,
    who: &[&str],
    repo: &str,
    action: &str,
    want: &str,
    rule: Option<(&Path, usize)>,
) {
    let mut args = vec!["access", "explain"];
    args.extend_from_slice(who);
    args.extend_from_slice(&["--repo", repo, "--action", action]);
    let out = portcullis(&args, config);
    let printed = common::combined_output(&out);
    let label = format!("portcullis {}", args.join(" "));
    // 0 for allow, 1 for deny.
    let code = if want == "allow" { 0 } else { 1 };
    if out.status.code() != Some(code) {
        failures.push(format!("{label}: exited with {}:\n{printed}", out.status));
        return;
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    if decision(&stdout) != Some(want) {
        failures.push(format!("{label}: expected {want}, printed:\n{stdout}"));
    }
    if let Some((file, line)) = rule
        && !names_file_line(&stdout, file, line)
    {
        failures.push(format!(
            "{label}: the deciding rule {}:{line} is not named:\n{stdout}",
            file.display()
        ));
    }
}

/// Who (`access explain` flags), repository, action, expected decision,
/// and the line of the deciding rule (if one decides).
type Case<'a> = (&'a [&'a str], &'a str, &'a str, &'a str, Option<usize>);

#[test]
fn explain_names_the_deciding_rule() {
    let setup = Setup::new();
    let (config, text) = setup.inline();
    let anonymous_rule = line_of(&text, "[anonymous]");
    let devs_rule = line_of(&text, "\"group:devs\"");
    let own_rule = line_of(&text, "${user}");
    let admin_rule = line_of(&text, "\"user:admin\"");
    let bob_rule = line_of(&text, "\"user:bob\"");
    let c = config.as_path();
    let mut failures = Vec::new();
    let cases: [Case; 10] = [
        (
            &["--user", "alice"],
            "team/app",
            "push",
            "allow",
            Some(devs_rule),
        ),
        (
            &["--user", "alice"],
            "team/secret/x",
            "pull",
            "allow",
            Some(devs_rule),
        ),
        (
            &["--user", "bob"],
            "team/secret/x",
            "pull",
            "deny",
            Some(bob_rule),
        ),
        (
            &["--user", "bob"],
            "team/secret/x",
            "push",
            "deny",
            Some(bob_rule),
        ),
        (
            &["--anonymous"],
            "public/lib",
            "pull",
            "allow",
            Some(anonymous_rule),
        ),
        // Whatever anonymous may do, every authenticated identity may do.
        (
            &["--user", "carol"],
            "public/lib",
            "pull",
            "allow",
            Some(anonymous_rule),
        ),
        (
            &["--user", "carol"],
            "carol/tools",
            "delete",
            "allow",
            Some(own_rule),
        ),
        (
            &["--user", "admin"],
            "anything/at/all",
            "delete",
            "allow",
            Some(admin_rule),
        ),
        // Nothing allows these: denied by default, no rule to name.
        (&["--user", "carol"], "team/app", "push", "deny", None),
        (&["--anonymous"], "public/lib", "push", "deny", None),
    ];
    for (who, repo, action, want, line) in cases {
        explain(
            &mut failures,
            c,
            who,
            repo,
            action,
            want,
            line.map(|l| (c, l)),
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Finds `key` anywhere in `value`.
fn find_key<'a>(value: &'a Value, key: &str) -> Option<&'a Value> {
    match value {
        Value::Object(map) => map
            .get(key)
            .or_else(|| map.values().find_map(|v| find_key(v, key))),
        Value::Array(items) => items.iter().find_map(|v| find_key(v, key)),
        _ => None,
    }
}

#[test]
fn explain_json_has_the_decision_and_the_line() {
    let setup = Setup::new();
    let (config, text) = setup.inline();
    for (user, repo, allowed, needle) in [
        ("alice", "team/app", true, "\"group:devs\""),
        ("bob", "team/secret/x", false, "\"user:bob\""),
    ] {
        let out = portcullis(
            &[
                "access", "explain", "--user", user, "--repo", repo, "--action", "push", "--json",
            ],
            &config,
        );
        assert_eq!(
            out.status.code(),
            Some(if allowed { 0 } else { 1 }),
            "{}",
            common::combined_output(&out)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let json: Value = serde_json::from_str(stdout.trim())
            .unwrap_or_else(|e| panic!("access explain --json printed no JSON ({e}):\n{stdout}"));
        assert_eq!(
            find_key(&json, "allowed"),
            Some(&Value::Bool(allowed)),
            "{user} push {repo}: {json}"
        );
        let line = line_of(&text, needle);
        assert_eq!(
            find_key(&json, "line").and_then(Value::as_u64),
            Some(line as u64),
            "{user} push {repo}: the deciding rule is on line {line}: {json}"
        );
    }
}

#[test]
fn explain_names_the_policy_file_and_its_line() {
    let setup = Setup::new();
    // The same rules in block style, in a file of their own.
    let policy_text = "\
# team policy
groups:
  devs: [alice, bob]
rules:
  - subjects: [\"group:devs\"]
    repositories: [\"team/**\"]
    actions: [pull, push]
  - subjects: [\"user:bob\"]
    repositories: [\"team/secret/**\"]
    actions: [pull, push]
    effect: deny
";
    let policy = setup.path("policy.yml");
    std::fs::write(&policy, policy_text).expect("write policy");
    let (config, _) = setup.config(
        "config.yml",
        &format!("access:\n  path: {}\n", common::registry::yaml_str(&policy)),
    );
    let mut failures = Vec::new();
    // A rule spans several lines: its first one (the `-` line) or any line
    // of it names it.
    for (user, repo, want, first, last) in [
        ("alice", "team/app", "allow", 5, 7),
        ("bob", "team/secret/x", "deny", 8, 11),
    ] {
        let args = [
            "access", "explain", "--user", user, "--repo", repo, "--action", "push",
        ];
        let out = portcullis(&args, &config);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let code = if want == "allow" { 0 } else { 1 };
        if out.status.code() != Some(code) || decision(&stdout) != Some(want) {
            failures.push(format!(
                "{}: expected {want}, got {}:\n{}",
                args.join(" "),
                out.status,
                common::combined_output(&out)
            ));
            continue;
        }
        if !(first..=last).any(|line| names_file_line(&stdout, &policy, line)) {
            failures.push(format!(
                "{}: expected policy.yml:{first} (the rule's lines {first}-{last}):\n{stdout}",
                args.join(" ")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn explain_for_a_robot_intersects_its_scope_with_its_owner() {
    let setup = Setup::new();
    let (config, _) = setup.inline();
    let out = portcullis(
        &[
            "token",
            "create",
            "--owner",
            "alice",
            "--name",
            "ci",
            "--repos",
            "team/**",
            "--actions",
            "pull,push",
            "--json",
        ],
        &config,
    );
    common::assert_success("token create", &out);
    let out = portcullis(
        &[
            "token",
            "create",
            "--owner",
            "bob",
            "--name",
            "ci",
            "--repos",
            "team/**",
            "--actions",
            "pull,push",
            "--json",
        ],
        &config,
    );
    common::assert_success("token create", &out);
    let mut failures = Vec::new();
    for (robot, repo, action, want) in [
        ("alice+ci", "team/app", "push", "allow"),
        ("alice+ci", "team/secret/x", "pull", "allow"),
        // Not given, although alice may.
        ("alice+ci", "team/app", "delete", "deny"),
        ("alice+ci", "alice/tools", "pull", "deny"),
        // Given, but its owner may not.
        ("bob+ci", "team/secret/x", "pull", "deny"),
    ] {
        explain(
            &mut failures,
            &config,
            &["--robot", robot],
            repo,
            action,
            want,
            None,
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Runs `config check` on `config` and checks that it exits 1 and names
/// each `(what, line)`.
fn check_rejects(config: &Path, errors: &[(&str, usize)]) -> Result<(), String> {
    let out = portcullis(&["config", "check"], config);
    let printed = common::combined_output(&out);
    let mut why = Vec::new();
    if out.status.code() != Some(1) {
        why.push(format!("expected exit status 1, got {}", out.status));
    }
    for (what, line) in errors {
        if !printed.contains(what) {
            why.push(format!("`{what}` is not named"));
        }
        if !mentions_line(&printed, *line) {
            why.push(format!("line {line} (of `{what}`) is not mentioned"));
        }
    }
    if why.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{}: {}\n--- output ---\n{printed}",
            config.display(),
            why.join("; ")
        ))
    }
}

/// A valid policy with one line swapped for a broken one.
fn broken(policy: &str, good: &str, bad: &str) -> String {
    assert!(policy.contains(good), "{good:?} is not in the policy");
    format!("access:\n{}", policy.replacen(good, bad, 1))
}

#[test]
fn config_check_accepts_the_policy() {
    let setup = Setup::new();
    let (config, _) = setup.inline();
    let out = portcullis(&["config", "check"], &config);
    common::assert_success("config check of a valid policy", &out);
}

#[test]
fn config_check_rejects_broken_policies_with_line_numbers() {
    let setup = Setup::new();
    let cases = [
        (
            "unknown subject kind",
            "subjects: [\"group:devs\"]",
            "subjects: [\"team:devs\"]",
            "team:devs",
        ),
        (
            "unknown action",
            "actions: [pull, push] }",
            "actions: [pull, pusj] }",
            "pusj",
        ),
        (
            "undefined group",
            "subjects: [\"group:devs\"]",
            "subjects: [\"group:ops\"]",
            "ops",
        ),
    ];
    let mut failures = Vec::new();
    for (i, (what, good, bad, named)) in cases.iter().enumerate() {
        let (config, text) =
            setup.config(&format!("broken-{i}.yml"), &broken(POLICY_LINES, good, bad));
        let line = line_of(&text, bad);
        if let Err(why) = check_rejects(&config, &[(named, line)]) {
            failures.push(format!("{what}: {why}"));
        }
        // `access explain` refuses to explain a broken policy.
        let out = portcullis(
            &[
                "access", "explain", "--user", "alice", "--repo", "team/app", "--action", "pull",
            ],
            &config,
        );
        if out.status.code() != Some(1) {
            failures.push(format!(
                "{what}: access explain should exit 1 on a broken policy, got {}:\n{}",
                out.status,
                common::combined_output(&out)
            ));
        }
    }
    // All three at once: every error is listed, each with its line.
    let mut all = POLICY_LINES.to_owned();
    all = all.replacen("subjects: [\"group:devs\"]", "subjects: [\"team:devs\"]", 1);
    all = all.replacen(
        "[\"public/**\"], actions: [pull] }",
        "[\"public/**\"], actions: [pusj] }",
        1,
    );
    all = all.replacen("subjects: [\"user:admin\"]", "subjects: [\"group:ops\"]", 1);
    let (config, text) = setup.config("broken-all.yml", &format!("access:\n{all}"));
    let errors = [
        ("team:devs", line_of(&text, "team:devs")),
        ("pusj", line_of(&text, "pusj")),
        ("ops", line_of(&text, "group:ops")),
    ];
    if let Err(why) = check_rejects(&config, &errors) {
        failures.push(format!("three errors in one policy: {why}"));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn config_check_rejects_a_broken_policy_file_with_its_line() {
    let setup = Setup::new();
    let policy = setup.path("policy.yml");
    std::fs::write(
        &policy,
        "rules:\n  - subjects: [\"user:alice\"]\n    repositories: [\"a/**\"]\n    actions: [pull, fly]\n",
    )
    .expect("write policy");
    let (config, _) = setup.config(
        "config.yml",
        &format!("access:\n  path: {}\n", common::registry::yaml_str(&policy)),
    );
    check_rejects(&config, &[("fly", 4)]).unwrap_or_else(|why| panic!("{why}"));
}

#[test]
fn mentions_line_matches_diagnostic_forms() {
    assert!(mentions_line("config.yml:10:3: unknown action", 10));
    assert!(mentions_line(
        "unknown action `pusj` at line 10, column 3",
        10
    ));
    assert!(!mentions_line("config.yml:100:3", 10));
    assert!(names_file_line(
        "rule 2 at /tmp/x/config.yml:17 (",
        Path::new("/a/config.yml"),
        17
    ));
    assert!(!names_file_line(
        "config.yml:170",
        Path::new("config.yml"),
        17
    ));
    assert_eq!(decision("allow: rule 1 ..."), Some("allow"));
    assert_eq!(decision("deny: no rule allows push"), Some("deny"));
}
