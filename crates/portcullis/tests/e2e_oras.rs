//! oras-py (the Python ORAS client, a PyPI package) pushes and pulls an
//! artifact through the built-in token service.
//!
//! oras-py asks for a token with the scope of the first challenge it meets
//! (a `HEAD` of a blob: pull only) and, on a later 401, sends that same
//! token again. It asks for a new token only on a 403 that carries a Bearer
//! challenge. portcullis answers a valid token that is narrower than what
//! the policy would grant with exactly that (RFC 6750's insufficient_scope
//! 403), so the push goes through; a push the policy refuses still fails.

mod common;

use std::process::Command;

use common::token::{self, ALICE, ALICE_PASSWORD, TokenServer};

const NEEDS: &str = "python3 python:oras";

const SCRIPT: &str = r#"
import sys, os
import oras.client
host, user, password, repo, path, out = sys.argv[1:7]
c = oras.client.OrasClient(hostname=host, insecure=True, auth_backend="token")
c.login(username=user, password=password, hostname=host)
r = c.push(files=[path], target=f"{host}/{repo}:v1")
print("push", r.status_code)
files = c.pull(target=f"{host}/{repo}:v1", outdir=out)
print("pulled", files)
"#;

fn oras(
    host: &str,
    user: &str,
    password: &str,
    repo: &str,
    dir: &std::path::Path,
) -> std::process::Output {
    let artifact = dir.join("artifact.txt");
    std::fs::write(&artifact, "an oras artifact\n").unwrap();
    common::run(
        Command::new("python3")
            .current_dir(dir)
            .args(["-c", SCRIPT, host, user, password, repo, "artifact.txt"])
            .arg(dir.join("pulled")),
        None,
        std::time::Duration::from_secs(180),
    )
}

#[test]
fn oras_py_pushes_and_pulls_in_token_mode() {
    if !common::e2e_gate(NEEDS) || !token::portcullis_only() {
        return;
    }
    let dir = common::temp_dir();
    let registry = TokenServer::default().start(dir.path());
    let work = common::temp_dir();
    let out = oras(
        &registry.host(),
        ALICE,
        ALICE_PASSWORD,
        "team/artifact",
        work.path(),
    );
    let text = common::combined_output(&out);
    assert!(
        out.status.success(),
        "oras-py push/pull failed:\n{text}\nregistry log:\n{}",
        registry.log()
    );
    assert!(text.contains("push 201"), "{text}");
    let pulled = std::fs::read_to_string(work.path().join("pulled/artifact.txt"))
        .unwrap_or_else(|e| panic!("nothing pulled ({e}):\n{text}"));
    assert_eq!(pulled, "an oras artifact\n");
}
