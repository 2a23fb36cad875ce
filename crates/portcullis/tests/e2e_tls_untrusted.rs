//! The Docker daemon over TLS to a registry it does not trust yet (issue
//! 5): with the registry reached as `HOST:PORT` and no CA for it, `docker
//! login` and `docker pull` fail with Docker's x509 error ("certificate
//! signed by unknown authority"), not with a fallback to plain HTTP or a
//! vague network error; once the CA of `portcullis cert generate` is in
//! `/etc/docker/certs.d/HOST:PORT/ca.crt` (no daemon restart), login, push
//! and pull work.
//!
//! Why a test host: the daemon treats `127.0.0.0/8` registries as
//! insecure and skips certificate verification for them, so on loopback
//! (where the other TLS tests run, see `e2e_tls_docker.rs`) an untrusted
//! certificate goes unnoticed. A [`TestHost`] is a network namespace of the
//! test's own, joined to the machine's by a veth pair; the registry runs
//! inside it on an address in `198.18.0.0/15` with a certificate naming
//! that IP, and the daemon reaches it through the veth.
//!
//! Portcullis runs with the token service, as in `e2e_tls_docker.rs`. With
//! `PORTCULLIS_TEST_REGISTRY=reference` the reference registry runs with
//! Basic auth instead: certificate verification is Docker's business, and
//! the same failure and success must show with either registry.
//!
//! Needs root (for `dockerd` and the network namespace), `dockerd`, `docker`, `ip`,
//! curl, openssl and htpasswd.

mod common;

use common::registry::yaml_str;
use common::tls::{self, DockerTrust};
use common::{Docker, PASSWORD, Registry, RegistryConfig, RegistryKind, TestHost, USER};

/// What Docker says, whichever Go version built it ("x509: certificate
/// signed by unknown authority", after "tls: failed to verify certificate:"
/// since Go 1.20).
const X509_ERROR: &str = "x509: certificate signed by unknown authority";

#[test]
fn docker_rejects_an_untrusted_certificate_until_the_ca_is_installed() {
    if !common::e2e_gate("root dockerd docker ip curl openssl htpasswd registry") {
        return;
    }
    // The registry runs inside, and keeps the host until it has stopped.
    let test_host = TestHost::create();
    let ip = test_host.ip();
    eprintln!("registry on the test host {test_host}");

    let dir = common::temp_dir();
    let d = dir.path();
    let certs = tls::generate_with_ip(&d.join("certs"), None, ip);
    let htpasswd = d.join("htpasswd");
    common::write_htpasswd(&htpasswd, &[(USER, PASSWORD)]);
    let kind = RegistryKind::under_test();
    let config = RegistryConfig::new(d.join("data"))
        .on(&test_host)
        .http_yaml(format!(
            "  tls:\n    certificate: {}\n    key: {}\n",
            yaml_str(&certs.cert()),
            yaml_str(&certs.key())
        ));
    let config = match kind {
        RegistryKind::Portcullis => config.auth_yaml(format!(
            "  htpasswd:\n    realm: portcullis-test\n    path: {}\n  tokenserver: {{}}\n",
            yaml_str(&htpasswd)
        )),
        RegistryKind::Reference => config.htpasswd(&htpasswd),
    };
    // Ready once curl, trusting the CA, gets an answer from https://IP:PORT:
    // the certificate is valid for the address, only Docker lacks the CA.
    let registry = Registry::start_tls(kind, &config, &certs.ca());
    let host = registry.host();
    assert_eq!(
        registry.ip(),
        ip,
        "the registry listens on the test host's address"
    );
    let reply = tls::curl("GET", &registry.url("/v2/"), &certs.ca(), &[]);
    assert_eq!(reply.status, 401, "anonymous GET /v2/ over TLS: {reply:?}");

    let trust_dir = std::path::Path::new("/etc/docker/certs.d").join(&host);
    assert!(
        !trust_dir.exists(),
        "{} exists before the test installs it",
        trust_dir.display()
    );
    let docker = Docker::new();
    let image = docker.build_test_image("untrusted tls");
    let remote = image.remote(&host);

    // a. Login without the CA: Docker's x509 error.
    let out = docker.login(&host, USER, PASSWORD);
    let printed = common::combined_output(&out);
    assert!(
        !out.status.success(),
        "docker login {host} succeeded without the CA:\n{printed}"
    );
    assert!(
        printed.contains(X509_ERROR),
        "docker login {host} without the CA failed, but not with {X509_ERROR:?}:\n{printed}"
    );
    eprintln!("docker login without the CA: {}", printed.trim());

    // b. Pull without the CA: the same error.
    let printed = docker.pull_fails(&remote);
    assert!(
        printed.contains(X509_ERROR),
        "docker pull {remote} without the CA failed, but not with {X509_ERROR:?}:\n{printed}"
    );
    eprintln!("docker pull without the CA: {}", printed.trim());

    // c. With the CA where the daemon looks for it (read on each connection,
    // no restart): login, push and pull work.
    let _trust = DockerTrust::install(&host, &certs.ca());
    let out = docker.login(&host, USER, PASSWORD);
    common::assert_success(&format!("docker login {host} with the CA"), &out);
    let pushed = docker.push(&image, &host);
    assert_eq!(pushed, remote);
    docker.forget(&image, &remote);
    docker.pull_and_compare(&image, &remote);
}
