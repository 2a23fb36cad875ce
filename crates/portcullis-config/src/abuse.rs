//! portcullis's own top-level sections for abuse resistance and
//! accountability: `audit` (the hash-chained audit log), `ratelimit`
//! (GCRA limits per identity or client address) and `lockout` (brute-force
//! backoff per account and client address).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::duration::go;

/// `audit`: where the audit log goes. Absent, or with no output, there is
/// no audit log.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AuditConfig {
    pub file: Option<AuditFile>,
    /// Write the lines to standard output as well.
    pub stdout: bool,
    pub syslog: Option<AuditSyslog>,
    /// `all` (default), `sample:N` (every N-th pull per identity and
    /// repository) or `aggregate` (one line per identity and repository
    /// per minute).
    pub pulls: Option<String>,
    /// Events queued at most before they are counted as dropped.
    pub queue: Option<usize>,
}

/// `audit.file`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AuditFile {
    pub path: String,
    /// Rotate when the file reaches this many bytes; default 100 MiB.
    pub maxbytes: Option<u64>,
    /// Rotated files kept; default 10.
    pub keep: Option<usize>,
}

/// `audit.syslog`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AuditSyslog {
    /// The local syslog socket; default `/dev/log`.
    pub socket: Option<String>,
}

impl AuditConfig {
    /// Whether any output is configured.
    #[must_use]
    pub fn enabled(&self) -> bool {
        self.file.is_some() || self.stdout || self.syslog.is_some()
    }
}

/// How pulls are written to the audit log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuditPulls {
    All,
    Sample(u32),
    Aggregate,
}

/// `audit.pulls` read, or why it cannot be.
///
/// # Errors
/// A value other than `all`, `aggregate` or `sample:N` with N ≥ 1.
pub fn parse_pulls(text: &str) -> Result<AuditPulls, String> {
    match text.trim() {
        "all" => Ok(AuditPulls::All),
        "aggregate" => Ok(AuditPulls::Aggregate),
        other => other
            .strip_prefix("sample:")
            .and_then(|n| n.trim().parse::<u32>().ok())
            .filter(|n| *n >= 1)
            .map(AuditPulls::Sample)
            .ok_or_else(|| format!("`{other}` is not all, aggregate or sample:N")),
    }
}

/// `limit` requests per `window`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateConfig {
    pub limit: u32,
    #[serde(with = "go")]
    pub window: Duration,
}

/// `ratelimit`: limits per identity (a user or robot), or per client
/// address for anonymous callers. Each class is off unless set.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RateLimitConfig {
    /// Manifest pulls: a `GET` of a manifest counts, a `HEAD` does not
    /// (as Docker Hub counts).
    pub pull: Option<RateConfig>,
    /// Pushes: each write request (`POST`, `PUT`, `PATCH`, `DELETE`).
    pub push: Option<RateConfig>,
    /// Token requests to `/token`.
    pub token: Option<RateConfig>,
    /// Failed authentications per client address.
    pub authfailure: Option<RateConfig>,
    /// Per-user or per-address overrides, the first that matches wins.
    pub overrides: Vec<RateOverride>,
}

/// `ratelimit.overrides[]`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateOverride {
    /// User or robot names this override is for.
    pub users: Vec<String>,
    /// Groups (the `access` policy's, or an identity provider's) whose
    /// members this override is for.
    pub groups: Vec<String>,
    /// Client addresses or CIDRs (`10.0.0.0/8`) this override is for.
    pub cidrs: Vec<String>,
    /// No limit at all for these callers.
    pub exempt: bool,
    pub pull: Option<RateConfig>,
    pub push: Option<RateConfig>,
    pub token: Option<RateConfig>,
}

impl RateLimitConfig {
    /// Whether any limit is set.
    #[must_use]
    pub fn enabled(&self) -> bool {
        self.pull.is_some()
            || self.push.is_some()
            || self.token.is_some()
            || self.authfailure.is_some()
    }
}

/// `lockout`: how failed secret checks per (account, client address) are
/// slowed and then refused. On by default.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LockoutConfig {
    pub disabled: bool,
    /// Failures allowed before any delay (default 5).
    pub free: u32,
    /// The first delay, doubled by each further failure (default 1s).
    #[serde(with = "go")]
    pub delay: Duration,
    /// The longest delay while backing off (default 1m).
    #[serde(with = "go")]
    pub maxdelay: Duration,
    /// Failures after which the pair is locked out (default 20).
    pub lockafter: u32,
    /// How long a lockout lasts (default 15m).
    #[serde(with = "go")]
    pub duration: Duration,
    /// Failures older than this are forgotten (default 1h).
    #[serde(with = "go")]
    pub forget: Duration,
}

impl Default for LockoutConfig {
    fn default() -> Self {
        Self {
            disabled: false,
            free: 5,
            delay: Duration::from_secs(1),
            maxdelay: Duration::from_secs(60),
            lockafter: 20,
            duration: Duration::from_secs(15 * 60),
            forget: Duration::from_secs(3600),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pulls_are_all_aggregate_or_a_sample_of_at_least_one() {
        assert_eq!(parse_pulls("all"), Ok(AuditPulls::All));
        assert_eq!(parse_pulls("aggregate"), Ok(AuditPulls::Aggregate));
        assert_eq!(parse_pulls("sample:10"), Ok(AuditPulls::Sample(10)));
        assert!(parse_pulls("sample:0").is_err());
        assert!(parse_pulls("some").is_err());
    }
}
