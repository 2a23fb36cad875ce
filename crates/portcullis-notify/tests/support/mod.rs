//! A webhook listener for the tests: a real HTTP server on 127.0.0.1 that
//! records every request it gets and can be told to fail the first ones.

#![allow(dead_code)] // each test file uses part of it

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use portcullis_notify::{Endpoint, Settings};
use portcullis_types::event::{ChangeKind, Event, What};

/// One request the listener got.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: serde_json::Value,
    /// What the listener answered.
    pub status: u16,
}

#[derive(Default)]
struct State {
    got: Mutex<Vec<Received>>,
    fail_first: AtomicUsize,
}

/// A running listener; stops when dropped.
pub struct Receiver {
    pub addr: std::net::SocketAddr,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Receiver {
    /// Listens on a free port.
    pub async fn start(fail_first: usize) -> Self {
        Self::start_on("127.0.0.1:0".parse().unwrap(), fail_first).await
    }

    /// Listens on `addr`.
    pub async fn start_on(addr: std::net::SocketAddr, fail_first: usize) -> Self {
        let state = Arc::new(State {
            fail_first: AtomicUsize::new(fail_first),
            ..State::default()
        });
        let s = state.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
                let s = s.clone();
                async move {
                    let fail = s
                        .fail_first
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                        .is_ok();
                    let status = if fail {
                        StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        StatusCode::OK
                    };
                    let body = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
                    s.got.lock().unwrap().push(Received {
                        headers,
                        body,
                        status: status.as_u16(),
                    });
                    status
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { addr, state, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// Every request so far.
    pub fn all(&self) -> Vec<Received> {
        self.state.got.lock().unwrap().clone()
    }

    /// The requests it accepted.
    pub fn accepted(&self) -> Vec<Received> {
        self.all().into_iter().filter(|r| r.status == 200).collect()
    }

    /// Waits until it accepted `n` requests, at most five seconds.
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        for _ in 0..500 {
            let got = self.accepted();
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.accepted()
    }
}

/// A free port with nothing listening on it (for a listener that is down).
pub fn free_addr() -> std::net::SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// An endpoint named `name` posting to `url`, retrying quickly.
pub fn endpoint(name: &str, url: &str) -> Endpoint {
    Endpoint {
        name: name.into(),
        url: url.into(),
        backoff: Duration::from_millis(20),
        timeout: Duration::from_secs(2),
        ..Endpoint::default()
    }
}

pub fn settings(endpoints: Vec<Endpoint>) -> Settings {
    Settings {
        endpoints,
        source_addr: "registry.test:5000".into(),
        instance_id: "b7a0c7f4-0d1e-4d7e-9a55-0d1a2b3c4d5e".into(),
        ..Settings::default()
    }
}

pub fn digest(c: char) -> String {
    format!("sha256:{}", c.to_string().repeat(64))
}

/// A manifest pushed by `alice` to `repo` with the tag `v1`, in a request.
pub fn push(repo: &str) -> Event {
    Event {
        client: Some("192.0.2.7".into()),
        request_id: Some("req-1".into()),
        user_agent: Some("docker/28.2.2".into()),
        method: Some("PUT".into()),
        host: Some("registry.test:5000".into()),
        ..Event::new(
            "alice",
            What::Change {
                kind: ChangeKind::ManifestPushed,
                repository: repo.into(),
                reference: Some("v1".into()),
                digest: Some(digest('a')),
                media_type: Some("application/vnd.oci.image.manifest.v1+json".into()),
                size: Some(512),
                previous: None,
                status: 201,
            },
        )
    }
}

/// A blob pushed to `repo`.
pub fn blob_push(repo: &str) -> Event {
    Event::new(
        "alice",
        What::Change {
            kind: ChangeKind::BlobPushed,
            repository: repo.into(),
            reference: None,
            digest: Some(digest('b')),
            media_type: None,
            size: Some(1024),
            previous: None,
            status: 201,
        },
    )
}

/// A manifest pulled by tag from `repo`, anonymously.
pub fn pull(repo: &str) -> Event {
    Event::new(
        "",
        What::Pull {
            manifest: true,
            repository: repo.into(),
            reference: "v1".into(),
            digest: Some(digest('a')),
            media_type: Some("application/vnd.oci.image.manifest.v1+json".into()),
            bytes: 512,
            status: 200,
        },
    )
}
