//! Prometheus metrics, served on the debug listener (`http.debug.addr`,
//! `http.debug.prometheus`), never on the registry's own listener.
//!
//! - `portcullis_http_requests_total{method,code}`: requests answered.
//! - `portcullis_http_request_duration_seconds{method}`: time to the response
//!   head (a streamed body may take longer).
//! - `portcullis_tls_certificate_expiry_timestamp_seconds`: the serving
//!   certificate's notAfter, as Unix seconds (only with `http.tls`).
//! - `portcullis_tls_certificate_expiring`: 1 when that is within
//!   `http.tls.expirywarning` (default 30 days), else 0 (only with `http.tls`).
//!
//! The TLS gauges are set when the certificate is loaded and on each reload;
//! `expiring` is worked out again at every scrape, so it turns to 1 on the
//! day the window is reached without waiting for a reload.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

mod security;
pub use security::{MetricsSink, QueueProbe};

/// Prometheus's default buckets, in seconds.
const DURATION_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The content type of the OpenMetrics text format that `prometheus-client`
/// writes (Prometheus scrapes it natively).
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    code: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    method: &'static str,
}

type Durations = Family<MethodLabels, Histogram, fn() -> Histogram>;

/// The serving certificate's gauges.
#[derive(Debug, Default)]
struct TlsGauges {
    not_after: Gauge,
    expiring: Gauge,
    /// `http.tls.expirywarning` in seconds.
    window: AtomicU64,
}

/// Every metric portcullis exports, and the registry that encodes them.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    durations: Durations,
    tls: Option<TlsGauges>,
    security: security::Security,
    /// The audit and notification queues' depths, read at each scrape.
    queues: std::sync::OnceLock<QueueProbe>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// The metrics; the TLS gauges exist only when `tls` is true, so that a
    /// plain-HTTP server does not report a certificate expiring in 1970.
    #[must_use]
    pub fn new(tls: bool) -> Self {
        let mut registry = Registry::with_prefix("portcullis");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by method and status code",
            requests.clone(),
        );
        let durations: Durations =
            Family::new_with_constructor(|| Histogram::new(DURATION_BUCKETS));
        registry.register_with_unit(
            "http_request_duration",
            "Time from receiving a request to sending its response head",
            Unit::Seconds,
            durations.clone(),
        );
        let tls = tls.then(|| {
            let gauges = TlsGauges::default();
            registry.register_with_unit(
                "tls_certificate_expiry_timestamp",
                "When the serving TLS certificate expires (its notAfter), as Unix time",
                Unit::Seconds,
                gauges.not_after.clone(),
            );
            registry.register(
                "tls_certificate_expiring",
                "1 when the serving TLS certificate expires within http.tls.expirywarning, else 0",
                gauges.expiring.clone(),
            );
            gauges
        });
        let security = security::Security::default();
        security.register(&mut registry);
        Self {
            registry,
            requests,
            durations,
            tls,
            security,
            queues: std::sync::OnceLock::new(),
        }
    }

    /// Body bytes of one request and its response.
    pub fn record_bytes(&self, received: u64, sent: u64) {
        self.security.bytes(received, sent);
    }

    /// An upload opened (`true`) or finished or cancelled (`false`).
    pub fn record_upload(&self, opened: bool) {
        self.security.upload(opened);
    }

    /// How the queues' depths are read at a scrape (set once).
    pub fn set_queue_probe(&self, probe: QueueProbe) {
        let _ = self.queues.set(probe);
    }

    /// Counts one answered request.
    pub fn record_request(&self, method: &Method, status: StatusCode, elapsed: Duration) {
        let method = method_label(method);
        self.requests
            .get_or_create(&RequestLabels {
                method,
                code: status.as_u16(),
            })
            .inc();
        self.durations
            .get_or_create(&MethodLabels { method })
            .observe(elapsed.as_secs_f64());
    }

    /// Records the serving certificate: it expires at `not_after` (Unix
    /// seconds) and counts as expiring within `window` of that.
    pub fn set_tls_certificate(&self, not_after: i64, window: Duration) {
        let Some(tls) = &self.tls else { return };
        tls.not_after.set(not_after);
        tls.window.store(window.as_secs(), Ordering::Relaxed);
        self.refresh_expiring(unix_now());
    }

    fn refresh_expiring(&self, now: i64) {
        let Some(tls) = &self.tls else { return };
        let window = i64::try_from(tls.window.load(Ordering::Relaxed)).unwrap_or(i64::MAX);
        let left = tls.not_after.get().saturating_sub(now);
        tls.expiring.set(i64::from(left < window));
    }

    /// The metrics in the OpenMetrics text format.
    #[must_use]
    pub fn encode(&self) -> String {
        self.refresh_expiring(unix_now());
        self.security.probe(self.queues.get());
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// The request's method as a label: the standard methods by name, anything
/// else `other`, so that clients cannot create series without limit.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// What the debug listener serves.
#[derive(Clone)]
struct DebugState {
    metrics: Option<std::sync::Arc<Metrics>>,
    /// `http.debug.prometheus.path`.
    path: String,
}

/// The debug listener's application: the metrics at `path` (when
/// `metrics` is set), distribution's `/debug/health` (always `{}`, as
/// portcullis runs none of distribution's health checks), and 404 for
/// anything else.
pub fn debug_app(metrics: Option<std::sync::Arc<Metrics>>, path: &str) -> axum::Router {
    let path = if path.is_empty() { "/metrics" } else { path };
    // A fallback that compares paths, rather than axum routes, so that no
    // configured path can clash with a route or be read as a pattern.
    axum::Router::new()
        .fallback(debug_handler)
        .with_state(DebugState {
            metrics,
            path: path.to_owned(),
        })
}

async fn debug_handler(State(debug): State<DebugState>, req: Request) -> Response {
    let path = req.uri().path();
    let readable = matches!(*req.method(), Method::GET | Method::HEAD);
    if let Some(metrics) = debug.metrics.as_ref().filter(|_| path == debug.path) {
        if !readable {
            return (
                StatusCode::METHOD_NOT_ALLOWED,
                [(header::ALLOW, "GET, HEAD")],
            )
                .into_response();
        }
        return ([(header::CONTENT_TYPE, CONTENT_TYPE)], metrics.encode()).into_response();
    }
    if path == "/debug/health" && readable {
        return (
            [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
            "{}",
        )
            .into_response();
    }
    (StatusCode::NOT_FOUND, Body::from("404 page not found\n")).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_requests_and_bounds_methods() {
        let m = Metrics::new(false);
        m.record_request(&Method::GET, StatusCode::OK, Duration::from_millis(3));
        m.record_request(&Method::GET, StatusCode::OK, Duration::from_millis(3));
        let odd = Method::from_bytes(b"FROBNICATE").unwrap();
        m.record_request(&odd, StatusCode::NOT_FOUND, Duration::from_millis(3));
        let text = m.encode();
        assert!(
            text.contains("portcullis_http_requests_total{method=\"GET\",code=\"200\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("portcullis_http_requests_total{method=\"other\",code=\"404\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("portcullis_http_request_duration_seconds_count{method=\"GET\"} 2"),
            "{text}"
        );
        assert!(!text.contains("tls_certificate"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn expiring_follows_the_window() {
        let m = Metrics::new(true);
        let day = 24 * 3600;
        let month = Duration::from_secs(30 * 24 * 3600);
        let soon = unix_now() + 10 * day;
        m.set_tls_certificate(soon, month);
        let text = m.encode();
        assert!(
            text.contains(&format!(
                "portcullis_tls_certificate_expiry_timestamp_seconds {soon}\n"
            )),
            "{text}"
        );
        assert!(
            text.contains("portcullis_tls_certificate_expiring 1\n"),
            "{text}"
        );
        m.set_tls_certificate(unix_now() + 365 * day, month);
        assert!(
            m.encode()
                .contains("portcullis_tls_certificate_expiring 0\n")
        );
        // Re-evaluated at each scrape: the window reached without a reload.
        m.refresh_expiring(unix_now() + 340 * day);
        assert_eq!(m.tls.as_ref().unwrap().expiring.get(), 1);
    }
}
