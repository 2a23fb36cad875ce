//! Token interoperability with the reference registry (`docker-registry`,
//! Debian's distribution 2.8), in both directions:
//!
//! - distribution configured with `auth.token` and the bundle from
//!   `portcullis keys bundle` serves docker and skopeo with tokens from
//!   portcullis's token service;
//! - portcullis configured with `auth.token` the way distribution configures
//!   an external issuer accepts tokens that the test mints with its own key,
//!   and refuses hostile ones. These scenarios run against `docker-registry`
//!   too with `PORTCULLIS_TEST_REGISTRY=reference`, which checks the tests.

mod common;

use common::oci::{self, OciLayout};
use common::token::{
    self, ALICE, ALICE_PASSWORD, SERVICE, TestKey, TokenServer, assert_refused, claims,
    external_auth_yaml, repository, send,
};
use common::{Docker, Registry, RegistryConfig, RegistryKind, Skopeo};
use reqwest::Method;
use serde_json::Value;

/// Starts `docker-registry` trusting the tokens of `portcullis` (through
/// `portcullis keys bundle`), its data under `dir`.
fn reference_trusting(portcullis: &Registry, dir: &std::path::Path) -> Registry {
    let bundle = token::cli_ok(portcullis, &["keys", "bundle"]);
    assert!(
        bundle.contains("-----BEGIN CERTIFICATE-----"),
        "keys bundle printed no certificate:\n{bundle}"
    );
    let bundle_path = dir.join("portcullis-bundle.pem");
    std::fs::write(&bundle_path, bundle).expect("write bundle");
    let config = RegistryConfig::new(dir.join("reference-data")).auth_yaml(external_auth_yaml(
        &portcullis.url("/token"),
        SERVICE,
        SERVICE,
        Some(&bundle_path),
        None,
    ));
    Registry::start(RegistryKind::Reference, &config)
}

#[test]
fn reference_registry_serves_docker_with_portcullis_tokens() {
    if !common::e2e_gate("root dockerd docker docker-registry htpasswd")
        || !token::portcullis_only()
    {
        return;
    }
    let dir = common::temp_dir();
    let portcullis = TokenServer::default().start(dir.path());
    let reference = reference_trusting(&portcullis, dir.path());
    let host = reference.host();
    let docker = Docker::new();
    let image = docker.build_test_image("token reference");

    // docker follows docker-registry's realm to portcullis.
    let out = docker.login(&host, ALICE, ALICE_PASSWORD);
    common::assert_success(&format!("docker login {host} (realm on portcullis)"), &out);
    let config =
        std::fs::read_to_string(docker.config_dir().join("config.json")).expect("read config.json");
    let stored: Value = serde_json::from_str(&config).expect("config.json is JSON");
    assert!(
        stored["auths"][&host]["identitytoken"]
            .as_str()
            .is_some_and(|t| !t.is_empty()),
        "no identitytoken stored for {host}:\n{config}"
    );
    assert!(
        !config.contains(ALICE_PASSWORD),
        "config.json holds the password"
    );

    let remote = docker.push(&image, &host);
    docker.forget(&image, &remote);
    docker.pull_and_compare(&image, &remote);
    // What docker-registry stored is reachable with a token from portcullis.
    let token = token::fetch_token(
        &portcullis,
        Some((ALICE, ALICE_PASSWORD)),
        &[&format!("repository:{}:pull", image.repo)],
    );
    let reply = send(
        Method::GET,
        &reference.url(&format!("/v2/{}/tags/list", image.repo)),
        Some(&token),
        &[],
        None,
    );
    reply.expect("docker-registry tags/list with a portcullis token", 200);
    assert_eq!(reply.json()["tags"], serde_json::json!(["v1"]));

    docker.docker_ok(&["rmi", &remote]);
    let out = docker.anonymous().docker(["pull", &remote]);
    common::process::assert_failure("anonymous pull from docker-registry", &out);
}

/// RS256 keys work with distribution 2.8 too (EdDSA would not: 2.8 cannot
/// verify it).
#[test]
fn reference_registry_serves_skopeo_with_portcullis_rs256_tokens() {
    if !common::e2e_gate("skopeo docker-registry htpasswd tar gzip") || !token::portcullis_only() {
        return;
    }
    let dir = common::temp_dir();
    let portcullis = TokenServer {
        algorithm: Some("RS256"),
        ..TokenServer::default()
    }
    .start(dir.path());
    let issued = token::fetch_token(&portcullis, Some((ALICE, ALICE_PASSWORD)), &[]);
    assert_eq!(
        token::jwt_part(&issued, 0)["alg"],
        "RS256",
        "algorithm: RS256 not applied"
    );
    let reference = reference_trusting(&portcullis, dir.path());

    let skopeo = Skopeo::new();
    let mut layout = OciLayout::create(&dir.path().join("source"));
    let image = layout.add_image("v1", 2, 100 << 10);
    let target = format!("docker://{}/rs/app:v1", reference.host());
    let creds = format!("{ALICE}:{ALICE_PASSWORD}");
    skopeo.push_layout(&layout, "v1", &target, &creds);
    let copied = skopeo.pull_to_layout(&target, &creds, &dir.path().join("copied"), "v1");
    image.assert_same(&copied);
    let out = skopeo.skopeo(&[
        "inspect",
        "--tls-verify=false",
        "--creds",
        &format!("{ALICE}:wrong"),
        &target,
    ]);
    common::process::assert_failure("skopeo inspect with a wrong password", &out);
}

const EXT_REALM: &str = "http://127.0.0.1:1/none";
const EXT_SERVICE: &str = "ext-svc";
const EXT_ISSUER: &str = "ext-iss";

/// The registry under test configured to trust `key` as distribution trusts
/// an external issuer (`auth.token` with `rootcertbundle`), and no token
/// service of its own.
fn external_issuer_registry(dir: &std::path::Path, key: &TestKey) -> Registry {
    let bundle = dir.join("issuer-bundle.pem");
    std::fs::write(&bundle, key.cert_pem()).expect("write bundle");
    let config = RegistryConfig::new(dir.join("data"))
        .delete_enabled(true)
        .auth_yaml(external_auth_yaml(
            EXT_REALM,
            EXT_SERVICE,
            EXT_ISSUER,
            Some(&bundle),
            None,
        ));
    Registry::start(RegistryKind::under_test(), &config)
}

#[test]
fn external_issuer_tokens_are_accepted_and_checked() {
    if !common::e2e_gate("skopeo tar gzip registry") {
        return;
    }
    let dir = common::temp_dir();
    let key = TestKey::generate("test-issuer");
    let registry = external_issuer_registry(dir.path(), &key);
    let mint = |iss: &str, aud: &str, access| key.issue(&claims(iss, aud, "ci-bot", access, 300));
    let repo = "ext/app";
    let read_write = mint(
        EXT_ISSUER,
        EXT_SERVICE,
        vec![repository(repo, &["pull", "push"])],
    );

    // Anonymous: the configured challenge.
    let reply = send(
        Method::GET,
        &registry.url(&format!("/v2/{repo}/tags/list")),
        None,
        &[],
        None,
    );
    let challenge = assert_refused("anonymous tags/list", &reply, None);
    assert_eq!(challenge.param("realm"), Some(EXT_REALM));
    assert_eq!(challenge.param("service"), Some(EXT_SERVICE));
    assert_eq!(
        challenge.scopes(),
        token::parse_scopes(&format!("repository:{repo}:pull"))
    );

    // Push over HTTP with the minted token.
    let mut layout = OciLayout::create(&dir.path().join("source"));
    let image = layout.add_image("v1", 2, 64 << 10);
    token::push_image(&registry, repo, "v1", &read_write, &layout, &image);

    // skopeo reads it with the token as it is.
    let skopeo = Skopeo::new();
    let reference = format!("docker://{}/{repo}:v1", registry.host());
    let inspected: Value = serde_json::from_str(&skopeo.skopeo_ok(&[
        "inspect",
        "--registry-token",
        &read_write,
        "--tls-verify=false",
        &reference,
    ]))
    .expect("inspect prints JSON");
    assert_eq!(inspected["Digest"], image.manifest_digest.as_str());
    let out_dir = dir.path().join("copied");
    skopeo.skopeo_ok(&[
        "copy",
        "--src-registry-token",
        &read_write,
        "--src-tls-verify=false",
        &reference,
        &format!("oci:{}:v1", out_dir.display()),
    ]);
    assert_eq!(oci::read_layout_image(&out_dir, "v1").layers, image.layers);

    // A pull-only token pulls, and cannot push.
    let pull_only = mint(EXT_ISSUER, EXT_SERVICE, vec![repository(repo, &["pull"])]);
    send(
        Method::GET,
        &registry.url(&format!("/v2/{repo}/manifests/v1")),
        Some(&pull_only),
        &[("Accept", oci::MANIFEST_TYPE)],
        None,
    )
    .expect("GET manifest with a pull token", 200);
    let reply = send(
        Method::POST,
        &registry.url(&format!("/v2/{repo}/blobs/uploads/")),
        Some(&pull_only),
        &[],
        None,
    );
    let challenge = assert_refused(
        "pull-only token opening an upload",
        &reply,
        Some("insufficient_scope"),
    );
    assert_eq!(
        challenge.scopes(),
        token::parse_scopes(&format!("repository:{repo}:pull,push"))
    );

    // A token for another repository: insufficient_scope, with skopeo too.
    let other = mint(
        EXT_ISSUER,
        EXT_SERVICE,
        vec![repository("ext/other", &["pull", "push"])],
    );
    let reply = send(
        Method::GET,
        &registry.url(&format!("/v2/{repo}/manifests/v1")),
        Some(&other),
        &[("Accept", oci::MANIFEST_TYPE)],
        None,
    );
    let challenge = assert_refused(
        "token for another repository",
        &reply,
        Some("insufficient_scope"),
    );
    assert_eq!(
        challenge.scopes(),
        token::parse_scopes(&format!("repository:{repo}:pull"))
    );
    let out = skopeo.skopeo(&[
        "inspect",
        "--registry-token",
        &other,
        "--tls-verify=false",
        &reference,
    ]);
    common::process::assert_failure("skopeo inspect with a token for another repository", &out);

    // Wrong audience or issuer: invalid_token.
    for (what, iss, aud) in [
        ("wrong aud", EXT_ISSUER, "other-svc"),
        ("wrong iss", "other-iss", EXT_SERVICE),
        ("portcullis's defaults", SERVICE, SERVICE),
    ] {
        let bad = mint(iss, aud, vec![repository(repo, &["pull", "push"])]);
        let reply = send(
            Method::GET,
            &registry.url(&format!("/v2/{repo}/manifests/v1")),
            Some(&bad),
            &[("Accept", oci::MANIFEST_TYPE)],
            None,
        );
        assert_refused(what, &reply, Some("invalid_token"));
    }
}

#[test]
fn hostile_tokens_are_refused_with_an_external_issuer() {
    if !common::e2e_gate("registry") {
        return;
    }
    let dir = common::temp_dir();
    let trusted = TestKey::generate("test-issuer");
    let untrusted = TestKey::generate("mallory");
    let registry = external_issuer_registry(dir.path(), &trusted);
    common::hostile::check_hostile_tokens(
        &registry,
        &trusted,
        &untrusted,
        EXT_ISSUER,
        EXT_SERVICE,
        "ext/hostile",
        Vec::new(),
    );
}

/// distribution 3.x's `auth.token.jwks`: keys by `kid`, tokens without
/// `x5c` (2.8 has no such key, so this runs on portcullis only).
#[test]
fn external_issuer_with_jwks() {
    if !common::e2e_gate("registry") || !token::portcullis_only() {
        return;
    }
    let dir = common::temp_dir();
    let key = TestKey::generate("jwks-issuer");
    let untrusted = TestKey::generate("mallory");
    let jwks = portcullis_auth::token::KeySet::new(key.key.clone(), Vec::new()).jwks();
    let jwks_path = dir.path().join("issuer.jwks");
    std::fs::write(&jwks_path, jwks.to_string()).expect("write JWKS");
    let config = RegistryConfig::new(dir.path().join("data")).auth_yaml(external_auth_yaml(
        EXT_REALM,
        EXT_SERVICE,
        EXT_ISSUER,
        None,
        Some(&jwks_path),
    ));
    let registry = Registry::start(RegistryKind::Portcullis, &config);
    let no_x5c = portcullis_auth::token::IssueOptions { include_x5c: false };
    let sign = |key: &TestKey| {
        let claims = claims(
            EXT_ISSUER,
            EXT_SERVICE,
            "ci-bot",
            vec![repository("jwks/app", &["pull", "push"])],
            300,
        );
        portcullis_auth::token::issue_with(&key.key, &claims, no_x5c).expect("sign")
    };
    let good = sign(&key);
    token::push_blob(&registry, "jwks/app", &good, b"signed by a JWKS key");
    let reply = send(
        Method::GET,
        &registry.url("/v2/jwks/app/tags/list"),
        Some(&sign(&untrusted)),
        &[],
        None,
    );
    assert_refused("kid not in the JWKS", &reply, Some("invalid_token"));
}
