//! Shared harness for portcullis's integration and end-to-end tests.
//!
//! Every test binary pulls this in with `mod common;`. What any suite could
//! use (process handling, e2e gating, test hosts in network namespaces,
//! temporary directories) lives in `portcullis-testkit` and is re-exported
//! here; this module adds what is about the `portcullis` binary and the
//! clients that talk to it:
//!
//! - [`e2e_gate`]: the testkit's gate, where `registry` stands for what the
//!   registry under test needs;
//! - [`Registry`]: a registry process (portcullis or the reference
//!   `docker-registry`) on a free port of `127.0.0.1`, or of a
//!   [`TestHost`] (a network namespace of the test's own) for registries
//!   Docker must not treat as insecure; killed on drop;
//! - [`Docker`] / [`Dockerd`]: a private Docker daemon shared by the tests of
//!   one binary, and a client with its own `DOCKER_CONFIG` per test;
//! - [`Skopeo`] and [`oci`]: a skopeo client with its own auth file, and a
//!   hand-built OCI image layout to copy from;
//! - [`authz`]: the per-repository policy of issue 4, registries that
//!   enforce it in Basic or token mode, callers, hand-made images, robots;
//! - [`token`]: token-service and `auth.token` configs, the `portcullis`
//!   CLI, token requests, hand-made JWTs and `WWW-Authenticate` parsing;
//!   [`hostile`]: hostile tokens and the check that a registry refuses them;
//! - small helpers: [`write_htpasswd`], [`http`], [`slug`].
//!
//! `PORTCULLIS_TEST_REGISTRY=reference` makes the scenarios that normally run
//! against portcullis run against `docker-registry` instead. That validates
//! the tests themselves against the reference implementation.

// Each test binary uses a different part of this module.
#![allow(dead_code, unused_imports)]

pub mod access;
pub mod authz;
pub mod docker;
pub mod hostile;
pub mod jwt;
pub mod oci;
pub mod registry;
pub mod robots;
pub mod skopeo;
pub mod tls;
pub mod token;

pub use docker::{Docker, Dockerd, TestImage};
pub use portcullis_testkit::{
    TestHost, find_in_path, free_port, is_root, path_with_sbin, process, random_bytes, temp_dir,
};
pub use process::{assert_success, combined_output, run};
pub use registry::{Registry, RegistryConfig, RegistryKind};
pub use skopeo::Skopeo;

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// The user that test registries with htpasswd auth accept.
pub const USER: &str = "tester";
/// [`USER`]'s password.
pub const PASSWORD: &str = "correct-horse-battery";

/// Decides whether an end-to-end test can run on this machine: the
/// testkit's [`portcullis_testkit::e2e_gate`], where `registry` also means
/// whatever the registry under test needs (`docker-registry` when
/// `PORTCULLIS_TEST_REGISTRY=reference`).
pub fn e2e_gate(needs: &str) -> bool {
    let reference = RegistryKind::under_test() == RegistryKind::Reference;
    let needs: Vec<&str> = needs
        .split_whitespace()
        .filter_map(|need| match need {
            "registry" => reference.then_some("docker-registry"),
            need => Some(need),
        })
        .collect();
    portcullis_testkit::e2e_gate(&needs.join(" "))
}

/// Removes the `REGISTRY_*` overrides of the test's own environment from
/// `cmd` (portcullis and `docker-registry` both read them), so the test's
/// config is all there is.
pub fn without_registry_env(cmd: &mut Command) -> &mut Command {
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("REGISTRY_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// Runs `portcullis ARGS... --config CONFIG` without `REGISTRY_*` from the
/// environment, killed after a minute.
pub fn portcullis_cli(args: &[&str], config: &Path) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_portcullis"));
    cmd.args(args).arg("--config").arg(config);
    run(
        without_registry_env(&mut cmd),
        None,
        Duration::from_secs(60),
    )
}

/// Writes an htpasswd file with one bcrypt entry per `(user, password)`,
/// made by the real `htpasswd -B` of apache2-utils.
pub fn write_htpasswd(path: &Path, users: &[(&str, &str)]) {
    let mut file = String::new();
    for (user, password) in users {
        let out = run(
            Command::new("htpasswd").args(["-Bbn", user, password]),
            None,
            Duration::from_secs(30),
        );
        assert_success("htpasswd -Bbn", &out);
        let entry = String::from_utf8(out.stdout).expect("htpasswd output is UTF-8");
        let entry = entry.trim();
        assert!(
            entry.starts_with(&format!("{user}:$2y$")),
            "unexpected htpasswd entry {entry:?}"
        );
        writeln!(file, "{entry}").expect("write to String");
    }
    std::fs::write(path, file).expect("write htpasswd file");
}

/// A blocking HTTP client for poking at registries directly: no proxy, and
/// timeouts so that a hung server fails the test instead of hanging it.
pub fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .no_proxy()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(30))
        .build()
        .expect("build HTTP client")
}

/// Turns a test name into something usable as a Docker repository name.
pub fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_owned()
}
