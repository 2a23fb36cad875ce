//! Shared harness for portcullis's integration and end-to-end tests.
//!
//! Every test binary pulls this in with `mod common;`. It offers:
//!
//! - [`e2e_gate`]: decides whether a test that needs root, a Docker daemon or
//!   an external tool can run here, and skips (or, with
//!   `PORTCULLIS_E2E=required`, fails) with the reason when it cannot;
//! - [`Registry`]: a registry process (portcullis or the reference
//!   `docker-registry`) on a free port of `127.0.0.1` (or of the address
//!   a test chooses), killed on drop; [`netaddr`]: a non-loopback address of the host's own (a veth pair),
//!   for registries Docker must not treat as insecure;
//! - [`Docker`] / [`Dockerd`]: a private Docker daemon shared by the tests of
//!   one binary, and a client with its own `DOCKER_CONFIG` per test;
//! - [`Skopeo`] and [`oci`]: a skopeo client with its own auth file, and a
//!   hand-built OCI image layout to copy from;
//! - [`authz`]: the per-repository policy of issue 4, registries that
//!   enforce it in Basic or token mode, callers, hand-made images, robots;
//! - [`token`]: token-service and `auth.token` configs, the `portcullis`
//!   CLI, token requests, hand-made JWTs and `WWW-Authenticate` parsing;
//!   [`hostile`]: hostile tokens and the check that a registry refuses them;
//! - small helpers: [`free_port`], [`temp_dir`], [`write_htpasswd`], [`http`].
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
pub mod netaddr;
pub mod oci;
pub mod process;
pub mod registry;
pub mod skopeo;
pub mod tls;
pub mod token;

pub use docker::{Docker, Dockerd, TestImage};
pub use process::{assert_success, combined_output, run};
pub use registry::{Registry, RegistryConfig, RegistryKind};
pub use skopeo::Skopeo;

use std::fmt::Write as _;
use std::net::TcpListener;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tempfile::TempDir;

/// The user that test registries with htpasswd auth accept.
pub const USER: &str = "tester";
/// [`USER`]'s password.
pub const PASSWORD: &str = "correct-horse-battery";

/// Decides whether an end-to-end test can run on this machine.
///
/// `needs` is a space-separated list of requirements:
/// - `root`: the test process runs as uid 0 (needed by `dockerd`);
/// - `dockerd`: `dockerd` and `containerd` are on `PATH`;
/// - `registry`: whatever the registry under test needs
///   (`docker-registry` when `PORTCULLIS_TEST_REGISTRY=reference`);
/// - `python:MODULE`: `python3` can import MODULE (a PyPI client such as
///   oras-py);
/// - any other word: a program of that name is on `PATH`
///   (`docker`, `skopeo`, `docker-registry`, `htpasswd`, ...).
///
/// When something is missing: with `PORTCULLIS_E2E=required` this panics
/// with the reason; otherwise it prints `skipping: <reason>` to stderr and
/// returns false. `PORTCULLIS_E2E=skip` skips every e2e test on purpose.
pub fn e2e_gate(needs: &str) -> bool {
    let mode = std::env::var("PORTCULLIS_E2E").unwrap_or_default();
    if matches!(mode.as_str(), "skip" | "0" | "off" | "false") {
        eprintln!("skipping: PORTCULLIS_E2E={mode}");
        return false;
    }
    let mut missing = Vec::new();
    for need in needs.split_whitespace() {
        match need {
            "root" => {
                if !is_root() {
                    missing.push("needs root (uid 0) to run dockerd".to_owned());
                }
            }
            "dockerd" => {
                for tool in ["dockerd", "containerd"] {
                    if find_in_path(tool).is_none() {
                        missing.push(format!("`{tool}` not found on PATH"));
                    }
                }
            }
            "registry" => {
                if RegistryKind::under_test() == RegistryKind::Reference
                    && find_in_path("docker-registry").is_none()
                {
                    missing.push("`docker-registry` not found on PATH".to_owned());
                }
            }
            need if need.starts_with("python:") => {
                let module = &need["python:".len()..];
                let found = std::process::Command::new("python3")
                    .args(["-c", &format!("import {module}")])
                    .output()
                    .is_ok_and(|o| o.status.success());
                if !found {
                    missing.push(format!("python3 cannot import `{module}` (pip install it)"));
                }
            }
            tool => {
                if find_in_path(tool).is_none() {
                    missing.push(format!("`{tool}` not found on PATH"));
                }
            }
        }
    }
    if missing.is_empty() {
        return true;
    }
    let reason = missing.join("; ");
    assert!(
        mode != "required",
        "PORTCULLIS_E2E=required, but this test cannot run: {reason} \
         (.ci/run installs what is needed)"
    );
    eprintln!("skipping: {reason} (set PORTCULLIS_E2E=required to fail instead)");
    false
}

/// `PATH` with the sbin directories added: daemons such as `dockerd` look
/// for their helpers (`containerd`, `docker-proxy`, `runc`) there.
pub fn path_with_sbin() -> std::ffi::OsString {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    for dir in SBIN_DIRS
        .iter()
        .chain(&["/usr/local/bin", "/usr/bin", "/bin"])
    {
        if !dirs.iter().any(|d| d == Path::new(dir)) {
            dirs.push(PathBuf::from(dir));
        }
    }
    std::env::join_paths(dirs).expect("PATH entries contain no ':'")
}

/// Whether this process runs with effective uid 0.
pub fn is_root() -> bool {
    // /proc/self belongs to the process's effective uid.
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Where daemons live; a non-login root shell may lack them on `PATH`.
const SBIN_DIRS: [&str; 3] = ["/usr/local/sbin", "/usr/sbin", "/sbin"];

/// The first executable called `name` on `PATH` or in the sbin directories.
pub fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(SBIN_DIRS.iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| {
            candidate
                .metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// A loopback TCP port that was free a moment ago.
///
/// Another process can take it before the caller binds it; [`Registry`]
/// retries on a new port when that happens.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// A fresh temporary directory, removed on drop.
pub fn temp_dir() -> TempDir {
    tempfile::Builder::new()
        .prefix("portcullis-test-")
        .tempdir()
        .expect("create temporary directory")
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

/// Pseudo-random bytes (xorshift64*), different on every call: test images
/// only need to differ from each other, not to be unpredictable.
pub fn random_bytes(len: usize) -> Vec<u8> {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::{SystemTime, UNIX_EPOCH};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut state = (nanos as u64)
        ^ (u64::from(std::process::id()) << 32)
        ^ COUNTER
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
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
