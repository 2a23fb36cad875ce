//! The access log names the client (issue 5): the TCP peer, or, when the
//! peer is in `http.trustedproxies`, the address its `Forwarded` or
//! `X-Forwarded-For` header gives (the right-most one that is not itself a
//! trusted proxy). Forwarded headers from any other peer change nothing.
//! Runs the portcullis binary on 127.0.0.1 with `log.formatter: json` and
//! reads its log. Runs everywhere (no root, no daemon).

mod common;

use std::time::{Duration, Instant};

use common::{Registry, RegistryConfig, RegistryKind, http};
use serde_json::Value;

fn start(http_yaml: Option<&str>) -> (Registry, tempfile::TempDir) {
    let dir = common::temp_dir();
    let mut config =
        RegistryConfig::new(dir.path().join("data")).extra_yaml("log:\n  formatter: json\n");
    if let Some(yaml) = http_yaml {
        config = config.http_yaml(yaml);
    }
    (Registry::start(RegistryKind::Portcullis, &config), dir)
}

/// Sends `GET path` with `headers`; returns the access log line's fields.
fn request(registry: &Registry, path: &str, headers: &[(&str, &str)]) -> Value {
    let mut req = http().get(registry.url(path));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let status = req.send().expect("request").status();
    assert_eq!(status.as_u16(), 404, "{path}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = registry.log();
        let line = log
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|v| v["fields"]["message"] == "request" && v["fields"]["path"] == path);
        if let Some(line) = line {
            return line["fields"].clone();
        }
        assert!(
            Instant::now() < deadline,
            "no access log line for {path}:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn forwarded_headers_from_an_untrusted_peer_do_not_change_the_client() {
    let (registry, _dir) = start(None);
    let line = request(
        &registry,
        "/v2/untrusted/tags/list",
        &[
            ("x-forwarded-for", "203.0.113.9"),
            ("forwarded", "for=198.51.100.7"),
        ],
    );
    assert_eq!(line["client"], "127.0.0.1", "{line}");
    assert_eq!(line["method"], "GET", "{line}");
    assert_eq!(line["status"], 404, "{line}");

    // A trusted range that does not hold the peer is the same as none.
    let (registry, _dir) = start(Some("  trustedproxies: [10.0.0.0/8]"));
    let line = request(
        &registry,
        "/v2/elsewhere/tags/list",
        &[("x-forwarded-for", "203.0.113.9")],
    );
    assert_eq!(line["client"], "127.0.0.1", "{line}");
}

#[test]
fn a_trusted_proxy_names_the_client() {
    let (registry, _dir) = start(Some("  trustedproxies: [127.0.0.1, 10.0.0.0/8]"));
    let line = request(
        &registry,
        "/v2/xff/tags/list",
        &[("x-forwarded-for", "203.0.113.9")],
    );
    assert_eq!(line["client"], "203.0.113.9", "{line}");

    // The client wrote the left-most entry itself; the proxies (ours, in
    // 10.0.0.0/8) appended the rest.
    let line = request(
        &registry,
        "/v2/chain/tags/list",
        &[("x-forwarded-for", "1.1.1.1, 203.0.113.9, 10.0.0.3")],
    );
    assert_eq!(line["client"], "203.0.113.9", "{line}");

    // RFC 7239 wins over X-Forwarded-For.
    let line = request(
        &registry,
        "/v2/rfc7239/tags/list",
        &[
            ("forwarded", "for=\"[2001:db8::7]:4711\";proto=https"),
            ("x-forwarded-for", "203.0.113.9"),
        ],
    );
    assert_eq!(line["client"], "2001:db8::7", "{line}");

    // Without forwarded headers, the proxy itself.
    let line = request(&registry, "/v2/direct/tags/list", &[]);
    assert_eq!(line["client"], "127.0.0.1", "{line}");
}
