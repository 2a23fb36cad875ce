//! Connections that send nothing, or send their headers a byte at a time,
//! are closed once the header timeout passes, so they cannot hold the
//! server's descriptors; a client that behaves is served meanwhile.

mod common;

use std::time::Duration;

use common::*;
use portcullis_server::listen::{Timeouts, serve};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const HEADER_TIMEOUT: Duration = Duration::from_secs(1);
/// Far longer than the timeout: only a connection that is never closed fails.
const BOUND: Duration = Duration::from_secs(15);

async fn server() -> std::net::SocketAddr {
    let reg = Reg::memory();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let timeouts = Timeouts {
        header: HEADER_TIMEOUT,
        drain: Duration::from_secs(1),
    };
    tokio::spawn(serve(
        listener,
        reg.app.clone(),
        None,
        std::future::pending(),
        timeouts,
    ));
    addr
}

/// Waits for the server to close `conn`; panics if it is still open after
/// [`BOUND`].
async fn closed_by_server(conn: &mut TcpStream) {
    let mut buf = [0u8; 1024];
    let waited = tokio::time::timeout(BOUND, async {
        loop {
            match conn.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {} // a 408 or similar before the close is fine
            }
        }
    })
    .await;
    assert!(waited.is_ok(), "the server kept the connection open");
}

#[tokio::test]
async fn a_silent_connection_is_closed() {
    let addr = server().await;
    let mut conn = TcpStream::connect(addr).await.expect("connect");
    closed_by_server(&mut conn).await;
}

#[tokio::test]
async fn slowloris_headers_are_cut_off() {
    let addr = server().await;
    let mut conn = TcpStream::connect(addr).await.expect("connect");
    conn.write_all(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("write");
    let trickle = async {
        // One header byte every 200 ms, never finishing (bounded: 100 bytes).
        for _ in 0..100 {
            if conn.write_all(b"a").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    trickle.await;
    closed_by_server(&mut conn).await;
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_its_request() {
    let addr = server().await;
    let mut conn = TcpStream::connect(addr).await.expect("connect");
    conn.write_all(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let mut buf = vec![0u8; 4096];
    let n = conn.read(&mut buf).await.expect("response");
    assert!(
        String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );
    closed_by_server(&mut conn).await;
}

#[tokio::test]
async fn clients_are_served_while_idle_connections_wait() {
    let addr = server().await;
    let mut idle = Vec::new();
    for _ in 0..200 {
        idle.push(TcpStream::connect(addr).await.expect("connect"));
    }
    let mut conn = TcpStream::connect(addr).await.expect("connect");
    conn.write_all(b"GET /v2/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut out = Vec::new();
    tokio::time::timeout(BOUND, conn.read_to_end(&mut out))
        .await
        .expect("served")
        .expect("read");
    assert!(String::from_utf8_lossy(&out).starts_with("HTTP/1.1 200"));
    for mut c in idle {
        closed_by_server(&mut c).await;
    }
}
