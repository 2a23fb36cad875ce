//! Client certificates as identities with the real Docker daemon and curl
//! (`http.tls.clientidentity`, issue 5): `portcullis cert client --name
//! alice` signs a certificate with the CA of `portcullis cert generate`;
//! with it in `/etc/docker/certs.d/HOST:PORT/` (`client.cert`,
//! `client.key`, next to `ca.crt`), Docker pushes to and pulls from
//! `alice/**` as alice without `docker login`, and is denied `bob/**`,
//! where the `access` policy gives alice nothing. curl with the same
//! certificate lists alice's tags and gets a token for her from `GET
//! /token`; curl without it gets the token service's Bearer challenge.
//!
//! Why a test host: the daemon treats `127.0.0.0/8` registries as
//! insecure, and for those it neither verifies the server nor reads
//! `certs.d` at all, so it would present no client certificate. As in
//! `e2e_tls_untrusted.rs`, the registry runs inside a [`TestHost`] (a
//! network namespace of the test's own) on an address in `198.18.0.0/15`,
//! which the daemon reaches through a veth pair.
//!
//! Needs root (for `dockerd` and the network namespace), `dockerd`, `docker`, `ip`,
//! curl, openssl and htpasswd. Skipped with
//! `PORTCULLIS_TEST_REGISTRY=reference`: client certificates as identities
//! and the token service are portcullis's own.

mod common;

use common::registry::yaml_str;
use common::tls::{self, DockerTrust};
use common::token::{self, Challenge};
use common::{Docker, Registry, RegistryConfig, RegistryKind, TestHost};

/// alice may pull and push her own repositories; nobody has rights
/// anywhere else (in particular not under `bob/`).
const POLICY: &str = "\
access:
  rules:
    - subjects: [\"user:alice\"]
      repositories: [\"alice/**\"]
      actions: [pull, push]
";

#[test]
fn docker_and_curl_act_as_the_user_named_by_the_client_certificate() {
    if !common::e2e_gate("root dockerd docker ip curl openssl htpasswd")
        || !token::portcullis_only()
    {
        return;
    }
    // The registry runs inside, and keeps the host until it has stopped.
    let test_host = TestHost::create();
    let ip = test_host.ip();
    eprintln!("registry on the test host {test_host}");

    let dir = common::temp_dir();
    let d = dir.path();
    let certs = tls::generate_with_ip(&d.join("certs"), None, ip);
    let alice = tls::client(&certs.dir, "alice", &d.join("alice"));
    let htpasswd = d.join("htpasswd");
    common::write_htpasswd(
        &htpasswd,
        &[("alice", "alice-password-1"), ("bob", "bob-password-1")],
    );
    let config = RegistryConfig::new(d.join("data"))
        .on(&test_host)
        .http_yaml(format!(
            "  tls:\n    certificate: {}\n    key: {}\n    clientcas: [{}]\n    \
             clientauth: optional\n    clientidentity: cn\n",
            yaml_str(&certs.cert()),
            yaml_str(&certs.key()),
            yaml_str(&certs.ca()),
        ))
        .auth_yaml(format!(
            "  htpasswd:\n    realm: portcullis-test\n    path: {}\n  tokenserver: {{}}\n",
            yaml_str(&htpasswd)
        ))
        .extra_yaml(POLICY);
    let registry = Registry::start_tls(RegistryKind::Portcullis, &config, &certs.ca());
    let host = registry.host();
    let ca = certs.ca();
    let alice_curl = alice.curl_args();
    let alice_curl: Vec<&str> = alice_curl.iter().map(String::as_str).collect();

    // The daemon trusts the CA and presents alice's certificate; the client
    // has an empty DOCKER_CONFIG and never logs in.
    let trust = DockerTrust::install_with_client(&host, &ca, &alice.cert(), &alice.key());
    for name in ["ca.crt", "client.cert", "client.key"] {
        assert!(trust.dir().join(name).is_file(), "{name} installed");
    }
    let docker = Docker::new();
    let image = docker.build_test_image("client identity");

    // a. Push to alice/app as alice, without docker login.
    let remote = format!("{host}/alice/app:1");
    docker.docker_ok(&["tag", &image.tag, &remote]);
    let out = docker.docker(["push", &remote]);
    common::assert_success(
        &format!("docker push {remote} with alice's certificate"),
        &out,
    );
    let config_json =
        std::fs::read_to_string(docker.config_dir().join("config.json")).unwrap_or_default();
    assert!(
        !config_json.contains(&host),
        "docker stored credentials for {host} although nobody logged in:\n{config_json}"
    );

    // b. Pull it back, every layer from the registry.
    docker.forget(&image, &remote);
    docker.pull_and_compare(&image, &remote);

    // c. bob/app: the policy gives alice nothing there.
    let denied = format!("{host}/bob/app:1");
    docker.docker_ok(&["tag", &remote, &denied]);
    let out = docker.docker(["push", &denied]);
    let printed = common::combined_output(&out);
    assert!(
        !out.status.success(),
        "docker push {denied} as alice succeeded:\n{printed}"
    );
    // Docker prints the registry's DENIED message after `denied: `; portcullis
    // says which rule is missing, for whom, on which repository:
    // "denied: deny: no rule allows pull on bob/app for user alice (nothing
    // is allowed by default)".
    let line = printed
        .lines()
        .find(|l| l.starts_with("denied: "))
        .unwrap_or_else(|| {
            panic!("docker push {denied} as alice failed, but not with `denied: `:\n{printed}")
        });
    assert!(
        line.contains("bob/app") && line.contains("user alice"),
        "docker push {denied}: the denial names neither the repository nor alice: {line}"
    );
    eprintln!("docker push {denied} as alice: {}", printed.trim());

    // d. curl with alice's certificate: her tags, no Authorization header.
    let tags_url = registry.url("/v2/alice/app/tags/list");
    let reply = tls::curl("GET", &tags_url, &ca, &alice_curl);
    assert_eq!(
        reply.status, 200,
        "GET tags/list with alice's certificate: {reply:?}"
    );
    let tags: serde_json::Value = serde_json::from_str(&reply.body)
        .unwrap_or_else(|e| panic!("tags/list is not JSON ({e}): {reply:?}"));
    assert_eq!(tags["name"], "alice/app", "{reply:?}");
    assert_eq!(tags["tags"], serde_json::json!(["1"]), "{reply:?}");
    let reply = tls::curl(
        "GET",
        &registry.url("/v2/bob/app/tags/list"),
        &ca,
        &alice_curl,
    );
    assert_eq!(
        reply.status, 403,
        "GET bob/app tags/list with alice's certificate: {reply:?}"
    );
    assert!(reply.body.contains("DENIED"), "{reply:?}");

    // e. curl without a certificate: the token service's challenge.
    let reply = tls::curl("GET", &tags_url, &ca, &[]);
    assert_eq!(
        reply.status, 401,
        "GET tags/list without a certificate: {reply:?}"
    );
    let header = reply
        .header("www-authenticate")
        .unwrap_or_else(|| panic!("401 without WWW-Authenticate: {reply:?}"));
    let challenge = Challenge::parse(header);
    assert!(
        challenge.scheme.eq_ignore_ascii_case("bearer"),
        "expected a Bearer challenge, got {header:?}"
    );
    let realm = challenge.param("realm").expect("realm").to_owned();
    let service = challenge.param("service").expect("service").to_owned();
    assert!(
        realm.starts_with(&format!("https://{host}/")),
        "the realm is this registry over https: {header:?}"
    );

    // f. GET /token with the certificate and no Basic credentials: a token
    // for alice, with what the policy gives her.
    let token_url = format!(
        "{realm}?service={service}&scope=repository:alice/app:pull,push\
         &scope=repository:bob/app:pull,push"
    );
    let reply = tls::curl("GET", &token_url, &ca, &alice_curl);
    assert_eq!(
        reply.status, 200,
        "GET /token with alice's certificate: {reply:?}"
    );
    let body: serde_json::Value = serde_json::from_str(&reply.body)
        .unwrap_or_else(|e| panic!("/token is not JSON ({e}): {reply:?}"));
    let jwt = body["token"].as_str().expect("a token").to_owned();
    assert_eq!(token::jwt_part(&jwt, 1)["sub"], "alice", "{body}");
    assert_eq!(
        token::granted(&jwt),
        token::grants(&[("alice/app", &["pull", "push"])]),
        "{body}"
    );
    // That token works without the certificate.
    let bearer = format!("Authorization: Bearer {jwt}");
    let reply = tls::curl("GET", &tags_url, &ca, &["-H", &bearer]);
    assert_eq!(
        reply.status, 200,
        "GET tags/list with alice's token: {reply:?}"
    );

    // g. Without a certificate, /token is anonymous: nothing granted.
    let reply = tls::curl("GET", &token_url, &ca, &[]);
    if reply.status == 200 {
        let body: serde_json::Value = serde_json::from_str(&reply.body).expect("JSON");
        let jwt = body["token"].as_str().expect("a token");
        assert!(
            token::granted(jwt).is_empty(),
            "an anonymous token grants something: {body}"
        );
    } else {
        assert_eq!(reply.status, 401, "anonymous GET /token: {reply:?}");
    }
}
