//! The settings of the notification sink, shaped like distribution's
//! `notifications` section (field names lowercase, as in its `config.yml`),
//! so a configuration crate can deserialize them as they are written.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// One webhook endpoint (an entry of `notifications.endpoints`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Endpoint {
    /// Names the endpoint in logs, metrics and the queue's keys.
    pub name: String,
    /// A disabled endpoint gets nothing and keeps no queue.
    pub disabled: bool,
    /// Where envelopes are `POST`ed.
    pub url: String,
    /// Headers sent with every request; values often hold secrets and are
    /// never logged.
    pub headers: BTreeMap<String, Vec<String>>,
    /// How long one delivery attempt may take (Go syntax: `500ms`, `1s`).
    #[serde(deserialize_with = "go_duration")]
    pub timeout: Duration,
    /// Consecutive failures retried after `backoff` before the wait starts
    /// to double (distribution backs off after this many failures).
    pub threshold: u32,
    /// The wait after a failed attempt, and the base of the exponential
    /// back-off.
    #[serde(deserialize_with = "go_duration")]
    pub backoff: Duration,
    /// Events whose target has one of these media types are not sent
    /// (distribution's older spelling of `ignore.mediatypes`).
    pub ignoredmediatypes: Vec<String>,
    /// Media types and actions not sent.
    pub ignore: Ignore,
}

impl Default for Endpoint {
    fn default() -> Self {
        Self {
            name: String::new(),
            disabled: false,
            url: String::new(),
            headers: BTreeMap::new(),
            timeout: Duration::from_secs(1),
            threshold: 10,
            backoff: Duration::from_secs(1),
            ignoredmediatypes: Vec::new(),
            ignore: Ignore::default(),
        }
    }
}

impl Endpoint {
    /// Whether an event with `action` about content of `media_type` is
    /// dropped before it is queued.
    #[must_use]
    pub fn ignores(&self, action: &str, media_type: &str) -> bool {
        let media =
            |list: &[String]| !media_type.is_empty() && list.iter().any(|m| m == media_type);
        self.ignore.actions.iter().any(|a| a == action)
            || media(&self.ignoredmediatypes)
            || media(&self.ignore.mediatypes)
    }
}

/// What an endpoint does not want (`ignore:` under an endpoint).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Ignore {
    /// Target media types not sent.
    pub mediatypes: Vec<String>,
    /// Actions (`push`, `pull`, `delete`, `mount`) not sent.
    pub actions: Vec<String>,
}

/// The sink's settings: the endpoints, and what the envelope says about
/// this registry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Every endpoint; disabled ones are skipped.
    pub endpoints: Vec<Endpoint>,
    /// The envelope's `source.addr`: this node's host and port.
    pub source_addr: String,
    /// The envelope's `source.instanceID`: this running instance.
    pub instance_id: String,
    /// At most this many envelopes wait per endpoint; more are dropped and
    /// counted.
    pub queue_max: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            endpoints: Vec::new(),
            source_addr: String::new(),
            instance_id: String::new(),
            queue_max: 10_000,
        }
    }
}

/// Deserializes a duration written the way Go's `time.ParseDuration` reads
/// it (`500ms`, `1m30s`), as distribution's configuration does.
fn go_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    portcullis_config::parse_duration(&s).map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_read_distribution_field_names_with_defaults() {
        let json = r#"{
            "endpoints": [{
                "name": "alistener",
                "url": "https://listener.example/event",
                "headers": {"Authorization": ["Bearer x"]},
                "timeout": "500ms",
                "threshold": 5,
                "backoff": "2s",
                "ignoredmediatypes": ["application/octet-stream"],
                "ignore": {"mediatypes": ["a/b"], "actions": ["pull"]}
            }, {"name": "minimal", "url": "http://x/"}],
            "source_addr": "reg:5000",
            "instance_id": "i-1"
        }"#;
        let s: Settings = serde_json::from_str(json).unwrap();
        assert_eq!(s.queue_max, 10_000);
        let e = &s.endpoints[0];
        assert_eq!(e.timeout, Duration::from_millis(500));
        assert_eq!(e.backoff, Duration::from_secs(2));
        assert_eq!(e.threshold, 5);
        assert_eq!(e.headers["Authorization"], ["Bearer x"]);
        assert!(e.ignores("pull", ""));
        assert!(e.ignores("push", "application/octet-stream"));
        assert!(e.ignores("push", "a/b"));
        assert!(!e.ignores("push", "application/vnd.oci.image.manifest.v1+json"));
        let m = &s.endpoints[1];
        assert_eq!(
            (m.timeout, m.threshold, m.backoff, m.disabled),
            (Duration::from_secs(1), 10, Duration::from_secs(1), false)
        );
    }
}
