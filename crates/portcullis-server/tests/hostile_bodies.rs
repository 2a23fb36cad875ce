//! Bad input in headers and bodies never gives a 500: garbage or gapped
//! `Content-Range`, huge header values, `Range` garbage, invalid manifests
//! and empty bodies each get a 4xx with an OCI error body.

mod common;

use axum::body::Body;
use axum::http::{HeaderValue, Method, Request};
use common::*;

#[tokio::test]
async fn garbage_content_range_on_patch_is_416() {
    let reg = Reg::memory();
    let loc = reg.start_upload("app").await;
    let loc = reg
        .patch_chunk(&loc, 0, b"0123456789")
        .await
        .expect(202)
        .location();
    for cr in [
        "abc",
        "10-",
        "-5",
        "14-10",
        "bytes=10-14",
        "10 - 14",
        "0x0a-0x0e",
        "10-14-18",
        "+10-14",
        "18446744073709551616-18446744073709551620",
        "",
    ] {
        let r = reg
            .call(
                Method::PATCH,
                &loc,
                &[("content-range", cr), ("content-length", "5")],
                &b"abcde"[..],
            )
            .await;
        assert_eq!(
            r.status.as_u16(),
            416,
            "Content-Range `{cr}`: {}",
            String::from_utf8_lossy(&r.body)
        );
        r.expect_error(416, "RANGE_INVALID");
    }
    // Gapped, overlapping and mismatched ranges.
    for (cr, len) in [("20-24", "5"), ("5-9", "5"), ("10-19", "5"), ("10-14", "4")] {
        let r = reg
            .call(
                Method::PATCH,
                &loc,
                &[("content-range", cr), ("content-length", len)],
                &b"abcde"[..],
            )
            .await;
        r.expect_error(416, "RANGE_INVALID");
    }
    // Non-UTF-8 bytes.
    let mut req = request(Method::PATCH, &loc, &[], &b"abcde"[..]);
    req.headers_mut().insert(
        "content-range",
        HeaderValue::from_bytes(b"1\xff-\xfe4").expect("opaque header"),
    );
    reg.send(req).await.expect_error(416, "RANGE_INVALID");
    // None of that changed the session.
    let st = reg.get(&loc).await;
    st.expect(204);
    assert_eq!(st.header("range"), "0-9");
    let loc = reg
        .patch_chunk(&loc, 10, b"abcde")
        .await
        .expect(202)
        .location();
    reg.call(
        Method::PUT,
        &with_query(&loc, &format!("digest={}", digest(b"0123456789abcde"))),
        &[],
        Body::empty(),
    )
    .await
    .expect(201);
}

#[tokio::test]
async fn garbage_content_length_on_patch() {
    let reg = Reg::memory();
    let loc = reg.start_upload("app").await;
    let r = reg
        .call(
            Method::PATCH,
            &loc,
            &[("content-range", "0-4"), ("content-length", "five")],
            &b"abcde"[..],
        )
        .await;
    assert!(r.status.is_client_error(), "{:?}", r.status);
    r.expect_error(400, "SIZE_INVALID");
}

#[tokio::test]
async fn huge_header_values_are_refused_cleanly() {
    let reg = Reg::memory();
    let data: Vec<u8> = (0..50u8).collect();
    let d = reg.push_blob("app", &data).await;
    reg.push_image("app", "v1", "big").await;
    let huge = "9".repeat(70 * 1024);
    let huge_range = format!("bytes=0-{huge}");

    // A 70 kB Range.
    let r = reg
        .call(
            Method::GET,
            &format!("/v2/app/blobs/{d}"),
            &[("range", &huge_range)],
            Body::empty(),
        )
        .await;
    r.expect_error(416, "RANGE_INVALID");
    // A 70 kB Content-Range.
    let loc = reg.start_upload("app").await;
    let r = reg
        .call(
            Method::PATCH,
            &loc,
            &[("content-range", &format!("0-{huge}"))],
            &b"x"[..],
        )
        .await;
    r.expect_error(416, "RANGE_INVALID");
    // A 70 kB Accept: nothing acceptable.
    let accept = "a".repeat(70 * 1024);
    let r = reg
        .call(
            Method::GET,
            "/v2/app/manifests/v1",
            &[("accept", &accept)],
            Body::empty(),
        )
        .await;
    r.expect_error(404, "MANIFEST_UNKNOWN");
    // A 70 kB Content-Type on a manifest that is not JSON.
    let r = reg
        .call(
            Method::PUT,
            "/v2/app/manifests/v2",
            &[("content-type", &accept)],
            &b"not json"[..],
        )
        .await;
    r.expect_error(400, "MANIFEST_INVALID");
    // A 70 kB header the registry does not read at all is ignored.
    let r = reg
        .call(Method::GET, "/v2/", &[("x-junk", &accept)], Body::empty())
        .await;
    r.expect(200);
    // A 70 kB Host does not end up in a Location.
    let r = reg
        .call(
            Method::POST,
            "/v2/app/blobs/uploads/",
            &[("host", &accept)],
            Body::empty(),
        )
        .await;
    r.expect(202);
}

#[tokio::test]
async fn range_garbage_on_blob_is_416() {
    let reg = Reg::memory();
    let d = reg.push_blob("app", b"0123456789").await;
    let uri = format!("/v2/app/blobs/{d}");
    for range in [
        "",
        "bytes",
        "bytes=",
        "bytes=--1",
        "bytes= 0-1",
        "bytes=0-1-2",
        "bytes=1e3-",
        "bytes=0x1-",
    ] {
        let r = reg
            .call(Method::GET, &uri, &[("range", range)], Body::empty())
            .await;
        assert_eq!(r.status.as_u16(), 416, "Range `{range}`");
        r.expect_error(416, "RANGE_INVALID");
    }
    let mut req = request(Method::GET, &uri, &[], Body::empty());
    req.headers_mut().insert(
        "range",
        HeaderValue::from_bytes(b"bytes=\xff-").expect("opaque"),
    );
    reg.send(req).await.expect_error(416, "RANGE_INVALID");
}

async fn put_raw(reg: &Reg, tag: &str, ct: Option<&str>, body: Vec<u8>) -> Resp {
    let mut b = Request::builder()
        .method(Method::PUT)
        .uri(format!("/v2/app/manifests/{tag}"));
    if let Some(ct) = ct {
        b = b.header("content-type", ct);
    }
    reg.send(b.body(Body::from(body)).expect("request")).await
}

#[tokio::test]
async fn invalid_manifests_are_manifest_invalid() {
    let reg = Reg::memory();
    let config = b"{}";
    let c = reg.push_blob("app", config).await;
    let l = reg.push_blob("app", b"layer").await;
    let good = String::from_utf8(image_manifest((&c, 2), &[(&l, 5)], "")).expect("utf8");
    let nested = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("not json", b"this is not json".to_vec()),
        ("truncated", good.as_bytes()[..good.len() / 2].to_vec()),
        ("array", b"[]".to_vec()),
        ("string", b"\"manifest\"".to_vec()),
        ("null", b"null".to_vec()),
        ("empty object", b"{}".to_vec()),
        ("no schemaVersion", good.replace("\"schemaVersion\":2,", "").into_bytes()),
        ("schemaVersion 3", good.replace("\"schemaVersion\":2", "\"schemaVersion\":3").into_bytes()),
        ("schemaVersion string", good.replace("\"schemaVersion\":2", "\"schemaVersion\":\"2\"").into_bytes()),
        ("negative layer size", good.replace("\"size\":5", "\"size\":-5").into_bytes()),
        ("negative config size", good.replace("\"size\":2", "\"size\":-1").into_bytes()),
        ("size overflow", good.replace("\"size\":5", "\"size\":18446744073709551616").into_bytes()),
        ("size float", good.replace("\"size\":5", "\"size\":5.5").into_bytes()),
        ("size string", good.replace("\"size\":5", "\"size\":\"5\"").into_bytes()),
        ("bad digest", good.replace(&l, "sha256:nothex").into_bytes()),
        ("no config", format!("{{\"schemaVersion\":2,\"mediaType\":\"{OCI_MANIFEST}\",\"layers\":[]}}").into_bytes()),
        ("layers not array", good.replace("\"layers\":[", "\"layers\":{\"x\":[").replace("]}", "]}}").into_bytes()),
        ("empty media type", good.replace(&format!("\"mediaType\":\"{OCI_LAYER}\""), "\"mediaType\":\"\"").into_bytes()),
        ("unknown mediaType", good.replace(OCI_MANIFEST, "application/vnd.example+json").into_bytes()),
        ("index with layers", format!("{{\"schemaVersion\":2,\"mediaType\":\"{OCI_INDEX}\",\"manifests\":[],\"layers\":[]}}").into_bytes()),
        ("deeply nested", nested.into_bytes()),
        ("invalid utf-8", b"{\"schemaVersion\":2,\"x\":\"\xff\xfe\"}".to_vec()),
        ("nul bytes", vec![0u8; 64]),
    ];
    for (what, body) in cases {
        let r = put_raw(&reg, "bad", Some(OCI_MANIFEST), body).await;
        assert_eq!(
            r.status.as_u16(),
            400,
            "{what}: {}",
            String::from_utf8_lossy(&r.body)
        );
        r.expect_error(400, "MANIFEST_INVALID");
    }
    reg.get("/v2/app/manifests/bad")
        .await
        .expect_error(404, "MANIFEST_UNKNOWN");
    // The unmodified manifest is fine.
    put_raw(&reg, "good", Some(OCI_MANIFEST), good.into_bytes())
        .await
        .expect(201);
}

#[tokio::test]
async fn empty_bodies() {
    let reg = Reg::memory();
    // A manifest PUT with no body at all, with and without Content-Type.
    put_raw(&reg, "empty", Some(OCI_MANIFEST), Vec::new())
        .await
        .expect_error(400, "MANIFEST_INVALID");
    put_raw(&reg, "empty", None, Vec::new())
        .await
        .expect_error(400, "MANIFEST_INVALID");
    // Completing an upload with no data but a digest of something else.
    let loc = reg.start_upload("app").await;
    reg.call(
        Method::PUT,
        &with_query(&loc, &format!("digest={}", digest(b"x"))),
        &[],
        Body::empty(),
    )
    .await
    .expect_error(400, "DIGEST_INVALID");
    // A single-request upload with no body and a wrong digest.
    reg.call(
        Method::POST,
        &format!("/v2/app/blobs/uploads/?digest={}", digest(b"y")),
        &[("content-length", "0")],
        Body::empty(),
    )
    .await
    .expect_error(400, "DIGEST_INVALID");
    // An empty PATCH is harmless.
    let loc = reg.start_upload("app").await;
    let r = reg
        .call(
            Method::PATCH,
            &loc,
            &[("content-length", "0")],
            Body::empty(),
        )
        .await;
    assert!(
        r.status.as_u16() == 202 || r.status.as_u16() == 416,
        "{:?}",
        r.status
    );
    reg.get(&r.opt_header("location").map_or(loc, path_of))
        .await
        .expect(204);
}

#[tokio::test]
async fn errors_from_the_body_stream_are_client_errors() {
    let reg = Reg::memory();
    let chunks: Vec<Result<bytes::Bytes, std::io::Error>> = vec![
        Ok(bytes::Bytes::from_static(b"{\"schema")),
        Err(std::io::Error::other("connection reset")),
    ];
    let r = reg
        .call(
            Method::PUT,
            "/v2/app/manifests/broken",
            &[("content-type", OCI_MANIFEST)],
            Body::from_stream(futures::stream::iter(chunks)),
        )
        .await;
    assert!(r.status.is_client_error(), "{:?}", r.status);
    r.expect_error(400, "MANIFEST_INVALID");

    let chunks: Vec<Result<bytes::Bytes, std::io::Error>> = vec![
        Ok(bytes::Bytes::from_static(b"partial")),
        Err(std::io::Error::other("connection reset")),
    ];
    let r = reg
        .call(
            Method::POST,
            &format!(
                "/v2/app/blobs/uploads/?digest={}",
                digest(b"partial and more")
            ),
            &[],
            Body::from_stream(futures::stream::iter(chunks)),
        )
        .await;
    assert!(r.status.is_client_error(), "{:?}", r.status);
    r.expect_error(400, "BLOB_UPLOAD_INVALID");
}
