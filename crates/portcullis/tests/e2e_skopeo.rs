//! skopeo against portcullis with htpasswd auth: copy a hand-built OCI
//! image in and back out, inspect, list-tags, and delete.
//!
//! Needs `skopeo`, `htpasswd`, `tar` and `gzip` (no Docker daemon).
//! `PORTCULLIS_TEST_REGISTRY=reference` runs the same scenarios against
//! `docker-registry`.

mod common;

use common::oci::{self, OciLayout};
use common::{PASSWORD, Registry, RegistryConfig, RegistryKind, Skopeo, USER};
use serde_json::Value;

const NEEDS: &str = "skopeo htpasswd tar gzip registry";

fn creds() -> String {
    format!("{USER}:{PASSWORD}")
}

fn private_registry(dir: &tempfile::TempDir, delete: bool) -> Registry {
    let htpasswd = dir.path().join("htpasswd");
    common::write_htpasswd(&htpasswd, &[(USER, PASSWORD)]);
    let config = RegistryConfig::new(dir.path().join("data"))
        .htpasswd(htpasswd)
        .delete_enabled(delete);
    Registry::start(RegistryKind::under_test(), &config)
}

/// The HTTP status of `GET /v2/<repo>/manifests/<reference>` with Basic auth.
fn manifest_status(registry: &Registry, repo: &str, reference: &str) -> u16 {
    common::http()
        .get(registry.url(&format!("/v2/{repo}/manifests/{reference}")))
        .basic_auth(USER, Some(PASSWORD))
        .header(
            "Accept",
            format!(
                "{}, application/vnd.docker.distribution.manifest.v2+json",
                oci::MANIFEST_TYPE
            ),
        )
        .send()
        .expect("GET manifest")
        .status()
        .as_u16()
}

fn tags(skopeo: &Skopeo, repo_ref: &str) -> Vec<String> {
    let listed: Value = serde_json::from_str(&skopeo.skopeo_ok(&[
        "list-tags",
        "--tls-verify=false",
        "--creds",
        &creds(),
        repo_ref,
    ]))
    .expect("list-tags prints JSON");
    let mut tags: Vec<String> = listed["Tags"]
        .as_array()
        .expect("list-tags has Tags")
        .iter()
        .map(|t| t.as_str().expect("tag is a string").to_owned())
        .collect();
    tags.sort();
    tags
}

#[test]
fn copy_in_and_out_inspect_list_tags_delete() {
    if !common::e2e_gate(NEEDS) {
        return;
    }
    let dir = common::temp_dir();
    let registry = private_registry(&dir, true);
    let skopeo = Skopeo::new();
    let mut layout = OciLayout::create(&dir.path().join("source"));
    let v1 = layout.add_image("v1", 3, 300 << 10);
    let v2 = layout.add_image("v2", 2, 100 << 10);
    let repo = "e2e/skopeo-app";
    let repo_ref = format!("docker://{}/{repo}", registry.host());
    let creds = creds();

    for image in [&v1, &v2] {
        let target = format!("{repo_ref}:{}", image.tag);
        skopeo.push_layout(&layout, &image.tag, &target, &creds);
    }

    // Back out into a new layout: the same manifest and the same layers.
    let out_dir = dir.path().join("copied");
    let copied = skopeo.pull_to_layout(&format!("{repo_ref}:v1"), &creds, &out_dir, "v1");
    v1.assert_same(&copied);

    // inspect: the digest and layers the registry reports.
    let inspected: Value = serde_json::from_str(&skopeo.skopeo_ok(&[
        "inspect",
        "--tls-verify=false",
        "--creds",
        &creds,
        &format!("{repo_ref}:v1"),
    ]))
    .expect("inspect prints JSON");
    assert_eq!(inspected["Digest"], v1.manifest_digest.as_str());
    let layers: Vec<&str> = inspected["Layers"]
        .as_array()
        .expect("inspect has Layers")
        .iter()
        .map(|l| l.as_str().expect("layer digest"))
        .collect();
    assert_eq!(layers, v1.layers);
    let raw = skopeo.skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        "--creds",
        &creds,
        &format!("{repo_ref}:v1"),
    ]);
    common::assert_success("skopeo inspect --raw", &raw);
    assert_eq!(
        oci::sha256(&raw.stdout),
        v1.manifest_digest,
        "the registry changed the manifest bytes"
    );

    assert_eq!(tags(&skopeo, &repo_ref), ["v1", "v2"]);

    // delete (by the digest the tag resolves to): the manifest is gone.
    assert_eq!(manifest_status(&registry, repo, &v1.manifest_digest), 200);
    skopeo.skopeo_ok(&[
        "delete",
        "--tls-verify=false",
        "--creds",
        &creds,
        &format!("{repo_ref}:v1"),
    ]);
    assert_eq!(manifest_status(&registry, repo, &v1.manifest_digest), 404);
    assert_eq!(manifest_status(&registry, repo, "v1"), 404);
    let gone = skopeo.skopeo(&[
        "inspect",
        "--tls-verify=false",
        "--creds",
        &creds,
        &format!("{repo_ref}:v1"),
    ]);
    common::process::assert_failure("skopeo inspect of a deleted image", &gone);
    // The other tag is untouched.
    assert_eq!(manifest_status(&registry, repo, "v2"), 200);
    assert_eq!(manifest_status(&registry, repo, &v2.manifest_digest), 200);
    assert_eq!(tags(&skopeo, &repo_ref), ["v2"]);
}

#[test]
fn anonymous_and_wrong_credentials_are_refused() {
    if !common::e2e_gate(NEEDS) {
        return;
    }
    let dir = common::temp_dir();
    let registry = private_registry(&dir, true);
    let skopeo = Skopeo::new();
    let mut layout = OciLayout::create(&dir.path().join("source"));
    let image = layout.add_image("v1", 1, 64 << 10);
    let target = format!("docker://{}/e2e/private:v1", registry.host());

    for creds in [None, Some(format!("{USER}:wrong-password"))] {
        let mut args = vec!["copy", "--dest-tls-verify=false"];
        if let Some(creds) = &creds {
            args.extend(["--dest-creds", creds]);
        }
        let source = layout.reference(&image.tag);
        args.extend([source.as_str(), target.as_str()]);
        let out = skopeo.skopeo(&args);
        common::process::assert_failure(&format!("skopeo copy with {creds:?}"), &out);
        let printed = common::combined_output(&out).to_lowercase();
        assert!(
            printed.contains("unauthorized") || printed.contains("authentication required"),
            "push with {creds:?}: expected an authentication error, got:\n{printed}"
        );
    }

    skopeo.push_layout(&layout, &image.tag, &target, &creds());
    let out = skopeo.skopeo(&["inspect", "--tls-verify=false", &target]);
    common::process::assert_failure("anonymous skopeo inspect", &out);
    let printed = common::combined_output(&out).to_lowercase();
    assert!(
        printed.contains("unauthorized") || printed.contains("authentication required"),
        "anonymous inspect: expected an authentication error, got:\n{printed}"
    );
}

#[test]
fn delete_is_refused_when_disabled() {
    if !common::e2e_gate(NEEDS) {
        return;
    }
    let dir = common::temp_dir();
    let registry = private_registry(&dir, false);
    let skopeo = Skopeo::new();
    let mut layout = OciLayout::create(&dir.path().join("source"));
    let image = layout.add_image("v1", 1, 64 << 10);
    let target = format!("docker://{}/e2e/keep:v1", registry.host());
    skopeo.push_layout(&layout, &image.tag, &target, &creds());

    let out = skopeo.skopeo(&["delete", "--tls-verify=false", "--creds", &creds(), &target]);
    common::process::assert_failure("skopeo delete with deletes disabled", &out);
    assert_eq!(
        manifest_status(&registry, "e2e/keep", &image.manifest_digest),
        200,
        "a refused delete removed the manifest"
    );
}
