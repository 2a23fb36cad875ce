//! Webhook notifications: portcullis and the reference registry
//! (distribution 2.8's `docker-registry`) send to the same test receiver
//! for the same skopeo push, and their envelopes have the same structure
//! (every key, with the same JSON type), actor included.
//!
//! Needs `skopeo`, `htpasswd` and `docker-registry`.

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::oci::OciLayout;
use common::{PASSWORD, Registry, RegistryConfig, RegistryKind, Skopeo, USER};
use portcullis_testkit::wait::{Attempt, wait_for};
use serde_json::Value;

const NEEDS: &str = "skopeo htpasswd docker-registry";

/// A receiver on 127.0.0.1 that answers 200 to every POST and keeps the
/// bodies and their content types.
struct Receiver {
    port: u16,
    got: Arc<Mutex<Vec<(String, Value)>>>,
}

impl Receiver {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let got = Arc::new(Mutex::new(Vec::new()));
        let keep = got.clone();
        std::thread::spawn(move || {
            // Bounded: a test sends a few dozen envelopes.
            for stream in listener.incoming().take(2000) {
                let Ok(mut stream) = stream else { continue };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let (mut length, mut content_type) = (0usize, String::new());
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                    let l = line.trim_end().to_owned();
                    line.clear();
                    if l.is_empty() {
                        break;
                    }
                    if let Some((k, v)) = l.split_once(':') {
                        match k.to_ascii_lowercase().as_str() {
                            "content-length" => length = v.trim().parse().unwrap_or(0),
                            "content-type" => content_type = v.trim().to_owned(),
                            _ => {}
                        }
                    }
                }
                let mut body = vec![0; length.min(1 << 20)];
                if reader.read_exact(&mut body).is_ok()
                    && let Ok(v) = serde_json::from_slice(&body)
                {
                    keep.lock().unwrap().push((content_type, v));
                }
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                );
            }
        });
        Self { port, got }
    }

    /// The events received so far, each with its envelope's content type.
    fn events(&self) -> Vec<(String, Value)> {
        let mut out = Vec::new();
        for (ct, envelope) in self.got.lock().unwrap().iter() {
            for e in envelope["events"].as_array().into_iter().flatten() {
                out.push((ct.clone(), e.clone()));
            }
        }
        out
    }
}

/// Every key path of `v` with its JSON type, such as `target.size:number`.
fn shape(v: &Value, at: &str, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let path = if at.is_empty() {
                    k.clone()
                } else {
                    format!("{at}.{k}")
                };
                shape(v, &path, out);
            }
        }
        Value::Array(_) => {
            out.insert(format!("{at}:array"));
        }
        Value::String(_) => {
            out.insert(format!("{at}:string"));
        }
        Value::Number(_) => {
            out.insert(format!("{at}:number"));
        }
        Value::Bool(_) => {
            out.insert(format!("{at}:bool"));
        }
        Value::Null => {
            out.insert(format!("{at}:null"));
        }
    }
}

fn manifest_push(events: &[(String, Value)]) -> Option<(String, Value)> {
    events
        .iter()
        .find(|(_, e)| {
            e["action"] == "push"
                && e["target"]["mediaType"]
                    .as_str()
                    .is_some_and(|m| m.contains("manifest"))
        })
        .cloned()
}

#[test]
fn portcullis_and_distribution_send_envelopes_of_the_same_structure() {
    if !common::e2e_gate(NEEDS) {
        return;
    }
    let receiver = Receiver::start();
    let dir = common::temp_dir();
    let htpasswd = dir.path().join("htpasswd");
    common::write_htpasswd(&htpasswd, &[(USER, PASSWORD)]);
    let endpoint = |name: &str| {
        format!(
            "notifications:\n  endpoints:\n    - name: {name}\n      url: http://127.0.0.1:{}/events\n      timeout: 2s\n      threshold: 3\n      backoff: 1s\n",
            receiver.port
        )
    };
    let mut layout = OciLayout::create(&dir.path().join("layout"));
    layout.add_image("v1", 2, 2048);
    let skopeo = Skopeo::new();
    let creds = format!("{USER}:{PASSWORD}");
    let mut shapes = Vec::new();
    for (kind, name) in [
        (RegistryKind::Reference, "reference"),
        (RegistryKind::Portcullis, "portcullis"),
    ] {
        let config = RegistryConfig::new(dir.path().join(name))
            .htpasswd(htpasswd.clone())
            .extra_yaml(endpoint(name));
        let registry = Registry::start(kind, &config);
        let before = receiver.events().len();
        skopeo.push_layout(
            &layout,
            "v1",
            &format!("docker://{}/team/app:v1", registry.host()),
            &creds,
        );
        let mut found = None;
        wait_for(Duration::from_secs(20), || {
            let events = receiver.events().split_off(before);
            found = manifest_push(&events);
            if found.is_some() {
                Attempt::Done
            } else {
                Attempt::Retry(format!("{} events from {name}", events.len()))
            }
        })
        .unwrap_or_else(|e| panic!("{name} sent no manifest push: {e}\n{}", registry.log()));
        let (ct, event) = found.unwrap();
        assert_eq!(
            ct, "application/vnd.docker.distribution.events.v1+json",
            "{name}"
        );
        assert_eq!(event["actor"]["name"], USER, "{name}: {event}");
        assert_eq!(event["target"]["repository"], "team/app", "{name}: {event}");
        assert_eq!(event["target"]["tag"], "v1", "{name}: {event}");
        let mut s = BTreeSet::new();
        shape(&event, "", &mut s);
        shapes.push((name, s, event));
        registry.stop();
    }
    let (_, reference, ref_event) = &shapes[0];
    let (_, ours, our_event) = &shapes[1];
    assert_eq!(
        reference, ours,
        "envelope structures differ\nreference: {ref_event}\nportcullis: {our_event}"
    );
}
