//! Compatibility with the reference registry (`docker-registry`, Debian's
//! distribution 2.8) on the same storage: what one writes, the other serves.
//! Also: an htpasswd file written by `portcullis user add` works with the
//! reference registry.
//!
//! Needs root, `dockerd`, `docker` and `docker-registry`. With
//! `PORTCULLIS_TEST_REGISTRY=reference` the "portcullis" side is
//! `docker-registry` too, which checks the scenario itself.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Docker, Registry, RegistryConfig, RegistryKind};

const NEEDS: &str = "root dockerd docker docker-registry";

/// Pushes a new image with docker into `writer`, stops it, serves the same
/// root directory with `reader`, and pulls the image back from there.
fn push_with_then_pull_with(name: &str, writer: RegistryKind, reader: RegistryKind) {
    let dir = common::temp_dir();
    let config = RegistryConfig::new(dir.path().join("data"));
    let docker = Docker::new();
    let image = docker.build_test_image(name);

    let first = Registry::start(writer, &config);
    let pushed = docker.push(&image, &first.host());
    docker.forget(&image, &pushed);
    first.stop();

    let second = Registry::start(reader, &config);
    let remote = image.remote(&second.host());
    docker.pull_and_compare(&image, &remote);

    // The tag list and the manifest by digest agree, over plain HTTP.
    let client = common::http();
    let tags: serde_json::Value = client
        .get(second.url(&format!("/v2/{}/tags/list", image.repo)))
        .send()
        .and_then(reqwest::blocking::Response::json)
        .expect("GET tags/list");
    assert_eq!(tags["tags"], serde_json::json!(["v1"]), "tags/list: {tags}");
    let digest = docker
        .docker_ok(&[
            "image",
            "inspect",
            "--format",
            "{{index .RepoDigests 0}}",
            &remote,
        ])
        .trim()
        .rsplit_once('@')
        .map(|(_, digest)| digest.to_owned())
        .expect("pulled image has a repo digest");
    let status = client
        .head(second.url(&format!("/v2/{}/manifests/{digest}", image.repo)))
        .header(
            "Accept",
            "application/vnd.docker.distribution.manifest.v2+json, \
             application/vnd.oci.image.manifest.v1+json",
        )
        .send()
        .expect("HEAD manifest")
        .status();
    assert_eq!(status.as_u16(), 200, "HEAD manifest by digest {digest}");
}

#[test]
fn reference_writes_portcullis_reads() {
    if !common::e2e_gate(NEEDS) {
        return;
    }
    push_with_then_pull_with(
        "reference writes",
        RegistryKind::Reference,
        RegistryKind::under_test(),
    );
}

#[test]
fn portcullis_writes_reference_reads() {
    if !common::e2e_gate(NEEDS) {
        return;
    }
    push_with_then_pull_with(
        "portcullis writes",
        RegistryKind::under_test(),
        RegistryKind::Reference,
    );
}

/// `portcullis user add` writes bcrypt entries that distribution accepts.
#[test]
fn htpasswd_from_user_add_works_with_reference() {
    if !common::e2e_gate("docker-registry") {
        return;
    }
    if RegistryKind::under_test() == RegistryKind::Reference {
        eprintln!("skipping: needs the portcullis binary (PORTCULLIS_TEST_REGISTRY=reference)");
        return;
    }
    let dir = common::temp_dir();
    let htpasswd = dir.path().join("htpasswd");
    for (user, password) in [("alice", "alice-secret"), ("bob", "b0b secret with spaces")] {
        let out = common::run(
            Command::new(env!("CARGO_BIN_EXE_portcullis"))
                .args(["user", "add", user, "--htpasswd"])
                .arg(&htpasswd),
            Some(&format!("{password}\n")),
            Duration::from_secs(60),
        );
        common::assert_success(&format!("portcullis user add {user}"), &out);
    }
    let written = std::fs::read_to_string(&htpasswd).expect("read htpasswd");
    assert!(
        !written.contains("secret"),
        "htpasswd holds a password in clear:\n{written}"
    );

    let config = RegistryConfig::new(dir.path().join("data")).htpasswd(&htpasswd);
    let registry = Registry::start(RegistryKind::Reference, &config);
    let client = common::http();
    let status = |user: &str, password: &str| {
        client
            .get(registry.url("/v2/"))
            .basic_auth(user, Some(password))
            .send()
            .expect("GET /v2/")
            .status()
            .as_u16()
    };
    assert_eq!(status("alice", "alice-secret"), 200);
    assert_eq!(status("bob", "b0b secret with spaces"), 200);
    assert_eq!(status("alice", "wrong"), 401);
    assert_eq!(status("bob", "alice-secret"), 401);
}
