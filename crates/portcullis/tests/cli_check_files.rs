//! `portcullis config check` loads the files a configuration points at with
//! the code `serve` uses at start, so it refuses what `serve` refuses: an
//! expired or not-yet-valid certificate, one that does not name `http.host`,
//! a key that does not match, an incomplete chain, a storage root that
//! cannot be written, and signing keys that do not load. Each error names
//! the key, its line and the fix. Fixtures are made at test time with rcgen.
//! Runs everywhere (no root, no daemon).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use rcgen::{CertificateParams, CustomExtension, IsCa, Issuer, KeyPair};
use time::OffsetDateTime;

/// `portcullis config check --config PATH`, without any `REGISTRY_*`.
fn check(path: &Path) -> (Option<i32>, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_portcullis"));
    cmd.args(["config", "check", "--config"])
        .arg(path)
        .current_dir(path.parent().unwrap());
    common::without_registry_env(&mut cmd);
    let out = common::run(&mut cmd, None, Duration::from_secs(60));
    (out.status.code(), common::combined_output(&out))
}

/// A certificate for `names` valid from `from` to `to` days from now,
/// self-signed or signed by `issuer`, with the Authority Information Access
/// extension public CAs add when `aia`.
fn cert(
    names: &[&str],
    (from, to): (i64, i64),
    issuer: Option<&Issuer<'_, KeyPair>>,
    aia: bool,
) -> (String, KeyPair) {
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>()).unwrap();
    let now = OffsetDateTime::now_utc();
    params.not_before = now + time::Duration::days(from);
    params.not_after = now + time::Duration::days(to);
    if aia {
        // SEQUENCE { SEQUENCE { caIssuers, [6] "http://a/c" } }
        let der = b"\x30\x18\x30\x16\x06\x08\x2b\x06\x01\x05\x05\x07\x30\x02\x86\x0ahttp://a/c";
        params
            .custom_extensions
            .push(CustomExtension::from_oid_content(
                &[1, 3, 6, 1, 5, 5, 7, 1, 1],
                der.to_vec(),
            ));
    }
    let cert = match issuer {
        Some(issuer) => params.signed_by(&key, issuer).unwrap(),
        None => params.self_signed(&key).unwrap(),
    };
    (cert.pem(), key)
}

struct Setup {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

impl Setup {
    fn new() -> Self {
        let dir = common::temp_dir();
        let root = dir.path().to_owned();
        Self { _dir: dir, root }
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.root.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// A config serving TLS from `server.crt`/`server.key`; `extra_http`
    /// goes under `http:`. `http.tls.certificate` is on line 8.
    fn tls_config(&self, cert_pem: &str, key_pem: &str, extra_http: &str) -> PathBuf {
        let cert = self.write("server.crt", cert_pem);
        let key = self.write("server.key", key_pem);
        self.write(
            "config.yml",
            &format!(
                "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:5000\n  tls:\n    certificate: {}\n    key: {}\n{extra_http}",
                self.root.join("data").display(),
                cert.display(),
                key.display()
            ),
        )
    }
}

fn assert_refused(out: &(Option<i32>, String), needles: &[&str]) {
    assert_eq!(out.0, Some(1), "{}", out.1);
    for needle in needles {
        assert!(out.1.contains(needle), "no {needle:?} in:\n{}", out.1);
    }
}

#[test]
fn a_good_certificate_is_valid() {
    let s = Setup::new();
    let (pem, key) = cert(&["localhost"], (-1, 90), None, false);
    let config = s.tls_config(
        &pem,
        &key.serialize_pem(),
        "  host: https://localhost:5000\n",
    );
    let (code, out) = check(&config);
    assert_eq!(code, Some(0), "{out}");
}

#[test]
fn an_expired_certificate_is_an_error_with_a_renewal_command() {
    let s = Setup::new();
    let (pem, key) = cert(&["localhost"], (-30, -1), None, false);
    let config = s.tls_config(&pem, &key.serialize_pem(), "");
    assert_refused(
        &check(&config),
        &[
            "config.yml:8: http.tls.certificate",
            "expired on",
            "Fix: renew it",
            "portcullis cert generate",
        ],
    );
}

#[test]
fn a_certificate_not_yet_valid_is_an_error() {
    let s = Setup::new();
    let (pem, key) = cert(&["localhost"], (2, 90), None, false);
    let config = s.tls_config(&pem, &key.serialize_pem(), "");
    assert_refused(
        &check(&config),
        &[
            "config.yml:8: http.tls.certificate",
            "not valid yet",
            "Fix: check the system clock",
        ],
    );
}

#[test]
fn a_certificate_without_http_host_in_its_sans_is_an_error() {
    let s = Setup::new();
    let (pem, key) = cert(&["other.example.com"], (-1, 90), None, false);
    let config = s.tls_config(
        &pem,
        &key.serialize_pem(),
        "  host: https://registry.example.com\n",
    );
    assert_refused(
        &check(&config),
        &[
            "registry.example.com",
            "Fix: issue a certificate with `registry.example.com`",
        ],
    );
}

#[test]
fn a_key_that_does_not_match_is_an_error() {
    let s = Setup::new();
    let (pem, _) = cert(&["localhost"], (-1, 90), None, false);
    let other = KeyPair::generate().unwrap();
    let config = s.tls_config(&pem, &other.serialize_pem(), "");
    assert_refused(
        &check(&config),
        &[
            "config.yml:9: http.tls.key",
            "does not match",
            "Fix: use the key the certificate was issued for",
        ],
    );
}

#[test]
fn an_incomplete_chain_from_a_public_ca_is_an_error() {
    let s = Setup::new();
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "Test Public CA");
    let issuer = Issuer::new(ca, ca_key);
    let (pem, key) = cert(&["localhost"], (-1, 90), Some(&issuer), true);
    let config = s.tls_config(&pem, &key.serialize_pem(), "");
    assert_refused(
        &check(&config),
        &[
            "http.tls.certificate",
            "incomplete",
            "Fix: append the intermediate certificates",
        ],
    );
}

#[test]
fn a_storage_root_that_cannot_be_created_is_an_error() {
    let s = Setup::new();
    // Nothing can be created under /proc, not even by root.
    let config = s.write(
        "config.yml",
        "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /proc/portcullis-check-test/data\nhttp:\n  addr: 127.0.0.1:5000\n",
    );
    assert_refused(
        &check(&config),
        &[
            "config.yml:4: storage.filesystem.rootdirectory",
            "cannot create /proc/portcullis-check-test/data/portcullis under /proc",
            "Fix: give the user portcullis runs as write access to /proc",
        ],
    );
}

#[test]
fn signing_keys_that_do_not_load_are_errors() {
    let s = Setup::new();
    if !common::e2e_gate("htpasswd") {
        return;
    }
    let users = s.root.join("htpasswd");
    common::write_htpasswd(&users, &[("alice", "pw")]);
    let junk = s.write("junk.pem", "not a key\n");
    let head = format!(
        "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:5000\nauth:\n  htpasswd:\n    realm: r\n    path: {}\n  tokenserver:\n",
        s.root.join("data").display(),
        users.display()
    );
    // A configured key that is not a key (line 14), and a verify-only
    // certificate that is not one.
    let config = s.write(
        "config.yml",
        &format!(
            "{head}    keys:\n      signing:\n        key: {j}\n        certificate: {j}\n      verify: [{j}]\n",
            j = junk.display()
        ),
    );
    assert_refused(
        &check(&config),
        &[
            "config.yml:14: auth.tokenserver.keys.signing.key",
            "junk.pem",
            "portcullis keys generate --out DIR",
            "auth.tokenserver.keys.verify[0]",
        ],
    );

    // A refresh-token store that does not parse.
    let state = s.root.join("data/portcullis");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(state.join("refresh-tokens.json"), "{ not json").unwrap();
    let config = s.write("config.yml", &head);
    assert_refused(
        &check(&config),
        &[
            "auth.tokenserver.refresh",
            "refresh-tokens.json",
            "docker login",
        ],
    );
    std::fs::remove_file(state.join("refresh-tokens.json")).unwrap();

    // A generated key in the data directory that was damaged.
    let keys = s.root.join("data/portcullis/keys");
    std::fs::create_dir_all(&keys).unwrap();
    std::fs::write(keys.join("signing.key"), "damaged\n").unwrap();
    std::fs::write(keys.join("signing.crt"), "damaged\n").unwrap();
    let config = s.write("config.yml", &head);
    assert_refused(
        &check(&config),
        &[
            "auth.tokenserver",
            "signing.key",
            "portcullis keys generate --config",
        ],
    );
}

#[test]
fn http_host_is_advised_when_listening_beyond_loopback() {
    let s = Setup::new();
    let config = s.write(
        "config.yml",
        "version: 0.1\nstorage:\n  inmemory:\nhttp:\n  addr: 0.0.0.0:5000\n",
    );
    let (code, out) = check(&config);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("warning: ")
            && out.contains("http.host: is not set")
            && out.contains("0.0.0.0:5000"),
        "{out}"
    );
}
