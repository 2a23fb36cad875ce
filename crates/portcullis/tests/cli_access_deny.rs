//! `portcullis access explain` says deny for identities that cannot log
//! in (a user the htpasswd file does not have, or whose line it refuses),
//! applies `access.immutable` as the registry does (a delete, or a push to
//! an existing tag with `--tag`), and exits 1 on deny, 0 on allow. Runs
//! everywhere: no root, no daemon, no server.

mod common;

use std::path::Path;

use common::access::{Setup, portcullis};
use serde_json::Value;

/// `access explain` for `args`, returning the exit code and stdout.
fn explain_one(config: &Path, args: &[&str]) -> (Option<i32>, String) {
    let mut all = vec!["access", "explain"];
    all.extend_from_slice(args);
    let out = portcullis(&all, config);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn explain_denies_users_that_do_not_exist_and_exits_1_on_deny() {
    let setup = Setup::new();
    let (config, _) = setup.inline();
    // `${user}/**` would allow anyone who is authenticated; mallory cannot be.
    let (code, out) = explain_one(
        &config,
        &[
            "--user",
            "mallory",
            "--repo",
            "mallory/app",
            "--action",
            "push",
        ],
    );
    assert_eq!(code, Some(1), "{out}");
    assert!(out.starts_with("deny: no such user"), "{out}");
    assert!(
        out.contains(&setup.path("htpasswd").display().to_string()),
        "{out}"
    );
    assert!(out.contains("config.yml"), "{out}");
    let (code, out) = explain_one(
        &config,
        &["--user", "alice", "--repo", "alice/app", "--action", "push"],
    );
    assert_eq!(code, Some(0), "{out}");
    assert!(out.starts_with("allow"), "{out}");

    // A user whose htpasswd line is unusable is denied with the reason.
    let mut users = std::fs::read_to_string(setup.path("htpasswd")).unwrap();
    users.push_str("dave:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n");
    std::fs::write(setup.path("htpasswd"), users).unwrap();
    let (code, out) = explain_one(
        &config,
        &[
            "--user", "dave", "--repo", "dave/app", "--action", "pull", "--json",
        ],
    );
    assert_eq!(code, Some(1), "{out}");
    let json: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(json["allowed"], Value::Bool(false));
    let why = json["explanation"].as_str().unwrap();
    assert!(why.contains("SHA-1") && why.contains("line 5"), "{why}");
}

#[test]
fn explain_applies_the_immutable_rule() {
    let setup = Setup::new();
    let (config, _) = setup.inline();
    // release/app has tag v1 in the storage, as the registry writes it.
    let hex = "ab".repeat(32);
    let repo = setup.path("data/docker/registry/v2/repositories/release/app/_manifests");
    for (dir, link) in [
        (repo.join("tags/v1/current"), format!("sha256:{hex}")),
        (
            repo.join(format!("revisions/sha256/{hex}")),
            format!("sha256:{hex}"),
        ),
    ] {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("link"), link).unwrap();
    }
    let admin = ["--user", "admin", "--repo", "release/app"];
    let run = |extra: &[&str]| {
        let mut args = admin.to_vec();
        args.extend_from_slice(extra);
        explain_one(&config, &args)
    };
    let (code, out) = run(&["--action", "delete"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.starts_with("deny: release/app is immutable"), "{out}");
    assert!(out.contains("cannot be deleted"), "{out}");

    let (code, out) = run(&["--action", "push", "--tag", "v1"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("tag v1 already exists"), "{out}");

    let (code, out) = run(&["--action", "push", "--tag", "v2"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.starts_with("allow") && out.contains("v2 does not exist yet"),
        "{out}"
    );

    let (code, out) = run(&["--action", "push", "--json"]);
    assert_eq!(code, Some(0), "{out}");
    let json: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(json["immutable"], Value::Bool(true), "{json}");
    assert!(
        json["explanation"].as_str().unwrap().contains("--tag"),
        "{json}"
    );

    // Pulling is not affected.
    let (code, out) = run(&["--action", "pull"]);
    assert_eq!(code, Some(0), "{out}");
}
