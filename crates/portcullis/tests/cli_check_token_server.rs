//! `portcullis config check --config REGISTRY2 --token-server PORTCULLIS`:
//! a registry:2-style configuration whose `auth.token` trusts portcullis is
//! compared with portcullis's own: issuer, service, realm, the bundle (does
//! it hold portcullis's signing key?) and the algorithm. Keys and bundles
//! are made with `portcullis keys`. Runs everywhere; needs `htpasswd`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn portcullis(args: &[&str], cwd: &Path) -> (Option<i32>, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_portcullis"));
    cmd.args(args).current_dir(cwd);
    common::without_registry_env(&mut cmd);
    let out = common::run(&mut cmd, None, Duration::from_secs(60));
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        common::combined_output(&out),
    )
}

struct Pair {
    dir: tempfile::TempDir,
}

impl Pair {
    /// A portcullis token server (issuer `pc-issuer`, service `registry.test`,
    /// http.host `https://auth.test`) with key `algorithm`, without a key yet.
    fn new(algorithm: &str) -> Option<Self> {
        if !common::e2e_gate("htpasswd") {
            return None;
        }
        let dir = common::temp_dir();
        let users = dir.path().join("htpasswd");
        common::write_htpasswd(&users, &[("alice", "pw")]);
        std::fs::write(
            dir.path().join("portcullis.yml"),
            format!(
                "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:5001\n  host: https://auth.test\nauth:\n  htpasswd:\n    realm: r\n    path: {}\n  tokenserver:\n    issuer: pc-issuer\n    service: registry.test\n    algorithm: {algorithm}\n",
                dir.path().join("data").display(),
                users.display()
            ),
        )
        .unwrap();
        Some(Self { dir })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn run(&self, args: &[&str]) -> (Option<i32>, String, String) {
        portcullis(args, self.dir.path())
    }

    /// Generates portcullis's key and writes its bundle to `bundle.pem`.
    fn generate_and_bundle(&self) {
        let (code, _, out) = self.run(&["keys", "generate", "--config", "portcullis.yml"]);
        assert_eq!(code, Some(0), "{out}");
        let (code, bundle, out) = self.run(&["keys", "bundle", "--config", "portcullis.yml"]);
        assert_eq!(code, Some(0), "{out}");
        std::fs::write(self.path("bundle.pem"), bundle).unwrap();
    }

    /// The registry:2 config; `auth.token.issuer` is on line 8.
    fn registry(&self, issuer: &str, service: &str, realm: &str, extra: &str) {
        std::fs::write(
            self.path("registry.yml"),
            format!(
                "version: 0.1\nstorage:\n  inmemory:\nhttp:\n  addr: 127.0.0.1:5000\nauth:\n  token:\n    issuer: {issuer}\n    service: {service}\n    realm: {realm}\n    rootcertbundle: {}\n{extra}",
                self.path("bundle.pem").display()
            ),
        )
        .unwrap();
    }

    fn check(&self) -> (Option<i32>, String) {
        let (code, _, out) = self.run(&[
            "config",
            "check",
            "--config",
            "registry.yml",
            "--token-server",
            "portcullis.yml",
        ]);
        (code, out)
    }
}

const REALM: &str = "https://auth.test/token";

/// A pair that agrees, with a key of `algorithm`, and what its check
/// printed (it must pass).
fn matching_pair(algorithm: &str) -> Option<(Pair, String)> {
    let p = Pair::new(algorithm)?;
    p.generate_and_bundle();
    p.registry("pc-issuer", "registry.test", REALM, "");
    let (code, out) = p.check();
    assert_eq!(code, Some(0), "{out}");
    Some((p, out))
}

#[test]
fn a_matching_pair_is_valid_and_each_mismatch_is_named() {
    let Some((p, _)) = matching_pair("ES256") else {
        return;
    };

    p.registry("wrong-issuer", "wrong-service", "https://other/token", "");
    let (code, out) = p.check();
    assert_eq!(code, Some(1), "{out}");
    for needle in [
        "registry.yml:8: auth.token.issuer: is `wrong-issuer`, but portcullis (portcullis.yml) signs tokens with issuer `pc-issuer`",
        "Fix: set auth.token.issuer: pc-issuer",
        "registry.yml:9: auth.token.service: is `wrong-service`",
        "Fix: set auth.token.service: registry.test",
        "registry.yml:10: auth.token.realm",
        "Fix: set auth.token.realm: https://auth.test/token",
    ] {
        assert!(out.contains(needle), "no {needle:?} in:\n{out}");
    }

    // The algorithm of portcullis's key must be among those accepted.
    p.registry(
        "pc-issuer",
        "registry.test",
        REALM,
        "    signingalgorithms: [RS256]\n",
    );
    let (code, out) = p.check();
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("auth.token.signingalgorithms: does not list ES256"),
        "{out}"
    );
}

#[test]
fn a_bundle_without_portcullis_key_is_an_error_with_the_bundle_command() {
    let Some(p) = Pair::new("ES256") else { return };
    // Not generated yet: say how to generate and bundle it.
    p.registry("pc-issuer", "registry.test", REALM, "");
    std::fs::write(p.path("bundle.pem"), "").unwrap();
    let (code, out) = p.check();
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("has not generated its signing key yet"),
        "{out}"
    );
    assert!(
        out.contains("portcullis keys generate --config portcullis.yml"),
        "{out}"
    );

    // A bundle with some other key's certificate.
    let (code, _, out) = p.run(&[
        "keys",
        "generate",
        "--config",
        "portcullis.yml",
        "--out",
        "other",
    ]);
    assert_eq!(code, Some(0), "{out}");
    p.generate_and_bundle();
    std::fs::copy(p.path("other/signing.crt"), p.path("bundle.pem")).unwrap();
    let (code, out) = p.check();
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains(
            "registry.yml:11: auth.token.rootcertbundle: does not contain portcullis's signing key"
        ),
        "{out}"
    );
    let bundle = p.path("bundle.pem");
    assert!(
        out.contains(&format!(
            "Fix: write it with `portcullis keys bundle --config portcullis.yml > {}`",
            bundle.display()
        )),
        "{out}"
    );
}

#[test]
fn an_eddsa_key_is_a_warning_for_registry2_and_keys_bundle_says_so() {
    let Some((p, out)) = matching_pair("EdDSA") else {
        return;
    };
    assert!(
        out.contains("warning:") && out.contains("EdDSA") && out.contains("panics"),
        "{out}"
    );
    assert!(out.contains("--algorithm ES256"), "{out}");

    let (code, stdout, out) = p.run(&["keys", "bundle", "--config", "portcullis.yml"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        stdout.starts_with("-----BEGIN CERTIFICATE-----"),
        "{stdout}"
    );
    let stderr = out.replace(&stdout, "");
    assert!(
        stderr.contains("EdDSA") && stderr.contains("panics") && stderr.contains("ES256"),
        "{out}"
    );
}

#[test]
fn keys_generate_accepts_the_algorithm_in_any_case() {
    let Some(p) = Pair::new("ES256") else { return };
    for alg in ["rs256", "eddsa", "Es256"] {
        let (code, _, out) = p.run(&[
            "keys",
            "generate",
            "--config",
            "portcullis.yml",
            "--out",
            alg,
            "--algorithm",
            alg,
        ]);
        assert_eq!(code, Some(0), "{alg}: {out}");
    }
    let (code, _, out) = p.run(&[
        "keys",
        "generate",
        "--config",
        "portcullis.yml",
        "--out",
        "x",
        "--algorithm",
        "hs256",
    ]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("use ES256, RS256 or EdDSA"), "{out}");
}
