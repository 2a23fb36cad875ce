//! One audit line's fields, and how an [`Event`] becomes them.

use std::time::SystemTime;

use portcullis_types::event::{ChangeKind, Event, What};
use serde::{Deserialize, Serialize};

/// One audit record. Serialized in this field order, `seq` first (the
/// chain reads it without parsing); absent fields are left out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub seq: u64,
    /// RFC 3339, UTC, milliseconds.
    pub time: String,
    /// `auth.success`, `auth.failure`, `token.issued`, `access.denied`,
    /// `manifest.push`, `manifest.delete`, `blob.push`, `blob.mount`,
    /// `blob.delete`, `admin`, `audit.dropped`.
    pub event: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// The forwarded chain believed from trusted proxies, client first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub forwarded: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// The user, the robot's login, or absent for anonymous callers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    /// How the caller authenticated (htpasswd, robot, certificate, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// A tag move's digest before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
    /// The response's status and body length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// A rate limit's class (`pull`, `push`, `token`, `auth`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    /// Seconds a refused caller must wait.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    /// The policy's explanation of a denial: the deciding rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// How many events one line stands for (aggregated pulls, drops).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
}

/// RFC 3339 in UTC with milliseconds. Written by hand: it runs once per
/// event, and `write!` with widths costs ten times as much.
#[must_use]
pub fn rfc3339(at: SystemTime) -> String {
    let since = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = since.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Days to a civil date (H. Hinnant's algorithm), for 1970 onwards.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    let mut out = String::with_capacity(24);
    // Fixed-width decimal: `width` digits of `n` (years past 9999 keep
    // their low four digits; the format cannot say more).
    let mut digits = |n: u64, width: u32, after: char| {
        for i in (0..width).rev() {
            let d = (n / 10u64.pow(i)) % 10;
            out.push(char::from(b'0' + u8::try_from(d).unwrap_or(0)));
        }
        if after != '\0' {
            out.push(after);
        }
    };
    digits(year, 4, '-');
    digits(month, 2, '-');
    digits(day, 2, 'T');
    digits(rest / 3600, 2, ':');
    digits(rest % 3600 / 60, 2, ':');
    digits(rest % 60, 2, '.');
    digits(u64::from(since.subsec_millis()), 3, 'Z');
    out
}

fn change_name(kind: ChangeKind) -> &'static str {
    match kind {
        ChangeKind::ManifestPushed => "manifest.push",
        ChangeKind::ManifestDeleted => "manifest.delete",
        ChangeKind::BlobPushed => "blob.push",
        ChangeKind::BlobMounted => "blob.mount",
        ChangeKind::BlobDeleted => "blob.delete",
        ChangeKind::TagMoved => "tag.move",
    }
}

fn some(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

impl Record {
    /// The record of an event, numbered later when it is sealed.
    #[must_use]
    pub fn of(event: &Event) -> Self {
        let mut r = Self {
            time: rfc3339(event.at),
            request_id: event.request_id.clone(),
            client: event.client.clone(),
            forwarded: event.forwarded.clone(),
            user_agent: event.user_agent.clone(),
            identity: some(&event.actor),
            ..Self::default()
        };
        match &event.what {
            What::Authentication {
                user,
                ok,
                provider,
                reason,
            } => {
                r.event = if *ok { "auth.success" } else { "auth.failure" }.into();
                r.identity = some(user);
                r.method = provider.map(str::to_owned);
                r.reason.clone_from(reason);
            }
            What::TokenIssued { scopes } => {
                r.event = "token.issued".into();
                r.scopes.clone_from(scopes);
            }
            What::Decision {
                repository,
                action,
                allowed,
                explanation,
            } => {
                r.event = if *allowed {
                    "access.allowed"
                } else {
                    "access.denied"
                }
                .into();
                r.repository.clone_from(repository);
                r.action = Some(action.clone());
                r.rule = Some(explanation.clone());
            }
            What::Change {
                kind,
                repository,
                reference,
                digest,
                media_type,
                size,
                previous,
                status,
            } => {
                r.event = change_name(*kind).into();
                r.repository = Some(repository.clone());
                r.reference.clone_from(reference);
                r.digest.clone_from(digest);
                r.media_type.clone_from(media_type);
                r.bytes = *size;
                r.previous.clone_from(previous);
                r.status = Some(*status);
            }
            What::Pull {
                manifest,
                repository,
                reference,
                digest,
                media_type,
                bytes,
                status,
            } => {
                r.event = if *manifest {
                    "manifest.pull"
                } else {
                    "blob.pull"
                }
                .into();
                r.repository = Some(repository.clone());
                r.reference = Some(reference.clone());
                r.digest.clone_from(digest);
                r.media_type.clone_from(media_type);
                r.bytes = Some(*bytes);
                r.status = Some(*status);
            }
            What::Lockout {
                account,
                failures,
                retry_after,
            } => {
                r.event = "auth.lockout".into();
                r.identity = some(account);
                r.count = Some(u64::from(*failures));
                r.retry_after = Some(*retry_after);
            }
            What::RateLimited {
                class,
                key,
                retry_after,
            } => {
                r.event = "ratelimit.refused".into();
                r.class = Some((*class).to_owned());
                r.identity = some(key);
                r.retry_after = Some(*retry_after);
            }
            What::Admin { command, detail } => {
                r.event = "admin".into();
                r.command = Some(command.clone());
                r.detail = some(detail);
            }
        }
        r
    }

    /// The JSON object the chain seals: this record numbered `seq`.
    #[must_use]
    pub fn body(&mut self, seq: u64) -> String {
        self.seq = seq;
        // A struct of strings, numbers and lists always serializes.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The JSON members after `seq`, without the braces: what
    /// [`crate::chain::Head::seal_into`] numbers and seals.
    #[must_use]
    pub fn fields(&self) -> String {
        // Sized for a typical pull line, so the buffer does not grow.
        let mut buf = Vec::with_capacity(640);
        let mut s = serde_json::to_writer(&mut buf, self)
            .ok()
            .and_then(|()| String::from_utf8(buf).ok())
            .unwrap_or_default();
        // `{"seq":N,` … `}`: `time` and `event` always follow `seq`.
        match s.find(',') {
            Some(comma) if s.ends_with('}') => {
                s.pop();
                s.drain(..=comma);
                s
            }
            _ => String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_become_named_records_and_the_body_starts_with_seq() {
        let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(1_700_000_000_123);
        let mut r = Record::of(&Event {
            at,
            client: Some("10.0.0.1".into()),
            request_id: Some("r1".into()),
            ..Event::new(
                "",
                What::Authentication {
                    user: "bob".into(),
                    ok: false,
                    provider: None,
                    reason: Some("wrong password or unknown user".into()),
                },
            )
        });
        assert_eq!(r.event, "auth.failure");
        assert_eq!(r.identity.as_deref(), Some("bob"));
        assert_eq!(r.time, "2023-11-14T22:13:20.123Z");
        for (secs, text) in [
            (0, "1970-01-01T00:00:00.000Z"),
            (951_782_400, "2000-02-29T00:00:00.000Z"),
            (1_796_411_999, "2026-12-04T19:19:59.000Z"),
            (4_102_444_800, "2100-01-01T00:00:00.000Z"),
        ] {
            let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs);
            assert_eq!(rfc3339(at), text);
            let parsed =
                time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
                    .unwrap();
            assert_eq!(parsed.unix_timestamp(), i64::try_from(secs).unwrap());
        }
        let body = r.body(42);
        assert!(body.starts_with(r#"{"seq":42,"time":"#), "{body}");
        assert!(!body.contains("null"), "absent fields are left out: {body}");
        let back: Record = serde_json::from_str(&body).expect("parse");
        assert_eq!(back, r);
    }
}
