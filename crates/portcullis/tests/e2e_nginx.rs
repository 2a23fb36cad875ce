//! portcullis behind a reverse proxy (issue 5): nginx terminates TLS in
//! front of portcullis on plain HTTP, with the token service, and the
//! realm, `Location` headers and Docker's login, push and pull all go
//! through nginx's https URL. Forwarded headers from a peer that is not in
//! `http.trustedproxies` are ignored.
//!
//! Needs nginx, curl, openssl and htpasswd; the Docker part also root,
//! `dockerd` and `docker`. Skipped with `PORTCULLIS_TEST_REGISTRY=reference`:
//! the token service and `http.trustedproxies` are portcullis's own.

mod common;

use common::tls::{self, DockerTrust, Nginx};
use common::token::{self, ALICE, ALICE_PASSWORD, Challenge, TokenServer};
use common::{Docker, Registry, RegistryKind};
use serde_json::Value;

/// Starts portcullis with the token service (users alice and bob) on plain
/// HTTP, without `http.host`, and with `http_yaml` under `http:`.
fn token_registry(dir: &std::path::Path, http_yaml: &str) -> Registry {
    common::write_htpasswd(
        &dir.join("htpasswd"),
        &[(ALICE, ALICE_PASSWORD), (token::BOB, token::BOB_PASSWORD)],
    );
    let mut config = TokenServer::default().config(dir).http_host(false);
    if !http_yaml.is_empty() {
        config = config.http_yaml(http_yaml);
    }
    Registry::start(RegistryKind::Portcullis, &config)
}

#[test]
fn docker_through_nginx_terminating_tls() {
    if !common::e2e_gate("root dockerd docker nginx curl openssl htpasswd")
        || !token::portcullis_only()
    {
        return;
    }
    let dir = common::temp_dir();
    let certs = tls::generate(&dir.path().join("certs"), None);
    let registry = token_registry(dir.path(), "  trustedproxies: [127.0.0.1/32]\n");
    let nginx = Nginx::start(&certs, registry.port());
    let ca = certs.ca();

    // The challenge sends clients to nginx's https URL, not to portcullis.
    let reply = tls::curl("GET", &nginx.url("/v2/"), &ca, &[]);
    assert_eq!(
        reply.status, 401,
        "anonymous GET /v2/ through nginx: {reply:?}"
    );
    let header = reply
        .header("www-authenticate")
        .unwrap_or_else(|| panic!("no WWW-Authenticate through nginx: {reply:?}"));
    let challenge = Challenge::parse(header);
    assert_eq!(
        challenge.param("realm"),
        Some(nginx.url("/token").as_str()),
        "realm through nginx: {header}"
    );

    // A token from nginx's /token, then an upload whose Location is nginx's.
    let repo = "nginx/app";
    let token_url = format!(
        "{}?service={}&scope=repository:{repo}:pull,push",
        nginx.url("/token"),
        token::SERVICE
    );
    let creds = format!("{ALICE}:{ALICE_PASSWORD}");
    let reply = tls::curl("GET", &token_url, &ca, &["--user", &creds]);
    assert_eq!(reply.status, 200, "GET /token through nginx: {reply:?}");
    let body: Value = serde_json::from_str(&reply.body).expect("token reply is JSON");
    let bearer = token::bearer(body["token"].as_str().expect("token in reply"));
    let auth = format!("Authorization: {bearer}");
    let reply = tls::curl(
        "POST",
        &nginx.url(&format!("/v2/{repo}/blobs/uploads/")),
        &ca,
        &["--header", &auth, "--header", "Content-Length: 0"],
    );
    assert_eq!(reply.status, 202, "POST upload through nginx: {reply:?}");
    let location = reply
        .header("location")
        .unwrap_or_else(|| panic!("upload POST answered no Location: {reply:?}"));
    assert!(
        location.starts_with(&nginx.url("/")),
        "upload Location {location:?} does not point at nginx ({})",
        nginx.url("/")
    );
    // That Location works through nginx.
    let reply = tls::curl("GET", location, &ca, &["--header", &auth]);
    assert_eq!(
        reply.status, 204,
        "GET upload status through nginx: {reply:?}"
    );

    // Docker: login, push and pull through nginx, trusting the generated CA.
    let host = nginx.host();
    let _trust = DockerTrust::install(&host, &ca);
    let docker = Docker::new();
    let image = docker.build_test_image("through nginx");
    let out = docker.login(&host, ALICE, ALICE_PASSWORD);
    common::assert_success(&format!("docker login {host} (nginx)"), &out);
    let remote = docker.push(&image, &host);
    docker.forget(&image, &remote);
    docker.pull_and_compare(&image, &remote);

    // Docker really went through nginx, on tokens from nginx's realm.
    let log = nginx.log();
    for needle in ["GET /token", "PUT /v2/pctest-through-nginx/manifests/v1"] {
        assert!(
            log.contains(needle),
            "nginx's access log has no {needle:?}:\n{log}"
        );
    }
}

/// `X-Forwarded-*` and `Forwarded` from a peer outside
/// `http.trustedproxies` change nothing: the realm and the upload
/// `Location` use the Host the client connected to. The same headers from a
/// trusted peer are honoured, which shows the test can tell the difference.
#[test]
fn forwarded_headers_from_untrusted_peers_are_ignored() {
    if !common::e2e_gate("htpasswd") || !token::portcullis_only() {
        return;
    }
    let forged: [(&str, &str); 3] = [
        ("X-Forwarded-Host", "evil.example"),
        ("X-Forwarded-Proto", "https"),
        ("Forwarded", "proto=https;host=evil.example"),
    ];

    let dir = common::temp_dir();
    let registry = token_registry(dir.path(), "");
    let reply = token::send(
        reqwest::Method::GET,
        &registry.url("/v2/"),
        None,
        &forged,
        None,
    );
    let challenge = token::assert_refused("GET /v2/ with forged headers", &reply, None);
    assert_eq!(
        challenge.param("realm"),
        Some(registry.url("/token").as_str()),
        "realm with forged forwarded headers from an untrusted peer"
    );

    let repo = "forged/app";
    let scope = format!("repository:{repo}:pull,push");
    let token = token::fetch_token(&registry, Some((ALICE, ALICE_PASSWORD)), &[&scope]);
    let reply = token::send(
        reqwest::Method::POST,
        &registry.url(&format!("/v2/{repo}/blobs/uploads/")),
        Some(&token),
        &forged,
        None,
    );
    reply.expect("POST upload with forged headers", 202);
    let location = reply.location.clone().expect("upload POST has a Location");
    assert!(
        !location.contains("evil.example") && !location.starts_with("https:"),
        "untrusted forwarded headers leaked into Location {location:?}"
    );
    assert!(
        token::absolute(&registry, &location).starts_with(&registry.url("/")),
        "Location {location:?} is not on {}",
        registry.url("/")
    );

    // The control: the same headers from a trusted peer are honoured.
    let trusted_dir = common::temp_dir();
    let trusted = token_registry(trusted_dir.path(), "  trustedproxies: [127.0.0.1/32]\n");
    let reply = token::send(
        reqwest::Method::GET,
        &trusted.url("/v2/"),
        None,
        &forged,
        None,
    );
    let challenge = token::assert_refused("GET /v2/ from a trusted proxy", &reply, None);
    assert_eq!(
        challenge.param("realm"),
        Some("https://evil.example/token"),
        "realm with forwarded headers from a trusted proxy"
    );
}
