//! Real clients against portcullis's built-in token service
//! (`auth.tokenserver`): `docker login` stores an identity (refresh) token
//! and never the password, push and pull then run on tokens, `portcullis
//! token revoke` cuts a client off, a push outlives its access token, and
//! skopeo's `--creds` go through the token flow.
//!
//! Needs root, `dockerd`, `docker` and `htpasswd` (skopeo for its test).
//! Skipped with `PORTCULLIS_TEST_REGISTRY=reference`: the token service is
//! portcullis's own.

mod common;

use std::time::Instant;

use base64::Engine as _;
use common::oci::OciLayout;
use common::token::{self, ALICE, ALICE_PASSWORD, BOB, BOB_PASSWORD, SERVICE, TokenServer};
use common::{Docker, Registry, Skopeo};
use serde_json::Value;

const DOCKER_NEEDS: &str = "root dockerd docker htpasswd";

/// Words by which docker and skopeo report a refused login or token.
const AUTH_ERRORS: [&str; 6] = [
    "unauthorized",
    "authentication required",
    "no basic auth credentials",
    "invalid_grant",
    "denied",
    "401",
];

fn assert_auth_error(what: &str, output: &str) {
    let lower = output.to_lowercase();
    assert!(
        AUTH_ERRORS.iter().any(|e| lower.contains(e)),
        "{what}: expected an authentication error, got:\n{output}"
    );
}

/// The `auths` entry for `host` in the client's config.json, and the whole
/// file's text.
fn stored_login(docker: &Docker, host: &str) -> (Value, String) {
    let path = docker.config_dir().join("config.json");
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let config: Value = serde_json::from_str(&text).expect("config.json is JSON");
    let entry = config["auths"][host].clone();
    assert!(
        entry.is_object(),
        "config.json has no login for {host}:\n{text}"
    );
    (entry, text)
}

/// Logs `docker` in as `user` and checks what it stored: an identity token,
/// no password. Returns the identity token.
fn login_with_identity_token(docker: &Docker, host: &str, user: &str, password: &str) -> String {
    let out = docker.login(host, user, password);
    common::assert_success(&format!("docker login {host} as {user}"), &out);
    let (entry, text) = stored_login(docker, host);
    let identity = entry["identitytoken"]
        .as_str()
        .unwrap_or_else(|| panic!("docker login stored no identitytoken for {host}:\n{text}"))
        .to_owned();
    assert!(!identity.is_empty(), "empty identitytoken:\n{text}");
    assert!(
        !text.contains(password),
        "config.json holds the password in clear:\n{text}"
    );
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    assert!(
        !text.contains(&basic),
        "config.json holds user:password in base64:\n{text}"
    );
    if let Some(auth) = entry["auth"].as_str() {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth)
            .unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&decoded).contains(password),
            "config.json's `auth` holds the password"
        );
    }
    identity
}

#[test]
fn docker_login_stores_an_identity_token_and_push_pull_work() {
    if !common::e2e_gate(DOCKER_NEEDS) || !token::portcullis_only() {
        return;
    }
    let dir = common::temp_dir();
    let registry = TokenServer::default().start(dir.path());
    let host = registry.host();
    let docker = Docker::new();
    let image = docker.build_test_image("token login");

    let identity = login_with_identity_token(&docker, &host, ALICE, ALICE_PASSWORD);
    // The identity token is a refresh token of the token service, for the
    // client docker, as `token list` shows.
    let listed = token::tokens_of(&registry, ALICE);
    assert!(
        listed.iter().any(|row| row["client_id"] == "docker"),
        "token list shows no token of alice for client docker: {listed:?}"
    );
    let reply = token::post_token(
        &registry,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &identity),
            ("client_id", "docker"),
            ("service", SERVICE),
            ("scope", &format!("repository:{}:pull", image.repo)),
        ],
    );
    reply.expect("POST /token with docker's identity token", 200);

    // Push and pull run on that token alone.
    let remote = docker.push(&image, &host);
    docker.forget(&image, &remote);
    docker.pull_and_compare(&image, &remote);
    let (_, text) = stored_login(&docker, &host);
    assert!(
        !text.contains(ALICE_PASSWORD),
        "a push or pull stored the password"
    );

    // Without the login, the same pull is refused.
    docker.docker_ok(&["rmi", &remote]);
    let printed = docker.anonymous().pull_fails(&remote);
    assert_auth_error("anonymous pull", &printed);
}

#[test]
fn revoked_refresh_tokens_stop_docker() {
    if !common::e2e_gate(DOCKER_NEEDS) || !token::portcullis_only() {
        return;
    }
    let dir = common::temp_dir();
    let registry = TokenServer::default().start(dir.path());
    let host = registry.host();
    let alice = Docker::new();
    let bob = alice.anonymous();
    let image = alice.build_test_image("token revoke");

    login_with_identity_token(&alice, &host, ALICE, ALICE_PASSWORD);
    login_with_identity_token(&bob, &host, BOB, BOB_PASSWORD);
    let remote = alice.push(&image, &host);
    alice.forget(&image, &remote);
    assert!(
        !token::tokens_of(&registry, ALICE).is_empty(),
        "alice's token is not listed"
    );
    let bobs = token::tokens_of(&registry, BOB);
    assert_eq!(bobs.len(), 1, "bob has one token: {bobs:?}");

    // Revoke by user: alice's docker is cut off, bob's is not.
    token::cli_ok(&registry, &["token", "revoke", "--user", ALICE]);
    let left = token::tokens_of(&registry, ALICE);
    assert!(
        left.is_empty(),
        "alice's tokens are still listed after revoke: {left:?}"
    );
    assert_eq!(
        token::tokens_of(&registry, BOB).len(),
        1,
        "revoking alice touched bob"
    );
    let (entry, _) = stored_login(&alice, &host);
    assert!(
        entry["identitytoken"].is_string(),
        "docker still holds the revoked token"
    );
    let printed = alice.pull_fails(&remote);
    eprintln!("docker pull with a revoked identity token printed:\n{printed}");
    assert_auth_error("pull with a revoked identity token", &printed);

    bob.pull_and_compare(&image, &remote);
    bob.forget(&image, &remote);

    // Revoke by id.
    let id = bobs[0]["id"]
        .as_str()
        .map(str::to_owned)
        .or_else(|| bobs[0]["id"].as_u64().map(|n| n.to_string()))
        .unwrap_or_else(|| panic!("token list row has no id: {}", bobs[0]));
    token::cli_ok(&registry, &["token", "revoke", "--id", &id]);
    assert!(
        token::tokens_of(&registry, BOB).is_empty(),
        "bob's token survived revoke --id"
    );
    let printed = bob.pull_fails(&remote);
    assert_auth_error("pull with a token revoked by id", &printed);

    // Logging in again gets a new token.
    login_with_identity_token(&alice, &host, ALICE, ALICE_PASSWORD);
    alice.pull_and_compare(&image, &remote);
}

/// With `expiration: 2s`, a push that takes several times as long succeeds.
///
/// The leeway stays at its default (60 s): the Docker client treats every
/// token as valid for at least 60 s (distribution's
/// `minimumTokenLifetimeSeconds`) and keeps sending it, so a server with
/// `leeway: 0s` and a lifetime under a minute refuses docker's requests
/// after the lifetime. Upload sessions outliving their token are tested
/// over HTTP in `e2e_token_http.rs`.
#[test]
fn docker_push_outlives_a_short_token_lifetime() {
    if !common::e2e_gate(DOCKER_NEEDS) || !token::portcullis_only() {
        return;
    }
    const LIFETIME_SECS: u64 = 2;
    let dir = common::temp_dir();
    let registry = TokenServer {
        expiration: Some("2s"),
        ..TokenServer::default()
    }
    .start(dir.path());
    let host = registry.host();
    let docker = Docker::new();
    // Random data does not compress: docker gzips and uploads every byte.
    let image = docker.build_test_image_sized("token long push", 8 << 20, &[48 << 20; 3]);
    login_with_identity_token(&docker, &host, ALICE, ALICE_PASSWORD);

    let remote = image.remote(&host);
    docker.docker_ok(&["tag", &image.tag, &remote]);
    let started = Instant::now();
    docker.docker_ok(&["push", &remote]);
    let took = started.elapsed();
    eprintln!("docker push of {} layers took {took:?}", image.layers);
    assert!(
        took.as_secs_f64() > (LIFETIME_SECS + 1) as f64,
        "the push took {took:?}, not longer than the token lifetime ({LIFETIME_SECS}s) + 1 s: \
         make the test image bigger so that this test proves something"
    );
    docker.forget(&image, &remote);
    docker.pull_and_compare(&image, &remote);
}

#[test]
fn skopeo_creds_go_through_the_token_flow() {
    if !common::e2e_gate("skopeo htpasswd tar gzip") || !token::portcullis_only() {
        return;
    }
    let dir = common::temp_dir();
    let registry: Registry = TokenServer::default().start(dir.path());
    // The registry only speaks Bearer: skopeo must get tokens from /token.
    let reply = token::send(reqwest::Method::GET, &registry.url("/v2/"), None, &[], None);
    let challenge = token::assert_refused("anonymous GET /v2/", &reply, None);
    assert_eq!(
        challenge.param("realm"),
        Some(registry.url("/token").as_str())
    );

    let skopeo = Skopeo::new();
    let mut layout = OciLayout::create(&dir.path().join("source"));
    let image = layout.add_image("v1", 3, 200 << 10);
    let target = format!("docker://{}/skopeo/token-app:v1", registry.host());
    let creds = format!("{ALICE}:{ALICE_PASSWORD}");
    skopeo.push_layout(&layout, "v1", &target, &creds);
    let copied = skopeo.pull_to_layout(&target, &creds, &dir.path().join("copied"), "v1");
    image.assert_same(&copied);

    let inspected: Value = serde_json::from_str(&skopeo.skopeo_ok(&[
        "inspect",
        "--tls-verify=false",
        "--creds",
        &creds,
        &target,
    ]))
    .expect("inspect prints JSON");
    assert_eq!(inspected["Digest"], image.manifest_digest.as_str());

    for creds in [None, Some(format!("{ALICE}:wrong-password"))] {
        let mut args = vec!["inspect", "--tls-verify=false"];
        if let Some(creds) = &creds {
            args.extend(["--creds", creds]);
        }
        args.push(&target);
        let out = skopeo.skopeo(&args);
        common::process::assert_failure(&format!("skopeo inspect with {creds:?}"), &out);
        assert_auth_error(
            &format!("skopeo inspect with {creds:?}"),
            &common::combined_output(&out),
        );
    }
}
