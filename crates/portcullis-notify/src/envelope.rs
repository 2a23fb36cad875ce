//! distribution's notification envelope (`application/vnd.docker.distribution.events.v1+json`)
//! and how a portcullis [`Event`] becomes one of its events.
//!
//! Field names and omissions follow distribution's JSON: empty target
//! fields are left out, `request.id`, `request.method` and
//! `request.useragent` are always there, and an anonymous actor is `{}`.

use std::time::SystemTime;

use portcullis_types::event::{ChangeKind, Event, What};
use serde::{Deserialize, Serialize};

/// The `Content-Type` of a notification request.
pub const EVENTS_MEDIA_TYPE: &str = "application/vnd.docker.distribution.events.v1+json";

/// The media type distribution gives blobs in events.
pub const BLOB_MEDIA_TYPE: &str = "application/octet-stream";

/// The body of a notification request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// The events, one per request as distribution sends them.
    pub events: Vec<Notification>,
}

/// One event of an envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// A unique id (a UUID), the same for every endpoint.
    pub id: String,
    /// When it happened, RFC 3339 with nanoseconds.
    pub timestamp: String,
    /// `push`, `pull`, `delete` or `mount`.
    pub action: String,
    /// What the event is about.
    pub target: Target,
    /// The request it happened in.
    pub request: RequestRecord,
    /// Who did it.
    pub actor: ActorRecord,
    /// Which registry node saw it.
    pub source: SourceRecord,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The content an event is about.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Target {
    /// The content's media type (`application/octet-stream` for blobs).
    #[serde(rename = "mediaType", skip_serializing_if = "String::is_empty")]
    pub media_type: String,
    /// The content's size in bytes.
    #[serde(skip_serializing_if = "is_zero")]
    pub size: u64,
    /// The content's digest.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub digest: String,
    /// The same as `size` (kept by distribution for older listeners).
    #[serde(skip_serializing_if = "is_zero")]
    pub length: u64,
    /// The repository the content is in.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub repository: String,
    /// For a mount: the repository the blob came from, when known.
    #[serde(rename = "fromRepository", skip_serializing_if = "String::is_empty")]
    pub from_repository: String,
    /// Where the content can be fetched (not for deletes).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub url: String,
    /// The tag a manifest was pushed, pulled or deleted by.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub tag: String,
}

/// The request an event happened in.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RequestRecord {
    /// The request's id, as the access log shows it.
    pub id: String,
    /// The client's address.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub addr: String,
    /// The `Host` the request was sent to.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub host: String,
    /// The request's method.
    pub method: String,
    /// The request's `User-Agent`.
    pub useragent: String,
}

/// Who did it: the authenticated subject, absent for anonymous callers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ActorRecord {
    /// The subject: a user or a robot's login.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
}

/// The registry node that made the event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SourceRecord {
    /// The node's host and port.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub addr: String,
    /// The running instance.
    #[serde(rename = "instanceID", skip_serializing_if = "String::is_empty")]
    pub instance_id: String,
}

/// A timestamp as distribution writes one (Go's `RFC3339Nano`, UTC).
#[must_use]
pub fn timestamp(at: SystemTime) -> String {
    let t = time::OffsetDateTime::from(at);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_owned())
}

fn is_digest(reference: &str) -> bool {
    reference.contains(':')
}

/// The notification an event makes, if it makes one: pushes, pulls,
/// deletes and mounts do; tag moves (distribution has no such action) and
/// every other kind of event do not.
#[must_use]
pub fn notification(event: &Event, source: &SourceRecord) -> Option<Notification> {
    let (action, manifest, repository, reference, digest, media_type, size) = match &event.what {
        What::Change {
            kind,
            repository,
            reference,
            digest,
            media_type,
            size,
            ..
        } => {
            let (action, manifest) = match kind {
                ChangeKind::ManifestPushed => ("push", true),
                ChangeKind::ManifestDeleted => ("delete", true),
                ChangeKind::BlobPushed => ("push", false),
                ChangeKind::BlobMounted => ("mount", false),
                ChangeKind::BlobDeleted => ("delete", false),
                ChangeKind::TagMoved => return None,
            };
            let media_type = match kind {
                ChangeKind::BlobPushed | ChangeKind::BlobMounted => {
                    Some(BLOB_MEDIA_TYPE.to_owned())
                }
                ChangeKind::ManifestPushed => media_type.clone(),
                // distribution's delete events name only the content
                _ => None,
            };
            let size = if matches!(kind, ChangeKind::ManifestDeleted | ChangeKind::BlobDeleted) {
                None
            } else {
                *size
            };
            (
                action,
                manifest,
                repository,
                reference.clone(),
                digest.clone(),
                media_type,
                size,
            )
        }
        What::Pull {
            manifest,
            repository,
            reference,
            digest,
            media_type,
            bytes,
            ..
        } => {
            let media_type = if *manifest {
                media_type.clone()
            } else {
                Some(BLOB_MEDIA_TYPE.to_owned())
            };
            (
                "pull",
                *manifest,
                repository,
                Some(reference.clone()),
                digest.clone(),
                media_type,
                Some(*bytes),
            )
        }
        _ => return None,
    };
    let tag = reference
        .as_deref()
        .filter(|r| manifest && !is_digest(r))
        .unwrap_or_default()
        .to_owned();
    // a blob's reference is its digest
    let digest = digest
        .or_else(|| reference.filter(|r| is_digest(r)))
        .unwrap_or_default();
    let host = event.host.clone().unwrap_or_default();
    // distribution's delete events carry no link: the content is gone
    let url = if host.is_empty() || digest.is_empty() || action == "delete" {
        String::new()
    } else {
        let what = if manifest { "manifests" } else { "blobs" };
        format!("http://{host}/v2/{repository}/{what}/{digest}")
    };
    let size = size.unwrap_or(0);
    Some(Notification {
        id: uuid::Uuid::new_v4().to_string(),
        timestamp: timestamp(event.at),
        action: action.to_owned(),
        target: Target {
            media_type: media_type.unwrap_or_default(),
            size,
            digest,
            length: size,
            repository: repository.clone(),
            from_repository: String::new(),
            url,
            tag,
        },
        request: RequestRecord {
            id: event.request_id.clone().unwrap_or_default(),
            addr: event.client.clone().unwrap_or_default(),
            host,
            method: event.method.clone().unwrap_or_default(),
            useragent: event.user_agent.clone().unwrap_or_default(),
        },
        actor: ActorRecord {
            name: event.actor.clone(),
        },
        source: source.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest() -> String {
        format!("sha256:{}", "a".repeat(64))
    }

    fn change(kind: ChangeKind, reference: Option<&str>) -> Event {
        Event {
            host: Some("reg.example:5000".into()),
            method: Some("PUT".into()),
            ..Event::new(
                "alice",
                What::Change {
                    kind,
                    repository: "team/app".into(),
                    reference: reference.map(str::to_owned),
                    digest: Some(digest()),
                    media_type: Some("application/vnd.oci.image.manifest.v1+json".into()),
                    size: Some(512),
                    previous: None,
                    status: 201,
                },
            )
        }
    }

    #[test]
    fn changes_map_to_distribution_actions() {
        let src = SourceRecord::default();
        let n = notification(&change(ChangeKind::ManifestPushed, Some("v1")), &src).unwrap();
        assert_eq!(n.action, "push");
        assert_eq!(n.target.tag, "v1");
        assert_eq!(n.target.size, 512);
        assert_eq!(n.target.length, 512);
        assert_eq!(
            n.target.url,
            format!("http://reg.example:5000/v2/team/app/manifests/{}", digest())
        );
        let by_digest = notification(&change(ChangeKind::ManifestPushed, Some(&digest())), &src);
        assert_eq!(by_digest.unwrap().target.tag, "");

        let blob = notification(&change(ChangeKind::BlobPushed, None), &src).unwrap();
        assert_eq!(
            (blob.action.as_str(), blob.target.media_type.as_str()),
            ("push", BLOB_MEDIA_TYPE)
        );
        assert!(blob.target.url.contains("/blobs/"));
        let mount = notification(&change(ChangeKind::BlobMounted, None), &src).unwrap();
        assert_eq!(mount.action, "mount");
        let del =
            notification(&change(ChangeKind::ManifestDeleted, Some(&digest())), &src).unwrap();
        assert_eq!(del.action, "delete");
        assert_eq!((del.target.media_type.as_str(), del.target.size), ("", 0));
        assert_eq!(del.target.url, "");
        let blob_del =
            notification(&change(ChangeKind::BlobDeleted, Some(&digest())), &src).unwrap();
        assert_eq!(blob_del.action, "delete");
        assert!(notification(&change(ChangeKind::TagMoved, Some("v1")), &src).is_none());
        let admin = Event::new(
            "root",
            What::Admin {
                command: "x".into(),
                detail: String::new(),
            },
        );
        assert!(notification(&admin, &src).is_none());
    }

    #[test]
    fn anonymous_actor_and_empty_fields_are_left_out() {
        let e = Event::new(
            "",
            What::Pull {
                manifest: false,
                repository: "a".into(),
                reference: digest(),
                digest: None,
                media_type: None,
                bytes: 0,
                status: 200,
            },
        );
        let n = notification(&e, &SourceRecord::default()).unwrap();
        let v = serde_json::to_value(&n).unwrap();
        assert_eq!(v["actor"], serde_json::json!({}));
        assert_eq!(v["source"], serde_json::json!({}));
        assert_eq!(
            v["request"],
            serde_json::json!({"id": "", "method": "", "useragent": ""})
        );
        assert_eq!(v["target"]["digest"], digest());
        assert!(v["target"].get("size").is_none());
        assert!(v["target"].get("url").is_none(), "no host, no url");
        assert!(n.timestamp.ends_with('Z'));
    }
}
