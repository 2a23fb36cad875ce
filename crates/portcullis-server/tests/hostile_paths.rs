//! Bad input in the URL never gives a 500: malformed repository names,
//! digests, tags, query parameters, unknown endpoints and wrong methods each
//! get a 4xx with an OCI error body and the precise code.

mod common;

use axum::body::Body;
use axum::http::Method;
use common::*;

fn bad_names() -> Vec<String> {
    vec![
        "Upper".into(),
        "app/Upper".into(),
        "a/../b".into(),
        "..".into(),
        "a/./b".into(),
        "a".repeat(256),
        format!("{}/{}", "a".repeat(200), "b".repeat(60)),
        "a/".into(),
        "a//b".into(),
        "/a".into(),
        "-a".into(),
        "a-".into(),
        "a...b".into(),
        "a___b".into(),
        "a%2Fb".into(),
        "%C3%A9t%C3%A9".into(),
        "a%00b".into(),
        "a b".replace(' ', "%20"),
        "a".repeat(60_000),
    ]
}

#[tokio::test]
async fn malformed_names_are_name_invalid_on_every_endpoint() {
    let reg = Reg::memory();
    let d = absent_digest("x");
    for name in bad_names() {
        let shown: String = name.chars().take(40).collect();
        for (method, path) in [
            (Method::GET, format!("/v2/{name}/tags/list")),
            (Method::GET, format!("/v2/{name}/manifests/latest")),
            (Method::HEAD, format!("/v2/{name}/manifests/{d}")),
            (Method::PUT, format!("/v2/{name}/manifests/latest")),
            (Method::DELETE, format!("/v2/{name}/manifests/latest")),
            (Method::GET, format!("/v2/{name}/blobs/{d}")),
            (Method::DELETE, format!("/v2/{name}/blobs/{d}")),
            (Method::POST, format!("/v2/{name}/blobs/uploads/")),
            (Method::GET, format!("/v2/{name}/referrers/{d}")),
        ] {
            let r = reg.call(method.clone(), &path, &[], Body::empty()).await;
            assert_eq!(
                r.status.as_u16(),
                400,
                "{method} {shown}: {}",
                String::from_utf8_lossy(&r.body)
            );
            if method != Method::HEAD {
                r.expect_error(400, "NAME_INVALID");
            }
        }
    }
}

#[tokio::test]
async fn longest_valid_name_works() {
    let reg = Reg::memory();
    let name = format!("{}/{}", "a".repeat(127), "b".repeat(127));
    assert_eq!(name.len(), 255);
    reg.get(&format!("/v2/{name}/tags/list"))
        .await
        .expect_error(404, "NAME_UNKNOWN");
    let d = reg.push_blob(&name, b"long name").await;
    reg.head(&format!("/v2/{name}/blobs/{d}")).await.expect(200);
}

#[tokio::test]
async fn longest_valid_name_works_on_the_filesystem() {
    let reg = Reg::fs_with(portcullis_core::Options::default());
    let name = format!("{}/{}", "a".repeat(127), "b".repeat(127));
    let (d, _) = reg.push_image(&name, "v1", "fs").await;
    reg.head(&format!("/v2/{name}/manifests/{d}"))
        .await
        .expect(200);
}

fn bad_digests() -> Vec<String> {
    vec![
        "sha256:totallywrong".into(),
        "md5:d41d8cd98f00b204e9800998ecf8427e".into(),
        format!("sha256:{}", "a".repeat(63)),
        format!("sha256:{}", "a".repeat(65)),
        format!("sha256:{}", "A".repeat(64)),
        format!("sha512:{}", "a".repeat(64)),
        "sha256:".into(),
        format!(":{}", "a".repeat(64)),
        format!("SHA256:{}", "a".repeat(64)),
        format!("sha256:{}", "g".repeat(64)),
        format!("sha256:{}", "a".repeat(60_000)),
    ]
}

#[tokio::test]
async fn malformed_digests_are_digest_invalid() {
    let reg = Reg::memory();
    reg.push_image("app", "v1", "x").await;
    for d in bad_digests() {
        let shown: String = d.chars().take(40).collect();
        // A read of something that cannot exist is simply unknown (the
        // OCI conformance suite and distribution's router agree).
        for (method, path, code) in [
            (Method::GET, format!("/v2/app/blobs/{d}"), "BLOB_UNKNOWN"),
            (Method::HEAD, format!("/v2/app/blobs/{d}"), "BLOB_UNKNOWN"),
            (
                Method::GET,
                format!("/v2/app/manifests/{d}"),
                "MANIFEST_UNKNOWN",
            ),
        ] {
            let r = reg.call(method.clone(), &path, &[], Body::empty()).await;
            assert_eq!(r.status.as_u16(), 404, "{method} {shown}");
            if method != Method::HEAD {
                r.expect_error(404, code);
            }
        }
        for (method, path) in [
            (Method::DELETE, format!("/v2/app/blobs/{d}")),
            (Method::PUT, format!("/v2/app/manifests/{d}")),
            (Method::GET, format!("/v2/app/referrers/{d}")),
            (Method::POST, format!("/v2/app/blobs/uploads/?digest={d}")),
        ] {
            let r = reg.call(method.clone(), &path, &[], Body::empty()).await;
            assert_eq!(r.status.as_u16(), 400, "{method} {shown}");
            r.expect_error(400, "DIGEST_INVALID");
        }
        let loc = reg.start_upload("app").await;
        reg.call(
            Method::PUT,
            &with_query(&loc, &format!("digest={d}")),
            &[],
            &b"x"[..],
        )
        .await
        .expect_error(400, "DIGEST_INVALID");
        // A valid session is not harmed by a bad digest.
        reg.get(&loc).await.expect(204);
    }
}

#[tokio::test]
async fn blob_path_without_algorithm_is_digest_invalid() {
    let reg = Reg::memory();
    reg.get("/v2/app/blobs/notadigest")
        .await
        .expect_error(404, "BLOB_UNKNOWN");
    reg.delete("/v2/app/blobs/notadigest")
        .await
        .expect_error(400, "DIGEST_INVALID");
}

#[tokio::test]
async fn malformed_mount_digest_is_rejected() {
    let reg = Reg::memory();
    reg.push_blob("src", b"x").await;
    let r = reg
        .post("/v2/dst/blobs/uploads/?mount=sha256:bad&from=src")
        .await;
    assert!(r.status.is_client_error(), "{:?}", r.status);
    r.expect_error(400, "DIGEST_INVALID");
    let r = reg
        .post(&format!(
            "/v2/dst/blobs/uploads/?mount={}&from=Bad..Name",
            digest(b"x")
        ))
        .await;
    r.expect_error(400, "NAME_INVALID");
}

#[tokio::test]
async fn malformed_tags_are_tag_invalid() {
    let reg = Reg::memory();
    let (_, m) = reg.push_image("app", "v1", "x").await;
    for tag in [
        "-x",
        ".x",
        &"a".repeat(129),
        "a%20b",
        "a%2Fb",
        "t%C3%A9",
        "a+b",
        &"t".repeat(60_000),
    ] {
        let shown: String = tag.chars().take(40).collect();
        let r = reg.get(&format!("/v2/app/manifests/{tag}")).await;
        assert_eq!(r.status.as_u16(), 404, "{shown}");
        r.expect_error(404, "MANIFEST_UNKNOWN");
        let r = reg.head(&format!("/v2/app/manifests/{tag}")).await;
        assert_eq!(r.status.as_u16(), 404, "HEAD {shown}");
        reg.put_manifest("app", tag, OCI_MANIFEST, &m)
            .await
            .expect_error(400, "TAG_INVALID");
    }
    // An empty reference.
    reg.get("/v2/app/manifests/")
        .await
        .expect_error(404, "MANIFEST_UNKNOWN");
    reg.call(Method::DELETE, "/v2/app/manifests/", &[], Body::empty())
        .await
        .expect_error(400, "TAG_INVALID");
    // 128 characters is the limit, and `_` may start a tag.
    let longest = "a".repeat(128);
    reg.put_manifest("app", &longest, OCI_MANIFEST, &m)
        .await
        .expect(201);
    reg.put_manifest("app", "_under", OCI_MANIFEST, &m)
        .await
        .expect(201);
    reg.head(&format!("/v2/app/manifests/{longest}"))
        .await
        .expect(200);
}

#[tokio::test]
async fn unknown_endpoints_are_404_with_an_error_body() {
    let reg = Reg::memory();
    for path in [
        "/v2/app/unknown",
        "/v2/app/tags",
        "/v2/app/tags/list/extra",
        "/v2/app/blobs",
        "/v2/_catalog/extra",
        "/v3/",
        "/",
        "/v2x",
    ] {
        let r = reg.get(path).await;
        assert_eq!(r.status.as_u16(), 404, "{path}");
        r.expect_error(404, "NOT_FOUND");
    }
}

#[tokio::test]
async fn wrong_methods_are_405_unsupported() {
    let reg = Reg::memory();
    let d = absent_digest("m");
    for (method, path) in [
        (Method::POST, "/v2/app/manifests/latest".to_owned()),
        (Method::PATCH, "/v2/app/manifests/latest".to_owned()),
        (Method::PUT, format!("/v2/app/blobs/{d}")),
        (Method::PATCH, format!("/v2/app/blobs/{d}")),
        (Method::POST, format!("/v2/app/blobs/{d}")),
        (Method::PUT, "/v2/".to_owned()),
        (Method::POST, "/v2/_catalog".to_owned()),
        (Method::DELETE, "/v2/_catalog".to_owned()),
        (Method::PUT, "/v2/app/tags/list".to_owned()),
        (Method::GET, "/v2/app/blobs/uploads/".to_owned()),
        (Method::PUT, "/v2/app/blobs/uploads/".to_owned()),
        (Method::OPTIONS, "/v2/app/tags/list".to_owned()),
    ] {
        let r = reg.call(method.clone(), &path, &[], Body::empty()).await;
        assert_eq!(r.status.as_u16(), 405, "{method} {path}");
        r.expect_error(405, "UNSUPPORTED");
    }
}

#[tokio::test]
async fn garbage_query_strings_are_handled() {
    let reg = Reg::memory();
    reg.push_image("app", "v1", "q").await;
    reg.get("/v2/app/tags/list?n=%FF")
        .await
        .expect_error(400, "PAGINATION_NUMBER_INVALID");
    reg.get("/v2/app/tags/list?last=%00%FF&n=1")
        .await
        .expect(200);
    reg.get("/v2/app/tags/list?&&&=&n").await;
    let r = reg.get("/v2/app/tags/list?%%%").await;
    assert!(r.status.as_u16() < 500);
    let r = reg
        .get(&format!("/v2/app/tags/list?last={}", "z".repeat(60_000)))
        .await;
    r.expect(200);
    let r = reg
        .get(&format!(
            "/v2/app/referrers/{}?artifactType=%FF%00",
            absent_digest("q")
        ))
        .await;
    r.expect(200);
}

#[tokio::test]
async fn unusual_but_valid_names_work() {
    // Names that contain the API's own path words must still route correctly.
    let reg = Reg::memory();
    for name in [
        "a__b",
        "a.b",
        "a--b",
        "0",
        "a/b/c/d/e/f",
        "manifests",
        "tags/list",
        "x/blobs",
        "blobs/uploads",
        "x/blobs/uploads",
        "a/referrers",
        "v2",
        "_catalog".trim_start_matches('_'),
    ] {
        reg.get(&format!("/v2/{name}/tags/list"))
            .await
            .expect_error(404, "NAME_UNKNOWN");
        let (d, _) = reg.push_image(name, "latest", name).await;
        let loc = reg.start_upload(name).await;
        let loc = reg
            .patch_chunk(&loc, 0, b"abc")
            .await
            .expect(202)
            .location();
        reg.call(
            Method::PUT,
            &with_query(&loc, &format!("digest={}", digest(b"abc"))),
            &[],
            Body::empty(),
        )
        .await
        .expect(201);
        reg.head(&format!("/v2/{name}/blobs/{}", digest(b"abc")))
            .await
            .expect(200);
        reg.head(&format!("/v2/{name}/manifests/{d}"))
            .await
            .expect(200);
        let t = reg.get(&format!("/v2/{name}/tags/list")).await;
        t.expect(200);
        assert_eq!(t.json()["name"], name);
        assert_eq!(t.json()["tags"], serde_json::json!(["latest"]), "{name}");
        reg.get(&format!("/v2/{name}/referrers/{d}"))
            .await
            .expect(200);
    }
}

#[tokio::test]
async fn unusual_but_valid_tags_work() {
    let reg = Reg::memory();
    let (_, m) = reg.push_image("app", "v1", "tags").await;
    for tag in ["LATEST", "1", "_", "a.b-c_d", "v1.0.0-rc.1", "a..b", "a--"] {
        reg.put_manifest("app", tag, OCI_MANIFEST, &m)
            .await
            .expect(201);
        reg.head(&format!("/v2/app/manifests/{tag}"))
            .await
            .expect(200);
    }
}
