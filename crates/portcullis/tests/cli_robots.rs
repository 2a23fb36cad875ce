//! `portcullis token create|list|revoke` for robot accounts: the secret is
//! printed once and only its hash is stored, `list` shows robots beside
//! refresh tokens, `revoke` removes them, the owner must be an htpasswd
//! user, and bad input is refused with a message. Runs everywhere (no root,
//! no daemon, no server).

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

use portcullis_auth::identity::UserName;
use portcullis_auth::refresh::RefreshStore;
use portcullis_auth::robots::RobotStore;
use secrecy::SecretString;
use serde_json::Value;
use tempfile::TempDir;

/// A registry directory: users `alice` and `carol`, filesystem storage, no server.
struct Setup {
    dir: TempDir,
}

impl Setup {
    fn new() -> Self {
        let dir = common::temp_dir();
        let htpasswd = dir.path().join("htpasswd");
        for user in ["alice", "carol"] {
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_portcullis"));
            cmd.args(["user", "add", user, "--cost", "4", "--htpasswd"])
                .arg(&htpasswd);
            let out = common::run(&mut cmd, Some("pw-not-used\n"), Duration::from_secs(60));
            common::assert_success("portcullis user add", &out);
        }
        let config = format!(
            "version: 0.1\nhttp:\n  addr: 127.0.0.1:5999\nstorage:\n  filesystem:\n    rootdirectory: {}\nauth:\n  htpasswd:\n    realm: test\n    path: {}\n",
            common::registry::yaml_str(&dir.path().join("data")),
            common::registry::yaml_str(&htpasswd)
        );
        std::fs::write(dir.path().join("config.yml"), config).expect("write config.yml");
        Self { dir }
    }

    fn robots_file(&self) -> PathBuf {
        self.dir.path().join("data/portcullis/robots.json")
    }

    fn refresh_file(&self) -> PathBuf {
        self.dir.path().join("data/portcullis/refresh-tokens.json")
    }

    /// `portcullis ARGS... --config config.yml`.
    fn cli(&self, args: &[&str]) -> Output {
        common::portcullis_cli(args, &self.dir.path().join("config.yml"))
    }

    fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        common::assert_success(&format!("portcullis {}", args.join(" ")), &out);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn list_json(&self) -> Vec<Value> {
        let printed = self.cli_ok(&["token", "list", "--json"]);
        match serde_json::from_str(&printed) {
            Ok(Value::Array(rows)) => rows,
            other => panic!("token list --json printed {other:?}:\n{printed}"),
        }
    }
}

/// The `pcrt_...` secrets in `text`.
fn secrets_in(text: &str) -> Vec<String> {
    text.split(|c: char| c.is_whitespace() || c == '"')
        .filter(|w| w.starts_with("pcrt_"))
        .map(str::to_owned)
        .collect()
}

fn authenticate(file: &Path, login: &str, secret: &str) -> bool {
    RobotStore::open(file)
        .expect("open robots.json")
        .authenticate(
            login,
            &SecretString::from(secret.to_owned()),
            SystemTime::now(),
        )
        .is_ok()
}

#[test]
fn create_prints_the_secret_once_and_stores_only_its_hash() {
    let s = Setup::new();
    let printed = s.cli_ok(&[
        "token",
        "create",
        "--owner",
        "alice",
        "--name",
        "ci",
        "--repos",
        "team/**",
        "--repos",
        "x/*",
        "--actions",
        "pull,push",
        "--expires",
        "30d",
    ]);
    let secrets = secrets_in(&printed);
    assert_eq!(secrets.len(), 1, "one secret, printed once:\n{printed}");
    let secret = &secrets[0];
    assert!(printed.contains("alice+ci"), "login name:\n{printed}");
    assert!(
        printed.contains("docker login -u alice+ci --password-stdin 127.0.0.1:5999"),
        "docker login hint:\n{printed}"
    );

    // The file holds a hash, not the secret, and only its owner can read it.
    let file = s.robots_file();
    let stored = std::fs::read_to_string(&file).expect("robots.json exists");
    let secret_part = &secret[secret.len() - 43..];
    assert!(!stored.contains(secret_part), "secret stored in clear");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "robots.json mode");
    let hash = serde_json::from_str::<Value>(&stored).unwrap()["robots"][0]["hash"]
        .as_str()
        .expect("a hash is stored")
        .to_owned();

    // The secret works, for that login name only.
    assert!(authenticate(&file, "alice+ci", secret));
    assert!(!authenticate(&file, "alice", secret));

    // list shows the robot, never the secret or the hash.
    let table = s.cli_ok(&["token", "list"]);
    assert!(table.contains("KIND"), "{table}");
    let row = table
        .lines()
        .find(|l| l.contains("alice+ci"))
        .unwrap_or_else(|| panic!("no alice+ci row:\n{table}"));
    for expected in ["robot", "team/**", "x/*", "pull,push"] {
        assert!(row.contains(expected), "{expected} missing: {row}");
    }
    let rows = s.list_json();
    assert_eq!(rows.len(), 1, "{rows:?}");
    let robot = &rows[0];
    assert_eq!(robot["kind"], "robot");
    assert_eq!(robot["login"], "alice+ci");
    assert_eq!(robot["owner"], "alice");
    assert_eq!(robot["repositories"], serde_json::json!(["team/**", "x/*"]));
    assert_eq!(robot["actions"], serde_json::json!(["pull", "push"]));
    assert!(robot["expires"].is_string(), "{robot}");
    assert!(robot["last_used"].is_string(), "it was used: {robot}");
    for text in [&table, &robot.to_string()] {
        assert!(
            !text.contains(secret_part) && !text.contains(&hash),
            "{text}"
        );
    }

    // Revoked by login name: gone from the list, and the secret stops working.
    let revoked = s.cli_ok(&["token", "revoke", "--robot", "alice+ci"]);
    assert!(revoked.contains("alice+ci"), "{revoked}");
    assert!(s.list_json().is_empty());
    assert!(!authenticate(&file, "alice+ci", secret));
    let again = s.cli(&["token", "revoke", "--robot", "alice+ci"]);
    assert_eq!(
        again.status.code(),
        Some(1),
        "{}",
        common::combined_output(&again)
    );
}

#[test]
fn create_json_never_expires_and_revoke_by_id() {
    let s = Setup::new();
    let printed = s.cli_ok(&[
        "token",
        "create",
        "--owner",
        "carol",
        "--name",
        "deploy",
        "--repos",
        "**",
        "--actions",
        "*",
        "--expires",
        "never",
        "--json",
    ]);
    let created: Value = serde_json::from_str(&printed).expect("create --json prints JSON");
    assert_eq!(created["login"], "carol+deploy");
    assert!(created["expires"].is_null(), "{created}");
    assert!(created.get("hash").is_none(), "{created}");
    let secret = created["secret"].as_str().expect("secret");
    assert!(authenticate(&s.robots_file(), "carol+deploy", secret));
    let id = created["id"].as_str().expect("id");
    let listed = s.list_json();
    assert!(listed[0]["expires"].is_null() && listed[0]["id"] == id);
    s.cli_ok(&["token", "revoke", "--id", id]);
    assert!(!authenticate(&s.robots_file(), "carol+deploy", secret));
    let unknown = s.cli(&["token", "revoke", "--id", id]);
    assert_eq!(unknown.status.code(), Some(1));
}

#[test]
fn list_and_revoke_cover_both_kinds() {
    let s = Setup::new();
    // A refresh token, as the token service would have issued it.
    RefreshStore::open(&s.refresh_file())
        .unwrap()
        .issue(
            &UserName::new("alice").unwrap(),
            "docker",
            "fp",
            Duration::from_secs(3600),
            SystemTime::now(),
        )
        .unwrap();
    let config = s.dir.path().join("config.yml");
    for (owner, name) in [("alice", "ci"), ("alice", "nightly"), ("carol", "ci")] {
        common::robots::create_robot_with(&config, owner, name, "team/**", "pull");
    }
    let rows = s.list_json();
    let kinds: Vec<&str> = rows.iter().filter_map(|r| r["kind"].as_str()).collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "robot").count(),
        3,
        "{rows:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| **k == "refresh").count(),
        1,
        "{rows:?}"
    );
    let table = s.cli_ok(&["token", "list"]);
    assert!(table.lines().any(|l| l.starts_with("refresh")), "{table}");

    let revoked = s.cli_ok(&["token", "revoke", "--user", "alice"]);
    assert!(
        revoked.contains("1 refresh token(s) and 2 robot token(s)"),
        "{revoked}"
    );
    let left = s.list_json();
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0]["login"], "carol+ci");
}

#[test]
fn owner_must_be_an_htpasswd_user() {
    let s = Setup::new();
    let out = s.cli(&[
        "token",
        "create",
        "--owner",
        "bob",
        "--name",
        "ci",
        "--repos",
        "team/**",
        "--actions",
        "pull",
    ]);
    let text = common::combined_output(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("portcullis user add bob"), "says how: {text}");
    // ... and which configuration it read, in case it is the wrong one.
    let config = s.dir.path().join("config.yml");
    assert!(
        text.contains(&format!("the configuration {}", config.display()))
            && text.contains("--config"),
        "{text}"
    );
    assert!(secrets_in(&text).is_empty(), "{text}");
    assert!(!s.robots_file().exists(), "nothing stored");
}

#[test]
fn without_config_commands_say_they_read_the_embedded_default_and_where_its_data_is() {
    // Run from a directory that is not the registry's: the embedded default
    // reads ./data here, which has nobody.
    let dir = common::temp_dir();
    let run = |args: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_portcullis"));
        cmd.args(args).current_dir(dir.path());
        common::without_registry_env(&mut cmd);
        let out = common::run(&mut cmd, None, Duration::from_secs(60));
        (out.status.code(), common::combined_output(&out))
    };
    let data = dir.path().canonicalize().unwrap().join("./data");
    for args in [
        &["token", "revoke", "--id", "nope"][..],
        &["token", "revoke", "--robot", "alice+ci"],
    ] {
        let (code, text) = run(args);
        assert_eq!(code, Some(1), "{args:?}: {text}");
        assert!(
            text.contains("the embedded default configuration (no --config given")
                && text.contains(&data.display().to_string()),
            "{args:?} does not say which configuration it read: {text}"
        );
    }
}

#[test]
fn bad_input_is_refused_with_a_message() {
    let s = Setup::new();
    let base = ["token", "create", "--owner", "alice", "--name", "ci"];
    let cases: [(&[&str], &str); 8] = [
        (
            &["--repos", "a/**", "--actions", "pull", "--expires", "5y"],
            "30d",
        ),
        (
            &["--repos", "a/**", "--actions", "pull", "--expires", "0d"],
            "never",
        ),
        (&["--repos", "a/**", "--actions", "catalog"], "pull"),
        (&["--actions", "pull"], "--repos"),
        (&["--repos", "A/**", "--actions", "pull"], "A/**"),
        (&["--repos", "a//b", "--actions", "pull"], "a//b"),
        // The policy's compiler checks robot patterns, and says how to fix them.
        (
            &["--repos", "team/app**", "--actions", "pull"],
            "Fix: write `**` between slashes",
        ),
        (
            &["--repos", "${User}/**", "--actions", "pull"],
            "lower case",
        ),
    ];
    for (extra, hint) in cases {
        let args: Vec<&str> = base.iter().chain(extra).copied().collect();
        let out = s.cli(&args);
        let text = common::combined_output(&out);
        assert!(
            matches!(out.status.code(), Some(1 | 2)),
            "{args:?} -> {}\n{text}",
            out.status
        );
        assert!(
            text.contains(hint),
            "{args:?}: message should mention {hint}:\n{text}"
        );
        assert!(secrets_in(&text).is_empty(), "{text}");
    }
    let bad_name = s.cli(&[
        "token",
        "create",
        "--owner",
        "alice",
        "--name",
        "Bad+Name",
        "--repos",
        "a",
        "--actions",
        "pull",
    ]);
    assert_eq!(bad_name.status.code(), Some(1));
    assert!(common::combined_output(&bad_name).contains("robot name"));
    // a duplicate name is refused and the first secret keeps working
    let first = s.cli_ok(&[
        "token",
        "create",
        "--owner",
        "alice",
        "--name",
        "ci",
        "--repos",
        "a",
        "--actions",
        "pull",
    ]);
    let dup = s.cli(&[
        "token",
        "create",
        "--owner",
        "alice",
        "--name",
        "ci",
        "--repos",
        "b",
        "--actions",
        "pull",
    ]);
    assert_eq!(dup.status.code(), Some(1));
    assert!(common::combined_output(&dup).contains("revoke"));
    assert!(authenticate(
        &s.robots_file(),
        "alice+ci",
        &secrets_in(&first)[0]
    ));
    // with neither
    let none = s.cli(&["token", "revoke"]);
    assert_eq!(none.status.code(), Some(2));
}

/// A `robots.json` written before the tokens moved behind the state store
/// (the format as it was, byte for byte): the CLI lists its robot, the
/// secret authenticates, revoke removes it, and the file stays where it was
/// in the same format, so a downgrade can read it.
#[test]
fn an_old_robots_file_keeps_working() {
    use sha2::Digest;
    let s = Setup::new();
    let id = "00112233445566aa";
    let part = "Zyxwvutsrqponmlkjihgfedcba-_9876543210ABCDE";
    assert_eq!(part.len(), 43);
    let hash = hex::encode(sha2::Sha256::digest(part.as_bytes()));
    let old = format!(
        "{{\n  \"robots\": [\n    {{\n      \"id\": \"{id}\",\n      \"name\": \"ci\",\n      \"owner\": \"alice\",\n      \"repositories\": [\n        \"team/**\"\n      ],\n      \"actions\": [\n        \"pull\"\n      ],\n      \"created\": 1700000000,\n      \"last_used\": 0,\n      \"expires\": null,\n      \"hash\": \"{hash}\"\n    }}\n  ]\n}}"
    );
    let file = s.robots_file();
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, &old).unwrap();
    let rows = s.list_json();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["login"], "alice+ci");
    let secret = format!("pcrt_{id}_{part}");
    assert!(authenticate(&file, "alice+ci", &secret));
    assert!(!file.with_file_name("robots.json.migrated").exists());
    let stored: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(stored["robots"][0]["hash"], hash.as_str());
    s.cli_ok(&["token", "revoke", "--robot", "alice+ci"]);
    assert!(!authenticate(&file, "alice+ci", &secret));
    let stored: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(stored["robots"], serde_json::json!([]));
}
