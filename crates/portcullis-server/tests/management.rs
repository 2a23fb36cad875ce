//! OCI conformance, content management (DELETE with deletion disabled and
//! enabled), and read-only mode.

mod common;

use axum::body::Body;
use axum::http::Method;
use common::*;
use portcullis_core::Options;

fn tags_of(r: &Resp) -> Vec<String> {
    r.json()["tags"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|t| t.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn delete_disabled_is_405_unsupported() {
    let reg = Reg::memory();
    let (d, _) = reg.push_image("app", "v1", "nodelete").await;
    let layer = reg.push_blob("app", b"a layer").await;
    reg.delete(&format!("/v2/app/manifests/{d}"))
        .await
        .expect_error(405, "UNSUPPORTED");
    reg.delete("/v2/app/manifests/v1")
        .await
        .expect_error(405, "UNSUPPORTED");
    reg.delete(&format!("/v2/app/blobs/{layer}"))
        .await
        .expect_error(405, "UNSUPPORTED");
    // Nothing was deleted.
    reg.head(&format!("/v2/app/manifests/{d}"))
        .await
        .expect(200);
    reg.head("/v2/app/manifests/v1").await.expect(200);
    reg.head(&format!("/v2/app/blobs/{layer}"))
        .await
        .expect(200);
}

#[tokio::test]
async fn delete_manifest_by_digest_removes_its_tags() {
    let reg = Reg::memory_with(delete_enabled());
    let (d, m) = reg.push_image("app", "v1", "del").await;
    reg.put_manifest("app", "also", OCI_MANIFEST, &m)
        .await
        .expect(201);
    let (keep, _) = reg.push_image("app", "keep", "keep").await;

    let r = reg.delete(&format!("/v2/app/manifests/{d}")).await;
    r.expect(202);
    reg.get(&format!("/v2/app/manifests/{d}"))
        .await
        .expect_error(404, "MANIFEST_UNKNOWN");
    reg.get("/v2/app/manifests/v1")
        .await
        .expect_error(404, "MANIFEST_UNKNOWN");
    reg.get("/v2/app/manifests/also")
        .await
        .expect_error(404, "MANIFEST_UNKNOWN");

    let t = reg.get("/v2/app/tags/list").await;
    t.expect(200);
    assert_eq!(tags_of(&t), ["keep"]);
    reg.head(&format!("/v2/app/manifests/{keep}"))
        .await
        .expect(200);

    // Deleting it again: unknown.
    reg.delete(&format!("/v2/app/manifests/{d}"))
        .await
        .expect_error(404, "MANIFEST_UNKNOWN");
}

#[tokio::test]
async fn delete_by_tag_removes_only_the_tag() {
    let reg = Reg::memory_with(delete_enabled());
    let (d, m) = reg.push_image("app", "v1", "tagdel").await;
    reg.put_manifest("app", "v2", OCI_MANIFEST, &m)
        .await
        .expect(201);

    reg.delete("/v2/app/manifests/v1").await.expect(202);
    reg.get("/v2/app/manifests/v1")
        .await
        .expect_error(404, "MANIFEST_UNKNOWN");
    assert_eq!(tags_of(&reg.get("/v2/app/tags/list").await), ["v2"]);
    reg.head(&format!("/v2/app/manifests/{d}"))
        .await
        .expect(200);
    reg.head("/v2/app/manifests/v2").await.expect(200);

    reg.delete("/v2/app/manifests/nosuchtag")
        .await
        .expect_error(404, "MANIFEST_UNKNOWN");
}

#[tokio::test]
async fn delete_blob() {
    let reg = Reg::memory_with(delete_enabled());
    let d = reg.push_blob("app", b"delete me").await;
    reg.delete(&format!("/v2/app/blobs/{d}")).await.expect(202);
    reg.head(&format!("/v2/app/blobs/{d}")).await.expect(404);
    reg.get(&format!("/v2/app/blobs/{d}"))
        .await
        .expect_error(404, "BLOB_UNKNOWN");
    reg.delete(&format!("/v2/app/blobs/{d}"))
        .await
        .expect_error(404, "BLOB_UNKNOWN");
    // Pushing it again makes it visible again.
    assert_eq!(reg.push_blob("app", b"delete me").await, d);
    reg.head(&format!("/v2/app/blobs/{d}")).await.expect(200);
    reg.delete(&format!("/v2/app/blobs/{}", absent_digest("x")))
        .await
        .expect_error(404, "BLOB_UNKNOWN");
}

#[tokio::test]
async fn deleting_a_blob_in_one_repository_keeps_it_in_another() {
    let reg = Reg::memory_with(delete_enabled());
    let d = reg.push_blob("one", b"shared").await;
    reg.post(&format!("/v2/two/blobs/uploads/?mount={d}&from=one"))
        .await
        .expect(201);
    reg.delete(&format!("/v2/one/blobs/{d}")).await.expect(202);
    reg.head(&format!("/v2/one/blobs/{d}")).await.expect(404);
    let g = reg.get(&format!("/v2/two/blobs/{d}")).await;
    g.expect(200);
    assert_eq!(&g.body[..], b"shared");
}

#[tokio::test]
async fn deleted_referrer_leaves_the_referrers_list() {
    let reg = Reg::memory_with(delete_enabled());
    let (subject, sb) = reg.push_image("app", "v1", "s").await;
    let empty = reg.push_blob("app", b"{}").await;
    let m = image_manifest_typed(
        "application/vnd.oci.empty.v1+json",
        (&empty, 2),
        &[],
        &format!(
            ",\"artifactType\":\"application/x\"{}",
            subject_field(&subject, sb.len())
        ),
    );
    let d = digest(&m);
    reg.put_manifest("app", &d, OCI_MANIFEST, &m)
        .await
        .expect(201);
    assert_eq!(
        reg.get(&format!("/v2/app/referrers/{subject}"))
            .await
            .json()["manifests"][0]["digest"],
        d.as_str()
    );
    reg.delete(&format!("/v2/app/manifests/{d}"))
        .await
        .expect(202);
    let r = reg.get(&format!("/v2/app/referrers/{subject}")).await;
    r.expect(200);
    assert_eq!(r.json()["manifests"], serde_json::json!([]));
}

#[tokio::test]
async fn repush_after_delete() {
    let reg = Reg::memory_with(delete_enabled());
    let (d, m) = reg.push_image("app", "v1", "again").await;
    reg.delete(&format!("/v2/app/manifests/{d}"))
        .await
        .expect(202);
    let r = reg.put_manifest("app", "v1", OCI_MANIFEST, &m).await;
    r.expect(201);
    let g = reg.get("/v2/app/manifests/v1").await;
    g.expect(200);
    assert_eq!(g.header("docker-content-digest"), d);
}

/// A read-only app over storage that a writable app has filled.
async fn read_only() -> (Reg, Reg, String, String, String) {
    let rw = Reg::memory_with(delete_enabled());
    let (d, _) = rw.push_image("app", "v1", "ro").await;
    let layer = rw.push_blob("app", b"a layer").await;
    let session = rw.start_upload("app").await;
    let ro = rw.reopen(Options {
        read_only: true,
        delete_enabled: true,
        ..Options::default()
    });
    (rw, ro, d, layer, session)
}

#[tokio::test]
async fn read_only_refuses_writes() {
    let (_rw, ro, d, layer, session) = read_only().await;
    ro.post("/v2/app/blobs/uploads/")
        .await
        .expect_error(405, "UNSUPPORTED");
    ro.post("/v2/new/blobs/uploads/")
        .await
        .expect_error(405, "UNSUPPORTED");
    ro.call(
        Method::POST,
        &format!("/v2/app/blobs/uploads/?digest={}", digest(b"x")),
        &[],
        &b"x"[..],
    )
    .await
    .expect_error(405, "UNSUPPORTED");
    ro.post(&format!("/v2/other/blobs/uploads/?mount={layer}&from=app"))
        .await
        .expect_error(405, "UNSUPPORTED");
    ro.patch_chunk(&session, 0, b"chunk")
        .await
        .expect_error(405, "UNSUPPORTED");
    ro.call(
        Method::PUT,
        &with_query(&session, &format!("digest={}", digest(b""))),
        &[],
        Body::empty(),
    )
    .await
    .expect_error(405, "UNSUPPORTED");
    ro.delete(&session).await.expect_error(405, "UNSUPPORTED");
    let body = ro.get("/v2/app/manifests/v1").await.body;
    ro.put_manifest("app", "v2", OCI_MANIFEST, &body)
        .await
        .expect_error(405, "UNSUPPORTED");
    ro.delete(&format!("/v2/app/manifests/{d}"))
        .await
        .expect_error(405, "UNSUPPORTED");
    ro.delete("/v2/app/manifests/v1")
        .await
        .expect_error(405, "UNSUPPORTED");
    ro.delete(&format!("/v2/app/blobs/{layer}"))
        .await
        .expect_error(405, "UNSUPPORTED");
}

#[tokio::test]
async fn read_only_still_serves_pulls() {
    let (_rw, ro, d, layer, _session) = read_only().await;
    ro.get("/v2/").await.expect(200);
    let r = ro.get("/v2/app/manifests/v1").await;
    r.expect(200);
    assert_eq!(r.header("docker-content-digest"), d);
    ro.head(&format!("/v2/app/manifests/{d}")).await.expect(200);
    let b = ro.get(&format!("/v2/app/blobs/{layer}")).await;
    b.expect(200);
    assert_eq!(&b.body[..], b"a layer");
    ro.get("/v2/app/tags/list").await.expect(200);
    ro.get("/v2/_catalog").await.expect(200);
    ro.get(&format!("/v2/app/referrers/{d}")).await.expect(200);
    // Nothing changed underneath.
    ro.head("/v2/app/manifests/v2").await.expect(404);
}
