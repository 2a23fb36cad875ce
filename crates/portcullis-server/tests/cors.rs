//! CORS through a real configuration's pipeline: preflights are answered
//! before authentication for allowed origins only, real responses carry
//! the CORS headers only for allowed origins, and distribution-style
//! `http.headers: Access-Control-*` lines work as CORS settings.

mod common;

use axum::http::{Method, StatusCode};
use common::{request, send};
use portcullis_config::Config;

const UI: &str = "https://ui.example.com";

fn app(dir: &std::path::Path, http: &str) -> axum::Router {
    let line = format!("alice:{}\n", bcrypt::hash("a", 4).unwrap());
    std::fs::write(dir.join("htpasswd"), line).unwrap();
    let yaml = format!(
        "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {r}/data\n  delete:\n    enabled: true\nauth:\n  htpasswd:\n    realm: r\n    path: {r}/htpasswd\nhttp:\n  addr: 127.0.0.1:5000\n{http}",
        r = dir.display()
    );
    let config = Config::from_yaml(&yaml, "test.yml", &[]).unwrap().config;
    config.validate().unwrap();
    portcullis_server::app(portcullis_server::build_state(&config).unwrap())
}

fn preflight(origin: &str, path: &str, method: &str) -> axum::http::Request<axum::body::Body> {
    request(
        Method::OPTIONS,
        path,
        &[
            ("origin", origin),
            ("access-control-request-method", method),
            ("access-control-request-headers", "authorization, accept"),
        ],
        "",
    )
}

#[tokio::test]
async fn preflights_are_answered_before_authentication_for_allowed_origins_only() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(
        dir.path(),
        &format!("  cors:\n    allowedorigins: [\"{UI}\"]\n    maxage: 5m\n"),
    );
    for (path, method) in [
        ("/v2/", "GET"),
        ("/v2/team/app/manifests/latest", "DELETE"),
        ("/v2/_catalog", "GET"),
        ("/v2/team/app/blobs/uploads/", "POST"),
    ] {
        let r = send(&app, preflight(UI, path, method)).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{path}: {r:?}");
        assert_eq!(r.header("access-control-allow-origin"), UI);
        assert_eq!(r.header("access-control-allow-credentials"), "true");
        assert!(r.header("access-control-allow-methods").contains(method));
        assert_eq!(
            r.header("access-control-allow-headers"),
            "authorization, accept"
        );
        assert_eq!(r.header("access-control-max-age"), "300");
        assert_eq!(r.header("vary"), "Origin");
        assert!(r.opt_header("www-authenticate").is_none(), "no auth asked");
    }
    let r = send(&app, preflight("https://evil.example", "/v2/", "GET")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.opt_header("access-control-allow-origin").is_none());
    assert_eq!(r.json()["errors"][0]["code"], "DENIED");
    assert!(
        r.json()["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("http.cors.allowedorigins")
    );
}

#[tokio::test]
async fn responses_carry_cors_headers_for_allowed_origins_and_expose_the_registry_headers() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(
        dir.path(),
        &format!("  cors:\n    allowedorigins: [\"{UI}\"]\n"),
    );
    // Unauthenticated: the 401 must be readable by the page, challenge included.
    let r = send(&app, request(Method::GET, "/v2/", &[("origin", UI)], "")).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.header("access-control-allow-origin"), UI);
    let exposed = r.header("access-control-expose-headers").to_owned();
    for h in [
        "Docker-Content-Digest",
        "WWW-Authenticate",
        "Link",
        "Location",
        "Range",
        "RateLimit-Remaining",
    ] {
        assert!(exposed.contains(h), "{h} not in {exposed}");
    }
    let other = from_origin(&app, "https://evil.example").await;
    assert!(other.opt_header("access-control-allow-origin").is_none());
    assert_eq!(other.header("vary"), "Origin");
    // No Origin: nothing changes for Docker and other non-browser clients.
    let plain = send(&app, request(Method::GET, "/v2/", &[], "")).await;
    assert!(plain.opt_header("access-control-allow-origin").is_none());
    assert!(plain.opt_header("vary").is_none());
}

#[tokio::test]
async fn access_control_headers_in_http_headers_answer_preflights_too() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(
        dir.path(),
        "  headers:\n    Access-Control-Allow-Origin: ['http://localhost:8080']\n    Access-Control-Allow-Methods: ['HEAD', 'GET', 'OPTIONS', 'DELETE']\n    Access-Control-Allow-Credentials: ['true']\n    Access-Control-Allow-Headers: ['Authorization', 'Accept', 'Cache-Control']\n    Access-Control-Expose-Headers: ['Docker-Content-Digest']\n    X-Frame-Options: [DENY]\n",
    );
    let r = send(
        &app,
        preflight("http://localhost:8080", "/v2/_catalog", "GET"),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{r:?}");
    assert_eq!(
        r.header("access-control-allow-origin"),
        "http://localhost:8080"
    );
    assert_eq!(
        r.header("access-control-allow-methods"),
        "HEAD, GET, OPTIONS, DELETE"
    );
    // The plain headers still go out; the CORS ones only to the allowed origin.
    let other = from_origin(&app, "https://evil.example").await;
    assert_eq!(other.header("x-frame-options"), "DENY");
    assert!(other.opt_header("access-control-allow-origin").is_none());
    let ok = from_origin(&app, "http://localhost:8080").await;
    assert_eq!(
        ok.header("access-control-expose-headers"),
        "Docker-Content-Digest"
    );
}

#[tokio::test]
async fn a_wildcard_origin_gets_a_star_and_no_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path(), "  cors:\n    allowedorigins: ['*']\n");
    let r = send(&app, preflight("https://anyone.example", "/v2/", "GET")).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(r.header("access-control-allow-origin"), "*");
    assert!(r.opt_header("access-control-allow-credentials").is_none());
}

/// `GET /v2/` from a page on `origin`.
async fn from_origin(app: &axum::Router, origin: &str) -> common::Resp {
    send(app, request(Method::GET, "/v2/", &[("origin", origin)], "")).await
}

#[tokio::test]
async fn a_browser_following_the_bearer_challenge_is_asked_to_log_in() {
    let dir = tempfile::tempdir().unwrap();
    let line = format!("alice:{}\n", bcrypt::hash("a", 4).unwrap());
    std::fs::write(dir.path().join("htpasswd"), line).unwrap();
    let yaml = format!(
        "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {r}/data\nauth:\n  htpasswd:\n    realm: r\n    path: {r}/htpasswd\n  tokenserver:\n    issuer: portcullis\n    service: portcullis\nhttp:\n  addr: 127.0.0.1:5000\n  cors:\n    allowedorigins: [\"{UI}\"]\naccess:\n  rules:\n    - subjects: [anonymous]\n      repositories: [\"public/**\"]\n      actions: [pull]\n    - subjects: [authenticated]\n      repositories: [\"**\"]\n      actions: [\"*\"]\n",
        r = dir.path().display()
    );
    let config = Config::from_yaml(&yaml, "test.yml", &[]).unwrap().config;
    config.validate().unwrap();
    let app = portcullis_server::app(portcullis_server::build_state(&config).unwrap());
    let token = |scope: &str, headers: Vec<(&'static str, String)>| {
        let app = app.clone();
        let uri = format!("/token?service=portcullis&scope={scope}");
        async move {
            let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            send(&app, request(Method::GET, &uri, &h, "")).await
        }
    };
    let origin = || vec![("origin", UI.to_owned())];
    // The page may read the registry's challenge.
    let challenge = from_origin(&app, UI).await;
    assert_eq!(challenge.status, StatusCode::UNAUTHORIZED);
    assert!(challenge.header("www-authenticate").starts_with("Bearer "));
    assert!(
        challenge
            .header("access-control-expose-headers")
            .contains("WWW-Authenticate")
    );
    // Without credentials, for a private repository: a Basic challenge it can read.
    let r = token("repository:team/app:pull,delete", origin()).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{r:?}");
    assert_eq!(r.header("www-authenticate"), "Basic realm=\"portcullis\"");
    assert_eq!(r.header("access-control-allow-origin"), UI);
    // With the password the browser asked for: a token.
    let mut with_login = origin();
    with_login.push(("authorization", format!("Basic {}", base64_of("alice:a"))));
    let r = token("repository:team/app:pull,delete", with_login).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert!(r.json()["token"].as_str().is_some());
    // What anonymous may do still needs no login, from a page or from Docker.
    token("repository:public/app:pull", origin())
        .await
        .expect(200);
    token("repository:team/app:pull", Vec::new())
        .await
        .expect(200);
}

fn base64_of(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}
