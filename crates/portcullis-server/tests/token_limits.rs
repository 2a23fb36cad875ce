//! `POST /token` reads at most 64 KiB of form before anyone is
//! authenticated: a huge body is refused with 413 after reading only that
//! much, whether its length is declared or streamed.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Body;
use axum::http::{Method, Request};
use common::send;
use futures::StreamExt;

fn token_app(dir: &std::path::Path) -> axum::Router {
    let hash = bcrypt::hash("pw", 4).expect("bcrypt");
    std::fs::write(dir.join("htpasswd"), format!("alice:{hash}\n")).expect("htpasswd");
    let yaml = format!(
        "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {root}\nauth:\n  htpasswd:\n    realm: r\n    path: {root}/htpasswd\n  tokenserver:\n    issuer: portcullis\n    service: portcullis\n",
        root = dir.display()
    );
    let config = portcullis_config::Config::from_yaml(&yaml, "config.yml", &[])
        .expect("config")
        .config;
    portcullis_server::app(portcullis_server::build_state(&config).expect("state"))
}

#[tokio::test]
async fn a_streamed_form_is_cut_off_at_the_limit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = token_app(dir.path());
    // 300 MiB offered in 64 KiB chunks, counting what the server pulls.
    let pulled = Arc::new(AtomicU64::new(0));
    let counter = pulled.clone();
    let chunks = futures::stream::iter(0..4800).map(move |_| {
        counter.fetch_add(64 * 1024, Ordering::Relaxed);
        Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b'a'; 64 * 1024]))
    });
    let req = Request::builder()
        .method(Method::POST)
        .uri("/token")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from_stream(chunks))
        .expect("request");
    let r = send(&app, req).await;
    assert_eq!(
        r.status.as_u16(),
        413,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let read = pulled.load(Ordering::Relaxed);
    assert!(read <= 256 * 1024, "read {read} bytes of an oversized form");
}

#[tokio::test]
async fn a_declared_oversized_form_is_refused_unread() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = token_app(dir.path());
    let req = Request::builder()
        .method(Method::POST)
        .uri("/token")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("content-length", "314572800")
        .body(Body::from(vec![b'a'; 70 * 1024]))
        .expect("request");
    let r = send(&app, req).await;
    assert_eq!(r.status.as_u16(), 413);
    let body: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
    assert_eq!(body["error"], "invalid_request");
}

#[tokio::test]
async fn a_normal_form_still_works() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = token_app(dir.path());
    let form = "grant_type=password&client_id=test&username=alice&password=pw&service=portcullis";
    let req = Request::builder()
        .method(Method::POST)
        .uri("/token")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(form))
        .expect("request");
    let r = send(&app, req).await;
    assert_eq!(
        r.status.as_u16(),
        200,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
}
