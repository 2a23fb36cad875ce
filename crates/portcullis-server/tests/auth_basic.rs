//! Basic authentication against an htpasswd file (distribution's
//! `auth.htpasswd`): the 401 challenge, wrong credentials, and configured
//! headers on every response, errors included.

mod common;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method};
use base64::Engine;
use common::*;
use portcullis_auth::htpasswd::Htpasswd;
use portcullis_core::Options;
use portcullis_server::AuthMode;
use portcullis_storage::MemoryDriver;

const REALM: &str = "Portcullis Test Realm";

struct Fixture {
    app: Router,
    _dir: tempfile::TempDir,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("htpasswd");
    let alice = bcrypt::hash("wonderland", 4).expect("bcrypt");
    let bob = bcrypt::hash("builder:with:colons", 4).expect("bcrypt");
    std::fs::write(&path, format!("alice:{alice}\nbob:{bob}\n")).expect("write htpasswd");
    let file = Arc::new(Htpasswd::load(&path).expect("load htpasswd"));
    let mut headers = HeaderMap::new();
    headers.insert(
        HeaderName::from_static("x-portcullis-test"),
        HeaderValue::from_static("on"),
    );
    headers.append(
        HeaderName::from_static("strict-transport-security"),
        HeaderValue::from_static("max-age=63072000"),
    );
    let app = state_app_with_users(
        Arc::new(MemoryDriver::new()),
        Options {
            delete_enabled: true,
            ..Options::default()
        },
        AuthMode::Basic {
            realm: REALM.to_owned(),
        },
        Some(file),
        headers,
    );
    Fixture { app, _dir: dir }
}

fn basic(user: &str, pass: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    )
}

async fn call(
    f: &Fixture,
    method: Method,
    uri: &str,
    auth: Option<&str>,
    body: impl Into<Body>,
) -> Resp {
    let headers: Vec<(&str, &str)> = auth.map(|a| ("authorization", a)).into_iter().collect();
    send(&f.app, request(method, uri, &headers, body)).await
}

#[track_caller]
fn assert_challenge(r: &Resp) {
    r.expect_error(401, "UNAUTHORIZED");
    let www = r.header("www-authenticate");
    assert!(
        www.starts_with(&format!("Basic realm=\"{REALM}\"")),
        "{www}"
    );
    assert_configured_headers(r);
}

#[track_caller]
fn assert_configured_headers(r: &Resp) {
    assert_eq!(r.header("x-portcullis-test"), "on", "{:?}", r.status);
    assert_eq!(r.header("strict-transport-security"), "max-age=63072000");
    assert_eq!(r.header("docker-distribution-api-version"), "registry/2.0");
}

#[tokio::test]
async fn no_credentials_get_a_challenge() {
    let f = fixture();
    for path in [
        "/v2/".to_owned(),
        "/v2".to_owned(),
        "/v2/_catalog".to_owned(),
        "/v2/app/tags/list".to_owned(),
        "/v2/app/manifests/latest".to_owned(),
        format!("/v2/app/blobs/{}", absent_digest("x")),
        format!("/v2/app/referrers/{}", absent_digest("x")),
    ] {
        let r = call(&f, Method::GET, &path, None, Body::empty()).await;
        assert_challenge(&r);
    }
    let r = call(
        &f,
        Method::POST,
        "/v2/app/blobs/uploads/",
        None,
        Body::empty(),
    )
    .await;
    assert_challenge(&r);
    let r = call(&f, Method::PUT, "/v2/app/manifests/v1", None, &b"{}"[..]).await;
    assert_challenge(&r);
}

#[tokio::test]
async fn unauthenticated_probes_learn_nothing_about_names() {
    // Malformed names and unknown endpoints also get the challenge, not a 400/404.
    let f = fixture();
    for path in [
        "/v2/UPPER/tags/list",
        "/v2/app/nothing-here",
        "/v2/a/../b/manifests/x",
    ] {
        let r = call(&f, Method::GET, path, None, Body::empty()).await;
        assert_challenge(&r);
    }
}

#[tokio::test]
async fn wrong_password_and_unknown_user_get_the_same_challenge() {
    let f = fixture();
    let cases = [
        basic("alice", "wrong"),
        basic("alice", ""),
        basic("alice", "wonderland "),
        basic("Alice", "wonderland"),
        basic("mallory", "wonderland"),
        basic("", ""),
        "Basic".to_owned(),
        "Basic !!!notbase64!!!".to_owned(),
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("no-colon")
        ),
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(b"alice:\xff\xfe")
        ),
        "Bearer some.jwt.token".to_owned(),
        "Digest username=alice".to_owned(),
        format!("Basic {}", "A".repeat(70 * 1024)),
    ];
    for auth in &cases {
        let r = call(&f, Method::GET, "/v2/", Some(auth), Body::empty()).await;
        assert_challenge(&r);
    }
    // Wrong password and unknown user are indistinguishable.
    let wrong = call(
        &f,
        Method::GET,
        "/v2/",
        Some(&basic("alice", "wrong")),
        Body::empty(),
    )
    .await;
    let unknown = call(
        &f,
        Method::GET,
        "/v2/",
        Some(&basic("mallory", "x")),
        Body::empty(),
    )
    .await;
    assert_eq!(wrong.body, unknown.body);
    assert_eq!(
        wrong.header("www-authenticate"),
        unknown.header("www-authenticate")
    );
}

#[tokio::test]
async fn correct_credentials_are_accepted() {
    let f = fixture();
    let alice = basic("alice", "wonderland");
    let r = call(&f, Method::GET, "/v2/", Some(&alice), Body::empty()).await;
    r.expect(200);
    assert_configured_headers(&r);
    assert!(r.opt_header("www-authenticate").is_none());
    // A password containing colons: only the first colon separates the user.
    let bob = basic("bob", "builder:with:colons");
    call(&f, Method::GET, "/v2/", Some(&bob), Body::empty())
        .await
        .expect(200);
    // The scheme is case-insensitive.
    let lower = alice.replacen("Basic", "basic", 1);
    call(&f, Method::GET, "/v2/", Some(&lower), Body::empty())
        .await
        .expect(200);
}

#[tokio::test]
async fn authenticated_push_and_pull() {
    let f = fixture();
    let alice = basic("alice", "wonderland");
    let data = b"authenticated layer".to_vec();
    let d = digest(&data);
    let r = call(
        &f,
        Method::POST,
        &format!("/v2/app/blobs/uploads/?digest={d}"),
        Some(&alice),
        data.clone(),
    )
    .await;
    r.expect(201);
    assert_configured_headers(&r);
    let r = call(
        &f,
        Method::GET,
        &format!("/v2/app/blobs/{d}"),
        Some(&alice),
        Body::empty(),
    )
    .await;
    r.expect(200);
    assert_eq!(&r.body[..], &data[..]);
    assert_configured_headers(&r);
    // The same blob without credentials: challenge.
    let r = call(
        &f,
        Method::GET,
        &format!("/v2/app/blobs/{d}"),
        None,
        Body::empty(),
    )
    .await;
    assert_challenge(&r);
}

#[tokio::test]
async fn configured_headers_are_on_every_response() {
    let f = fixture();
    let alice = basic("alice", "wonderland");
    let responses = [
        call(&f, Method::GET, "/v2/", Some(&alice), Body::empty()).await,
        call(
            &f,
            Method::GET,
            "/v2/app/manifests/nope",
            Some(&alice),
            Body::empty(),
        )
        .await,
        call(
            &f,
            Method::GET,
            "/v2/BAD/tags/list",
            Some(&alice),
            Body::empty(),
        )
        .await,
        call(
            &f,
            Method::POST,
            "/v2/app/manifests/x",
            Some(&alice),
            Body::empty(),
        )
        .await,
        call(
            &f,
            Method::GET,
            "/v2/app/nothing",
            Some(&alice),
            Body::empty(),
        )
        .await,
        call(&f, Method::GET, "/not-the-api", None, Body::empty()).await,
        call(
            &f,
            Method::POST,
            "/v2/app/blobs/uploads/",
            Some(&alice),
            Body::empty(),
        )
        .await,
        call(&f, Method::GET, "/v2/", None, Body::empty()).await,
    ];
    let statuses: Vec<u16> = responses.iter().map(|r| r.status.as_u16()).collect();
    assert_eq!(statuses, [200, 404, 400, 405, 404, 404, 202, 401]);
    for r in &responses {
        assert_configured_headers(r);
    }
}

/// An upload session belongs to the user who opened it, as in token mode:
/// another user who may push to the repository cannot write to it, nor
/// can its owner without the session's signed state.
#[tokio::test]
async fn upload_sessions_are_bound_to_their_user() {
    let f = fixture();
    let alice = basic("alice", "wonderland");
    let bob = basic("bob", "builder:with:colons");
    let r = call(
        &f,
        Method::POST,
        "/v2/app/blobs/uploads/",
        Some(&alice),
        Body::empty(),
    )
    .await;
    r.expect(202);
    let location = path_of(&r.location());
    assert!(location.contains("_state="), "{location}");
    let patch = |auth: &str, uri: &str| {
        let headers = [
            ("authorization", auth),
            ("content-type", "application/octet-stream"),
        ];
        let req = request(Method::PATCH, uri, &headers, &b"abc"[..]);
        send(&f.app, req)
    };
    let r = patch(&bob, &location).await;
    r.expect_error(403, "DENIED");
    assert!(
        r.error_message().contains("another user"),
        "{}",
        r.error_message()
    );
    // Without its state the session is nobody's.
    let bare = location.split('?').next().unwrap_or_default().to_owned();
    patch(&alice, &bare).await.expect_error(403, "DENIED");
    // Its owner goes on.
    patch(&alice, &location).await.expect(202);
    let status = call(&f, Method::GET, &location, Some(&bob), Body::empty()).await;
    status.expect_error(403, "DENIED");
    call(&f, Method::GET, &location, Some(&alice), Body::empty())
        .await
        .expect(204);
}
