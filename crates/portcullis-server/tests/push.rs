//! OCI conformance, push workflow for blobs: monolithic, single-request and
//! chunked uploads, out-of-order chunks, and digest verification.

mod common;

use axum::body::Body;
use axum::http::Method;
use bytes::Bytes;
use common::*;

#[tokio::test]
async fn post_then_put_monolithic() {
    let reg = Reg::memory();
    let data = b"a monolithic blob".to_vec();
    let d = digest(&data);
    let r = reg.post("/v2/mono/blobs/uploads/").await;
    r.expect(202);
    let loc = r.location();
    assert!(loc.starts_with("/v2/mono/blobs/uploads/"), "{loc}");
    assert!(!r.header("docker-upload-uuid").is_empty());

    let r = reg
        .call(
            Method::PUT,
            &with_query(&loc, &format!("digest={d}")),
            &[
                ("content-type", "application/octet-stream"),
                ("content-length", &data.len().to_string()),
            ],
            data.clone(),
        )
        .await;
    r.expect(201);
    assert_eq!(r.location(), format!("/v2/mono/blobs/{d}"));
    assert_eq!(r.header("docker-content-digest"), d);

    let h = reg.head(&format!("/v2/mono/blobs/{d}")).await;
    h.expect(200);
    assert_eq!(h.header("content-length"), data.len().to_string());
    // The session is finished.
    reg.get(&loc).await.expect_error(404, "BLOB_UPLOAD_UNKNOWN");
}

#[tokio::test]
async fn post_with_digest_is_a_single_request_upload() {
    let reg = Reg::memory();
    let data = b"single request".to_vec();
    let d = digest(&data);
    let r = reg
        .call(
            Method::POST,
            &format!("/v2/single/blobs/uploads/?digest={d}"),
            &[
                ("content-type", "application/octet-stream"),
                ("content-length", &data.len().to_string()),
            ],
            data.clone(),
        )
        .await;
    r.expect(201);
    assert_eq!(r.location(), format!("/v2/single/blobs/{d}"));
    assert_eq!(r.header("docker-content-digest"), d);
    let g = reg.get(&format!("/v2/single/blobs/{d}")).await;
    g.expect(200);
    assert_eq!(&g.body[..], &data[..]);
}

#[tokio::test]
async fn post_with_wrong_digest_is_digest_invalid() {
    let reg = Reg::memory();
    let wrong = absent_digest("single");
    let r = reg
        .call(
            Method::POST,
            &format!("/v2/single/blobs/uploads/?digest={wrong}"),
            &[],
            &b"content"[..],
        )
        .await;
    r.expect_error(400, "DIGEST_INVALID");
    reg.head(&format!("/v2/single/blobs/{wrong}"))
        .await
        .expect(404);
    reg.head(&format!("/v2/single/blobs/{}", digest(b"content")))
        .await
        .expect(404);
}

#[tokio::test]
async fn chunked_upload() {
    let reg = Reg::memory();
    let data: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
    let d = digest(&data);
    let (a, rest) = data.split_at(1000);
    let (b, c) = rest.split_at(1200);

    let loc = reg.start_upload("chunky").await;
    let r = reg.patch_chunk(&loc, 0, a).await;
    r.expect(202);
    assert_eq!(r.header("range"), "0-999");
    let loc = r.location();
    assert!(loc.starts_with("/v2/chunky/blobs/uploads/"), "{loc}");

    let r = reg.patch_chunk(&loc, 1000, b).await;
    r.expect(202);
    assert_eq!(r.header("range"), "0-2199");
    let loc = r.location();

    let st = reg.get(&loc).await;
    st.expect(204);
    assert_eq!(st.header("range"), "0-2199");
    assert_eq!(st.location(), loc);
    assert!(st.body.is_empty());

    let range = format!("2200-{}", data.len() - 1);
    let r = reg
        .call(
            Method::PUT,
            &with_query(&loc, &format!("digest={d}")),
            &[
                ("content-type", "application/octet-stream"),
                ("content-range", &range),
                ("content-length", &c.len().to_string()),
            ],
            Bytes::copy_from_slice(c),
        )
        .await;
    r.expect(201);
    assert_eq!(r.header("docker-content-digest"), d);
    assert_eq!(r.location(), format!("/v2/chunky/blobs/{d}"));
    let g = reg.get(&format!("/v2/chunky/blobs/{d}")).await;
    g.expect(200);
    assert_eq!(&g.body[..], &data[..]);
}

#[tokio::test]
async fn chunked_upload_closed_by_empty_put() {
    let reg = Reg::memory();
    let data = b"0123456789abcdefghij".to_vec();
    let d = digest(&data);
    let loc = reg.start_upload("chunky").await;
    let loc = reg
        .patch_chunk(&loc, 0, &data[..10])
        .await
        .expect(202)
        .location();
    let loc = reg
        .patch_chunk(&loc, 10, &data[10..])
        .await
        .expect(202)
        .location();
    let r = reg
        .call(
            Method::PUT,
            &with_query(&loc, &format!("digest={d}")),
            &[("content-length", "0")],
            Body::empty(),
        )
        .await;
    r.expect(201);
    assert_eq!(r.header("docker-content-digest"), d);
    reg.head(&format!("/v2/chunky/blobs/{d}")).await.expect(200);
}

#[tokio::test]
async fn streamed_patch_without_content_range() {
    // docker pushes a whole layer in one PATCH without Content-Range.
    let reg = Reg::memory();
    let data = b"streamed".repeat(1000);
    let d = digest(&data);
    let loc = reg.start_upload("stream").await;
    let r = reg.call(Method::PATCH, &loc, &[], data.clone()).await;
    r.expect(202);
    assert_eq!(r.header("range"), format!("0-{}", data.len() - 1));
    let loc = r.location();
    reg.call(
        Method::PUT,
        &with_query(&loc, &format!("digest={d}")),
        &[],
        Body::empty(),
    )
    .await
    .expect(201);
}

#[tokio::test]
async fn new_session_reports_empty_range() {
    let reg = Reg::memory();
    let loc = reg.start_upload("fresh").await;
    let st = reg.get(&loc).await;
    st.expect(204);
    // distribution reports `0-0` for an empty session (its Range is inclusive).
    assert_eq!(st.header("range"), "0-0");
}

#[tokio::test]
async fn out_of_order_chunk_is_416() {
    let reg = Reg::memory();
    let loc = reg.start_upload("ooo").await;
    let loc = reg
        .patch_chunk(&loc, 0, b"0123456789")
        .await
        .expect(202)
        .location();
    // A gap: the session has 10 bytes, the chunk claims to start at 20.
    let r = reg.patch_chunk(&loc, 20, b"abcdefghij").await;
    r.expect_error(416, "RANGE_INVALID");
    // The session is intact.
    let st = reg.get(&loc).await;
    st.expect(204);
    assert_eq!(st.header("range"), "0-9");
}

#[tokio::test]
async fn retried_chunk_is_416_and_session_survives() {
    let reg = Reg::memory();
    let data = b"0123456789abcdefghij".to_vec();
    let loc = reg.start_upload("retry").await;
    let loc = reg
        .patch_chunk(&loc, 0, &data[..10])
        .await
        .expect(202)
        .location();
    // Same chunk again.
    let r = reg.patch_chunk(&loc, 0, &data[..10]).await;
    r.expect_error(416, "RANGE_INVALID");
    let st = reg.get(&loc).await;
    st.expect(204);
    assert_eq!(st.header("range"), "0-9");
    // The upload can still finish with the right content.
    let d = digest(&data);
    let loc = reg
        .patch_chunk(&loc, 10, &data[10..])
        .await
        .expect(202)
        .location();
    reg.call(
        Method::PUT,
        &with_query(&loc, &format!("digest={d}")),
        &[],
        Body::empty(),
    )
    .await
    .expect(201);
}

#[tokio::test]
async fn digest_mismatch_discards_the_upload() {
    let reg = Reg::memory();
    let data = b"the real content".to_vec();
    let wrong = absent_digest("mismatch");
    let loc = reg.start_upload("mismatch").await;
    let loc = reg.patch_chunk(&loc, 0, &data).await.expect(202).location();
    let r = reg
        .call(
            Method::PUT,
            &with_query(&loc, &format!("digest={wrong}")),
            &[],
            Body::empty(),
        )
        .await;
    r.expect_error(400, "DIGEST_INVALID");
    reg.head(&format!("/v2/mismatch/blobs/{wrong}"))
        .await
        .expect(404);
    reg.head(&format!("/v2/mismatch/blobs/{}", digest(&data)))
        .await
        .expect(404);
    reg.get(&loc).await.expect_error(404, "BLOB_UPLOAD_UNKNOWN");
}

#[tokio::test]
async fn monolithic_digest_mismatch() {
    let reg = Reg::memory();
    let wrong = absent_digest("mono-mismatch");
    let loc = reg.start_upload("mismatch").await;
    let r = reg
        .call(
            Method::PUT,
            &with_query(&loc, &format!("digest={wrong}")),
            &[],
            &b"other bytes"[..],
        )
        .await;
    r.expect_error(400, "DIGEST_INVALID");
    reg.head(&format!("/v2/mismatch/blobs/{wrong}"))
        .await
        .expect(404);
    reg.get(&loc).await.expect_error(404, "BLOB_UPLOAD_UNKNOWN");
}

#[tokio::test]
async fn sha512_digest_is_accepted() {
    use sha2::{Digest as _, Sha512};
    let reg = Reg::memory();
    let data = b"sha512 content".to_vec();
    let d = format!("sha512:{}", hex::encode(Sha512::digest(&data)));
    let loc = reg.start_upload("five12").await;
    let r = reg
        .call(
            Method::PUT,
            &with_query(&loc, &format!("digest={d}")),
            &[],
            data.clone(),
        )
        .await;
    r.expect(201);
    assert_eq!(r.header("docker-content-digest"), d);
    let g = reg.get(&format!("/v2/five12/blobs/{d}")).await;
    g.expect(200);
    assert_eq!(&g.body[..], &data[..]);
}
