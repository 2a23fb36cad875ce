//! Whether a test that needs root, a daemon or an external tool can run on
//! this machine, and finding the programs it needs.
//!
//! A test that cannot run prints why it skips; with
//! `PORTCULLIS_E2E=required` (which `.ci/run` sets) it fails instead, and
//! `PORTCULLIS_E2E=skip` skips every such test on purpose.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Where daemons live; a non-login root shell may lack them on `PATH`.
const SBIN_DIRS: [&str; 3] = ["/usr/local/sbin", "/usr/sbin", "/sbin"];

/// Decides whether an end-to-end test can run on this machine.
///
/// `needs` is a space-separated list of requirements:
/// - `root`: the test process runs as uid 0 (for `dockerd`, mounts,
///   network namespaces);
/// - `dockerd`: `dockerd` and `containerd` are on `PATH`;
/// - `python:MODULE`: `python3` can import MODULE (a PyPI client such as
///   oras-py);
/// - any other word: a program of that name is on `PATH` or in the sbin
///   directories (`docker`, `skopeo`, `ip`, `curl`, ...).
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
                    missing.push("needs root (uid 0)".to_owned());
                }
            }
            "dockerd" => {
                for tool in ["dockerd", "containerd"] {
                    if find_in_path(tool).is_none() {
                        missing.push(format!("`{tool}` not found on PATH"));
                    }
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
    skip_or_fail(&format!(
        "{} (.ci/run installs what is needed)",
        missing.join("; ")
    ))
}

/// A test cannot run here, for `reason`: panics under
/// `PORTCULLIS_E2E=required`, otherwise prints `skipping: <reason>` and
/// returns false (so a test can `return` on it).
pub fn skip_or_fail(reason: &str) -> bool {
    assert!(
        std::env::var("PORTCULLIS_E2E").as_deref() != Ok("required"),
        "PORTCULLIS_E2E=required, but this test cannot run: {reason}"
    );
    eprintln!("skipping: {reason} (set PORTCULLIS_E2E=required to fail instead)");
    false
}

/// Whether this process runs with effective uid 0.
pub fn is_root() -> bool {
    // /proc/self belongs to the process's effective uid.
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

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
