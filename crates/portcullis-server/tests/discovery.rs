//! OCI conformance, content discovery: tags (sorted, paginated with `n`,
//! `last` and `Link`), the catalog, and the referrers API.

mod common;

use axum::http::Method;
use common::*;

/// Pushes one image and tags it with every tag in `tags`.
async fn tagged(reg: &Reg, repo: &str, tags: &[&str]) -> String {
    let (d, m) = reg.push_image(repo, tags[0], repo).await;
    for t in &tags[1..] {
        reg.put_manifest(repo, t, OCI_MANIFEST, &m)
            .await
            .expect(201);
    }
    d
}

fn tags_of(r: &Resp) -> Vec<String> {
    r.json()["tags"]
        .as_array()
        .unwrap_or_else(|| panic!("no tags array: {}", r.json()))
        .iter()
        .map(|t| t.as_str().expect("tag is a string").to_owned())
        .collect()
}

/// The target of `Link: <url>; rel="next"`, as a path.
#[track_caller]
fn next_link(r: &Resp) -> String {
    let link = r.header("link");
    let (url, rel) = link
        .split_once(';')
        .unwrap_or_else(|| panic!("malformed Link: {link}"));
    assert_eq!(rel.trim(), "rel=\"next\"", "{link}");
    let url = url.trim();
    assert!(url.starts_with('<') && url.ends_with('>'), "{link}");
    path_of(&url[1..url.len() - 1])
}

#[tokio::test]
async fn tags_are_listed_sorted() {
    let reg = Reg::memory();
    tagged(&reg, "app", &["latest", "1.0", "B", "a", "v10", "v2", "_x"]).await;
    let r = reg.get("/v2/app/tags/list").await;
    r.expect(200);
    assert!(r.header("content-type").starts_with("application/json"));
    assert_eq!(r.json()["name"], "app");
    let mut expected = vec!["latest", "1.0", "B", "a", "v10", "v2", "_x"];
    expected.sort_unstable();
    assert_eq!(tags_of(&r), expected);
    assert!(r.opt_header("link").is_none());
}

#[tokio::test]
async fn tags_pagination_with_n_last_and_link() {
    let reg = Reg::memory();
    tagged(&reg, "app", &["e", "d", "c", "b", "a"]).await;

    let r = reg.get("/v2/app/tags/list?n=2").await;
    r.expect(200);
    assert_eq!(tags_of(&r), ["a", "b"]);
    let next = next_link(&r);
    assert!(next.starts_with("/v2/app/tags/list?"), "{next}");
    assert!(next.contains("n=2") && next.contains("last=b"), "{next}");

    let r = reg.get(&next).await;
    r.expect(200);
    assert_eq!(tags_of(&r), ["c", "d"]);
    let next = next_link(&r);

    let r = reg.get(&next).await;
    r.expect(200);
    assert_eq!(tags_of(&r), ["e"]);
    assert!(r.opt_header("link").is_none(), "the last page has no Link");

    // `last` alone.
    let r = reg.get("/v2/app/tags/list?last=c").await;
    assert_eq!(tags_of(&r), ["d", "e"]);
    // `last` need not be an existing tag.
    let r = reg.get("/v2/app/tags/list?last=bb&n=1").await;
    assert_eq!(tags_of(&r), ["c"]);
    // `n` larger than the list.
    let r = reg.get("/v2/app/tags/list?n=100").await;
    assert_eq!(tags_of(&r), ["a", "b", "c", "d", "e"]);
    assert!(r.opt_header("link").is_none());
    // Exactly the size of the list: no next page.
    let r = reg.get("/v2/app/tags/list?n=5").await;
    assert_eq!(tags_of(&r).len(), 5);
    assert!(
        r.opt_header("link").is_none(),
        "no Link when nothing follows"
    );
    // Past the end.
    let r = reg.get("/v2/app/tags/list?last=z").await;
    r.expect(200);
    assert!(tags_of(&r).is_empty());
}

#[tokio::test]
async fn tags_n_zero_returns_no_tags() {
    let reg = Reg::memory();
    tagged(&reg, "app", &["a", "b"]).await;
    let r = reg.get("/v2/app/tags/list?n=0").await;
    r.expect(200);
    assert!(tags_of(&r).is_empty());
}

#[tokio::test]
async fn pagination_number_must_be_a_number() {
    let reg = Reg::memory();
    tagged(&reg, "app", &["a"]).await;
    for n in ["abc", "-1", "1.5", "99999999999999999999999", "0x10"] {
        reg.get(&format!("/v2/app/tags/list?n={n}"))
            .await
            .expect_error(400, "PAGINATION_NUMBER_INVALID");
        reg.get(&format!("/v2/_catalog?n={n}"))
            .await
            .expect_error(400, "PAGINATION_NUMBER_INVALID");
    }
}

#[tokio::test]
async fn tags_of_unknown_repository_is_name_unknown() {
    let reg = Reg::memory();
    reg.get("/v2/nobody/here/tags/list")
        .await
        .expect_error(404, "NAME_UNKNOWN");
}

#[tokio::test]
async fn repository_with_blobs_but_no_tags_lists_empty() {
    let reg = Reg::memory();
    reg.push_blob("blobsonly", b"layer").await;
    let r = reg.get("/v2/blobsonly/tags/list").await;
    r.expect(200);
    assert!(tags_of(&r).is_empty());
}

#[tokio::test]
async fn catalog_lists_repositories_with_pagination() {
    let reg = Reg::memory();
    for repo in ["zeta", "alpha", "team/app", "team/app/sub", "beta"] {
        reg.push_image(repo, "v1", repo).await;
    }
    let r = reg.get("/v2/_catalog").await;
    r.expect(200);
    let all: Vec<String> = r.json()["repositories"]
        .as_array()
        .expect("repositories")
        .iter()
        .map(|v| v.as_str().expect("string").to_owned())
        .collect();
    assert_eq!(all, ["alpha", "beta", "team/app", "team/app/sub", "zeta"]);

    let mut seen = Vec::new();
    let mut uri = "/v2/_catalog?n=2".to_owned();
    for _ in 0..10 {
        let r = reg.get(&uri).await;
        r.expect(200);
        let page: Vec<String> = r.json()["repositories"]
            .as_array()
            .expect("repositories")
            .iter()
            .map(|v| v.as_str().expect("string").to_owned())
            .collect();
        assert!(page.len() <= 2);
        seen.extend(page);
        match r.opt_header("link") {
            Some(_) => {
                uri = next_link(&r);
                assert!(uri.starts_with("/v2/_catalog?"), "{uri}");
            }
            None => break,
        }
    }
    assert_eq!(seen, all);

    let r = reg.get("/v2/_catalog?last=beta").await;
    assert_eq!(r.json()["repositories"][0], "team/app");
}

#[tokio::test]
async fn catalog_pages_are_capped_by_catalog_max() {
    let reg = Reg::memory();
    for repo in ["a", "b", "c"] {
        reg.push_blob(repo, repo.as_bytes()).await;
    }
    let capped = policy_app(
        reg.driver.clone(),
        portcullis_server::UrlPolicy::default(),
        2,
    );
    for uri in ["/v2/_catalog", "/v2/_catalog?n=50"] {
        let r = send(
            &capped,
            request(Method::GET, uri, &[], axum::body::Body::empty()),
        )
        .await;
        r.expect(200);
        assert_eq!(
            r.json()["repositories"],
            serde_json::json!(["a", "b"]),
            "{uri}"
        );
        let next = next_link(&r);
        assert!(next.contains("last=b"), "{next}");
        let r = send(
            &capped,
            request(Method::GET, &next, &[], axum::body::Body::empty()),
        )
        .await;
        assert_eq!(r.json()["repositories"], serde_json::json!(["c"]));
        assert!(r.opt_header("link").is_none());
    }
}

#[tokio::test]
async fn empty_catalog() {
    let reg = Reg::memory();
    let r = reg.get("/v2/_catalog").await;
    r.expect(200);
    assert_eq!(r.json()["repositories"], serde_json::json!([]));
}

const SBOM: &str = "application/vnd.example.sbom.v1";
const SIG: &str = "application/vnd.example.signature.v1";

/// Pushes an image and two artifacts that refer to it; returns
/// (subject digest, [(artifact digest, size, artifactType)]).
async fn image_with_referrers(
    reg: &Reg,
    repo: &str,
) -> (String, Vec<(String, usize, &'static str)>) {
    let (subject, subject_bytes) = reg.push_image(repo, "v1", "subject").await;
    let empty = reg.push_blob(repo, b"{}").await;
    let mut out = Vec::new();
    for (ty, note) in [(SBOM, "sbom"), (SIG, "signature")] {
        let extra = format!(
            ",\"artifactType\":\"{ty}\"{},\"annotations\":{{\"org.example.kind\":\"{note}\"}}",
            subject_field(&subject, subject_bytes.len())
        );
        let m = image_manifest_typed(
            "application/vnd.oci.empty.v1+json",
            (&empty, 2),
            &[],
            &extra,
        );
        let d = digest(&m);
        let r = reg.put_manifest(repo, &d, OCI_MANIFEST, &m).await;
        r.expect(201);
        assert_eq!(r.header("oci-subject"), subject);
        out.push((d, m.len(), ty));
    }
    (subject, out)
}

#[tokio::test]
async fn referrers_lists_artifacts() {
    let reg = Reg::memory();
    let (subject, artifacts) = image_with_referrers(&reg, "app").await;
    let r = reg.get(&format!("/v2/app/referrers/{subject}")).await;
    r.expect(200);
    assert_eq!(r.header("content-type"), OCI_INDEX);
    assert!(r.opt_header("oci-filters-applied").is_none());
    let v = r.json();
    assert_eq!(v["schemaVersion"], 2);
    assert_eq!(v["mediaType"], OCI_INDEX);
    let list = v["manifests"].as_array().expect("manifests");
    assert_eq!(list.len(), 2, "{v}");
    for (d, size, ty) in &artifacts {
        let e = list
            .iter()
            .find(|e| e["digest"] == d.as_str())
            .unwrap_or_else(|| panic!("{d} missing from {v}"));
        assert_eq!(e["mediaType"], OCI_MANIFEST);
        assert_eq!(e["size"], *size);
        assert_eq!(e["artifactType"], *ty);
        let kind = if *ty == SBOM { "sbom" } else { "signature" };
        assert_eq!(e["annotations"]["org.example.kind"], kind);
    }
}

#[tokio::test]
async fn referrers_filter_by_artifact_type() {
    let reg = Reg::memory();
    let (subject, artifacts) = image_with_referrers(&reg, "app").await;
    let r = reg
        .get(&format!("/v2/app/referrers/{subject}?artifactType={SBOM}"))
        .await;
    r.expect(200);
    assert_eq!(r.header("oci-filters-applied"), "artifactType");
    let v = r.json();
    let list = v["manifests"].as_array().expect("manifests");
    assert_eq!(list.len(), 1, "{v}");
    assert_eq!(list[0]["digest"], artifacts[0].0.as_str());
    assert_eq!(list[0]["artifactType"], SBOM);

    // Percent-encoded, as most clients send it.
    let encoded = SBOM.replace('/', "%2F");
    let r = reg
        .get(&format!(
            "/v2/app/referrers/{subject}?artifactType={encoded}"
        ))
        .await;
    assert_eq!(r.json()["manifests"].as_array().map(Vec::len), Some(1));

    let r = reg
        .get(&format!(
            "/v2/app/referrers/{subject}?artifactType=application/unknown"
        ))
        .await;
    r.expect(200);
    assert_eq!(r.header("oci-filters-applied"), "artifactType");
    assert_eq!(r.json()["manifests"], serde_json::json!([]));
}

#[tokio::test]
async fn referrers_artifact_type_falls_back_to_config_media_type() {
    let reg = Reg::memory();
    let (subject, subject_bytes) = reg.push_image("app", "v1", "s").await;
    let cfg = reg.push_blob("app", b"{\"sig\":1}").await;
    let m = image_manifest_typed(
        "application/vnd.example.config",
        (&cfg, 9),
        &[],
        &subject_field(&subject, subject_bytes.len()),
    );
    reg.put_manifest("app", &digest(&m), OCI_MANIFEST, &m)
        .await
        .expect(201);
    let r = reg.get(&format!("/v2/app/referrers/{subject}")).await;
    assert_eq!(
        r.json()["manifests"][0]["artifactType"],
        "application/vnd.example.config"
    );
}

#[tokio::test]
async fn referrers_of_unknown_digest_is_empty_index() {
    let reg = Reg::memory();
    reg.push_image("app", "v1", "x").await;
    for repo in ["app", "never-pushed"] {
        let r = reg
            .get(&format!(
                "/v2/{repo}/referrers/{}",
                absent_digest("subject")
            ))
            .await;
        r.expect(200);
        assert_eq!(r.header("content-type"), OCI_INDEX);
        let v = r.json();
        assert_eq!(v["schemaVersion"], 2);
        assert_eq!(v["mediaType"], OCI_INDEX);
        assert_eq!(v["manifests"], serde_json::json!([]));
    }
}

#[tokio::test]
async fn referrers_include_index_artifacts_and_are_per_repository() {
    let reg = Reg::memory();
    let (subject, subject_bytes) = reg.push_image("app", "v1", "s").await;
    let idx = index_manifest(
        &[],
        &format!(
            ",\"artifactType\":\"application/vnd.example.bundle\"{}",
            subject_field(&subject, subject_bytes.len())
        ),
    );
    let r = reg.put_manifest("app", "bundle", OCI_INDEX, &idx).await;
    r.expect(201);
    assert_eq!(r.header("oci-subject"), subject);
    let r = reg.get(&format!("/v2/app/referrers/{subject}")).await;
    let v = r.json();
    assert_eq!(v["manifests"][0]["digest"], digest(&idx).as_str());
    assert_eq!(v["manifests"][0]["mediaType"], OCI_INDEX);
    assert_eq!(
        v["manifests"][0]["artifactType"],
        "application/vnd.example.bundle"
    );
    // Another repository does not see them.
    let r = reg.get(&format!("/v2/other/referrers/{subject}")).await;
    r.expect(200);
    assert_eq!(r.json()["manifests"], serde_json::json!([]));
}

#[tokio::test]
async fn referrers_only_accepts_get_and_head() {
    let reg = Reg::memory();
    let r = reg
        .call(
            Method::DELETE,
            &format!("/v2/app/referrers/{}", absent_digest("x")),
            &[],
            axum::body::Body::empty(),
        )
        .await;
    r.expect_error(405, "UNSUPPORTED");
}
