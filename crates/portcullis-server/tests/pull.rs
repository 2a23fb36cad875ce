//! OCI conformance, pull workflow: the base endpoint, manifests by tag and by
//! digest, blobs, and Range requests on blobs.

mod common;

use axum::http::Method;
use common::*;

#[tokio::test]
async fn base_endpoint_answers_with_api_version() {
    let reg = Reg::memory();
    for path in ["/v2/", "/v2"] {
        let r = reg.get(path).await;
        r.expect(200);
        assert_eq!(r.header("docker-distribution-api-version"), "registry/2.0");
    }
    let r = reg.head("/v2/").await;
    r.expect(200);
    assert_eq!(r.header("docker-distribution-api-version"), "registry/2.0");
}

#[tokio::test]
async fn api_version_header_is_on_errors_too() {
    let reg = Reg::memory();
    let r = reg
        .get(&format!("/v2/nope/blobs/{}", absent_digest("x")))
        .await;
    r.expect_error(404, "BLOB_UNKNOWN");
    assert_eq!(r.header("docker-distribution-api-version"), "registry/2.0");
}

#[tokio::test]
async fn manifest_by_tag_and_digest() {
    let reg = Reg::memory();
    let (d, bytes) = reg.push_image("library/app", "v1", "pull").await;
    for reference in ["v1", d.as_str()] {
        let uri = format!("/v2/library/app/manifests/{reference}");
        let r = reg
            .call(
                Method::GET,
                &uri,
                &[("accept", OCI_MANIFEST)],
                axum::body::Body::empty(),
            )
            .await;
        r.expect(200);
        assert_eq!(r.header("content-type"), OCI_MANIFEST);
        assert_eq!(r.header("docker-content-digest"), d);
        assert_eq!(r.header("content-length"), bytes.len().to_string());
        assert_eq!(&r.body[..], &bytes[..]);

        let h = reg
            .call(
                Method::HEAD,
                &uri,
                &[("accept", OCI_MANIFEST)],
                axum::body::Body::empty(),
            )
            .await;
        h.expect(200);
        assert_eq!(h.header("content-type"), OCI_MANIFEST);
        assert_eq!(h.header("docker-content-digest"), d);
        assert_eq!(h.header("content-length"), bytes.len().to_string());
        assert!(h.body.is_empty(), "HEAD must not have a body");
    }
}

#[tokio::test]
async fn manifest_without_accept_is_served_as_stored() {
    let reg = Reg::memory();
    let (d, bytes) = reg.push_image("app", "latest", "noaccept").await;
    let r = reg.get("/v2/app/manifests/latest").await;
    r.expect(200);
    assert_eq!(r.header("content-type"), OCI_MANIFEST);
    assert_eq!(r.header("docker-content-digest"), d);
    assert_eq!(&r.body[..], &bytes[..]);
    // A list of accepted types that includes the stored one works too.
    let r = reg
        .call(
            Method::GET,
            "/v2/app/manifests/latest",
            &[(
                "accept",
                &format!("{DOCKER_MANIFEST}, {OCI_MANIFEST};q=0.9"),
            )],
            axum::body::Body::empty(),
        )
        .await;
    r.expect(200);
    assert_eq!(&r.body[..], &bytes[..]);
}

#[tokio::test]
async fn docker_manifest_keeps_its_media_type() {
    let reg = Reg::memory();
    let config = b"{\"os\":\"linux\"}";
    let c = reg.push_blob("docker", config).await;
    let m = format!(
        "{{\"schemaVersion\":2,\"mediaType\":\"{DOCKER_MANIFEST}\",\"config\":{{\"mediaType\":\"application/vnd.docker.container.image.v1+json\",\"digest\":\"{c}\",\"size\":{}}},\"layers\":[]}}",
        config.len()
    );
    reg.put_manifest("docker", "v2", DOCKER_MANIFEST, m.as_bytes())
        .await
        .expect(201);
    let r = reg.get("/v2/docker/manifests/v2").await;
    r.expect(200);
    assert_eq!(r.header("content-type"), DOCKER_MANIFEST);
    assert_eq!(r.header("docker-content-digest"), digest(m.as_bytes()));
}

#[tokio::test]
async fn unknown_manifest_is_manifest_unknown() {
    let reg = Reg::memory();
    reg.push_image("app", "v1", "x").await;
    reg.get("/v2/app/manifests/nope")
        .await
        .expect_error(404, "MANIFEST_UNKNOWN");
    reg.get(&format!("/v2/app/manifests/{}", absent_digest("m")))
        .await
        .expect_error(404, "MANIFEST_UNKNOWN");
    // Unknown repository: still a 404 (MANIFEST_UNKNOWN or NAME_UNKNOWN are both allowed).
    let r = reg.get("/v2/never/pushed/manifests/latest").await;
    r.expect(404);
    let code = r.json()["errors"][0]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        code == "MANIFEST_UNKNOWN" || code == "NAME_UNKNOWN",
        "{code}"
    );
    let h = reg.head("/v2/app/manifests/nope").await;
    h.expect(404);
}

#[tokio::test]
async fn a_layer_is_not_a_manifest() {
    let reg = Reg::memory();
    let d = reg.push_blob("app", b"just a layer").await;
    reg.get(&format!("/v2/app/manifests/{d}"))
        .await
        .expect_error(404, "MANIFEST_UNKNOWN");
}

#[tokio::test]
async fn blob_get_and_head() {
    let reg = Reg::memory();
    let data = b"hello blob world".repeat(100);
    let d = reg.push_blob("app", &data).await;
    let uri = format!("/v2/app/blobs/{d}");
    let r = reg.get(&uri).await;
    r.expect(200);
    assert_eq!(&r.body[..], &data[..]);
    assert_eq!(r.header("content-length"), data.len().to_string());
    assert_eq!(r.header("docker-content-digest"), d);

    let h = reg.head(&uri).await;
    h.expect(200);
    assert_eq!(h.header("content-length"), data.len().to_string());
    assert_eq!(h.header("docker-content-digest"), d);
    assert!(h.body.is_empty());
}

#[tokio::test]
async fn unknown_blob_is_blob_unknown() {
    let reg = Reg::memory();
    reg.push_blob("app", b"x").await;
    let uri = format!("/v2/app/blobs/{}", absent_digest("b"));
    reg.get(&uri).await.expect_error(404, "BLOB_UNKNOWN");
    reg.head(&uri).await.expect(404);
}

#[tokio::test]
async fn blob_is_scoped_to_its_repository() {
    let reg = Reg::memory();
    let d = reg.push_blob("one", b"private to one").await;
    reg.get(&format!("/v2/one/blobs/{d}")).await.expect(200);
    reg.get(&format!("/v2/two/blobs/{d}"))
        .await
        .expect_error(404, "BLOB_UNKNOWN");
}

#[tokio::test]
async fn empty_blob() {
    let reg = Reg::memory();
    let d = reg.push_blob("app", b"").await;
    assert_eq!(d, EMPTY_DIGEST);
    let r = reg.get(&format!("/v2/app/blobs/{d}")).await;
    r.expect(200);
    assert_eq!(r.header("content-length"), "0");
    assert!(r.body.is_empty());
}

async fn ranged(reg: &Reg, uri: &str, range: &str) -> Resp {
    reg.call(
        Method::GET,
        uri,
        &[("range", range)],
        axum::body::Body::empty(),
    )
    .await
}

#[tokio::test]
async fn blob_range_requests() {
    let reg = Reg::memory();
    let data: Vec<u8> = (0..100u8).collect();
    let d = reg.push_blob("app", &data).await;
    let uri = format!("/v2/app/blobs/{d}");

    let cases: &[(&str, usize, usize)] = &[
        ("bytes=0-9", 0, 9),
        ("bytes=10-19", 10, 19),
        ("bytes=90-", 90, 99),
        ("bytes=-5", 95, 99),
        ("bytes=50-500", 50, 99),
        ("bytes=99-99", 99, 99),
        ("bytes=0-99", 0, 99),
    ];
    for &(range, start, end) in cases {
        let r = ranged(&reg, &uri, range).await;
        assert_eq!(r.status.as_u16(), 206, "{range}");
        assert_eq!(
            r.header("content-range"),
            format!("bytes {start}-{end}/100"),
            "{range}"
        );
        assert_eq!(
            r.header("content-length"),
            (end - start + 1).to_string(),
            "{range}"
        );
        assert_eq!(&r.body[..], &data[start..=end], "{range}");
    }
}

#[tokio::test]
async fn blob_range_unsatisfiable_or_malformed_is_416() {
    let reg = Reg::memory();
    let data: Vec<u8> = (0..100u8).collect();
    let d = reg.push_blob("app", &data).await;
    let uri = format!("/v2/app/blobs/{d}");
    for range in [
        "bytes=100-",
        "bytes=200-300",
        "bytes=9-0",
        "bytes=abc",
        "bytes=a-b",
        "bytes=-0",
        "bytes=-",
        "bytes=0-1,5-6",
        "items=0-9",
        "bytes=18446744073709551616-",
    ] {
        let r = ranged(&reg, &uri, range).await;
        r.expect_error(416, "RANGE_INVALID");
        assert_eq!(r.header("content-range"), "bytes */100", "{range}");
    }
}

#[tokio::test]
async fn manifest_is_also_readable_as_blob() {
    // distribution serves a manifest's bytes from the blob endpoint too.
    let reg = Reg::memory();
    let (d, bytes) = reg.push_image("app", "v1", "asblob").await;
    let r = reg.get(&format!("/v2/app/blobs/{d}")).await;
    r.expect(200);
    assert_eq!(&r.body[..], &bytes[..]);
}

#[tokio::test]
async fn index_is_negotiated_down_for_clients_that_cannot_read_it() {
    let reg = Reg::memory();
    let (child, child_bytes) = reg.push_image("multi", "amd64", "child").await;
    let idx = index_manifest(&[(&child, child_bytes.len())], "");
    reg.put_manifest("multi", "latest", OCI_INDEX, &idx)
        .await
        .expect(201);

    let r = reg
        .call(
            Method::GET,
            "/v2/multi/manifests/latest",
            &[("accept", OCI_INDEX)],
            axum::body::Body::empty(),
        )
        .await;
    r.expect(200);
    assert_eq!(r.header("content-type"), OCI_INDEX);
    assert_eq!(r.header("docker-content-digest"), digest(&idx));

    let r = reg
        .call(
            Method::GET,
            "/v2/multi/manifests/latest",
            &[("accept", OCI_MANIFEST)],
            axum::body::Body::empty(),
        )
        .await;
    r.expect(200);
    assert_eq!(r.header("docker-content-digest"), child);
    assert_eq!(&r.body[..], &child_bytes[..]);
}

/// The conformance suite's "nonexistent manifest" is a reference that is not
/// a valid tag: GET and HEAD must answer 404, as for any unknown manifest.
#[tokio::test]
async fn conformance_invalid_manifest_name_is_unknown_on_read() {
    let reg = Reg::memory();
    let (_, m) = reg.push_image("conformance/app", "v1", "c").await;
    let uri = "/v2/conformance/app/manifests/.INVALID_MANIFEST_NAME";
    reg.get(uri).await.expect_error(404, "MANIFEST_UNKNOWN");
    let r = reg.head(uri).await;
    assert_eq!(r.status.as_u16(), 404);
    reg.put_manifest(
        "conformance/app",
        ".INVALID_MANIFEST_NAME",
        OCI_MANIFEST,
        &m,
    )
    .await
    .expect_error(400, "TAG_INVALID");
}
