//! The event port seen from outside: a real configuration's pipeline emits
//! authentication failures, denials with the policy's reason, and the
//! changes of successful writes, each with the actor and the request id
//! that the response's `X-Request-Id` carries.

mod common;

use std::sync::Arc;

use axum::http::Method;
use base64::Engine;
use common::{digest, image_manifest, request, send};
use portcullis_config::Config;
use portcullis_types::event::{ChangeKind, Event, MemorySink, Sinks, What};

fn basic(user: &str, pass: &str) -> String {
    let raw = format!("{user}:{pass}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

#[tokio::test]
async fn the_pipeline_emits_authentications_denials_and_changes() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let line = |u: &str, p: &str| format!("{u}:{}\n", bcrypt::hash(p, 4).unwrap());
    std::fs::write(
        root.join("htpasswd"),
        line("alice", "a") + &line("bob", "b"),
    )
    .unwrap();
    let yaml = format!(
        "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {r}/data\nauth:\n  htpasswd:\n    realm: r\n    path: {r}/htpasswd\naccess:\n  rules:\n    - subjects: [authenticated]\n      repositories: [\"${{user}}/**\"]\n      actions: [pull, push]\n",
        r = root.display()
    );
    let config = Config::from_yaml(&yaml, "test.yml", &[]).unwrap().config;
    let mut state = portcullis_server::build_state(&config).unwrap();
    let memory = Arc::new(MemorySink::default());
    state.events = Sinks::new(vec![
        memory.clone(),
        Arc::new(portcullis_server::events::LogSink),
    ]);
    let app = portcullis_server::app(state);
    let alice = basic("alice", "a");

    // a wrong password: an authentication failure naming the user and why
    let r = send(
        &app,
        request(
            Method::GET,
            "/v2/",
            &[("authorization", &basic("alice", "x"))],
            "",
        ),
    )
    .await;
    r.expect(401);
    let failed_id = r.header("x-request-id").to_owned();

    // bob may not push to alice's repository: a denial with the reason
    let r = send(
        &app,
        request(
            Method::POST,
            "/v2/alice/app/blobs/uploads/",
            &[("authorization", &basic("bob", "b"))],
            "",
        ),
    )
    .await;
    r.expect(403);
    let denied_id = r.header("x-request-id").to_owned();

    // alice pushes a config blob, monolithically, and a manifest by tag
    let config_blob = b"{}".to_vec();
    let d = digest(&config_blob);
    let r = send(
        &app,
        request(
            Method::POST,
            &format!("/v2/alice/app/blobs/uploads/?digest={d}"),
            &[
                ("authorization", &alice),
                ("content-type", "application/octet-stream"),
            ],
            config_blob.clone(),
        ),
    )
    .await;
    r.expect(201);
    let m = image_manifest((&d, config_blob.len()), &[], "");
    let r = send(
        &app,
        request(
            Method::PUT,
            "/v2/alice/app/manifests/v1",
            &[
                ("authorization", &alice),
                ("content-type", "application/vnd.oci.image.manifest.v1+json"),
            ],
            m.clone(),
        ),
    )
    .await;
    r.expect(201);
    let pushed_id = r.header("x-request-id").to_owned();
    // reads change nothing
    send(
        &app,
        request(
            Method::GET,
            "/v2/alice/app/manifests/v1",
            &[("authorization", &alice)],
            "",
        ),
    )
    .await
    .expect(200);

    let events = memory.events();
    let find = |id: &str| -> Vec<&Event> {
        events
            .iter()
            .filter(|e| e.request_id.as_deref() == Some(id))
            .collect()
    };
    let failed = find(&failed_id);
    assert!(
        matches!(&failed[..], [e] if matches!(&e.what, What::Authentication { user, ok: false, provider: Some("htpasswd"), reason: Some(r) } if user == "alice" && r == "wrong password")),
        "{failed:?}"
    );
    // bob's login itself succeeded (a full verification, so an event too)
    let denied = find(&denied_id);
    assert!(
        matches!(&denied[0].what, What::Authentication { user, ok: true, .. } if user == "bob"),
        "{denied:?}"
    );
    let denied = &denied[1..];
    assert!(
        matches!(denied, [e] if e.actor == "bob" && matches!(&e.what, What::Decision { allowed: false, repository: Some(repo), action, explanation } if repo == "alice/app" && action == "push" && explanation.contains("no rule allows push"))),
        "{denied:?}"
    );
    assert!(denied[0].client.as_deref().is_none_or(|c| !c.is_empty()));
    // alice's password was verified once, on her first request; later ones hit the cache
    let logins = events
        .iter()
        .filter(
            |e| matches!(&e.what, What::Authentication { user, ok: true, .. } if user == "alice"),
        )
        .count();
    assert_eq!(logins, 1);
    let pushed = find(&pushed_id);
    assert!(
        matches!(&pushed[..], [e] if e.actor == "alice" && matches!(&e.what, What::Change { kind: ChangeKind::ManifestPushed, repository, reference: Some(t), digest: Some(dg), size: Some(n), previous: None, status: 201, .. } if repository == "alice/app" && t == "v1" && *dg == digest(&m) && *n == m.len() as u64)),
        "{pushed:?}"
    );
    // The read was a pull, by alice, with the manifest's size.
    let pulls: Vec<&Event> = events
        .iter()
        .filter(|e| matches!(e.what, What::Pull { .. }))
        .collect();
    assert!(
        matches!(&pulls[..], [e] if e.actor == "alice" && matches!(&e.what, What::Pull { manifest: true, reference, bytes, status: 200, .. } if reference == "v1" && *bytes == m.len() as u64)),
        "{pulls:?}"
    );
    let changes: Vec<ChangeKind> = events
        .iter()
        .filter_map(|e| match &e.what {
            What::Change { kind, .. } => Some(*kind),
            _ => None,
        })
        .collect();
    assert_eq!(
        changes,
        [ChangeKind::BlobPushed, ChangeKind::ManifestPushed]
    );

    // v1 moved to another manifest: a push and a tag move from the old digest.
    let m2 = image_manifest((&d, config_blob.len()), &[], r#","annotations":{"n":"2"}"#);
    send(
        &app,
        request(
            Method::PUT,
            "/v2/alice/app/manifests/v1",
            &[
                ("authorization", &alice),
                ("content-type", "application/vnd.oci.image.manifest.v1+json"),
            ],
            m2.clone(),
        ),
    )
    .await
    .expect(201);
    let moved: Vec<Event> = memory
        .events()
        .into_iter()
        .filter(|e| {
            matches!(
                &e.what,
                What::Change {
                    kind: ChangeKind::TagMoved,
                    ..
                }
            )
        })
        .collect();
    assert!(
        matches!(&moved[..], [e] if matches!(&e.what, What::Change { previous: Some(p), digest: Some(now), reference: Some(t), .. } if *p == digest(&m) && *now == digest(&m2) && t == "v1")),
        "{moved:?}"
    );
}
