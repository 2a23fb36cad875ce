//! The envelope has the shape distribution's has: the same keys, with the
//! same JSON types, as fixtures written by hand from distribution's
//! notification docs (a later end-to-end test compares with a real
//! distribution 2.8 sending to the same listener).

mod support;

use std::collections::BTreeMap;

use portcullis_notify::{Envelope, SourceRecord, notification};
use portcullis_types::event::{ChangeKind, Event, What};
use serde_json::Value;
use support::{digest, push};

/// A manifest pushed by tag, as distribution describes it.
const PUSH: &str = r#"{
  "events": [
    {
      "id": "0d6a5c1e-7a53-4c43-9a7e-2b1f0e6c9d41",
      "timestamp": "2024-05-01T10:00:00.123456789Z",
      "action": "push",
      "target": {
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "size": 528,
        "digest": "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "length": 528,
        "repository": "library/hello",
        "url": "http://registry.local:5000/v2/library/hello/manifests/sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "tag": "latest"
      },
      "request": {
        "id": "5f0e8a5e-2d3b-4e5b-8d2e-6c1f9b7a3e20",
        "addr": "10.0.0.9:51432",
        "host": "registry.local:5000",
        "method": "PUT",
        "useragent": "docker/24.0.7 go/go1.20.10"
      },
      "actor": { "name": "ci-bot" },
      "source": {
        "addr": "registry-node-1:5000",
        "instanceID": "1c9e2a47-95b4-4d02-8d5f-3e8a0b6f7c12"
      }
    }
  ]
}"#;

/// A blob pulled, anonymously.
const BLOB_PULL: &str = r#"{
  "events": [
    {
      "id": "9b2c4f3a-1e6d-4b7a-9c0e-5d8f2a1b3c4d",
      "timestamp": "2024-05-01T10:00:01Z",
      "action": "pull",
      "target": {
        "mediaType": "application/octet-stream",
        "size": 2048,
        "digest": "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
        "length": 2048,
        "repository": "library/hello",
        "url": "http://registry.local:5000/v2/library/hello/blobs/sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
      },
      "request": {
        "id": "a1b2c3d4-0000-4000-8000-000000000001",
        "addr": "10.0.0.9:51433",
        "host": "registry.local:5000",
        "method": "GET",
        "useragent": "containerd/1.7.2"
      },
      "actor": {},
      "source": {
        "addr": "registry-node-1:5000",
        "instanceID": "1c9e2a47-95b4-4d02-8d5f-3e8a0b6f7c12"
      }
    }
  ]
}"#;

/// A manifest deleted by digest: the target names only the content.
const DELETE: &str = r#"{
  "events": [
    {
      "id": "c3d4e5f6-1111-4222-8333-444455556666",
      "timestamp": "2024-05-01T10:00:02.5Z",
      "action": "delete",
      "target": {
        "digest": "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "repository": "library/hello"
      },
      "request": {
        "id": "a1b2c3d4-0000-4000-8000-000000000002",
        "addr": "10.0.0.9:51434",
        "host": "registry.local:5000",
        "method": "DELETE",
        "useragent": "curl/8.5.0"
      },
      "actor": { "name": "admin" },
      "source": {
        "addr": "registry-node-1:5000",
        "instanceID": "1c9e2a47-95b4-4d02-8d5f-3e8a0b6f7c12"
      }
    }
  ]
}"#;

/// Every path in `v` with the JSON type found there.
fn shape(v: &Value) -> BTreeMap<String, &'static str> {
    fn walk(v: &Value, path: String, out: &mut BTreeMap<String, &'static str>) {
        let kind = match v {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    walk(item, format!("{path}[{i}]"), out);
                }
                "array"
            }
            Value::Object(map) => {
                for (k, item) in map {
                    walk(item, format!("{path}.{k}"), out);
                }
                "object"
            }
        };
        out.insert(path, kind);
    }
    let mut out = BTreeMap::new();
    walk(v, String::new(), &mut out);
    out
}

fn envelope_of(event: &Event) -> Value {
    let source = SourceRecord {
        addr: "registry.test:5000".into(),
        instance_id: "i-1".into(),
    };
    let n = notification(event, &source).expect("a notification");
    serde_json::to_value(Envelope { events: vec![n] }).unwrap()
}

fn in_request(method: &str, actor: &str, what: What) -> Event {
    Event {
        client: Some("192.0.2.7".into()),
        request_id: Some("req-1".into()),
        user_agent: Some("docker/28.2.2".into()),
        method: Some(method.into()),
        host: Some("registry.test:5000".into()),
        ..Event::new(actor, what)
    }
}

fn assert_same_shape(ours: &Value, fixture: &str) {
    let theirs: Value = serde_json::from_str(fixture).unwrap();
    assert_eq!(shape(ours), shape(&theirs), "ours: {ours:#}");
    // and the fixture reads back as our type
    let parsed: Envelope = serde_json::from_value(theirs).unwrap();
    assert_eq!(parsed.events.len(), 1);
}

fn rfc3339(s: &Value) -> bool {
    time::OffsetDateTime::parse(
        s.as_str().unwrap_or_default(),
        &time::format_description::well_known::Rfc3339,
    )
    .is_ok()
}

#[test]
fn a_manifest_push_has_distributions_shape() {
    let ours = envelope_of(&push("team/app"));
    assert_same_shape(&ours, PUSH);
    assert!(rfc3339(&ours["events"][0]["timestamp"]));
}

#[test]
fn a_blob_pull_has_distributions_shape() {
    let ours = envelope_of(&in_request(
        "GET",
        "",
        What::Pull {
            manifest: false,
            repository: "team/app".into(),
            reference: digest('b'),
            digest: Some(digest('b')),
            media_type: Some("application/octet-stream".into()),
            bytes: 2048,
            status: 200,
        },
    ));
    assert_same_shape(&ours, BLOB_PULL);
}

#[test]
fn a_manifest_delete_has_distributions_shape() {
    let ours = envelope_of(&in_request(
        "DELETE",
        "admin",
        What::Change {
            kind: ChangeKind::ManifestDeleted,
            repository: "team/app".into(),
            reference: Some(digest('a')),
            digest: Some(digest('a')),
            media_type: None,
            size: None,
            previous: None,
            status: 202,
        },
    ));
    assert_same_shape(&ours, DELETE);
}

#[test]
fn fixture_timestamps_are_what_we_write() {
    for f in [PUSH, BLOB_PULL, DELETE] {
        let v: Value = serde_json::from_str(f).unwrap();
        assert!(rfc3339(&v["events"][0]["timestamp"]));
    }
}
