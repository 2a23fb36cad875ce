//! Abuse resistance in the pipeline: rate limits per identity or client
//! address ([`limits`]) and brute-force lockout around every secret check
//! ([`lockout`]), both over a `StateStore` (see `portcullis-limits`).

pub(crate) mod limits;
pub(crate) mod lockout;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderValue, header};
use portcullis_config::{RateConfig, RateLimitConfig};
use portcullis_limits::{Limiter, Lockout, Rate};
use portcullis_state::StateStore;

use crate::error::{ApiError, Code};
use crate::proxy::Cidr;

/// What the pipeline limits.
#[derive(Default)]
pub struct Abuse {
    pub limits: Option<RateLimits>,
    pub lockout: Option<Lockout>,
}

impl Abuse {
    /// The `ratelimit` section, with the lockout `portcullis_app` built:
    /// rate counters in memory (per process until the state store is
    /// shared).
    ///
    /// # Errors
    /// An override's CIDR that does not parse.
    pub fn from_config(
        config: &portcullis_config::Config,
        lockout: Option<Lockout>,
    ) -> Result<Self, crate::serve::ServeError> {
        let limits = if config.ratelimit.enabled() || !config.ratelimit.overrides.is_empty() {
            let memory: Arc<dyn StateStore> = Arc::new(portcullis_state::MemoryStore::new(
                portcullis_state::system_clock(),
            ));
            Some(
                RateLimits::new(&config.ratelimit, memory).map_err(|message| {
                    crate::serve::ServeError::Config {
                        key: "ratelimit.overrides",
                        message,
                    }
                })?,
            )
        } else {
            None
        };
        Ok(Self { limits, lockout })
    }
}

/// The rate-limit classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// A manifest `GET` (a `HEAD` is shown the count but not charged).
    Pull,
    /// A write: `POST`, `PUT`, `PATCH`, `DELETE` under `/v2/`.
    Push,
    /// A request to `/token`.
    Token,
    /// A failed authentication, per client address.
    AuthFailure,
}

impl Class {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pull => "pull",
            Self::Push => "push",
            Self::Token => "token",
            Self::AuthFailure => "authfailure",
        }
    }
}

struct Override {
    users: Vec<String>,
    groups: Vec<String>,
    cidrs: Vec<Cidr>,
    exempt: bool,
    pull: Option<Rate>,
    push: Option<Rate>,
    token: Option<Rate>,
}

/// The configured limits and the counters they are kept in.
pub struct RateLimits {
    limiter: Limiter,
    pull: Option<Rate>,
    push: Option<Rate>,
    token: Option<Rate>,
    authfailure: Option<Rate>,
    overrides: Vec<Override>,
}

fn rate(r: Option<RateConfig>) -> Option<Rate> {
    r.map(|r| Rate {
        limit: r.limit,
        window: r.window,
    })
}

impl RateLimits {
    /// The limits of `config`, counted in `store`.
    ///
    /// # Errors
    /// A CIDR in an override that does not parse (validation catches it
    /// first).
    pub fn new(config: &RateLimitConfig, store: Arc<dyn StateStore>) -> Result<Self, String> {
        let mut overrides = Vec::new();
        for o in &config.overrides {
            overrides.push(Override {
                users: o.users.clone(),
                groups: o.groups.clone(),
                cidrs: o
                    .cidrs
                    .iter()
                    .map(|c| Cidr::parse(c))
                    .collect::<Result<_, _>>()?,
                exempt: o.exempt,
                pull: rate(o.pull),
                push: rate(o.push),
                token: rate(o.token),
            });
        }
        Ok(Self {
            limiter: Limiter::new(store),
            pull: rate(config.pull),
            push: rate(config.push),
            token: rate(config.token),
            authfailure: rate(config.authfailure),
            overrides,
        })
    }

    /// Whether `class` is limited for anyone.
    #[must_use]
    pub fn limits(&self, class: Class) -> bool {
        self.base(class).is_some()
            || self
                .overrides
                .iter()
                .any(|o| o.rate(class).is_some() && !o.exempt)
    }

    fn base(&self, class: Class) -> Option<Rate> {
        match class {
            Class::Pull => self.pull,
            Class::Push => self.push,
            Class::Token => self.token,
            Class::AuthFailure => self.authfailure,
        }
    }

    /// The rate `class` has for this caller: the first override naming
    /// the user or containing the address wins; `None` is unlimited.
    fn rate_for(&self, class: Class, who: &Subject) -> Option<Rate> {
        let hit = self.overrides.iter().find(|o| {
            who.user
                .as_deref()
                .is_some_and(|u| o.users.iter().any(|n| n == u))
                || o.groups.iter().any(|g| (who.in_group)(g))
                || who
                    .ip
                    .as_ref()
                    .is_some_and(|(ip, _)| o.cidrs.iter().any(|c| c.contains(*ip)))
        });
        match hit {
            Some(o) if o.exempt => None,
            Some(o) => o.rate(class).or_else(|| self.base(class)),
            None => self.base(class),
        }
    }
}

impl Override {
    fn rate(&self, class: Class) -> Option<Rate> {
        match class {
            Class::Pull => self.pull,
            Class::Push => self.push,
            Class::Token => self.token,
            Class::AuthFailure => None,
        }
    }
}

/// Who a limit counts against: the identity, or the address of an
/// anonymous caller. Shown in `Docker-RateLimit-Source`.
pub(crate) struct Subject<'a> {
    pub user: Option<String>,
    /// The address, with its text.
    pub ip: Option<(IpAddr, String)>,
    /// Whether the caller is in a group (for overrides by group).
    pub in_group: &'a (dyn Fn(&str) -> bool + Sync),
}

/// For callers in no group (anonymous, or before authentication).
pub(crate) fn no_group(_: &str) -> bool {
    false
}

impl Subject<'_> {
    fn source(&self) -> String {
        match (&self.user, &self.ip) {
            (Some(u), _) => u.clone(),
            (None, Some((_, ip))) => ip.clone(),
            (None, None) => "-".to_owned(),
        }
    }

    fn key(&self, class: Class) -> String {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut key = format!("ratelimit/{}/", class.as_str());
        match (&self.user, &self.ip) {
            (Some(u), _) => {
                key.push_str("u-");
                b64.encode_string(u, &mut key);
            }
            (None, Some((_, ip))) => {
                key.push_str("ip-");
                b64.encode_string(ip, &mut key);
            }
            (None, None) => key.push_str("local"),
        }
        key
    }
}

/// One request measured against a limit.
pub(crate) struct Measured {
    pub allowed: bool,
    pub rate: Rate,
    pub remaining: u32,
    pub retry_after: Duration,
    pub source: String,
}

impl RateLimits {
    /// Measures one request of `class` by `who`: charged (`charge`) or
    /// only looked at. `None` when the class is unlimited for `who`, or
    /// the counter store failed (a broken store must not refuse service).
    pub(crate) fn measure(&self, class: Class, who: &Subject, charge: bool) -> Option<Measured> {
        let rate = self.rate_for(class, who)?;
        let key = who.key(class);
        let verdict = if charge {
            self.limiter.check(&key, rate)
        } else {
            self.limiter.peek(&key, rate)
        };
        match verdict {
            Ok(v) => Some(Measured {
                allowed: v.allowed,
                rate,
                remaining: v.remaining,
                retry_after: v.retry_after,
                source: who.source(),
            }),
            Err(e) => {
                tracing::warn!(error = %e, class = class.as_str(), "rate-limit store failed; request let through");
                None
            }
        }
    }
}

/// Seconds to put in `Retry-After`: at least 1.
pub(crate) fn retry_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// 429 `TOOMANYREQUESTS` with `Retry-After`.
pub(crate) fn too_many(message: String, retry_after: Duration) -> ApiError {
    let mut e = ApiError::msg(Code::TooManyRequests, message);
    e.headers.push((
        header::RETRY_AFTER,
        HeaderValue::from(retry_secs(retry_after)),
    ));
    e
}
