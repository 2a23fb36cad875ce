//! The Docker daemon over TLS straight to portcullis (`http.tls`, issue 5):
//! with the CA of `portcullis cert generate` in
//! `/etc/docker/certs.d/127.0.0.1:PORT/ca.crt`, login, push and pull work;
//! after the certificate is renewed under the same CA (`cert generate
//! --ca`) and copied over the served files, portcullis serves the new one
//! without a restart and a new `docker pull` works.
//!
//! Docker's x509 error without the CA is tested in `e2e_tls_untrusted.rs`:
//! the daemon treats `127.0.0.0/8` registries as insecure and skips
//! certificate verification for them, so that test runs the registry on a
//! test host of its own (a network namespace with a non-loopback address).
//!
//! The registry runs the token service with no `http.host`: the realm and
//! every `Location` must say `https://` because portcullis terminates TLS
//! itself (over HTTP/2 the host comes from `:authority`).
//!
//! Needs root, `dockerd`, `docker`, curl, openssl and htpasswd. Skipped with
//! `PORTCULLIS_TEST_REGISTRY=reference`: hot reload is portcullis's own.

mod common;

use std::time::{Duration, Instant};

use common::tls::{self, DockerTrust};
use common::token;
use common::{Docker, PASSWORD, Registry, RegistryConfig, RegistryKind, USER};

/// How long a rotated certificate may take to be served.
const ROTATION_TIMEOUT: Duration = Duration::from_secs(15);

#[test]
fn docker_over_tls_and_certificate_rotation_without_restart() {
    if !common::e2e_gate("root dockerd docker curl openssl htpasswd") || !token::portcullis_only() {
        return;
    }
    let dir = common::temp_dir();
    let d = dir.path();
    let certs = tls::generate(&d.join("certs"), None);
    // The files portcullis serves; rotation overwrites them in place.
    let served = d.join("served");
    std::fs::create_dir_all(&served).expect("mkdir served");
    let (cert, key) = (served.join("server.crt"), served.join("server.key"));
    std::fs::copy(certs.cert(), &cert).expect("copy server.crt");
    std::fs::copy(certs.key(), &key).expect("copy server.key");

    common::write_htpasswd(&d.join("htpasswd"), &[(USER, PASSWORD)]);
    let config = RegistryConfig::new(d.join("data"))
        .auth_yaml(format!(
            "  htpasswd:\n    realm: portcullis-test\n    path: {}\n  tokenserver: {{}}\n",
            common::registry::yaml_str(&d.join("htpasswd"))
        ))
        .http_yaml(format!(
            "  tls:\n    certificate: {}\n    key: {}\n",
            common::registry::yaml_str(&cert),
            common::registry::yaml_str(&key)
        ));
    let registry = Registry::start_tls(RegistryKind::Portcullis, &config, &certs.ca());
    let host = registry.host();
    let first_serial = certs.serial();
    assert_eq!(
        tls::served_serial(registry.port()),
        first_serial,
        "openssl s_client does not see the generated certificate"
    );

    let reply = tls::curl("GET", &registry.url("/v2/"), &certs.ca(), &[]);
    assert_eq!(reply.status, 401, "anonymous GET /v2/ over TLS: {reply:?}");

    let _trust = DockerTrust::install(&host, &certs.ca());
    let docker = Docker::new();
    let image = docker.build_test_image("over tls");
    let out = docker.login(&host, USER, PASSWORD);
    common::assert_success(&format!("docker login {host} over TLS"), &out);
    let remote = docker.push(&image, &host);
    docker.forget(&image, &remote);
    docker.pull_and_compare(&image, &remote);
    docker.forget(&image, &remote);

    // Renew under the same CA and copy over the served files.
    let renewed = tls::generate(&d.join("renewed"), Some(&certs.dir));
    let new_serial = renewed.serial();
    assert_ne!(new_serial, first_serial, "the renewed certificate is new");
    std::fs::copy(renewed.key(), &key).expect("overwrite server.key");
    std::fs::copy(renewed.cert(), &cert).expect("overwrite server.crt");
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(3));
    let mut seen = tls::served_serial(registry.port());
    while seen != new_serial && started.elapsed() < ROTATION_TIMEOUT {
        std::thread::sleep(Duration::from_millis(250));
        seen = tls::served_serial(registry.port());
    }
    assert_eq!(
        seen,
        new_serial,
        "portcullis still serves serial {seen} {:?} after the rotation (want {new_serial})",
        started.elapsed()
    );
    eprintln!(
        "the renewed certificate was served after at most {:?}",
        started.elapsed()
    );

    // Same process, new certificate: a new pull works.
    docker.pull_and_compare(&image, &remote);
    let log = registry.log();
    assert!(
        !log.contains("listening") || log.matches("listening").count() <= 1,
        "portcullis restarted during the rotation:\n{log}"
    );
}
