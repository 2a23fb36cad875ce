//! What the log tells an operator: each request's line names the caller,
//! the repository, the user agent and the bytes in and out; a failed login
//! names the user and the reason, never the password; log files carry no
//! terminal colour codes.

mod common;

use common::{Registry, RegistryConfig, RegistryKind};

fn line_with<'a>(log: &'a str, needles: &[&str]) -> Option<&'a str> {
    log.lines().find(|l| needles.iter().all(|n| l.contains(n)))
}

#[test]
fn request_lines_and_failed_logins_say_who_and_why() {
    let dir = common::temp_dir();
    let htpasswd = dir.path().join("htpasswd");
    common::write_htpasswd(&htpasswd, &[("alice", "wonderland")]);
    // A SHA-1 line (`htpasswd -s`), which portcullis refuses: carol alone
    // is disabled, and the log says why when she tries.
    let mut text = std::fs::read_to_string(&htpasswd).unwrap();
    text.push_str("carol:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n");
    std::fs::write(&htpasswd, text).unwrap();
    let config = RegistryConfig::new(dir.path().join("data")).htpasswd(&htpasswd);
    let registry = Registry::start(RegistryKind::Portcullis, &config);
    let client = common::http();
    let blob = b"access log test blob";
    let r = client
        .post(registry.url("/v2/team/app/blobs/uploads/"))
        .basic_auth("alice", Some("wonderland"))
        .header("user-agent", "log-test-agent/1.0")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let digest = format!(
        "sha256:{}",
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(blob))
    );
    let sep = if location.contains('?') { '&' } else { '?' };
    let put = if location.starts_with("http") {
        format!("{location}{sep}digest={digest}")
    } else {
        registry.url(&format!("{location}{sep}digest={digest}"))
    };
    let r = client
        .put(put)
        .basic_auth("alice", Some("wonderland"))
        .header("user-agent", "log-test-agent/1.0")
        .body(blob.to_vec())
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let r = client
        .get(registry.url("/v2/"))
        .basic_auth("alice", Some("not-the-password"))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = client
        .get(registry.url("/v2/"))
        .basic_auth("mallory", Some("guess"))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);

    let r = client
        .get(registry.url("/v2/"))
        .basic_auth("carol", Some("password"))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);

    let log = registry.log();
    let disabled = line_with(&log, &["authentication failed", "user=carol"])
        .unwrap_or_else(|| panic!("no failed-login line for carol:\n{log}"));
    assert!(
        disabled.contains("SHA-1") && disabled.contains("htpasswd -B"),
        "{disabled}"
    );
    let put_line = line_with(&log, &["method=PUT", "status=201"])
        .unwrap_or_else(|| panic!("no line for the blob PUT:\n{log}"));
    for field in [
        "user=alice",
        "repo=team/app",
        "user_agent=log-test-agent/1.0",
        &format!("bytes_in={}", blob.len()),
    ] {
        assert!(put_line.contains(field), "{field} missing: {put_line}");
    }
    let wrong = line_with(&log, &["authentication failed", "user=alice"])
        .unwrap_or_else(|| panic!("no failed-login line for alice:\n{log}"));
    assert!(wrong.contains("wrong password"), "{wrong}");
    let unknown = line_with(&log, &["authentication failed", "user=mallory"])
        .unwrap_or_else(|| panic!("no failed-login line for mallory:\n{log}"));
    assert!(unknown.contains("no such user"), "{unknown}");
    assert!(!log.contains("not-the-password") && !log.contains("guess"));
    assert!(
        !log.contains("W6ph5Mm5Pz8GgiULbPgzG37mj9g"),
        "a hash reached the log"
    );
    assert!(
        !log.contains('\u{1b}'),
        "the log file holds terminal colour codes"
    );
}
