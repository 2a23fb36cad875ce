//! The audit log, rate limits and lockout with the Docker CLI against
//! portcullis's token service: after a login, push, pull and delete the
//! audit log holds those events and no secret, `portcullis audit verify`
//! passes and then finds one edited byte; a `docker pull` past the pull
//! limit prints `toomanyrequests`; repeated wrong logins lock the account
//! out until `portcullis lockout clear`.
//!
//! Needs root, `dockerd`, `docker`, `htpasswd` and `skopeo`.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use common::token::{self, ALICE, ALICE_PASSWORD, TokenServer};
use common::{Docker, Registry, RegistryKind, Skopeo};
use portcullis_testkit::wait::{Attempt, wait_for};
use serde_json::Value;

const NEEDS: &str = "root dockerd docker htpasswd skopeo";

fn start(dir: &Path, extra: &str) -> Registry {
    common::write_htpasswd(&dir.join("htpasswd"), &[(ALICE, ALICE_PASSWORD)]);
    let config = TokenServer::default().config(dir).extra_yaml(extra);
    Registry::start(RegistryKind::Portcullis, &config)
}

fn records(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("audit line {l}: {e}")))
        .collect()
}

fn count(records: &[Value]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for r in records {
        *m.entry(r["event"].as_str().unwrap_or("?").to_owned())
            .or_insert(0) += 1;
    }
    m
}

#[test]
fn login_push_pull_delete_are_audited_without_secrets_and_verify_finds_an_edit() {
    if !common::e2e_gate(NEEDS) || !token::portcullis_only() {
        return;
    }
    let dir = common::temp_dir();
    let log = dir.path().join("audit.log");
    let registry = start(
        dir.path(),
        &format!("audit:\n  file:\n    path: {}\n", log.display()),
    );
    let host = registry.host();
    let docker = Docker::new();
    let image = docker.build_test_image("e2e audit");
    common::assert_success("docker login", &docker.login(&host, ALICE, ALICE_PASSWORD));
    let remote = docker.push(&image, &host);
    docker.forget(&image, &remote);
    docker.pull_and_compare(&image, &remote);
    let skopeo = Skopeo::new();
    // A robot token reads the image; a wrong robot secret is refused.
    let created = common::portcullis_cli(
        &[
            "token",
            "create",
            "--owner",
            ALICE,
            "--name",
            "ci",
            "--repos",
            "**",
            "--actions",
            "pull",
            "--json",
        ],
        &registry.config_path(),
    );
    common::assert_success("token create", &created);
    let robot: Value = serde_json::from_slice(&created.stdout).expect("JSON");
    let robot_secret = robot["secret"].as_str().expect("secret").to_owned();
    let robot_login = robot["login"].as_str().expect("login").to_owned();
    skopeo.skopeo_ok(&[
        "inspect",
        "--tls-verify=false",
        "--creds",
        &format!("{robot_login}:{robot_secret}"),
        &format!("docker://{remote}"),
    ]);
    let wrong = skopeo.skopeo(&[
        "inspect",
        "--tls-verify=false",
        "--creds",
        &format!("{robot_login}:not-the-secret"),
        &format!("docker://{remote}"),
    ]);
    assert!(!wrong.status.success(), "a wrong robot secret was accepted");
    skopeo.skopeo_ok(&[
        "delete",
        "--tls-verify=false",
        "--creds",
        &format!("{ALICE}:{ALICE_PASSWORD}"),
        &format!("docker://{remote}"),
    ]);

    // An admin action from the CLI, another process, joins the same chain.
    common::assert_success(
        "lockout clear",
        &common::portcullis_cli(&["lockout", "clear", "--all"], &registry.config_path()),
    );
    let mut seen = Vec::new();
    wait_for(Duration::from_secs(10), || {
        seen = records(&log);
        let has = |e: &str| seen.iter().any(|r| r["event"] == e);
        let admins = seen.iter().filter(|r| r["event"] == "admin").count();
        if has("manifest.delete") && admins == 2 {
            Attempt::Done
        } else {
            Attempt::Retry(format!("{} lines so far", seen.len()))
        }
    })
    .expect("the delete reaches the audit log");
    let n = count(&seen);
    let layers = image.layers;
    // docker login, skopeo as alice and the robot check a secret (a check
    // answered from the verified-credentials cache is not repeated); the
    // wrong robot secret is one failure.
    let succeeded: BTreeSet<&str> = seen
        .iter()
        .filter(|r| r["event"] == "auth.success")
        .filter_map(|r| r["identity"].as_str())
        .collect();
    assert_eq!(
        succeeded,
        BTreeSet::from([ALICE, robot_login.as_str()]),
        "{n:?}"
    );
    assert_eq!(n.get("auth.failure"), Some(&1), "{n:?}");
    let failure = seen.iter().find(|r| r["event"] == "auth.failure").unwrap();
    assert_eq!(failure["identity"], robot_login.as_str(), "{failure}");
    assert!(n["token.issued"] >= 3, "{n:?}");
    // Every layer and the config pushed once, then the manifest.
    assert_eq!(n.get("blob.push"), Some(&(layers + 1)), "{n:?}");
    assert_eq!(n.get("manifest.push"), Some(&1), "{n:?}");
    // docker pulls every layer and the config; skopeo inspect the config.
    assert_eq!(n.get("blob.pull"), Some(&(layers + 2)), "{n:?}");
    assert!(n["manifest.pull"] >= 1, "{n:?}");
    assert_eq!(n.get("manifest.delete"), Some(&1), "{n:?}");
    let admin: Vec<&Value> = seen.iter().filter(|r| r["event"] == "admin").collect();
    let commands: Vec<&str> = admin.iter().filter_map(|r| r["command"].as_str()).collect();
    assert_eq!(commands, ["token create", "lockout clear"], "{admin:?}");
    assert!(
        admin[0]["detail"].as_str().unwrap().contains("alice+ci"),
        "{admin:?}"
    );
    assert!(
        admin[0]["identity"].as_str().unwrap().starts_with("os:"),
        "{admin:?}"
    );
    for r in &seen {
        let e = r["event"].as_str().unwrap();
        if e.starts_with("manifest.") || e.starts_with("blob.") {
            let who = r["identity"].as_str().unwrap_or_default();
            assert!(who == ALICE || who == robot_login, "{r}");
            assert_eq!(r["repository"], image.repo, "{r}");
            assert!(r["client"].as_str().is_some_and(|c| !c.is_empty()), "{r}");
            assert!(r["user_agent"].as_str().is_some(), "{r}");
            assert!(r["status"].as_u64().is_some(), "{r}");
        }
        if e == "manifest.push" {
            assert_eq!(r["reference"], "v1", "{r}");
            assert!(r["digest"].as_str().unwrap().starts_with("sha256:"), "{r}");
            assert!(r["bytes"].as_u64().unwrap() > 0, "{r}");
        }
        if e == "blob.pull" {
            assert!(r["bytes"].as_u64().unwrap() > 0, "{r}");
        }
    }
    // No password, refresh token or access token anywhere.
    let text = std::fs::read_to_string(&log).unwrap();
    let config: Value = serde_json::from_str(
        &std::fs::read_to_string(docker.config_dir().join("config.json")).unwrap(),
    )
    .unwrap();
    let refresh = config["auths"][&host]["identitytoken"]
        .as_str()
        .expect("identity token")
        .to_owned();
    let server_log = registry.log();
    for (what, secret) in [
        ("password", ALICE_PASSWORD),
        ("refresh token", &refresh),
        ("robot secret", &robot_secret),
        ("wrong robot secret", "not-the-secret"),
    ] {
        assert!(!text.contains(secret), "the audit log holds the {what}");
        assert!(
            !server_log.contains(secret),
            "the server log holds the {what}"
        );
    }
    // Access tokens are JWTs: base64url JSON, which starts `eyJ`.
    assert!(!text.contains("eyJ"), "the audit log holds a JWT");
    assert!(!server_log.contains("eyJ"), "the server log holds a JWT");

    let ok = common::portcullis_cli(
        &["audit", "verify", &log.display().to_string()],
        &registry.config_path(),
    );
    common::assert_success("audit verify", &ok);
    let shown = common::portcullis_cli(
        &["audit", "show", "--event", "manifest.", "--user", ALICE],
        &registry.config_path(),
    );
    let shown = String::from_utf8_lossy(&shown.stdout).into_owned();
    assert!(
        shown.contains("manifest.push") && shown.contains("manifest.delete"),
        "{shown}"
    );

    // One byte edited in the middle is found, and named.
    let lines: Vec<&str> = text.lines().collect();
    let middle = lines.len() / 2;
    let mut edited: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
    edited[middle] = edited[middle].replacen("\"time\":\"2", "\"time\":\"3", 1);
    assert_ne!(edited[middle], lines[middle]);
    std::fs::write(&log, edited.join("\n") + "\n").unwrap();
    let bad = common::portcullis_cli(
        &["audit", "verify", &log.display().to_string()],
        &registry.config_path(),
    );
    common::process::assert_failure("audit verify of an edited log", &bad);
    let said = common::combined_output(&bad);
    assert!(
        said.contains(&format!("audit.log:{}: edited", middle + 1)),
        "{said}"
    );
}

#[test]
fn pulls_past_the_limit_print_toomanyrequests_and_lockouts_clear() {
    if !common::e2e_gate(NEEDS) || !token::portcullis_only() {
        return;
    }
    let dir = common::temp_dir();
    let registry = start(
        dir.path(),
        "ratelimit:\n  pull: {limit: 2, window: 1h}\nlockout:\n  free: 2\n  delay: 1ms\n  maxdelay: 1ms\n  lockafter: 4\n",
    );
    let host = registry.host();
    let docker = Docker::new();
    let image = docker.build_test_image("e2e rate limit");
    common::assert_success("docker login", &docker.login(&host, ALICE, ALICE_PASSWORD));
    let remote = docker.push(&image, &host);
    // The daemon may answer a pull from a manifest it still holds after
    // `rmi` (a HEAD, which is free), so the refusal may come one pull late.
    let mut refused = None;
    for _ in 0..6 {
        docker.forget(&image, &remote);
        let out = docker.docker(["pull", &remote]);
        if !out.status.success() {
            refused = Some(common::combined_output(&out));
            break;
        }
    }
    let refused = refused.expect("a docker pull past the limit of 2 was refused");
    assert!(refused.contains("toomanyrequests"), "{refused}");
    assert!(refused.contains("pull rate limit for alice"), "{refused}");

    // Wrong passwords, then the right one is refused from this address.
    let other = docker.anonymous();
    for _ in 0..4 {
        let out = other.login(&host, ALICE, "wrong");
        common::process::assert_failure("docker login with a wrong password", &out);
    }
    let locked = other.login(&host, ALICE, ALICE_PASSWORD);
    common::process::assert_failure("docker login while locked out", &locked);
    let said = common::combined_output(&locked).to_lowercase();
    assert!(said.contains("too many failed logins"), "{said}");
    let list = common::portcullis_cli(&["lockout", "list", "--json"], &registry.config_path());
    common::assert_success("lockout list", &list);
    let rows: Value = serde_json::from_slice(&list.stdout).expect("JSON");
    assert!(
        rows.as_array()
            .unwrap()
            .iter()
            .any(|r| r["account"] == ALICE && r["failures"] == 4),
        "{rows}"
    );
    let cleared = common::portcullis_cli(
        &["lockout", "clear", "--user", ALICE],
        &registry.config_path(),
    );
    common::assert_success("lockout clear", &cleared);
    common::assert_success(
        "docker login after lockout clear",
        &other.login(&host, ALICE, ALICE_PASSWORD),
    );
}
