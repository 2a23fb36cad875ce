//! The security and accountability metrics, counted from events (so every
//! path that authenticates, issues, denies or refuses is counted the same
//! way) and from the request layer (bytes, uploads), and the queue depths
//! read at each scrape. No label names a repository or a user.

use std::sync::Arc;

use portcullis_types::event::{Event, EventSink, Kind, What};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AuthLabels {
    method: &'static str,
    result: &'static str,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClassLabels {
    class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueLabels {
    queue: &'static str,
}

/// Reads the queues' depths at a scrape.
pub type QueueProbe = Box<dyn Fn() -> Vec<(&'static str, i64)> + Send + Sync>;

#[derive(Debug, Default)]
pub(super) struct Security {
    auth: Family<AuthLabels, Counter>,
    tokens: Counter,
    denials: Counter,
    refusals: Family<ClassLabels, Counter>,
    lockouts: Counter,
    bytes_in: Counter,
    bytes_out: Counter,
    uploads: Gauge,
    queues: Family<QueueLabels, Gauge>,
}

/// A failure's reason as one of a few words, so labels stay bounded.
fn reason_word(reason: Option<&str>) -> &'static str {
    let r = reason.unwrap_or_default().to_ascii_lowercase();
    if r.contains("expired") {
        "expired"
    } else if r.contains("revoked") {
        "revoked"
    } else if r.contains("certificate") {
        "certificate"
    } else if r.contains("md5") || r.contains("sha") || r.contains("hash") {
        "unsupported_hash"
    } else {
        "invalid_credentials"
    }
}

impl Security {
    pub(super) fn register(&self, registry: &mut Registry) {
        registry.register(
            "auth_attempts",
            "Credentials checked, by method, result and reason",
            self.auth.clone(),
        );
        registry.register(
            "tokens_issued",
            "Tokens the token service signed",
            self.tokens.clone(),
        );
        registry.register(
            "access_denials",
            "Requests or scopes the policy refused",
            self.denials.clone(),
        );
        registry.register(
            "ratelimit_refusals",
            "Requests refused for a rate limit, by class",
            self.refusals.clone(),
        );
        registry.register(
            "lockouts",
            "Account and address pairs locked out",
            self.lockouts.clone(),
        );
        registry.register_with_unit(
            "http_received",
            "Request body bytes announced (Content-Length)",
            Unit::Bytes,
            self.bytes_in.clone(),
        );
        registry.register_with_unit(
            "http_sent",
            "Response body bytes",
            Unit::Bytes,
            self.bytes_out.clone(),
        );
        registry.register(
            "uploads_in_progress",
            "Blob uploads this process opened that are not yet finished or cancelled",
            self.uploads.clone(),
        );
        registry.register(
            "queue_depth",
            "Events waiting in the audit and notification queues",
            self.queues.clone(),
        );
    }

    pub(super) fn count(&self, e: &Event) {
        match &e.what {
            What::Authentication {
                ok,
                provider,
                reason,
                ..
            } => {
                self.auth
                    .get_or_create(&AuthLabels {
                        method: provider.unwrap_or("password"),
                        result: if *ok { "success" } else { "failure" },
                        reason: if *ok {
                            "ok"
                        } else {
                            reason_word(reason.as_deref())
                        },
                    })
                    .inc();
            }
            What::TokenIssued { .. } => {
                self.tokens.inc();
            }
            What::Decision { allowed: false, .. } => {
                self.denials.inc();
            }
            What::RateLimited { class, .. } => {
                self.refusals.get_or_create(&ClassLabels { class }).inc();
            }
            What::Lockout { .. } => {
                self.lockouts.inc();
            }
            _ => {}
        }
    }

    pub(super) fn bytes(&self, received: u64, sent: u64) {
        self.bytes_in.inc_by(received);
        self.bytes_out.inc_by(sent);
    }

    pub(super) fn upload(&self, opened: bool) {
        if opened {
            self.uploads.inc();
        } else if self.uploads.get() > 0 {
            self.uploads.dec();
        }
    }

    pub(super) fn probe(&self, probe: Option<&QueueProbe>) {
        for (queue, depth) in probe.map(|p| p()).unwrap_or_default() {
            self.queues.get_or_create(&QueueLabels { queue }).set(depth);
        }
    }
}

/// The metrics as an event sink.
pub struct MetricsSink(pub Arc<super::Metrics>);

impl EventSink for MetricsSink {
    fn name(&self) -> &'static str {
        "metrics"
    }

    fn wants(&self, kind: Kind) -> bool {
        matches!(
            kind,
            Kind::Authentication | Kind::TokenIssued | Kind::Denial | Kind::Abuse
        )
    }

    fn emit(&self, event: &Event) {
        self.0.security.count(event);
    }
}
