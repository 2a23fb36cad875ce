//! Early responses on a kept-alive HTTP/1.1 connection, over a raw socket:
//! a 401 sent before the request body arrived must leave the connection
//! usable (the small body is drained) or say `Connection: close` (a large
//! one); a keep-alive client must never write into a silently closing socket.

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderMap;
use base64::Engine;
use common::*;
use portcullis_auth::htpasswd::Htpasswd;
use portcullis_core::Options;
use portcullis_server::AuthMode;
use portcullis_storage::MemoryDriver;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Server {
    addr: std::net::SocketAddr,
    _dir: tempfile::TempDir,
}

async fn basic_server() -> Server {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("htpasswd");
    let hash = bcrypt::hash("pw", 4).expect("bcrypt");
    std::fs::write(&path, format!("alice:{hash}\n")).expect("write htpasswd");
    let users = Arc::new(Htpasswd::load(&path).expect("load htpasswd"));
    let app = state_app_with_users(
        Arc::new(MemoryDriver::new()),
        Options::default(),
        AuthMode::Basic {
            realm: "test".to_owned(),
        },
        Some(users),
        HeaderMap::new(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    Server { addr, _dir: dir }
}

fn auth() -> String {
    base64::engine::general_purpose::STANDARD.encode("alice:pw")
}

/// Reads one response (headers and a `Content-Length` body); `None` when the
/// server closed the connection first.
async fn read_response(conn: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = tokio::time::timeout(Duration::from_secs(10), conn.read(&mut byte))
            .await
            .expect("a response within 10 s")
            .ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&byte[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse().expect("content-length"));
    let mut body = buf[head_end..].to_vec();
    while body.len() < len {
        let n = conn.read(&mut byte).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&byte[..n]);
    }
    Some((head, body))
}

fn put_head(len: usize, auth: Option<&str>) -> String {
    let auth = auth.map_or(String::new(), |a| format!("Authorization: Basic {a}\r\n"));
    format!(
        "PUT /v2/team/app/manifests/v1 HTTP/1.1\r\nHost: x\r\n{auth}\
         Content-Type: application/vnd.oci.image.manifest.v1+json\r\n\
         Content-Length: {len}\r\n\r\n"
    )
}

#[tokio::test]
async fn a_small_body_sent_after_the_401_is_drained_and_the_connection_reused() {
    let server = basic_server().await;
    let mut conn = TcpStream::connect(server.addr).await.expect("connect");
    let body = vec![b'x'; 2000];
    conn.write_all(put_head(body.len(), None).as_bytes())
        .await
        .expect("write head");
    // The server answers before the body arrives (as Go clients expect).
    let (head, _) = read_response(&mut conn).await.expect("401");
    assert!(head.starts_with("http/1.1 401"), "{head}");
    assert!(!head.contains("connection: close"), "{head}");
    conn.write_all(&body).await.expect("write body");
    // The same connection carries the authenticated retry.
    let get = format!(
        "GET /v2/ HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {}\r\n\r\n",
        auth()
    );
    conn.write_all(get.as_bytes()).await.expect("write get");
    let (head, body) = read_response(&mut conn)
        .await
        .expect("the connection must stay usable after a drained 401");
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert_eq!(body, b"{}");
}

#[tokio::test]
async fn a_large_unread_body_gets_connection_close_then_a_clean_close() {
    let server = basic_server().await;
    let mut conn = TcpStream::connect(server.addr).await.expect("connect");
    conn.write_all(put_head(4 << 20, None).as_bytes())
        .await
        .expect("write head");
    let (head, _) = read_response(&mut conn).await.expect("401");
    assert!(head.starts_with("http/1.1 401"), "{head}");
    assert!(
        head.contains("connection: close"),
        "a body too large to drain must be announced as a close: {head}"
    );
    // And the server then does close.
    let mut rest = Vec::new();
    let n = tokio::time::timeout(Duration::from_secs(10), conn.read_to_end(&mut rest))
        .await
        .expect("closed within 10 s");
    assert!(n.is_ok() || rest.is_empty());
}

#[tokio::test]
async fn expect_continue_without_the_body_is_closed_explicitly() {
    let server = basic_server().await;
    let mut conn = TcpStream::connect(server.addr).await.expect("connect");
    let head = put_head(100, None).replace("\r\n\r\n", "\r\nExpect: 100-continue\r\n\r\n");
    conn.write_all(head.as_bytes()).await.expect("write head");
    let (head, _) = read_response(&mut conn).await.expect("401");
    assert!(head.starts_with("http/1.1 401"), "{head}");
    assert!(head.contains("connection: close"), "{head}");
}

#[tokio::test]
async fn many_unauthenticated_puts_then_retries_on_one_connection() {
    // The Go client's pattern, 50 times over one connection: PUT without
    // credentials (body sent at once), 401, PUT again with them.
    let server = basic_server().await;
    let mut conn = TcpStream::connect(server.addr).await.expect("connect");
    let manifest = image_manifest(
        (&digest(b"absent-config"), 2),
        &[(&digest(b"absent-layer"), 5)],
        "",
    );
    for round in 0..50 {
        let mut req = put_head(manifest.len(), None).into_bytes();
        req.extend_from_slice(&manifest);
        conn.write_all(&req).await.expect("write");
        let (head, _) = read_response(&mut conn)
            .await
            .unwrap_or_else(|| panic!("round {round}: EOF after the unauthenticated PUT"));
        assert!(head.starts_with("http/1.1 401"), "round {round}: {head}");
        let mut req = put_head(manifest.len(), Some(&auth())).into_bytes();
        req.extend_from_slice(&manifest);
        conn.write_all(&req).await.expect("write");
        let (head, _) = read_response(&mut conn)
            .await
            .unwrap_or_else(|| panic!("round {round}: EOF on the authenticated retry"));
        // The blobs are absent, so the registry refuses the manifest: what
        // matters is that the request reached it on the same connection.
        assert!(head.starts_with("http/1.1 400"), "round {round}: {head}");
    }
}
