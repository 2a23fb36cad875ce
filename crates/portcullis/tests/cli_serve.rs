//! `portcullis serve` as a first-time user meets it: the embedded default's
//! banner names the address it actually listens on, a start that fails
//! creates no admin (and shows no password), `--addr` overrides http.addr
//! and REGISTRY_HTTP_ADDR, log lines carry no colour codes when stderr is
//! not a terminal, every `--config` has help text, and the `http.secret`
//! warning says what a restart really does to uploads. Runs everywhere
//! (no root, no daemon).

mod common;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::token::{self, TokenServer};
use portcullis_testkit::process::lines_of;

/// Starts `portcullis ARGS` in `dir` without `REGISTRY_*` but `env`, and
/// returns the child and a channel of its stderr lines.
fn spawn(
    dir: &std::path::Path,
    args: &[&str],
    env: &[(&str, String)],
) -> (Child, mpsc::Receiver<String>) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_portcullis"));
    cmd.args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    common::without_registry_env(&mut cmd);
    cmd.env_remove("PORTCULLIS_LOG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let rx = lines_of(child.stderr.take().unwrap());
    (child, rx)
}

/// Lines until one contains `until` (included) or 30 s pass.
fn lines_until(rx: &mpsc::Receiver<String>, until: &str) -> Vec<String> {
    portcullis_testkit::process::lines_until(rx, until, Duration::from_secs(30))
}

#[test]
fn a_failed_first_start_creates_no_admin_and_shows_no_password() {
    let dir = common::temp_dir();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (mut child, rx) = spawn(
        dir.path(),
        &["serve"],
        &[("REGISTRY_HTTP_ADDR", addr.clone())],
    );
    let status = common::process::wait_deadline(&mut child, Duration::from_secs(30));
    let printed = lines_until(&rx, "\u{0}").join("\n");
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    assert_eq!(status.and_then(|s| s.code()), Some(1), "{printed}");
    assert!(
        printed.contains("cannot listen on") && printed.contains(&addr),
        "{printed}"
    );
    assert!(
        !printed.contains("password:"),
        "a password was shown for nothing:\n{printed}"
    );
    assert!(
        !dir.path().join("data/htpasswd").exists(),
        "the failed start left an admin behind:\n{printed}"
    );
    drop(taken);
}

#[test]
fn the_banner_names_the_address_given_with_addr_and_logs_have_no_colour() {
    let dir = common::temp_dir();
    // REGISTRY_HTTP_ADDR names a port in use; --addr comes after it and wins.
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = common::free_port();
    let (mut child, rx) = spawn(
        dir.path(),
        &["serve", "--addr", &format!("127.0.0.1:{port}")],
        &[(
            "REGISTRY_HTTP_ADDR",
            taken.local_addr().unwrap().to_string(),
        )],
    );
    let seen = lines_until(&rx, "listening");
    let _ = child.kill();
    let _ = child.wait();
    let printed = seen.join("\n");
    assert!(
        printed.contains(&format!(
            "Log in with: docker login 127.0.0.1:{port} -u admin"
        )),
        "{printed}"
    );
    assert!(printed.contains("password: "), "{printed}");
    assert!(
        printed.contains("listening") && printed.contains(&format!("127.0.0.1:{port}")),
        "{printed}"
    );
    assert!(
        !printed.contains('\u{1b}'),
        "ANSI escape codes in a piped log:\n{printed:?}"
    );
}

#[test]
fn every_config_flag_has_help_text() {
    for sub in [
        &["serve"][..],
        &["config", "check"],
        &["access", "explain"],
        &["keys", "generate"],
        &["keys", "list"],
        &["keys", "bundle"],
        &["token", "create"],
        &["token", "list"],
        &["token", "revoke"],
    ] {
        let out = common::run(
            Command::new(env!("CARGO_BIN_EXE_portcullis"))
                .args(sub)
                .arg("--help"),
            None,
            Duration::from_secs(60),
        );
        let help = String::from_utf8_lossy(&out.stdout);
        // The flag's line and, in long help, the lines under it up to the
        // next option.
        let start = help
            .find("--config <PATH>")
            .unwrap_or_else(|| panic!("{sub:?} has no --config:\n{help}"));
        let rest = &help[start + "--config <PATH>".len()..];
        let end = rest.find("\n  -").unwrap_or(rest.len());
        let line = &rest[..end];
        assert!(
            line.contains("configuration file") && line.contains("default"),
            "{sub:?}: --config has no help text: {line:?}"
        );
    }
    let out = common::run(
        Command::new(env!("CARGO_BIN_EXE_portcullis")).args(["serve", "--help"]),
        None,
        Duration::from_secs(60),
    );
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("--addr <HOST:PORT>") && help.contains("overriding http.addr"),
        "{help}"
    );
}

#[test]
fn without_http_secret_a_restart_refuses_open_uploads_as_the_warning_says() {
    if !common::e2e_gate("htpasswd") || !token::portcullis_only() {
        return;
    }
    let dir = common::temp_dir();
    let server = TokenServer::default();
    let first = server.start(dir.path());
    let log = first.log();
    assert!(
        log.contains("http.secret: is not set") && log.contains("403 DENIED"),
        "{log}"
    );
    let scope = "repository:alice/app:pull,push";
    let tok = token::fetch_token(
        &first,
        Some((token::ALICE, token::ALICE_PASSWORD)),
        &[scope],
    );
    let upload = token::open_upload(&first, "alice/app", &tok);
    let path = &upload[upload.find("/v2/").unwrap()..];
    first.stop();

    let second = server.start(dir.path());
    let tok = token::fetch_token(
        &second,
        Some((token::ALICE, token::ALICE_PASSWORD)),
        &[scope],
    );
    let reply = token::send(
        reqwest::Method::PATCH,
        &second.url(path),
        Some(&tok),
        &[("Content-Type", "application/octet-stream")],
        Some(b"more".to_vec()),
    );
    reply.expect("PATCH of a session opened before the restart", 403);
    assert!(
        reply.text().contains("lacks its signed state"),
        "{}",
        reply.text()
    );
    second.stop();
}
