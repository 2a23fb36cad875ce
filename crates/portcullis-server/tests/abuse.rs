//! Rate limits and lockout through a real configuration's pipeline, with
//! the client's address set as a TCP connection would set it.

mod common;

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode};
use base64::Engine;
use common::{Resp, image_manifest, request, send};
use portcullis_config::Config;

fn app(dir: &std::path::Path, mode: &str, extra: &str) -> axum::Router {
    let mut lines = String::new();
    for (user, pass) in [("alice", "a"), ("bob", "b"), ("ci", "c")] {
        lines.push_str(&format!("{user}:{}\n", bcrypt::hash(pass, 4).unwrap()));
    }
    std::fs::write(dir.join("htpasswd"), lines).unwrap();
    let token = if mode == "token" {
        "  tokenserver:\n    issuer: portcullis\n    service: portcullis\n"
    } else {
        ""
    };
    let yaml = format!(
        "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {r}/data\nauth:\n  htpasswd:\n    realm: r\n    path: {r}/htpasswd\n{token}http:\n  addr: 127.0.0.1:5000\n{extra}",
        r = dir.display()
    );
    let config = Config::from_yaml(&yaml, "test.yml", &[]).unwrap().config;
    config.validate().unwrap();
    portcullis_server::app(portcullis_server::build_state(&config).unwrap())
}

fn basic(user: &str, pass: &str) -> String {
    let b = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
    format!("Basic {b}")
}

/// A request from `ip`, as the listener would hand it over.
fn from(ip: &str, mut req: Request<Body>) -> Request<Body> {
    let addr: SocketAddr = format!("{ip}:40000").parse().unwrap();
    req.extensions_mut().insert(ConnectInfo(addr));
    req
}

async fn as_user(app: &axum::Router, ip: &str, method: Method, uri: &str, auth: &str) -> Resp {
    send(
        app,
        from(ip, request(method, uri, &[("authorization", auth)], "")),
    )
    .await
}

async fn push_manifest(app: &axum::Router, auth: &str) -> String {
    let config = b"{}";
    let digest = format!(
        "sha256:{}",
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(config))
    );
    let r = send(
        app,
        from(
            "10.0.0.9",
            request(
                Method::POST,
                &format!("/v2/team/app/blobs/uploads/?digest={digest}"),
                &[
                    ("authorization", auth),
                    ("content-type", "application/octet-stream"),
                ],
                &config[..],
            ),
        ),
    )
    .await;
    r.expect(201);
    let m = image_manifest((&digest, config.len()), &[], "");
    send(
        app,
        from(
            "10.0.0.9",
            request(
                Method::PUT,
                "/v2/team/app/manifests/v1",
                &[
                    ("authorization", auth),
                    ("content-type", "application/vnd.oci.image.manifest.v1+json"),
                ],
                m,
            ),
        ),
    )
    .await
    .expect(201);
    digest
}

#[tokio::test]
async fn manifest_pulls_are_limited_per_identity_with_docker_hub_headers() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(
        dir.path(),
        "basic",
        "ratelimit:\n  pull: {limit: 5, window: 1h}\n  overrides:\n    - users: [ci]\n      exempt: true\n    - groups: [bots]\n      pull: {limit: 2, window: 1h}\naccess:\n  groups:\n    bots: [bob]\n  rules:\n    - subjects: [authenticated]\n      repositories: [\"**\"]\n      actions: [\"*\"]\n",
    );
    let alice = basic("alice", "a");
    push_manifest(&app, &alice).await;
    let uri = "/v2/team/app/manifests/v1";
    for left in (0..5).rev() {
        let r = as_user(&app, "10.0.0.1", Method::GET, uri, &alice).await;
        r.expect(200);
        assert_eq!(r.header("ratelimit-limit"), "5;w=3600");
        assert_eq!(r.header("ratelimit-remaining"), format!("{left};w=3600"));
        assert_eq!(r.header("docker-ratelimit-source"), "alice");
    }
    // A HEAD shows the count but is not charged, and is not refused
    // before the limit is reached (here it is: 0 left, so HEAD passes only
    // because a look is free).
    let head = as_user(&app, "10.0.0.1", Method::HEAD, uri, &alice).await;
    assert_eq!(head.header("ratelimit-remaining"), "0;w=3600");
    let over = as_user(&app, "10.0.0.1", Method::GET, uri, &alice).await;
    over.expect_error(429, "TOOMANYREQUESTS");
    let retry: u64 = over.header("retry-after").parse().unwrap();
    assert!((1..=720).contains(&retry), "retry after {retry}");
    assert!(
        over.error_message()
            .contains("pull rate limit for alice (5 per 1h"),
        "{}",
        over.error_message()
    );
    // Another identity has its own allowance (bob's group has 2); an
    // exempt one has none.
    let bob = as_user(&app, "10.0.0.1", Method::GET, uri, &basic("bob", "b")).await;
    bob.expect(200);
    assert_eq!(bob.header("ratelimit-limit"), "2;w=3600");
    assert_eq!(bob.header("ratelimit-remaining"), "1;w=3600");
    for _ in 0..7 {
        let ci = as_user(&app, "10.0.0.1", Method::GET, uri, &basic("ci", "c")).await;
        ci.expect(200);
        assert!(ci.opt_header("ratelimit-limit").is_none());
    }
}

#[tokio::test]
async fn repeated_failures_lock_the_account_out_from_that_address_only() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(
        dir.path(),
        "basic",
        "lockout:\n  free: 2\n  delay: 1ms\n  maxdelay: 1ms\n  lockafter: 5\n  duration: 15m\n",
    );
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let r = as_user(
            &app,
            "10.0.0.1",
            Method::GET,
            "/v2/",
            &basic("alice", "wrong"),
        )
        .await;
        statuses.push(r.status.as_u16());
    }
    assert_eq!(statuses, [401, 401, 401, 401, 401, 429]);
    // The right password from the same address is refused, with the wait.
    let locked = as_user(&app, "10.0.0.1", Method::GET, "/v2/", &basic("alice", "a")).await;
    locked.expect_error(429, "TOOMANYREQUESTS");
    let retry: u64 = locked.header("retry-after").parse().unwrap();
    assert!((800..=900).contains(&retry), "retry after {retry}");
    // From another address it works.
    as_user(&app, "10.0.0.2", Method::GET, "/v2/", &basic("alice", "a"))
        .await
        .expect(200);
    // An unknown user is answered exactly alike.
    let mut unknown = Vec::new();
    for _ in 0..6 {
        let r = as_user(
            &app,
            "10.0.0.1",
            Method::GET,
            "/v2/",
            &basic("mallory", "x"),
        )
        .await;
        unknown.push(r.status.as_u16());
    }
    assert_eq!(unknown, statuses);
}

#[tokio::test]
async fn token_requests_are_locked_out_and_limited_per_address() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(
        dir.path(),
        "token",
        "lockout:\n  free: 1\n  delay: 1ms\n  maxdelay: 1ms\n  lockafter: 3\nratelimit:\n  token: {limit: 8, window: 1m}\n",
    );
    let get = |auth: String, ip: &'static str| {
        let app = app.clone();
        async move {
            as_user(
                &app,
                ip,
                Method::GET,
                "/token?service=portcullis&scope=repository:team/app:pull",
                &auth,
            )
            .await
        }
    };
    for _ in 0..3 {
        get(basic("alice", "wrong"), "10.0.0.1").await.expect(401);
    }
    get(basic("alice", "a"), "10.0.0.1")
        .await
        .expect_error(429, "TOOMANYREQUESTS");
    // The refresh grant is throttled too.
    let refresh = || {
        let app = app.clone();
        async move {
            let form =
                "grant_type=refresh_token&client_id=docker&service=portcullis&refresh_token=forged";
            let ct = [("content-type", "application/x-www-form-urlencoded")];
            send(
                &app,
                from("10.0.0.3", request(Method::POST, "/token", &ct, form)),
            )
            .await
        }
    };
    for _ in 0..3 {
        assert_ne!(refresh().await.status, StatusCode::OK);
    }
    let r = refresh().await;
    r.expect_error(429, "TOOMANYREQUESTS");
    // 8 token requests per minute from one address: 10.0.0.2 gets 8.
    let mut ok = 0;
    for _ in 0..10 {
        if get(basic("bob", "b"), "10.0.0.2").await.status == StatusCode::OK {
            ok += 1;
        }
    }
    assert_eq!(ok, 8);
}

#[tokio::test]
async fn security_metrics_count_outcomes_without_names_and_parse_with_prometheus_client() {
    let dir = tempfile::tempdir().unwrap();
    let (app, metrics) = {
        let mut lines = String::new();
        lines.push_str(&format!("alice:{}\n", bcrypt::hash("a", 4).unwrap()));
        std::fs::write(dir.path().join("htpasswd"), lines).unwrap();
        let yaml = format!(
            "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {r}/data\nauth:\n  htpasswd:\n    realm: r\n    path: {r}/htpasswd\nhttp:\n  addr: 127.0.0.1:5000\n  debug:\n    addr: 127.0.0.1:0\n    prometheus:\n      enabled: true\nratelimit:\n  pull: {{limit: 1, window: 1h}}\naudit:\n  file:\n    path: {r}/audit.log\n",
            r = dir.path().display()
        );
        let config = Config::from_yaml(&yaml, "test.yml", &[]).unwrap().config;
        let state = portcullis_server::build_state(&config).unwrap();
        let metrics = state.metrics.clone().expect("metrics on");
        (portcullis_server::app(state), metrics)
    };
    let alice = basic("alice", "a");
    as_user(&app, "10.0.0.1", Method::GET, "/v2/", &basic("alice", "no"))
        .await
        .expect(401);
    as_user(&app, "10.0.0.1", Method::GET, "/v2/", &alice)
        .await
        .expect(200);
    push_manifest(&app, &alice).await;
    let uri = "/v2/team/app/manifests/v1";
    as_user(&app, "10.0.0.1", Method::GET, uri, &alice)
        .await
        .expect(200);
    as_user(&app, "10.0.0.1", Method::GET, uri, &alice)
        .await
        .expect_error(429, "TOOMANYREQUESTS");
    let text = metrics.encode();
    for line in [
        "portcullis_auth_attempts_total{method=\"htpasswd\",result=\"failure\",reason=\"invalid_credentials\"} 1",
        "portcullis_ratelimit_refusals_total{class=\"pull\"} 1",
        "portcullis_queue_depth{queue=\"audit\"}",
        "portcullis_http_received_bytes_total",
        "portcullis_uploads_in_progress 0",
    ] {
        assert!(text.contains(line), "{line} missing:\n{text}");
    }
    assert!(
        !text.contains("alice") && !text.contains("team/app"),
        "{text}"
    );
    if !portcullis_testkit::e2e_gate("python3 python:prometheus_client") {
        return;
    }
    let script = "import sys\nfrom prometheus_client.openmetrics.parser import text_string_to_metric_families as p\nnames = [f.name for f in p(sys.stdin.read())]\nprint(len(names))\nassert 'portcullis_auth_attempts' in names, names\n";
    let out = portcullis_testkit::process::run(
        std::process::Command::new("python3").args(["-c", script]),
        Some(&text),
        std::time::Duration::from_secs(30),
    );
    assert!(
        out.status.success(),
        "prometheus_client could not parse the exposition: {}",
        portcullis_testkit::process::combined_output(&out)
    );
}
