//! The debug listener (`http.debug`): Prometheus metrics on a second,
//! plain-HTTP address, never on the registry's own listener. The TLS
//! certificate's expiry and the expiring flag follow `http.tls.expirywarning`
//! and reloads; requests are counted by method and status code.

#[path = "tls_pki.rs"]
mod pki;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use pki::{Leaf, ca, leaf_with, path_str, write};
use portcullis_config::{Config, DebugConfig, PrometheusConfig, TlsConfig};
use portcullis_testkit::free_port;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, RootCertStore};
use time::OffsetDateTime;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

const DAY: i64 = 24 * 3600;

/// A config listening on 127.0.0.1 with the debug listener on `debug_port`.
fn config(debug_port: u16, path: &str) -> Config {
    let mut config = Config::default();
    config.http.addr = "127.0.0.1:0".into();
    config.http.debug = Some(DebugConfig {
        addr: format!("127.0.0.1:{debug_port}"),
        prometheus: PrometheusConfig {
            enabled: true,
            path: path.to_owned(),
        },
    });
    config
}

/// Starts the server; returns the main port.
async fn start(config: Config) -> u16 {
    pki::serve(config).await
}

/// A certificate for localhost whose notAfter is `days` from now (to the
/// second, as certificates hold it).
fn leaf(ca: &pki::Ca, days: i64) -> (Leaf, i64) {
    let not_after = (OffsetDateTime::now_utc() + time::Duration::days(days))
        .replace_nanosecond(0)
        .unwrap();
    let leaf = leaf_with(ca, &["localhost"], |p| {
        p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        p.not_after = not_after;
    });
    (leaf, not_after.unix_timestamp())
}

fn tls_files(dir: &Path, leaf: &Leaf, warning_days: u64) -> TlsConfig {
    TlsConfig {
        certificate: path_str(&write(dir, "server.crt", &leaf.pem)),
        key: path_str(&write(dir, "server.key", &leaf.key_pem)),
        expirywarning: Some(Duration::from_secs(warning_days * 24 * 3600)),
        reloadinterval: Some(Duration::from_millis(100)),
        ..TlsConfig::default()
    }
}

/// Sends one HTTP/1.1 request with `Connection: close`; the status and body.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    method: &str,
    path: &str,
) -> (u16, String) {
    let request =
        format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    // A peer that closes without a TLS close_notify is fine here.
    let _ = stream.read_to_end(&mut raw).await;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

async fn plain(port: u16, method: &str, path: &str) -> (u16, String) {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    exchange(tcp, method, path).await
}

async fn tls(port: u16, ca: &pki::Ca, method: &str, path: &str) -> (u16, String) {
    let mut roots = RootCertStore::empty();
    roots.add(ca.der.clone()).unwrap();
    let config = Arc::new(
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    );
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let stream = TlsConnector::from(config)
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    exchange(stream, method, path).await
}

async fn metrics(debug_port: u16, path: &str) -> String {
    let (status, body) = plain(debug_port, "GET", path).await;
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test]
async fn certificate_expiring_within_the_window_is_flagged() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca("Test CA");
    let (leaf, not_after) = leaf(&ca, 10);
    let debug_port = free_port();
    let mut config = config(debug_port, "/metrics");
    config.http.tls = Some(tls_files(dir.path(), &leaf, 30));
    let port = start(config).await;

    let text = metrics(debug_port, "/metrics").await;
    assert!(
        text.contains(&format!(
            "\nportcullis_tls_certificate_expiry_timestamp_seconds {not_after}\n"
        )),
        "{text}"
    );
    assert!(
        text.contains("\nportcullis_tls_certificate_expiring 1\n"),
        "{text}"
    );
    assert!(
        text.contains("# UNIT portcullis_tls_certificate_expiry_timestamp_seconds seconds"),
        "{text}"
    );

    // Requests on the registry's listener are counted; the metrics are not
    // served there.
    assert_eq!(tls(port, &ca, "GET", "/v2/").await.0, 200);
    assert_eq!(tls(port, &ca, "GET", "/v2/").await.0, 200);
    assert_eq!(tls(port, &ca, "GET", "/metrics").await.0, 404);
    let text = metrics(debug_port, "/metrics").await;
    assert!(
        text.contains("\nportcullis_http_requests_total{method=\"GET\",code=\"200\"} 2\n"),
        "{text}"
    );
    assert!(
        text.contains("\nportcullis_http_requests_total{method=\"GET\",code=\"404\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("\nportcullis_http_request_duration_seconds_count{method=\"GET\"} 3\n"),
        "{text}"
    );
    // Scrapes of the debug listener are not registry requests.
    assert!(!text.contains("code=\"200\"} 3"), "{text}");
}

#[tokio::test]
async fn long_lived_certificate_is_not_flagged_until_a_reload_brings_one_that_is() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca("Test CA");
    let (long, long_after) = leaf(&ca, 365);
    let debug_port = free_port();
    let mut config = config(debug_port, "/metrics");
    config.http.tls = Some(tls_files(dir.path(), &long, 30));
    start(config).await;

    let text = metrics(debug_port, "/metrics").await;
    assert!(
        text.contains(&format!(
            "\nportcullis_tls_certificate_expiry_timestamp_seconds {long_after}\n"
        )),
        "{text}"
    );
    assert!(
        text.contains("\nportcullis_tls_certificate_expiring 0\n"),
        "{text}"
    );
    assert!((long_after - OffsetDateTime::now_utc().unix_timestamp()) > 364 * DAY);

    // A renewal gone wrong: the new certificate expires in 5 days.
    let (short, short_after) = leaf(&ca, 5);
    write(dir.path(), "server.key", &short.key_pem);
    write(dir.path(), "server.crt", &short.pem);
    let expected = format!("\nportcullis_tls_certificate_expiry_timestamp_seconds {short_after}\n");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let text = loop {
        let text = metrics(debug_port, "/metrics").await;
        if text.contains(&expected) || tokio::time::Instant::now() > deadline {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(text.contains(&expected), "not reloaded: {text}");
    assert!(
        text.contains("\nportcullis_tls_certificate_expiring 1\n"),
        "{text}"
    );
}

#[tokio::test]
async fn plain_http_counts_requests_and_has_no_certificate_gauges() {
    let debug_port = free_port();
    let port = start(config(debug_port, "/internal/prom")).await;

    assert_eq!(plain(port, "GET", "/v2/").await.0, 200);
    assert_eq!(plain(port, "HEAD", "/v2/").await.0, 200);
    assert_eq!(plain(port, "GET", "/v2/nope/tags/list").await.0, 404);
    assert_eq!(plain(port, "FROB", "/v2/").await.0, 405);
    // The metrics path is not served on the registry's listener.
    assert_eq!(plain(port, "GET", "/internal/prom").await.0, 404);

    let text = metrics(debug_port, "/internal/prom").await;
    for line in [
        "portcullis_http_requests_total{method=\"GET\",code=\"200\"} 1",
        "portcullis_http_requests_total{method=\"HEAD\",code=\"200\"} 1",
        "portcullis_http_requests_total{method=\"GET\",code=\"404\"} 2",
        "portcullis_http_requests_total{method=\"other\",code=\"405\"} 1",
        "portcullis_http_request_duration_seconds_count{method=\"GET\"} 3",
        "# TYPE portcullis_http_request_duration_seconds histogram",
    ] {
        assert!(text.contains(&format!("\n{line}\n")), "{line}:\n{text}");
    }
    assert!(!text.contains("tls_certificate"), "{text}");
    assert!(text.ends_with("# EOF\n"), "{text}");

    // Only the configured path; distribution's health endpoint answers too.
    assert_eq!(plain(debug_port, "GET", "/metrics").await.0, 404);
    assert_eq!(plain(debug_port, "POST", "/internal/prom").await.0, 405);
    assert_eq!(
        plain(debug_port, "GET", "/debug/health").await,
        (200, "{}".to_owned())
    );
}

#[tokio::test]
async fn debug_listener_without_prometheus_serves_no_metrics() {
    let debug_port = free_port();
    let mut config = config(debug_port, "/metrics");
    if let Some(debug) = &mut config.http.debug {
        debug.prometheus.enabled = false;
    }
    start(config).await;
    assert_eq!(plain(debug_port, "GET", "/metrics").await.0, 404);
    assert_eq!(plain(debug_port, "GET", "/debug/health").await.0, 200);
}

#[tokio::test]
async fn a_busy_debug_address_stops_the_start() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let config = config(port, "/metrics");
    let e = portcullis_server::serve(&config, |_| panic!("must not become ready"))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("http.debug.addr: cannot listen on 127.0.0.1:"),
        "{e}"
    );
    assert!(e.contains("REGISTRY_HTTP_DEBUG_ADDR"), "{e}");

    let mut config = Config::default();
    config.http.addr = "127.0.0.1:0".into();
    config.http.debug = Some(DebugConfig {
        addr: "localhost".into(),
        ..DebugConfig::default()
    });
    let e = portcullis_server::serve(&config, |_| panic!("must not become ready"))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("http.debug.addr: `localhost` has no port"),
        "{e}"
    );
}
