//! `portcullis config check` finds what `serve` would refuse or warn about:
//! htpasswd lines that disable a user, TLS files and dates, the storage
//! root, signing keys, token lifetimes, and a registry:2 config that uses
//! portcullis as its token server. Each finding names the key or file, the
//! line, the cause and the fix. Runs everywhere (no root, no daemon);
//! the htpasswd and openssl tools make fixtures (apache2-utils, openssl).

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use common::registry::{Registry, RegistryConfig, RegistryKind};

/// `portcullis config check --config PATH [ARGS]` with no `REGISTRY_*`.
fn check(path: &Path, args: &[&str]) -> (Option<i32>, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_portcullis"));
    cmd.args(["config", "check", "--config"])
        .arg(path)
        .args(args)
        .current_dir(path.parent().unwrap());
    common::without_registry_env(&mut cmd);
    let out: Output = common::run(&mut cmd, None, Duration::from_secs(60));
    (out.status.code(), common::combined_output(&out))
}

/// One `user:hash` line from `htpasswd -nb FLAG user password`.
fn htpasswd_line(flag: &str, user: &str, password: &str) -> String {
    let out = common::run(
        Command::new("htpasswd").args(["-nb", flag, user, password]),
        None,
        Duration::from_secs(30),
    );
    common::assert_success("htpasswd -nb", &out);
    String::from_utf8(out.stdout).unwrap().trim().to_owned() + "\n"
}

fn write_config(dir: &Path, body: &str) -> std::path::PathBuf {
    let path = dir.join("config.yml");
    std::fs::write(
        &path,
        format!(
            "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:5000\n{body}",
            dir.join("data").display()
        ),
    )
    .unwrap();
    path
}

#[test]
fn htpasswd_lines_that_disable_a_user_are_warnings_naming_line_and_fix() {
    if !common::e2e_gate("htpasswd") {
        return;
    }
    let dir = common::temp_dir();
    let users = dir.path().join("htpasswd");
    let text = htpasswd_line("-B", "alice", "pw")
        + &htpasswd_line("-m", "bob", "pw")
        + &htpasswd_line("-s", "carol", "pw")
        + &htpasswd_line("-5", "dave", "pw");
    std::fs::write(&users, text).unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "auth:\n  htpasswd:\n    realm: r\n    path: {}\n",
            users.display()
        ),
    );
    let (code, out) = check(&config, &[]);
    assert_eq!(code, Some(0), "{out}");
    let shown = users.display().to_string();
    let bob = out
        .lines()
        .find(|l| l.contains("line 2"))
        .unwrap_or_else(|| panic!("no warning for line 2:\n{out}"));
    assert!(bob.starts_with("warning:") && bob.contains("\"bob\"") && bob.contains("weak"));
    assert!(bob.contains(&format!("htpasswd -B {shown} bob")), "{bob}");
    let carol = out
        .lines()
        .find(|l| l.contains("line 3"))
        .unwrap_or_else(|| panic!("no warning for line 3:\n{out}"));
    assert!(
        carol.contains("SHA-1") && carol.contains("cannot log in"),
        "{carol}"
    );
    assert!(
        carol.contains(&format!("htpasswd -B {shown} carol")),
        "{carol}"
    );
    assert!(!out.contains("line 1") && !out.contains("line 4"), "{out}");

    // The JSON form lists them too.
    let (code, out) = check(&config, &["--json"]);
    assert_eq!(code, Some(0), "{out}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let htpasswd_warnings = v["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w.as_str().is_some_and(|w| w.contains("htpasswd file")))
        .count();
    assert_eq!(htpasswd_warnings, 2, "{v}");
}

#[test]
fn serve_starts_with_an_md5_and_a_sha1_line_and_only_that_user_is_refused() {
    if !common::e2e_gate("htpasswd") {
        return;
    }
    let dir = common::temp_dir();
    let users = dir.path().join("htpasswd");
    let text = htpasswd_line("-B", "alice", "alice-pw")
        + &htpasswd_line("-m", "bob", "bob-pw")
        + &htpasswd_line("-s", "carol", "carol-pw");
    std::fs::write(&users, text).unwrap();
    let config = RegistryConfig::new(dir.path().join("data")).htpasswd(&users);
    let registry = Registry::start(RegistryKind::Portcullis, &config);
    let client = common::http();
    for (user, password, status) in [
        ("alice", "alice-pw", 200),
        ("bob", "bob-pw", 200),
        ("carol", "carol-pw", 401),
    ] {
        let resp = client
            .get(registry.url("/v2/"))
            .basic_auth(user, Some(password))
            .send()
            .unwrap();
        assert_eq!(resp.status().as_u16(), status, "{user}");
    }
    let log = registry.log();
    registry.stop();
    assert!(
        log.contains("line 3") && log.contains("SHA-1") && log.contains("htpasswd -B"),
        "{log}"
    );
}

#[test]
fn the_embedded_default_checks_as_valid_before_its_first_start() {
    // `serve` without --config creates its admin on first start, so the
    // missing htpasswd file is not an error; and checking writes nothing.
    let dir = common::temp_dir();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_portcullis"));
    cmd.args(["config", "check"]).current_dir(dir.path());
    common::without_registry_env(&mut cmd);
    let out = common::run(&mut cmd, None, Duration::from_secs(60));
    let printed = common::combined_output(&out);
    assert_eq!(out.status.code(), Some(0), "{printed}");
    assert!(
        printed.contains("no users yet") && printed.contains("admin"),
        "{printed}"
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "config check wrote files"
    );
}
