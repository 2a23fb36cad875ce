//! Events as a port: what happened (an authentication, a token, an access
//! decision, a change to a repository, an admin action), who did it, from
//! where, in which request; delivered to every configured [`EventSink`].
//! The decision log is one sink; an audit log and webhooks will be more,
//! and nothing that emits events changes when they arrive.

use std::sync::Arc;
use std::time::SystemTime;

/// The kinds of event, for sinks to say which they want.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Authentication,
    TokenIssued,
    /// A decision that allowed the caller (one per authorized request).
    Decision,
    /// A decision that refused the caller.
    Denial,
    Change,
    /// A manifest or blob was read (`GET`; a `HEAD` is not a pull).
    Pull,
    /// A lockout or a rate-limit refusal.
    Abuse,
    Admin,
}

/// What changed in a repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    ManifestPushed,
    ManifestDeleted,
    BlobPushed,
    BlobMounted,
    BlobDeleted,
    /// A tag that named one manifest now names another (sent with the
    /// push that moved it; `previous` in the change says from what).
    TagMoved,
}

impl ChangeKind {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ManifestPushed => "manifest pushed",
            Self::ManifestDeleted => "manifest deleted",
            Self::BlobPushed => "blob pushed",
            Self::BlobMounted => "blob mounted",
            Self::BlobDeleted => "blob deleted",
            Self::TagMoved => "tag moved",
        }
    }
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum What {
    /// Credentials were checked. `user` is the name presented (never the
    /// secret); `reason` says why a failure failed.
    Authentication {
        user: String,
        ok: bool,
        provider: Option<&'static str>,
        reason: Option<String>,
    },
    /// The token service signed a token with these scopes.
    TokenIssued { scopes: Vec<String> },
    /// An access decision, with the policy's explanation.
    Decision {
        repository: Option<String>,
        action: String,
        allowed: bool,
        explanation: String,
    },
    /// A repository changed. `reference` is the tag or digest a manifest
    /// was pushed or deleted by; `digest` the content's digest.
    Change {
        kind: ChangeKind,
        repository: String,
        reference: Option<String>,
        digest: Option<String>,
        /// The content's media type and size, when the request says them.
        media_type: Option<String>,
        size: Option<u64>,
        /// For a tag move: the digest the tag named before.
        previous: Option<String>,
        status: u16,
    },
    /// A manifest or blob was read.
    Pull {
        manifest: bool,
        repository: String,
        reference: String,
        digest: Option<String>,
        media_type: Option<String>,
        /// The response's body length (a range's, for a partial read).
        bytes: u64,
        status: u16,
    },
    /// Too many failed logins for `account` from the client: refused for
    /// `retry_after` seconds.
    Lockout {
        account: String,
        failures: u32,
        retry_after: u64,
    },
    /// A request over its rate limit (`class`: pull, push, token, auth).
    RateLimited {
        class: &'static str,
        key: String,
        retry_after: u64,
    },
    /// An administrator changed users, tokens or keys.
    Admin { command: String, detail: String },
}

impl What {
    #[must_use]
    pub fn kind(&self) -> Kind {
        match self {
            Self::Authentication { .. } => Kind::Authentication,
            Self::TokenIssued { .. } => Kind::TokenIssued,
            Self::Decision { allowed: true, .. } => Kind::Decision,
            Self::Decision { allowed: false, .. } => Kind::Denial,
            Self::Change { .. } => Kind::Change,
            Self::Pull { .. } => Kind::Pull,
            Self::Lockout { .. } | Self::RateLimited { .. } => Kind::Abuse,
            Self::Admin { .. } => Kind::Admin,
        }
    }
}

/// One event: what happened, the actor (a token's `sub`: the user, the
/// robot's login, or empty for anonymous), the client's address and the
/// request it happened in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub at: SystemTime,
    pub actor: String,
    /// The client, as the access log shows it (an address, or a proxy's
    /// obfuscated name).
    pub client: Option<String>,
    pub request_id: Option<String>,
    /// The request's `User-Agent`, when it came from one.
    pub user_agent: Option<String>,
    /// The forwarded chain believed from trusted proxies, client first.
    pub forwarded: Vec<String>,
    /// The request's method and the host it was sent to.
    pub method: Option<String>,
    pub host: Option<String>,
    pub what: What,
}

impl Event {
    /// An event by `actor`, now, outside any request.
    #[must_use]
    pub fn new(actor: impl Into<String>, what: What) -> Self {
        Self {
            at: SystemTime::now(),
            actor: actor.into(),
            client: None,
            request_id: None,
            user_agent: None,
            forwarded: Vec::new(),
            method: None,
            host: None,
            what,
        }
    }
}

/// Where events go. `emit` must not block: a sink that writes to a slow
/// place queues.
pub trait EventSink: Send + Sync {
    /// A short name for logs and configuration.
    fn name(&self) -> &'static str;

    /// Whether this sink wants events of `kind` (cheap; asked before an
    /// event is built, so a sink that wants nothing costs nothing).
    fn wants(&self, kind: Kind) -> bool;

    fn emit(&self, event: &Event);
}

/// Every configured sink. Cloning shares them.
#[derive(Clone, Default)]
pub struct Sinks(Arc<[Arc<dyn EventSink>]>);

impl std::fmt::Debug for Sinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|s| s.name()))
            .finish()
    }
}

impl Sinks {
    #[must_use]
    pub fn new(sinks: Vec<Arc<dyn EventSink>>) -> Self {
        Self(sinks.into())
    }

    /// Whether any sink wants events of `kind`.
    #[must_use]
    pub fn wants(&self, kind: Kind) -> bool {
        self.0.iter().any(|s| s.wants(kind))
    }

    /// Builds the event only if some sink wants its kind, and gives it to
    /// each sink that does.
    pub fn emit(&self, kind: Kind, build: impl FnOnce() -> Event) {
        if !self.wants(kind) {
            return;
        }
        let event = build();
        debug_assert_eq!(event.what.kind(), kind);
        for s in self.0.iter().filter(|s| s.wants(kind)) {
            s.emit(&event);
        }
    }
}

/// Keeps every event in memory, in order: for tests, and for a CLI that
/// wants to show what a command did.
#[derive(Debug, Default)]
pub struct MemorySink {
    events: std::sync::Mutex<Vec<Event>>,
}

impl MemorySink {
    /// The events so far.
    ///
    /// # Panics
    /// If a thread panicked while holding the lock.
    #[must_use]
    pub fn events(&self) -> Vec<Event> {
        self.events.lock().expect("event lock").clone()
    }
}

impl EventSink for MemorySink {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn wants(&self, _kind: Kind) -> bool {
        true
    }

    fn emit(&self, event: &Event) {
        if let Ok(mut e) = self.events.lock() {
            e.push(event.clone());
        }
    }
}

/// The contract every sink keeps, for each implementation's tests: it says
/// which kinds it wants, takes every kind of event without panicking or
/// blocking, and returns quickly.
pub fn sink_contract(sink: &dyn EventSink) {
    let at = SystemTime::now();
    let samples = [
        What::Authentication {
            user: "alice".into(),
            ok: false,
            provider: Some("htpasswd"),
            reason: Some("wrong password".into()),
        },
        What::TokenIssued {
            scopes: vec!["repository:a:pull".into()],
        },
        What::Decision {
            repository: Some("a".into()),
            action: "push".into(),
            allowed: false,
            explanation: "deny: no rule".into(),
        },
        What::Change {
            kind: ChangeKind::ManifestPushed,
            repository: "a".into(),
            reference: Some("v1".into()),
            digest: Some(format!("sha256:{}", "0".repeat(64))),
            media_type: Some("application/vnd.oci.image.manifest.v1+json".into()),
            size: Some(512),
            previous: None,
            status: 201,
        },
        What::Pull {
            manifest: false,
            repository: "a".into(),
            reference: format!("sha256:{}", "1".repeat(64)),
            digest: Some(format!("sha256:{}", "1".repeat(64))),
            media_type: None,
            bytes: 1024,
            status: 200,
        },
        What::Lockout {
            account: "alice".into(),
            failures: 20,
            retry_after: 900,
        },
        What::RateLimited {
            class: "pull",
            key: "alice".into(),
            retry_after: 3,
        },
        What::Admin {
            command: "user add".into(),
            detail: "alice".into(),
        },
    ];
    let started = std::time::Instant::now();
    for what in samples {
        let kind = what.kind();
        let _ = sink.wants(kind);
        sink.emit(&Event {
            at,
            client: Some("127.0.0.1".into()),
            request_id: Some("r1".into()),
            user_agent: Some("docker/28.2.2\u{1b}[31m".into()),
            ..Event::new("alice\u{1b}[31m", what)
        });
    }
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "sink {} blocked on emit",
        sink.name()
    );
    assert!(!sink.name().is_empty());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Wants only decisions.
    #[derive(Default)]
    struct Decisions(MemorySink);

    impl EventSink for Decisions {
        fn name(&self) -> &'static str {
            "decisions"
        }
        fn wants(&self, kind: Kind) -> bool {
            kind == Kind::Decision
        }
        fn emit(&self, event: &Event) {
            self.0.emit(event);
        }
    }

    fn decision() -> Event {
        Event::new(
            "",
            What::Decision {
                repository: None,
                action: "catalog".into(),
                allowed: true,
                explanation: "allow".into(),
            },
        )
    }

    #[test]
    fn memory_sink_keeps_the_contract_and_the_order() {
        let m = MemorySink::default();
        sink_contract(&m);
        let kinds: Vec<Kind> = m.events().iter().map(|e| e.what.kind()).collect();
        assert_eq!(
            kinds,
            [
                Kind::Authentication,
                Kind::TokenIssued,
                Kind::Denial,
                Kind::Change,
                Kind::Pull,
                Kind::Abuse,
                Kind::Abuse,
                Kind::Admin
            ]
        );
    }

    #[test]
    fn sinks_build_events_only_when_wanted_and_deliver_by_kind() {
        let none = Sinks::default();
        let mut built = false;
        none.emit(Kind::Decision, || {
            built = true;
            decision()
        });
        assert!(!built, "no sink: the event is never built");

        let d = Arc::new(Decisions::default());
        let all = Arc::new(MemorySink::default());
        let sinks = Sinks::new(vec![d.clone(), all.clone()]);
        assert!(sinks.wants(Kind::Change));
        sinks.emit(Kind::Decision, decision);
        sinks.emit(Kind::Admin, || Event {
            what: What::Admin {
                command: "keys rotate".into(),
                detail: String::new(),
            },
            ..decision()
        });
        assert_eq!(d.0.events().len(), 1);
        assert_eq!(all.events().len(), 2);
        assert_eq!(format!("{sinks:?}"), r#"["decisions", "memory"]"#);
    }
}
