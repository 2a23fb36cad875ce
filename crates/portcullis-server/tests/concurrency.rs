//! Concurrent pushes end consistent, a chunk whose body fails midway leaves
//! the session as it was, and an upload survives a restart (the hash state is
//! rebuilt from the data on disk).

mod common;

use axum::body::Body;
use axum::http::Method;
use bytes::Bytes;
use common::*;
use portcullis_core::Options;

fn both() -> [Reg; 2] {
    [Reg::memory(), Reg::fs_with(Options::default())]
}

fn blob_data() -> Vec<u8> {
    (0..200_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

/// One client's chunked push of `data` in its own session.
async fn chunked_push(reg: Reg, repo: String, data: Vec<u8>) -> Resp {
    let d = digest(&data);
    let mut loc = reg.start_upload(&repo).await;
    let mut offset = 0;
    for chunk in data.chunks(30_000) {
        let r = reg.patch_chunk(&loc, offset, chunk).await;
        r.expect(202);
        loc = r.location();
        offset += chunk.len();
        tokio::task::yield_now().await;
    }
    reg.call(
        Method::PUT,
        &with_query(&loc, &format!("digest={d}")),
        &[],
        Body::empty(),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_pushes_of_the_same_blob() {
    for reg in both() {
        let data = blob_data();
        let d = digest(&data);
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let repo = if i % 2 == 0 {
                    "same/repo"
                } else {
                    "other/repo"
                };
                tokio::spawn(chunked_push(reg.clone(), repo.to_owned(), data.clone()))
            })
            .collect();
        for t in tasks {
            let r = t.await.expect("task");
            r.expect(201);
            assert_eq!(r.header("docker-content-digest"), d);
        }
        for repo in ["same/repo", "other/repo"] {
            let g = reg.get(&format!("/v2/{repo}/blobs/{d}")).await;
            g.expect(200);
            assert_eq!(g.body.len(), data.len());
            assert_eq!(digest(&g.body), d, "blob content must match its digest");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_manifest_puts_to_one_tag() {
    for reg in both() {
        let config = b"{\"os\":\"linux\"}";
        let c = reg.push_blob("app", config).await;
        let manifests: Vec<Vec<u8>> = (0..8)
            .map(|i| {
                image_manifest(
                    (&c, config.len()),
                    &[],
                    &format!(",\"annotations\":{{\"n\":\"{i}\"}}"),
                )
            })
            .collect();
        let digests: Vec<String> = manifests.iter().map(|m| digest(m)).collect();
        let tasks: Vec<_> = manifests
            .iter()
            .cloned()
            .map(|m| {
                let reg = reg.clone();
                tokio::spawn(
                    async move { reg.put_manifest("app", "latest", OCI_MANIFEST, &m).await },
                )
            })
            .collect();
        for t in tasks {
            t.await.expect("task").expect(201);
        }
        let r = reg.get("/v2/app/manifests/latest").await;
        r.expect(200);
        let winner = r.header("docker-content-digest").to_owned();
        let i = digests
            .iter()
            .position(|d| *d == winner)
            .expect("the tag points at a pushed manifest");
        assert_eq!(&r.body[..], &manifests[i][..]);
        assert_eq!(digest(&r.body), winner);
        let g = reg.get(&format!("/v2/app/manifests/{winner}")).await;
        g.expect(200);
        assert_eq!(&g.body[..], &manifests[i][..]);
        // Every manifest is stored by digest; the tag is listed once.
        for d in &digests {
            reg.head(&format!("/v2/app/manifests/{d}"))
                .await
                .expect(200);
        }
        assert_eq!(
            reg.get("/v2/app/tags/list").await.json()["tags"],
            serde_json::json!(["latest"])
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_patches_with_the_same_range_apply_once() {
    for reg in both() {
        let loc = reg.start_upload("race").await;
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let reg = reg.clone();
                let loc = loc.clone();
                tokio::spawn(async move { reg.patch_chunk(&loc, 0, b"0123456789").await })
            })
            .collect();
        let mut ok = 0;
        for t in tasks {
            let r = t.await.expect("task");
            match r.status.as_u16() {
                202 => ok += 1,
                416 => {
                    r.expect_error(416, "RANGE_INVALID");
                }
                s => panic!("unexpected status {s}"),
            }
        }
        assert_eq!(ok, 1, "exactly one PATCH of 0-9 can apply");
        assert_eq!(reg.get(&loc).await.header("range"), "0-9");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_streamed_patches_serialize() {
    for reg in both() {
        let loc = reg.start_upload("race").await;
        let tasks: Vec<_> = (0..8u8)
            .map(|i| {
                let reg = reg.clone();
                let loc = loc.clone();
                tokio::spawn(async move {
                    reg.call(Method::PATCH, &loc, &[], vec![b'a' + i; 1000])
                        .await
                })
            })
            .collect();
        for t in tasks {
            t.await.expect("task").expect(202);
        }
        assert_eq!(reg.get(&loc).await.header("range"), "0-7999");
    }
}

fn failing_body(prefix: &'static [u8]) -> Body {
    let items: Vec<Result<Bytes, std::io::Error>> = vec![
        Ok(Bytes::from_static(prefix)),
        Err(std::io::Error::other("client went away")),
    ];
    Body::from_stream(futures::stream::iter(items))
}

#[tokio::test]
async fn patch_whose_body_fails_midway_is_rolled_back() {
    for reg in both() {
        let data = b"0123456789abcdefghij".to_vec();
        let d = digest(&data);
        let loc = reg.start_upload("flaky").await;
        let loc = reg
            .patch_chunk(&loc, 0, &data[..10])
            .await
            .expect(202)
            .location();

        let r = reg
            .call(
                Method::PATCH,
                &loc,
                &[("content-range", "10-19")],
                failing_body(b"abcde"),
            )
            .await;
        assert!(r.status.is_client_error(), "{:?}", r.status);
        r.expect_error(400, "BLOB_UPLOAD_INVALID");

        let st = reg.get(&loc).await;
        st.expect(204);
        assert_eq!(
            st.header("range"),
            "0-9",
            "the failed chunk must leave no bytes behind"
        );

        let loc = reg
            .patch_chunk(&loc, 10, &data[10..])
            .await
            .expect(202)
            .location();
        let r = reg
            .call(
                Method::PUT,
                &with_query(&loc, &format!("digest={d}")),
                &[],
                Body::empty(),
            )
            .await;
        r.expect(201);
        let g = reg.get(&format!("/v2/flaky/blobs/{d}")).await;
        assert_eq!(&g.body[..], &data[..]);
    }
}

#[tokio::test]
async fn final_put_whose_body_fails_keeps_the_session() {
    for reg in both() {
        let data = b"0123456789abcdefghij".to_vec();
        let d = digest(&data);
        let loc = reg.start_upload("flaky").await;
        let loc = reg
            .patch_chunk(&loc, 0, &data[..10])
            .await
            .expect(202)
            .location();
        let r = reg
            .call(
                Method::PUT,
                &with_query(&loc, &format!("digest={d}")),
                &[],
                failing_body(b"abc"),
            )
            .await;
        r.expect_error(400, "BLOB_UPLOAD_INVALID");
        reg.head(&format!("/v2/flaky/blobs/{d}")).await.expect(404);
        assert_eq!(reg.get(&loc).await.expect(204).header("range"), "0-9");
        let r = reg
            .call(
                Method::PUT,
                &with_query(&loc, &format!("digest={d}")),
                &[],
                data[10..].to_vec(),
            )
            .await;
        r.expect(201);
        assert_eq!(
            digest(&reg.get(&format!("/v2/flaky/blobs/{d}")).await.body),
            d
        );
    }
}

#[tokio::test]
async fn upload_survives_a_restart() {
    let before = Reg::fs_with(Options::default());
    let data = blob_data();
    let d = digest(&data);
    let loc = before.start_upload("restart").await;
    let loc = before
        .patch_chunk(&loc, 0, &data[..70_000])
        .await
        .expect(202)
        .location();

    let after = before.restart(Options::default());
    drop(before);
    let st = after.get(&loc).await;
    st.expect(204);
    assert_eq!(st.header("range"), "0-69999");
    let loc = after
        .patch_chunk(&loc, 70_000, &data[70_000..150_000])
        .await
        .expect(202)
        .location();
    let range = format!("150000-{}", data.len() - 1);
    let r = after
        .call(
            Method::PUT,
            &with_query(&loc, &format!("digest={d}")),
            &[("content-range", &range)],
            data[150_000..].to_vec(),
        )
        .await;
    r.expect(201);
    assert_eq!(r.header("docker-content-digest"), d);
    let g = after.get(&format!("/v2/restart/blobs/{d}")).await;
    g.expect(200);
    assert_eq!(digest(&g.body), d);
}

#[tokio::test]
async fn upload_finished_right_after_a_restart() {
    // The PUT carries no data: the digest comes entirely from the rebuilt state.
    let before = Reg::fs_with(Options::default());
    let data = blob_data();
    let d = digest(&data);
    let loc = before.start_upload("restart").await;
    let loc = before
        .patch_chunk(&loc, 0, &data)
        .await
        .expect(202)
        .location();
    let after = before.restart(Options::default());
    let r = after
        .call(
            Method::PUT,
            &with_query(&loc, &format!("digest={d}")),
            &[],
            Body::empty(),
        )
        .await;
    r.expect(201);
    assert_eq!(
        digest(&after.get(&format!("/v2/restart/blobs/{d}")).await.body),
        d
    );
}

#[tokio::test]
async fn digest_mismatch_is_still_caught_after_a_restart() {
    let before = Reg::fs_with(Options::default());
    let loc = before.start_upload("restart").await;
    let loc = before
        .patch_chunk(&loc, 0, b"some bytes")
        .await
        .expect(202)
        .location();
    let after = before.restart(Options::default());
    let wrong = digest(b"other bytes");
    after
        .call(
            Method::PUT,
            &with_query(&loc, &format!("digest={wrong}")),
            &[],
            Body::empty(),
        )
        .await
        .expect_error(400, "DIGEST_INVALID");
    after
        .head(&format!("/v2/restart/blobs/{wrong}"))
        .await
        .expect(404);
}

#[tokio::test]
async fn content_survives_a_restart() {
    let before = Reg::fs_with(Options::default());
    let (d, m) = before.push_image("persist", "v1", "persist").await;
    let after = before.restart(Options::default());
    let g = after.get("/v2/persist/manifests/v1").await;
    g.expect(200);
    assert_eq!(g.header("docker-content-digest"), d);
    assert_eq!(&g.body[..], &m[..]);
    assert_eq!(
        after.get("/v2/_catalog").await.json()["repositories"],
        serde_json::json!(["persist"])
    );
}

// A PUT that waits on the session lock while another PUT completes the
// session must find the session gone (404), not fail on the moved data file.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_puts_that_complete_one_session() {
    // Clients retry a final PUT when a response is lost. Exactly one completion
    // wins; the others find the session gone (404), never a 500.
    for reg in both() {
        for round in 0..5 {
            let data = format!("racing completion {round}")
                .repeat(2000)
                .into_bytes();
            let d = digest(&data);
            let loc = reg.start_upload("race").await;
            let loc = reg.patch_chunk(&loc, 0, &data).await.expect(202).location();
            let tasks: Vec<_> = (0..8)
                .map(|_| {
                    let reg = reg.clone();
                    let uri = with_query(&loc, &format!("digest={d}"));
                    tokio::spawn(
                        async move { reg.call(Method::PUT, &uri, &[], Body::empty()).await },
                    )
                })
                .collect();
            let mut created = 0;
            for t in tasks {
                let r = t.await.expect("task");
                match r.status.as_u16() {
                    201 => created += 1,
                    404 => {
                        r.expect_error(404, "BLOB_UPLOAD_UNKNOWN");
                    }
                    s => panic!(
                        "round {round}: unexpected status {s}: {}",
                        String::from_utf8_lossy(&r.body)
                    ),
                }
            }
            assert!(created >= 1, "at least one completion succeeds");
            assert_eq!(
                digest(&reg.get(&format!("/v2/race/blobs/{d}")).await.body),
                d
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancel_racing_with_patches_never_fails_hard() {
    for reg in both() {
        let loc = reg.start_upload("race").await;
        let mut tasks = Vec::new();
        for i in 0..8u8 {
            let reg = reg.clone();
            let loc = loc.clone();
            tasks.push(tokio::spawn(async move {
                if i == 4 {
                    reg.delete(&loc).await
                } else {
                    reg.call(Method::PATCH, &loc, &[], vec![i; 5000]).await
                }
            }));
        }
        for t in tasks {
            let r = t.await.expect("task");
            assert!(
                matches!(r.status.as_u16(), 202 | 204 | 404),
                "unexpected status {}: {}",
                r.status,
                String::from_utf8_lossy(&r.body)
            );
        }
        // The session is gone for good: no PATCH resurrected it.
        reg.get(&loc).await.expect_error(404, "BLOB_UPLOAD_UNKNOWN");
    }
}
