//! `portcullis cert generate`: a CA and a server certificate with the right
//! SANs and modes, and renewal with `--ca` that keeps the CA.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

fn portcullis(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(args)
        .output()
        .expect("run portcullis")
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
    let out = Command::new("openssl").args(args).output().unwrap();
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
