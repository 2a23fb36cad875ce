//! The Docker CLI against portcullis with htpasswd auth: login, push a
//! multi-layer image, pull it back, and the refusals an operator expects
//! (anonymous pull and push of a private repository, a wrong password).
//!
//! Needs root, `dockerd`, `docker` and `htpasswd`; see `common::e2e_gate`.
//! `PORTCULLIS_TEST_REGISTRY=reference` runs the same scenarios against
//! `docker-registry`.

mod common;

use common::{Docker, PASSWORD, Registry, RegistryConfig, RegistryKind, USER};

const NEEDS: &str = "root dockerd docker htpasswd registry";

/// Words by which the Docker CLI reports a missing or refused login.
const AUTH_ERRORS: [&str; 4] = [
    "unauthorized",
    "authentication required",
    "no basic auth credentials",
    "401",
];

/// A registry requiring [`USER`]/[`PASSWORD`], on a fresh root directory.
fn private_registry(dir: &tempfile::TempDir) -> Registry {
    let htpasswd = dir.path().join("htpasswd");
    common::write_htpasswd(&htpasswd, &[(USER, PASSWORD), ("other", "other-password")]);
    let config = RegistryConfig::new(dir.path().join("data")).htpasswd(htpasswd);
    Registry::start(RegistryKind::under_test(), &config)
}

fn assert_auth_error(what: &str, output: &str) {
    let lower = output.to_lowercase();
    assert!(
        AUTH_ERRORS.iter().any(|e| lower.contains(e)),
        "{what}: expected an authentication error, got:\n{output}"
    );
}

#[test]
fn login_push_pull_roundtrip_and_anonymous_refusals() {
    if !common::e2e_gate(NEEDS) {
        return;
    }
    let dir = common::temp_dir();
    let registry = private_registry(&dir);
    let host = registry.host();
    let docker = Docker::new();
    let image = docker.build_test_image("e2e docker roundtrip");

    let login = docker.login(&host, USER, PASSWORD);
    common::assert_success(&format!("docker login {host}"), &login);
    assert!(
        common::combined_output(&login).contains("Login Succeeded"),
        "docker login printed no success message"
    );

    let remote = docker.push(&image, &host);
    docker.forget(&image, &remote);
    docker.pull_and_compare(&image, &remote);

    // The same daemon, but a client that never logged in.
    let anonymous = docker.anonymous();
    docker.docker_ok(&["rmi", &remote]);
    let printed = anonymous.pull_fails(&remote);
    assert_auth_error("anonymous pull of a private repository", &printed);
    assert!(
        !anonymous.has_image(&image.id),
        "anonymous pull left the image behind"
    );

    // Anonymous push is refused too. Tag from the kept local copy.
    docker.pull_and_compare(&image, &remote);
    let other_remote = format!("{host}/{}-anonymous:v1", image.repo);
    docker.docker_ok(&["tag", &remote, &other_remote]);
    let push = anonymous.docker(["push", &other_remote]);
    common::process::assert_failure("anonymous docker push", &push);
    assert_auth_error("anonymous push", &common::combined_output(&push));
}

#[test]
fn login_with_wrong_password_fails() {
    if !common::e2e_gate(NEEDS) {
        return;
    }
    let dir = common::temp_dir();
    let registry = private_registry(&dir);
    let host = registry.host();
    let docker = Docker::new();

    for (user, password) in [
        (USER, "not-the-password"),
        (USER, ""),
        ("nobody", PASSWORD),
        ("other", PASSWORD),
    ] {
        let out = docker.login(&host, user, password);
        common::process::assert_failure(&format!("docker login as {user:?}/{password:?}"), &out);
        if !password.is_empty() {
            assert_auth_error(
                "login with a wrong password",
                &common::combined_output(&out),
            );
        }
    }
    // The failed logins stored nothing, and the right password still works.
    let stored =
        std::fs::read_to_string(docker.config_dir().join("config.json")).unwrap_or_default();
    assert!(
        !stored.contains(&host),
        "a failed login stored credentials for {host}:\n{stored}"
    );
    let out = docker.login(&host, USER, PASSWORD);
    common::assert_success("docker login with the right password", &out);
    let out = docker.login(&host, "other", "other-password");
    common::assert_success("docker login as the second user", &out);
}
