//! `portcullis serve` with no config: the embedded default creates an
//! `admin` user, prints its password once, stores only a bcrypt hash, and
//! requires that password. `user add` reads the password from stdin.
//! Runs everywhere (no root, no daemon).

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use portcullis_testkit::process::{lines_of, lines_until};

#[test]
fn embedded_default_generates_admin_and_requires_it() {
    let dir = common::temp_dir();
    let port = common::free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .arg("serve")
        .current_dir(dir.path())
        .env("REGISTRY_HTTP_ADDR", format!("127.0.0.1:{port}"))
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let rx = lines_of(child.stderr.take().unwrap());
    let seen = lines_until(&rx, "listening", Duration::from_secs(30));
    let password = seen
        .iter()
        .find_map(|line| line.trim().strip_prefix("password: "))
        .map(str::to_owned);
    let result = std::panic::catch_unwind(|| {
        let password = password
            .clone()
            .unwrap_or_else(|| panic!("no password printed:\n{}", seen.join("\n")));
        let stored = std::fs::read_to_string(dir.path().join("data/htpasswd")).unwrap();
        assert!(
            stored.starts_with("admin:$2"),
            "bcrypt entry expected: {stored}"
        );
        assert!(
            !stored.contains(&password),
            "the password must not be stored"
        );

        let client = common::http();
        let base = format!("http://127.0.0.1:{port}");
        // The embedded default runs the token service: anonymous requests are
        // challenged with its realm.
        let anon = client.get(format!("{base}/v2/")).send().unwrap();
        assert_eq!(anon.status().as_u16(), 401);
        let challenge = anon.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_owned();
        assert_eq!(
            challenge,
            format!("Bearer realm=\"{base}/token\",service=\"portcullis\"")
        );
        assert_eq!(
            anon.headers()["docker-distribution-api-version"],
            "registry/2.0"
        );
        // The generated admin gets a token and then the API.
        let token_url = format!("{base}/token?service=portcullis&scope=repository:a:pull");
        let bad = client
            .get(&token_url)
            .basic_auth("admin", Some("wrong"))
            .send()
            .unwrap();
        assert_eq!(bad.status().as_u16(), 401);
        let resp = client
            .get(&token_url)
            .basic_auth("admin", Some(&password))
            .send()
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        let body: serde_json::Value = resp.json().unwrap();
        let token = body["token"].as_str().unwrap().to_owned();
        let ok = client
            .get(format!("{base}/v2/"))
            .bearer_auth(&token)
            .send()
            .unwrap();
        assert_eq!(ok.status().as_u16(), 200);
        // The signing key was generated into the data directory, private.
        let key = dir.path().join("data/portcullis/keys/signing.key");
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&key).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
    });
    let _ = child.kill();
    let _ = child.wait();
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

#[test]
fn user_add_reads_password_from_stdin() {
    let dir = common::temp_dir();
    let path = dir.path().join("htpasswd");
    let out = common::run(
        Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .args(["user", "add", "alice", "--cost", "4", "--htpasswd"])
            .arg(&path),
        Some("s3cret-pass\n"),
        Duration::from_secs(60),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stored = std::fs::read_to_string(&path).unwrap();
    let hash = stored.trim().strip_prefix("alice:").unwrap();
    assert!(bcrypt_verify("s3cret-pass", hash));
    assert!(!stored.contains("s3cret-pass"));

    // An empty password is refused with exit status 1.
    let out = common::run(
        Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .args(["user", "add", "bob", "--htpasswd"])
            .arg(&path),
        None,
        Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("password is empty"));
}

/// Verifies a stored hash with portcullis's own htpasswd reader.
fn bcrypt_verify(password: &str, hash: &str) -> bool {
    let file = common::temp_dir();
    let p = file.path().join("h");
    std::fs::write(&p, format!("u:{hash}\n")).unwrap();
    let h = portcullis_auth::htpasswd::Htpasswd::load(&p).unwrap();
    h.authenticate("u", &secrecy::SecretString::from(password.to_owned()))
        .is_ok()
}
