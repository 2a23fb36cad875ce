//! Forwarded headers are believed only from `http.trustedproxies`: the
//! `Location` of an upload follows a trusted proxy's `X-Forwarded-*` and
//! `Forwarded` headers, and ignores the same headers from anyone else.

mod common;

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Method;
use common::*;
use portcullis_server::UrlPolicy;
use portcullis_server::proxy::TrustedProxies;

fn policy(host: Option<&str>) -> UrlPolicy {
    UrlPolicy {
        host: host.map(str::to_owned),
        trusted_proxies: TrustedProxies::parse(&["10.0.0.0/8".to_owned(), "fd00::/8".to_owned()])
            .unwrap(),
        ..UrlPolicy::default()
    }
}

/// The `Location` of a new upload, sent from `peer` (no `ConnectInfo` when `None`).
async fn location(urls: UrlPolicy, peer: Option<&str>, headers: &[(&str, &str)]) -> String {
    let reg = Reg::memory();
    let app = policy_app(reg.driver.clone(), urls, 100);
    let mut req = request(
        Method::POST,
        "/v2/app/blobs/uploads/",
        headers,
        Body::empty(),
    );
    if let Some(peer) = peer {
        let addr: SocketAddr = peer.parse().unwrap();
        req.extensions_mut().insert(ConnectInfo(addr));
    }
    let r = send(&app, req).await;
    r.expect(202);
    r.header("location").to_owned()
}

const FORWARDED: &[(&str, &str)] = &[
    ("host", "internal:5000"),
    ("x-forwarded-proto", "https"),
    ("x-forwarded-host", "registry.example.com"),
    ("x-forwarded-for", "203.0.113.9"),
];

#[tokio::test]
async fn trusted_proxy_headers_are_used() {
    let loc = location(policy(None), Some("10.1.2.3:40000"), FORWARDED).await;
    assert!(
        loc.starts_with("https://registry.example.com/v2/app/blobs/uploads/"),
        "{loc}"
    );
    let loc = location(
        policy(None),
        Some("[fd00::7]:40000"),
        &[
            ("host", "internal:5000"),
            (
                "forwarded",
                "for=203.0.113.9;proto=https;host=\"reg.example:8443\"",
            ),
        ],
    )
    .await;
    assert!(
        loc.starts_with("https://reg.example:8443/v2/app/blobs/uploads/"),
        "{loc}"
    );
}

#[tokio::test]
async fn untrusted_headers_are_ignored() {
    for peer in [Some("192.0.2.1:40000"), Some("[2001:db8::1]:40000"), None] {
        let loc = location(policy(None), peer, FORWARDED).await;
        assert!(
            loc.starts_with("http://internal:5000/v2/app/blobs/uploads/"),
            "{peer:?}: {loc}"
        );
    }
    // Without http.trustedproxies nobody is trusted, not even loopback.
    let loc = location(UrlPolicy::default(), Some("127.0.0.1:40000"), FORWARDED).await;
    assert!(loc.starts_with("http://internal:5000/"), "{loc}");
}

#[tokio::test]
async fn http_host_still_wins() {
    let loc = location(
        policy(Some("https://public.example.com")),
        Some("10.1.2.3:40000"),
        FORWARDED,
    )
    .await;
    assert!(
        loc.starts_with("https://public.example.com/v2/app/blobs/uploads/"),
        "{loc}"
    );
}
