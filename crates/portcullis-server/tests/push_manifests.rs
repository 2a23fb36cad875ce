//! OCI conformance, push workflow for manifests: tags and digests, reference
//! checks, exact-byte digests, schema1, size limits, indexes and `subject`.

mod common;

use axum::http::Method;
use common::*;
use portcullis_core::Options;

/// Pushes a config and a layer, returning their (digest, size).
async fn blobs(reg: &Reg, repo: &str) -> ((String, usize), (String, usize)) {
    let config = b"{\"os\":\"linux\",\"architecture\":\"amd64\"}";
    let layer = b"a layer of the image".repeat(5);
    let c = reg.push_blob(repo, config).await;
    let l = reg.push_blob(repo, &layer).await;
    ((c, config.len()), (l, layer.len()))
}

#[tokio::test]
async fn put_by_tag_then_by_digest() {
    let reg = Reg::memory();
    let ((c, cs), (l, ls)) = blobs(&reg, "app").await;
    let m = image_manifest((&c, cs), &[(&l, ls)], "");
    let d = digest(&m);

    let r = reg.put_manifest("app", "v1", OCI_MANIFEST, &m).await;
    r.expect(201);
    assert_eq!(r.header("docker-content-digest"), d);
    assert_eq!(r.location(), format!("/v2/app/manifests/{d}"));

    let r = reg.put_manifest("app", &d, OCI_MANIFEST, &m).await;
    r.expect(201);
    assert_eq!(r.header("docker-content-digest"), d);
    assert_eq!(r.location(), format!("/v2/app/manifests/{d}"));

    reg.head(&format!("/v2/app/manifests/{d}"))
        .await
        .expect(200);
    reg.head("/v2/app/manifests/v1").await.expect(200);
}

#[tokio::test]
async fn retag_moves_the_tag() {
    let reg = Reg::memory();
    let (d1, _) = reg.push_image("app", "latest", "one").await;
    let (d2, _) = reg.push_image("app", "latest", "two").await;
    assert_ne!(d1, d2);
    let r = reg.head("/v2/app/manifests/latest").await;
    r.expect(200);
    assert_eq!(r.header("docker-content-digest"), d2);
    // The old manifest stays reachable by digest.
    reg.head(&format!("/v2/app/manifests/{d1}"))
        .await
        .expect(200);
}

#[tokio::test]
async fn unknown_config_or_layer_is_manifest_blob_unknown() {
    let reg = Reg::memory();
    let ((c, cs), (l, ls)) = blobs(&reg, "app").await;
    let missing = absent_digest("layer");

    let m = image_manifest((&missing, 10), &[(&l, ls)], "");
    let r = reg
        .put_manifest("app", "bad-config", OCI_MANIFEST, &m)
        .await;
    r.expect_error(400, "MANIFEST_BLOB_UNKNOWN");
    assert_eq!(r.json()["errors"][0]["detail"]["digest"], missing.as_str());

    let m = image_manifest((&c, cs), &[(&l, ls), (&missing, 10)], "");
    let r = reg.put_manifest("app", "bad-layer", OCI_MANIFEST, &m).await;
    r.expect_error(400, "MANIFEST_BLOB_UNKNOWN");
    assert_eq!(r.json()["errors"][0]["detail"]["digest"], missing.as_str());

    reg.get("/v2/app/manifests/bad-config")
        .await
        .expect_error(404, "MANIFEST_UNKNOWN");
    reg.get("/v2/app/manifests/bad-layer")
        .await
        .expect_error(404, "MANIFEST_UNKNOWN");
}

#[tokio::test]
async fn blobs_of_another_repository_do_not_count() {
    let reg = Reg::memory();
    let ((c, cs), (l, ls)) = blobs(&reg, "owner").await;
    let m = image_manifest((&c, cs), &[(&l, ls)], "");
    reg.put_manifest("other", "v1", OCI_MANIFEST, &m)
        .await
        .expect_error(400, "MANIFEST_BLOB_UNKNOWN");
}

#[tokio::test]
async fn foreign_layers_with_urls_are_not_checked() {
    let reg = Reg::memory();
    let ((c, cs), _) = blobs(&reg, "app").await;
    let foreign = absent_digest("foreign");
    let m = format!(
        "{{\"schemaVersion\":2,\"mediaType\":\"{OCI_MANIFEST}\",\"config\":{{\"mediaType\":\"{OCI_CONFIG}\",\"digest\":\"{c}\",\"size\":{cs}}},\"layers\":[{{\"mediaType\":\"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip\",\"digest\":\"{foreign}\",\"size\":5,\"urls\":[\"https://example.com/layer\"]}}]}}"
    );
    reg.put_manifest("app", "foreign", OCI_MANIFEST, m.as_bytes())
        .await
        .expect(201);
}

#[tokio::test]
async fn put_by_digest_must_match_the_bytes() {
    let reg = Reg::memory();
    let ((c, cs), (l, ls)) = blobs(&reg, "app").await;
    let m = image_manifest((&c, cs), &[(&l, ls)], "");
    let wrong = absent_digest("manifest");
    let r = reg.put_manifest("app", &wrong, OCI_MANIFEST, &m).await;
    r.expect_error(400, "DIGEST_INVALID");
    reg.head(&format!("/v2/app/manifests/{wrong}"))
        .await
        .expect(404);
    reg.head(&format!("/v2/app/manifests/{}", digest(&m)))
        .await
        .expect(404);
}

#[tokio::test]
async fn digest_is_computed_over_the_exact_bytes() {
    let reg = Reg::memory();
    let ((c, cs), (l, ls)) = blobs(&reg, "app").await;
    let m = format!(
        "{{\n   \"schemaVersion\" :   2,\r\n\t\"mediaType\": \"{OCI_MANIFEST}\",\n  \"config\": {{ \"mediaType\": \"{OCI_CONFIG}\", \"digest\": \"{c}\", \"size\": {cs} }},\n  \"layers\": [\n    {{ \"size\": {ls}, \"digest\": \"{l}\", \"mediaType\": \"{OCI_LAYER}\" }}\n  ],\n  \"annotations\": {{ \"z\": \"1\", \"a\": \"2\" }}\n}}\n\n"
    )
    .into_bytes();
    let d = digest(&m);
    let r = reg.put_manifest("app", "pretty", OCI_MANIFEST, &m).await;
    r.expect(201);
    assert_eq!(r.header("docker-content-digest"), d);

    for reference in ["pretty", d.as_str()] {
        let g = reg.get(&format!("/v2/app/manifests/{reference}")).await;
        g.expect(200);
        assert_eq!(g.header("docker-content-digest"), d);
        assert_eq!(&g.body[..], &m[..], "bytes must come back unchanged");
        assert_eq!(g.header("content-length"), m.len().to_string());
    }
    // Pushing the same bytes by digest is accepted.
    reg.put_manifest("app", &d, OCI_MANIFEST, &m)
        .await
        .expect(201);
}

#[tokio::test]
async fn schema1_is_refused_with_an_explanation() {
    let reg = Reg::memory();
    let body = br#"{"schemaVersion":1,"name":"app","tag":"v1","architecture":"amd64","fsLayers":[],"history":[]}"#;
    for ct in [
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
        "application/vnd.docker.distribution.manifest.v1+json",
        "application/json",
    ] {
        let r = reg.put_manifest("app", "old", ct, body).await;
        r.expect_error(400, "MANIFEST_INVALID");
        assert!(
            r.error_message().contains("schema1"),
            "{ct}: {}",
            r.error_message()
        );
    }
}

#[tokio::test]
async fn manifest_over_the_limit_is_413() {
    let reg = Reg::memory_with(Options {
        manifest_max_bytes: 512,
        ..Options::default()
    });
    let ((c, cs), (l, ls)) = blobs(&reg, "app").await;
    let pad = "x".repeat(600);
    let m = image_manifest(
        (&c, cs),
        &[(&l, ls)],
        &format!(",\"annotations\":{{\"pad\":\"{pad}\"}}"),
    );
    // With Content-Length.
    reg.put_manifest("app", "big", OCI_MANIFEST, &m)
        .await
        .expect(413);
    // Without Content-Length: the body is streamed and cut off at the limit.
    let chunks: Vec<Result<bytes::Bytes, std::io::Error>> = m
        .chunks(64)
        .map(|c| Ok(bytes::Bytes::copy_from_slice(c)))
        .collect();
    let r = reg
        .call(
            Method::PUT,
            "/v2/app/manifests/big",
            &[("content-type", OCI_MANIFEST)],
            axum::body::Body::from_stream(futures::stream::iter(chunks)),
        )
        .await;
    r.expect(413);
    assert!(r.json()["errors"][0]["code"].is_string());
    reg.get("/v2/app/manifests/big").await.expect(404);
    // A small manifest still fits.
    let small = image_manifest((&c, cs), &[(&l, ls)], "");
    assert!(small.len() <= 512, "{}", small.len());
    reg.put_manifest("app", "small", OCI_MANIFEST, &small)
        .await
        .expect(201);
}

#[tokio::test]
async fn index_with_missing_child_is_manifest_blob_unknown() {
    let reg = Reg::memory();
    let (child, child_bytes) = reg.push_image("multi", "amd64", "child").await;
    let missing = absent_digest("child");
    let idx = index_manifest(&[(&child, child_bytes.len()), (&missing, 123)], "");
    let r = reg.put_manifest("multi", "latest", OCI_INDEX, &idx).await;
    r.expect_error(400, "MANIFEST_BLOB_UNKNOWN");

    let ok = index_manifest(&[(&child, child_bytes.len())], "");
    let r = reg.put_manifest("multi", "latest", OCI_INDEX, &ok).await;
    r.expect(201);
    assert_eq!(r.header("docker-content-digest"), digest(&ok));
    let g = reg.get("/v2/multi/manifests/latest").await;
    g.expect(200);
    assert_eq!(g.header("content-type"), OCI_INDEX);
}

#[tokio::test]
async fn index_child_in_another_repository_does_not_count() {
    let reg = Reg::memory();
    let (child, child_bytes) = reg.push_image("one", "v1", "child").await;
    let idx = index_manifest(&[(&child, child_bytes.len())], "");
    reg.put_manifest("two", "latest", OCI_INDEX, &idx)
        .await
        .expect_error(400, "MANIFEST_BLOB_UNKNOWN");
}

#[tokio::test]
async fn manifest_with_subject_gets_oci_subject_header() {
    let reg = Reg::memory();
    let (subject, subject_bytes) = reg.push_image("app", "v1", "subject").await;
    let ((c, cs), _) = blobs(&reg, "app").await;
    let m = image_manifest(
        (&c, cs),
        &[],
        &format!(
            ",\"artifactType\":\"application/vnd.example.sbom\"{}",
            subject_field(&subject, subject_bytes.len())
        ),
    );
    let d = digest(&m);
    let r = reg.put_manifest("app", &d, OCI_MANIFEST, &m).await;
    r.expect(201);
    assert_eq!(r.header("oci-subject"), subject);
    assert_eq!(r.header("docker-content-digest"), d);
}

#[tokio::test]
async fn subject_may_point_at_a_manifest_not_yet_pushed() {
    // The spec lets a referrer arrive before its subject.
    let reg = Reg::memory();
    let ((c, cs), _) = blobs(&reg, "app").await;
    let future = absent_digest("subject");
    let m = image_manifest((&c, cs), &[], &subject_field(&future, 500));
    let r = reg.put_manifest("app", &digest(&m), OCI_MANIFEST, &m).await;
    r.expect(201);
    assert_eq!(r.header("oci-subject"), future);
    let refs = reg.get(&format!("/v2/app/referrers/{future}")).await;
    refs.expect(200);
    assert_eq!(refs.json()["manifests"][0]["digest"], digest(&m).as_str());
}

#[tokio::test]
async fn content_type_must_agree_with_media_type() {
    let reg = Reg::memory();
    let ((c, cs), (l, ls)) = blobs(&reg, "app").await;
    let m = image_manifest((&c, cs), &[(&l, ls)], "");
    reg.put_manifest("app", "v1", DOCKER_MANIFEST, &m)
        .await
        .expect_error(400, "MANIFEST_INVALID");
}

#[tokio::test]
async fn manifest_without_media_type_field_uses_content_type() {
    let reg = Reg::memory();
    let ((c, cs), (l, ls)) = blobs(&reg, "app").await;
    let m = format!(
        "{{\"schemaVersion\":2,\"config\":{{\"mediaType\":\"{OCI_CONFIG}\",\"digest\":\"{c}\",\"size\":{cs}}},\"layers\":[{{\"mediaType\":\"{OCI_LAYER}\",\"digest\":\"{l}\",\"size\":{ls}}}]}}"
    );
    reg.put_manifest("app", "bare", OCI_MANIFEST, m.as_bytes())
        .await
        .expect(201);
    let g = reg.get("/v2/app/manifests/bare").await;
    g.expect(200);
    assert_eq!(g.header("content-type"), OCI_MANIFEST);
    assert_eq!(&g.body[..], m.as_bytes());
}

#[tokio::test]
async fn artifact_with_empty_config_and_no_layers() {
    // oras pushes artifacts with the empty config descriptor `{}`.
    let reg = Reg::memory();
    let empty = reg.push_blob("art", b"{}").await;
    let m = image_manifest_typed(
        "application/vnd.oci.empty.v1+json",
        (&empty, 2),
        &[],
        ",\"artifactType\":\"application/vnd.example\"",
    );
    reg.put_manifest("art", "v1", OCI_MANIFEST, &m)
        .await
        .expect(201);
}

#[tokio::test]
async fn sha512_manifest_digest() {
    use sha2::{Digest as _, Sha512};
    let reg = Reg::memory();
    let ((c, cs), (l, ls)) = blobs(&reg, "app").await;
    let m = image_manifest((&c, cs), &[(&l, ls)], "");
    let d = format!("sha512:{}", hex::encode(Sha512::digest(&m)));
    let r = reg.put_manifest("app", &d, OCI_MANIFEST, &m).await;
    r.expect(201);
    assert_eq!(r.header("docker-content-digest"), d);
    let g = reg.get(&format!("/v2/app/manifests/{d}")).await;
    g.expect(200);
    assert_eq!(g.header("docker-content-digest"), d);
    assert_eq!(&g.body[..], &m[..]);
}

#[tokio::test]
async fn manifests_are_scoped_to_their_repository() {
    let reg = Reg::memory_with(delete_enabled());
    let (d, m) = reg.push_image("one", "v1", "scoped").await;
    reg.get(&format!("/v2/two/manifests/{d}")).await.expect(404);
    // The same manifest in a second repository, then deleted from the first.
    reg.push_image("two", "v1", "scoped").await;
    reg.put_manifest("two", "v1", OCI_MANIFEST, &m)
        .await
        .expect(201);
    reg.delete(&format!("/v2/one/manifests/{d}"))
        .await
        .expect(202);
    reg.get(&format!("/v2/one/manifests/{d}"))
        .await
        .expect_error(404, "MANIFEST_UNKNOWN");
    let g = reg.get("/v2/two/manifests/v1").await;
    g.expect(200);
    assert_eq!(&g.body[..], &m[..]);
}
