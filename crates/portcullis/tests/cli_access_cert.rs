//! `portcullis access explain --certificate PEM`: who a client certificate
//! identifies under `http.tls.clientidentity` and what the policy decides
//! for it; and, for a certificate that would be refused, why. Runs
//! everywhere: no root, no daemon, no server.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

/// An htpasswd bcrypt hash (the password `demo`); it does not matter here.
const HASH: &str = "$2y$05$JpOZHEckqMJ6i05HuREAYe6BIdrl1XkiSJUwUXvuGOwVXT00JFiee";

struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    /// A CA and server certificate from `portcullis cert generate`, and an
    /// htpasswd file with alice.
    fn new() -> Self {
        let dir = common::temp_dir();
        let out = common::run(
            Command::new(env!("CARGO_BIN_EXE_portcullis"))
                .args(["cert", "generate", "--host", "localhost", "--out"])
                .arg(dir.path().join("pki")),
            None,
            Duration::from_secs(60),
        );
        common::assert_success("cert generate", &out);
        std::fs::write(dir.path().join("htpasswd"), format!("alice:{HASH}\n")).expect("htpasswd");
        Self { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A config serving TLS with client CAs and `clientidentity` (if any).
    fn config(&self, identity: Option<&str>) -> PathBuf {
        let pki = self.path("pki");
        let y = |p: &Path| common::registry::yaml_str(p);
        let identity = identity
            .map(|m| format!("    clientidentity: {m}\n"))
            .unwrap_or_default();
        let text = format!(
            "version: 0.1\n\
             storage:\n  filesystem:\n    rootdirectory: {root}\n\
             http:\n  addr: 127.0.0.1:5000\n  tls:\n    certificate: {cert}\n    key: {key}\n    clientcas: [{ca}]\n    clientauth: optional\n{identity}\
             auth:\n  htpasswd:\n    realm: test\n    path: {users}\n\
             access:\n  rules:\n    - {{ subjects: [authenticated], repositories: [\"${{user}}/**\"], actions: [pull, push] }}\n",
            root = y(&self.path("data")),
            cert = y(&pki.join("server.crt")),
            key = y(&pki.join("server.key")),
            ca = y(&pki.join("ca.crt")),
            users = y(&self.path("htpasswd")),
        );
        let path = self.path("config.yml");
        std::fs::write(&path, text).expect("write config");
        path
    }

    /// A client certificate with common name `cn`, signed by the CA of
    /// `cert generate` or, with `foreign`, by a CA nobody trusts.
    fn client(&self, cn: &str, foreign: bool) -> PathBuf {
        let issuer_key;
        let issuer = if foreign {
            issuer_key = rcgen::KeyPair::generate().expect("key");
            let mut p = rcgen::CertificateParams::default();
            p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            p.distinguished_name
                .push(rcgen::DnType::CommonName, "Stranger CA");
            rcgen::Issuer::new(p, issuer_key)
        } else {
            let pki = self.path("pki");
            let ca_pem = std::fs::read_to_string(pki.join("ca.crt")).expect("ca.crt");
            let key_pem = std::fs::read_to_string(pki.join("ca.key")).expect("ca.key");
            let key = rcgen::KeyPair::from_pem(&key_pem).expect("ca.key");
            rcgen::Issuer::from_ca_cert_pem(&ca_pem, key).expect("issuer")
        };
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::default();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params.signed_by(&key, &issuer).expect("sign");
        let path = self.path(&format!("{cn}-{foreign}.pem"));
        std::fs::write(&path, cert.pem()).expect("write client cert");
        path
    }
}

fn explain(config: &Path, cert: &Path, repo: &str, action: &str) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_portcullis"));
    cmd.args(["access", "explain", "--certificate"])
        .arg(cert)
        .args(["--repo", repo, "--action", action, "--config"])
        .arg(config);
    common::without_registry_env(&mut cmd);
    common::run(&mut cmd, None, Duration::from_secs(60))
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn a_certificate_is_explained_as_the_identity_it_names() {
    let s = Setup::new();
    let config = s.config(Some("cn"));
    let alice = s.client("alice", false);

    let out = explain(&config, &alice, "alice/app", "push");
    common::assert_success("explain alice's certificate", &out);
    let t = text(&out);
    assert!(
        t.contains("names `alice` under clientidentity cn: user `alice`"),
        "{t}"
    );
    assert!(t.contains("signed by `"), "{t}");
    assert!(t.to_lowercase().contains("allow"), "{t}");

    let out = explain(&config, &alice, "bob/app", "pull");
    // A deny exits 1.
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let t = text(&out);
    assert!(
        t.to_lowercase().contains("den"),
        "alice may not pull bob/app: {t}"
    );
}

#[test]
fn refused_certificates_say_why() {
    let s = Setup::new();
    let config = s.config(Some("cn"));

    let out = explain(&config, &s.client("mallory", false), "mallory/x", "pull");
    assert!(!out.status.success(), "unknown user: {}", text(&out));
    assert!(
        text(&out).contains("`mallory`, who is not a user of this registry"),
        "{}",
        text(&out)
    );

    let out = explain(&config, &s.client("alice", true), "alice/x", "pull");
    assert!(!out.status.success(), "foreign CA: {}", text(&out));
    assert!(
        text(&out).contains("was not signed by any CA in http.tls.clientcas"),
        "{}",
        text(&out)
    );

    let without = s.config(None);
    let out = explain(&without, &s.client("alice", false), "alice/x", "pull");
    assert!(!out.status.success(), "no clientidentity: {}", text(&out));
    assert!(
        text(&out).contains("http.tls.clientidentity is not set"),
        "{}",
        text(&out)
    );
}
