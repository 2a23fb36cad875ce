//! `portcullis cert generate`: a CA and a server certificate with the right
//! SANs and modes, and renewal with `--ca` that keeps the CA.
//! `portcullis cert client`: a client certificate signed by that CA, named
//! for `http.tls.clientidentity`, and the names it refuses.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

fn portcullis(args: &[&str]) -> Output {
    portcullis_testkit::run(
        Command::new(env!("CARGO_BIN_EXE_portcullis")).args(args),
        None,
        Duration::from_secs(120),
    )
}

fn ok(args: &[&str]) -> String {
    let out = portcullis(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn openssl() -> bool {
    Command::new("openssl").arg("version").output().is_ok()
}

fn openssl_out(args: &[&str]) -> String {
    let out = portcullis_testkit::run(
        Command::new("openssl").args(args),
        None,
        Duration::from_secs(60),
    );
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn generate_writes_a_ca_and_a_server_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("certs");
    let o = out.to_str().unwrap();
    let stdout = ok(&[
        "cert",
        "generate",
        "--host",
        "registry.example",
        "--host",
        "localhost",
        "--ip",
        "127.0.0.1",
        "--ip",
        "::1",
        "--out",
        o,
    ]);
    for name in ["ca.crt", "ca.key", "server.crt", "server.key"] {
        assert!(out.join(name).is_file(), "{name}");
    }
    assert_eq!(mode(&out.join("ca.key")), 0o600);
    assert_eq!(mode(&out.join("server.key")), 0o600);
    let chain = std::fs::read_to_string(out.join("server.crt")).unwrap();
    assert_eq!(chain.matches("BEGIN CERTIFICATE").count(), 2, "leaf + CA");
    let ca = std::fs::read_to_string(out.join("ca.crt")).unwrap();
    assert!(chain.ends_with(&ca));
    for needle in [
        "/etc/docker/certs.d/registry.example:5000/ca.crt",
        "update-ca-certificates",
        "certificate:",
        "insecure-registries",
    ] {
        assert!(stdout.contains(needle), "{needle} in:\n{stdout}");
    }

    // A second run without --ca would replace the CA clients trust: refused.
    let again = portcullis(&["cert", "generate", "--host", "registry.example", "--out", o]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--ca"));

    if !openssl() {
        eprintln!("openssl not installed: SAN and chain checks skipped");
        return;
    }
    let text = openssl_out(&[
        "x509",
        "-noout",
        "-text",
        "-in",
        out.join("server.crt").to_str().unwrap(),
    ]);
    for san in [
        "DNS:registry.example",
        "DNS:localhost",
        "IP Address:127.0.0.1",
        "IP Address:0:0:0:0:0:0:0:1",
    ] {
        assert!(text.contains(san), "{san} in:\n{text}");
    }
    assert!(text.contains("TLS Web Server Authentication"), "{text}");
    let v = openssl_out(&[
        "verify",
        "-CAfile",
        out.join("ca.crt").to_str().unwrap(),
        out.join("server.crt").to_str().unwrap(),
    ]);
    assert!(v.contains("OK"), "{v}");
}

#[test]
fn renewal_with_ca_keeps_the_ca() {
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("first");
    let second = dir.path().join("second");
    let f = first.to_str().unwrap();
    ok(&["cert", "generate", "--host", "registry.example", "--out", f]);
    let ca_before = std::fs::read(first.join("ca.crt")).unwrap();
    let key_before = std::fs::read(first.join("ca.key")).unwrap();
    let leaf_before = std::fs::read(first.join("server.crt")).unwrap();

    // Renew in place.
    let stdout = ok(&[
        "cert",
        "generate",
        "--host",
        "registry.example",
        "--days",
        "30",
        "--ca",
        f,
        "--out",
        f,
    ]);
    assert!(stdout.contains("existing CA"), "{stdout}");
    assert_eq!(std::fs::read(first.join("ca.crt")).unwrap(), ca_before);
    assert_eq!(std::fs::read(first.join("ca.key")).unwrap(), key_before);
    assert_ne!(
        std::fs::read(first.join("server.crt")).unwrap(),
        leaf_before
    );

    // Into another directory: the CA certificate is copied, its key is not.
    ok(&[
        "cert",
        "generate",
        "--ip",
        "127.0.0.1",
        "--ca",
        f,
        "--out",
        second.to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read(second.join("ca.crt")).unwrap(), ca_before);
    assert!(!second.join("ca.key").exists());
    assert_eq!(mode(&second.join("server.key")), 0o600);

    if openssl() {
        for leaf in [first.join("server.crt"), second.join("server.crt")] {
            let v = openssl_out(&[
                "verify",
                "-CAfile",
                first.join("ca.crt").to_str().unwrap(),
                leaf.to_str().unwrap(),
            ]);
            assert!(v.contains("OK"), "{v}");
        }
    }
}

#[test]
fn bad_input_is_explained() {
    let dir = tempfile::tempdir().unwrap();
    let o = dir.path().to_str().unwrap();
    let none = portcullis(&["cert", "generate", "--out", o]);
    assert!(!none.status.success());
    assert!(String::from_utf8_lossy(&none.stderr).contains("--host"));
    let bad = portcullis(&["cert", "generate", "--host", "not a name", "--out", o]);
    assert!(!bad.status.success());
    let missing = portcullis(&[
        "cert",
        "generate",
        "--host",
        "r.example",
        "--ca",
        "/no/such/ca",
        "--out",
        o,
    ]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/no/such/ca/ca.crt"));
}

/// The DER of every `CERTIFICATE` block of a PEM file, in order.
fn pem_certs(path: &Path) -> Vec<Vec<u8>> {
    let text = std::fs::read(path).unwrap();
    x509_parser::pem::Pem::iter_from_buffer(&text)
        .map(|pem| {
            let pem = pem.unwrap();
            assert_eq!(pem.label, "CERTIFICATE", "{}", path.display());
            pem.contents
        })
        .collect()
}

#[test]
fn client_writes_a_certificate_signed_by_the_ca() {
    use x509_parser::extensions::GeneralName;
    use x509_parser::prelude::{FromDer, X509Certificate};

    let dir = tempfile::tempdir().unwrap();
    let ca_dir = dir.path().join("ca");
    let out = dir.path().join("alice");
    let c = ca_dir.to_str().unwrap();
    ok(&["cert", "generate", "--host", "registry.example", "--out", c]);
    let stdout = ok(&[
        "cert",
        "client",
        "--name",
        "alice",
        "--ca",
        c,
        "--out",
        out.to_str().unwrap(),
        "--days",
        "30",
        "--san-email",
        "alice@example.com",
    ]);
    assert_eq!(mode(&out.join("client.key")), 0o600);
    assert_eq!(mode(&out.join("client.cert")), 0o644);
    // What Docker needs next to them in /etc/docker/certs.d, and how to
    // configure the server.
    for needle in [
        "clientcas: [",
        "/ca.crt]",
        "clientauth: optional",
        "clientidentity: cn",
        "clientidentity: san-email",
        "/etc/docker/certs.d/HOST:PORT",
        "127.0.0.0/8",
        "client.cert",
        "--cert ",
        "--key ",
        "OWNER+ROBOT",
    ] {
        assert!(stdout.contains(needle), "{needle} in:\n{stdout}");
    }

    // client.cert: the leaf, then the CA certificate.
    let chain = pem_certs(&out.join("client.cert"));
    let ca = pem_certs(&ca_dir.join("ca.crt"));
    assert_eq!(chain.len(), 2, "leaf + CA");
    assert_eq!(chain[1], ca[0]);
    let (_, leaf) = X509Certificate::from_der(&chain[0]).unwrap();
    let (_, ca_cert) = X509Certificate::from_der(&ca[0]).unwrap();
    leaf.verify_signature(Some(ca_cert.public_key()))
        .expect("the client certificate is signed by the CA");
    assert_eq!(leaf.issuer(), ca_cert.subject());
    assert!(!leaf.is_ca());
    let cn: Vec<&str> = leaf
        .subject()
        .iter_common_name()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert_eq!(cn, ["alice"]);
    let eku = leaf.extended_key_usage().unwrap().expect("an EKU").value;
    assert!(eku.client_auth && !eku.server_auth, "{eku:?}");
    let ku = leaf.key_usage().unwrap().expect("a key usage").value;
    assert!(ku.digital_signature() && !ku.key_cert_sign(), "{ku:?}");
    let san = leaf
        .subject_alternative_name()
        .unwrap()
        .expect("a SAN")
        .value;
    assert_eq!(
        san.general_names,
        [GeneralName::RFC822Name("alice@example.com")]
    );
    let days =
        (leaf.validity().not_after.timestamp() - leaf.validity().not_before.timestamp()) / 86_400;
    assert_eq!(days, 30, "--days 30 (plus the hour of clock skew allowed)");
    // The key is the certificate's.
    let key_pem = std::fs::read_to_string(out.join("client.key")).unwrap();
    let key = rcgen::KeyPair::from_pem(&key_pem).unwrap();
    assert_eq!(
        rcgen::PublicKeyData::subject_public_key_info(&key),
        leaf.public_key().raw
    );

    // Again into the same directory: renewal replaces both files.
    ok(&[
        "cert",
        "client",
        "--name",
        "alice+ci-bot",
        "--ca",
        c,
        "--out",
        out.to_str().unwrap(),
    ]);
    let renewed = pem_certs(&out.join("client.cert"));
    assert_ne!(renewed[0], chain[0]);
    assert_ne!(
        std::fs::read_to_string(out.join("client.key")).unwrap(),
        key_pem
    );
    assert_eq!(mode(&out.join("client.key")), 0o600);
    let (_, robot) = X509Certificate::from_der(&renewed[0]).unwrap();
    assert_eq!(
        robot
            .subject()
            .iter_common_name()
            .next()
            .unwrap()
            .as_str()
            .unwrap(),
        "alice+ci-bot"
    );
    assert!(
        robot.subject_alternative_name().unwrap().is_none(),
        "no --san-email, no SAN"
    );
    // The CA was only read.
    assert_eq!(pem_certs(&ca_dir.join("ca.crt")), ca);

    if !openssl() {
        eprintln!("openssl not installed: openssl verify -purpose skipped");
        return;
    }
    let ca_file = ca_dir.join("ca.crt");
    let cert_file = out.join("client.cert");
    let (ca_file, cert_file) = (ca_file.to_str().unwrap(), cert_file.to_str().unwrap());
    let v = openssl_out(&[
        "verify",
        "-purpose",
        "sslclient",
        "-CAfile",
        ca_file,
        cert_file,
    ]);
    assert!(v.contains("OK"), "{v}");
    // A client certificate cannot serve.
    let server = portcullis_testkit::run(
        Command::new("openssl").args([
            "verify",
            "-purpose",
            "sslserver",
            "-CAfile",
            ca_file,
            cert_file,
        ]),
        None,
        Duration::from_secs(60),
    );
    assert!(
        !server.status.success(),
        "a client certificate is no server's"
    );
}

#[test]
fn client_refuses_bad_names_and_a_missing_ca() {
    let dir = tempfile::tempdir().unwrap();
    let ca_dir = dir.path().join("ca");
    let c = ca_dir.to_str().unwrap();
    ok(&["cert", "generate", "--host", "registry.example", "--out", c]);
    let out = dir.path().join("out");
    let o = out.to_str().unwrap();
    let refused = |args: &[&str], needles: &[&str]| {
        let r = portcullis(args);
        let stderr = String::from_utf8_lossy(&r.stderr);
        assert_eq!(r.status.code(), Some(1), "{args:?}: {stderr}");
        for needle in needles {
            assert!(
                stderr.contains(needle),
                "{needle:?} for {args:?} in: {stderr}"
            );
        }
        assert!(
            !out.join("client.cert").exists() && !out.join("client.key").exists(),
            "{args:?} wrote files"
        );
    };
    for (name, why) in [
        ("", "empty"),
        ("alice:x", "':'"),
        ("ali\nce", "'\\n'"),
        ("ali\u{7f}ce", "forbidden character"),
        ("+robot", "owner"),
        ("alice+", "robot name"),
        ("alice+CI", "robot name"),
    ] {
        refused(
            &["cert", "client", "--name", name, "--ca", c, "--out", o],
            &["--name", "cannot identify anyone", why, "OWNER+ROBOT"],
        );
    }
    refused(
        &[
            "cert",
            "client",
            "--name",
            "alice",
            "--san-email",
            "not-an-address",
            "--ca",
            c,
            "--out",
            o,
        ],
        &["--san-email", "not-an-address"],
    );
    // No CA there: the path, and where a CA comes from.
    refused(
        &[
            "cert",
            "client",
            "--name",
            "alice",
            "--ca",
            "/no/such/ca",
            "--out",
            o,
        ],
        &["/no/such/ca/ca.crt", "cert generate"],
    );
    // A directory with a server certificate but no CA key (a --ca copy).
    let copy = dir.path().join("copy");
    ok(&[
        "cert",
        "generate",
        "--host",
        "registry.example",
        "--ca",
        c,
        "--out",
        copy.to_str().unwrap(),
    ]);
    refused(
        &[
            "cert",
            "client",
            "--name",
            "alice",
            "--ca",
            copy.to_str().unwrap(),
            "--out",
            o,
        ],
        &["ca.key"],
    );
    // Usage errors: exit 2.
    let usage = portcullis(&["cert", "client", "--ca", c, "--out", o]);
    assert_eq!(usage.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&usage.stderr).contains("--name"));
}
