//! OCI conformance, push workflow for upload sessions: cross-repository
//! mounts, cancellation, unknown or foreign sessions, and the URLs written in
//! `Location` and `Link`.

mod common;

use axum::body::Body;
use axum::http::Method;
use common::*;

#[tokio::test]
async fn cross_repository_mount() {
    let reg = Reg::memory();
    let d = reg.push_blob("source/repo", b"shared layer").await;
    let r = reg
        .post(&format!(
            "/v2/target/repo/blobs/uploads/?mount={d}&from=source/repo"
        ))
        .await;
    r.expect(201);
    assert_eq!(r.location(), format!("/v2/target/repo/blobs/{d}"));
    assert_eq!(r.header("docker-content-digest"), d);
    let g = reg.get(&format!("/v2/target/repo/blobs/{d}")).await;
    g.expect(200);
    assert_eq!(&g.body[..], b"shared layer");
}

#[tokio::test]
async fn mount_of_missing_blob_opens_a_session() {
    let reg = Reg::memory();
    reg.push_blob("source", b"something else").await;
    let missing = absent_digest("mount");
    let r = reg
        .post(&format!(
            "/v2/target/blobs/uploads/?mount={missing}&from=source"
        ))
        .await;
    r.expect(202);
    let loc = r.location();
    assert!(loc.starts_with("/v2/target/blobs/uploads/"), "{loc}");
    reg.get(&loc).await.expect(204);
    reg.head(&format!("/v2/target/blobs/{missing}"))
        .await
        .expect(404);
}

#[tokio::test]
async fn mount_from_a_repo_that_lacks_the_blob_opens_a_session() {
    // The blob exists in storage, but not in the source repository.
    let reg = Reg::memory();
    let d = reg.push_blob("owner", b"owned by one repo").await;
    let r = reg
        .post(&format!(
            "/v2/target/blobs/uploads/?mount={d}&from=stranger"
        ))
        .await;
    r.expect(202);
    reg.head(&format!("/v2/target/blobs/{d}")).await.expect(404);
}

#[tokio::test]
async fn mount_without_from_depends_on_automount() {
    let reg = Reg::memory();
    let d = reg.push_blob("owner", b"automount me").await;
    let r = reg
        .post(&format!("/v2/target/blobs/uploads/?mount={d}"))
        .await;
    r.expect(202);

    let auto = reg.reopen(portcullis_core::Options {
        automount: true,
        ..portcullis_core::Options::default()
    });
    let r = auto
        .post(&format!("/v2/target/blobs/uploads/?mount={d}"))
        .await;
    r.expect(201);
    assert_eq!(r.location(), format!("/v2/target/blobs/{d}"));
    auto.head(&format!("/v2/target/blobs/{d}"))
        .await
        .expect(200);
}

#[tokio::test]
async fn delete_upload_session() {
    let reg = Reg::memory();
    let loc = reg.start_upload("cancel").await;
    let loc = reg
        .patch_chunk(&loc, 0, b"partial")
        .await
        .expect(202)
        .location();
    reg.delete(&loc).await.expect(204);
    reg.get(&loc).await.expect_error(404, "BLOB_UPLOAD_UNKNOWN");
    reg.patch_chunk(&loc, 7, b"more")
        .await
        .expect_error(404, "BLOB_UPLOAD_UNKNOWN");
    reg.delete(&loc)
        .await
        .expect_error(404, "BLOB_UPLOAD_UNKNOWN");
}

#[tokio::test]
async fn upload_id_that_is_not_a_uuid_is_unknown() {
    let reg = Reg::memory();
    reg.start_upload("ids").await;
    for id in [
        "not-a-uuid",
        "..",
        "%2e%2e",
        "00000000000000000000000000000000",
        "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11",
        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
    ] {
        let uri = format!("/v2/ids/blobs/uploads/{id}");
        reg.get(&uri).await.expect_error(404, "BLOB_UPLOAD_UNKNOWN");
        reg.patch_chunk(&uri, 0, b"x")
            .await
            .expect_error(404, "BLOB_UPLOAD_UNKNOWN");
        reg.call(
            Method::PUT,
            &format!("{uri}?digest={}", digest(b"x")),
            &[],
            &b"x"[..],
        )
        .await
        .expect_error(404, "BLOB_UPLOAD_UNKNOWN");
        reg.delete(&uri)
            .await
            .expect_error(404, "BLOB_UPLOAD_UNKNOWN");
    }
}

#[tokio::test]
async fn session_of_another_repository_is_unknown() {
    let reg = Reg::memory();
    let loc = reg.start_upload("mine").await;
    let id = loc
        .rsplit('/')
        .next()
        .expect("id")
        .split('?')
        .next()
        .expect("id")
        .to_owned();
    reg.get(&format!("/v2/theirs/blobs/uploads/{id}"))
        .await
        .expect_error(404, "BLOB_UPLOAD_UNKNOWN");
    reg.patch_chunk(&format!("/v2/theirs/blobs/uploads/{id}"), 0, b"x")
        .await
        .expect_error(404, "BLOB_UPLOAD_UNKNOWN");
    reg.get(&loc).await.expect(204);
}

#[tokio::test]
async fn put_without_digest_is_rejected() {
    let reg = Reg::memory();
    let loc = reg.start_upload("nodigest").await;
    let r = reg.call(Method::PUT, &loc, &[], &b"data"[..]).await;
    r.expect(400);
    let code = r.json()["errors"][0]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        code == "DIGEST_INVALID" || code == "BLOB_UPLOAD_INVALID",
        "{code}"
    );
    // The client may retry with a digest: the session is still there.
    reg.get(&loc).await.expect(204);
}

#[tokio::test]
async fn locations_follow_the_url_policy() {
    let reg = Reg::memory();
    // With a Host header and no configured host, URLs are absolute on that host.
    let r = reg
        .call(
            Method::POST,
            "/v2/urls/blobs/uploads/",
            &[("host", "registry.test:5000")],
            Body::empty(),
        )
        .await;
    r.expect(202);
    assert!(
        r.header("location")
            .starts_with("http://registry.test:5000/v2/urls/blobs/uploads/"),
        "{}",
        r.header("location")
    );
}

// registry:2 answers HEAD on an upload session like GET
// (registry/handlers/blobupload.go maps both to GetUploadStatus).
#[tokio::test]
async fn head_upload_status_like_distribution() {
    let reg = Reg::memory();
    let loc = reg.start_upload("status").await;
    let loc = reg
        .patch_chunk(&loc, 0, b"12345")
        .await
        .expect(202)
        .location();
    let r = reg.head(&loc).await;
    r.expect(204);
    assert_eq!(r.header("range"), "0-4");
    assert_eq!(r.location(), loc);
}

#[tokio::test]
async fn locations_and_links_follow_http_host_and_relativeurls() {
    use portcullis_server::UrlPolicy;
    let reg = Reg::memory();
    reg.push_image("app", "a", "urls").await;
    let (_, m) = reg.push_image("app", "b", "urls").await;
    reg.put_manifest("app", "c", OCI_MANIFEST, &m)
        .await
        .expect(201);
    let host = UrlPolicy {
        host: Some("https://registry.example.com/".to_owned()),
        ..UrlPolicy::default()
    };
    let relative = UrlPolicy {
        host: Some("https://registry.example.com".to_owned()),
        relative: true,
        ..UrlPolicy::default()
    };
    let prefixed = UrlPolicy {
        prefix: "/registry".to_owned(),
        ..UrlPolicy::default()
    };
    for (policy, base) in [
        (host, "https://registry.example.com"),
        (relative, ""),
        (prefixed, "http://internal:5000/registry"),
    ] {
        let app = policy_app(reg.driver.clone(), policy, CATALOG_MAX);
        let headers = [("host", "internal:5000")];
        let r = send(
            &app,
            request(
                Method::POST,
                "/v2/app/blobs/uploads/",
                &headers,
                Body::empty(),
            ),
        )
        .await;
        r.expect(202);
        let loc = r.header("location");
        assert!(
            loc.starts_with(&format!("{base}/v2/app/blobs/uploads/")),
            "{loc}"
        );
        let r = send(
            &app,
            request(
                Method::GET,
                "/v2/app/tags/list?n=1",
                &headers,
                Body::empty(),
            ),
        )
        .await;
        assert_eq!(
            r.header("link"),
            format!("<{base}/v2/app/tags/list?n=1&last=a>; rel=\"next\"")
        );
        let d = digest(b"policy");
        let r = send(
            &app,
            request(
                Method::POST,
                &format!("/v2/app/blobs/uploads/?digest={d}"),
                &headers,
                &b"policy"[..],
            ),
        )
        .await;
        r.expect(201);
        assert_eq!(r.header("location"), format!("{base}/v2/app/blobs/{d}"));
    }
}
