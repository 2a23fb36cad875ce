//! A registry web UI in headless Chromium (Debian's, driven by
//! playwright-core): a page served from another origin lists repositories
//! and tags, reads a manifest's `Docker-Content-Digest` and deletes it,
//! with credentials, in Basic and in token mode; the same page served from
//! an origin that is not allowed is blocked by the browser, and deletes
//! nothing.
//!
//! Needs `node`, `chromium`, `skopeo`, `htpasswd`, and `npm ci` run in
//! `tests/browser` (`.ci/run` does it).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::oci::OciLayout;
use common::token::{ALICE, ALICE_PASSWORD, TokenServer};
use common::{Registry, RegistryConfig, RegistryKind, Skopeo};
use serde_json::Value;

const NEEDS: &str = "node chromium skopeo htpasswd";

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// Serves `ui.html` on 127.0.0.1 (any path); returns the port.
fn serve_page() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let page = std::fs::read(browser_dir().join("ui.html")).unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(200) {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                page.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&page);
        }
    });
    port
}

/// Opens the page from `page_port` against `registry`; what it saw.
fn run_page(page_port: u16, registry: &Registry) -> Value {
    let url = format!(
        "http://127.0.0.1:{page_port}/ui.html?registry={}&user={ALICE}&pass={ALICE_PASSWORD}",
        registry.url("").trim_end_matches('/')
    );
    let out = common::run(
        Command::new("node")
            .arg("drive.js")
            .arg(&url)
            .current_dir(browser_dir()),
        None,
        Duration::from_secs(90),
    );
    common::assert_success("node drive.js (headless Chromium)", &out);
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("page result: {e}\n{}", common::combined_output(&out)))
}

fn ready() -> bool {
    if !common::e2e_gate(NEEDS) {
        return false;
    }
    if !browser_dir().join("node_modules/playwright-core").is_dir() {
        return portcullis_testkit::skip_or_fail(
            "playwright-core is not installed: run `npm ci` in crates/portcullis/tests/browser",
        );
    }
    true
}

fn push(registry: &Registry, dir: &Path) {
    let mut layout = OciLayout::create(&dir.join("layout"));
    layout.add_image("v1", 1, 1024);
    Skopeo::new().push_layout(
        &layout,
        "v1",
        &format!("docker://{}/team/app:v1", registry.host()),
        &format!("{ALICE}:{ALICE_PASSWORD}"),
    );
}

fn cors_yaml(allowed_port: u16) -> String {
    format!("  cors:\n    allowedorigins: [\"http://127.0.0.1:{allowed_port}\"]\n")
}

fn check(mode: &str, registry: &Registry, dir: &Path, ui: u16, other: u16) {
    push(registry, dir);
    // Not allowed: the browser blocks every call, nothing is deleted.
    let blocked = run_page(other, registry);
    assert!(
        blocked["error"]
            .as_str()
            .is_some_and(|e| e.contains("Failed to fetch")),
        "{mode}: a page on another origin was not blocked: {blocked}"
    );
    assert!(blocked.get("deleteStatus").is_none(), "{mode}: {blocked}");
    // Allowed: the whole round.
    let seen = run_page(ui, registry);
    assert!(seen.get("error").is_none(), "{mode}: {seen}");
    assert_eq!(
        seen["catalog"],
        serde_json::json!(["team/app"]),
        "{mode}: {seen}"
    );
    assert_eq!(seen["tags"], serde_json::json!(["v1"]), "{mode}: {seen}");
    assert_eq!(seen["manifestStatus"], 200, "{mode}: {seen}");
    assert!(
        seen["digest"]
            .as_str()
            .is_some_and(|d| d.starts_with("sha256:")),
        "{mode}: the page could not read Docker-Content-Digest: {seen}"
    );
    assert_eq!(seen["deleteStatus"], 202, "{mode}: {seen}");
    let again = run_page(ui, registry);
    assert_eq!(
        again["manifestStatus"], 404,
        "{mode}: deleted for real: {again}"
    );
    if mode == "token" {
        assert!(seen["tokenLogins"].as_u64().unwrap() >= 1, "{seen}");
        assert!(seen["tokens"].as_u64().unwrap() >= 3, "{seen}");
    } else {
        assert!(seen["basicChallenges"].as_u64().unwrap() >= 1, "{seen}");
    }
}

#[test]
fn a_ui_on_an_allowed_origin_lists_reads_and_deletes_in_basic_mode() {
    if !ready() {
        return;
    }
    let dir = common::temp_dir();
    let (ui, other) = (serve_page(), serve_page());
    let htpasswd = dir.path().join("htpasswd");
    common::write_htpasswd(&htpasswd, &[(ALICE, ALICE_PASSWORD)]);
    let config = RegistryConfig::new(dir.path().join("data"))
        .htpasswd(htpasswd)
        .delete_enabled(true)
        .http_yaml(cors_yaml(ui));
    let registry = Registry::start(RegistryKind::Portcullis, &config);
    check("basic", &registry, dir.path(), ui, other);
}

#[test]
fn a_ui_on_an_allowed_origin_logs_in_through_the_token_service() {
    if !ready() {
        return;
    }
    let dir = common::temp_dir();
    let (ui, other) = (serve_page(), serve_page());
    common::write_htpasswd(&dir.path().join("htpasswd"), &[(ALICE, ALICE_PASSWORD)]);
    let config = TokenServer::default()
        .config(dir.path())
        .http_yaml(cors_yaml(ui))
        .extra_yaml(
            "access:\n  rules:\n    - subjects: [authenticated]\n      repositories: [\"**\"]\n      actions: [\"*\"]\n",
        );
    let registry = Registry::start(RegistryKind::Portcullis, &config);
    check("token", &registry, dir.path(), ui, other);
}
