//! A skopeo client for tests: its own auth file, a permissive signature
//! policy, and a deadline on every command.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use tempfile::TempDir;

use super::oci::{OciImage, OciLayout, read_layout_image};
use super::process::{assert_success, run};
use super::temp_dir;

const SKOPEO_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs `skopeo` with state that belongs to one test.
pub struct Skopeo {
    /// Holds `auth.json` (so `$HOME`'s logins are never used) and a tmpdir.
    dir: TempDir,
}

impl Skopeo {
    /// A client with no stored credentials.
    pub fn new() -> Self {
        let dir = temp_dir();
        std::fs::create_dir_all(dir.path().join("tmp")).expect("mkdir skopeo tmp");
        Self { dir }
    }

    /// A `skopeo --insecure-policy` command (not yet run).
    pub fn command(&self) -> Command {
        let mut cmd = Command::new("skopeo");
        cmd.env("REGISTRY_AUTH_FILE", self.dir.path().join("auth.json"))
            .env("TMPDIR", self.dir.path().join("tmp"))
            .arg("--insecure-policy");
        cmd
    }

    /// Runs `skopeo ARGS...`, whatever its exit status.
    pub fn skopeo(&self, args: &[&str]) -> Output {
        run(self.command().args(args), None, SKOPEO_TIMEOUT)
    }

    /// Runs `skopeo ARGS...`, panics unless it succeeds, returns its stdout.
    pub fn skopeo_ok(&self, args: &[&str]) -> String {
        let out = self.skopeo(args);
        assert_success(&format!("skopeo {}", args.join(" ")), &out);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `skopeo copy` of the image tagged `tag` in `layout` to `target` (a
    /// `docker://` reference over plain HTTP) as `creds` (`USER:PASSWORD`).
    pub fn push_layout(&self, layout: &OciLayout, tag: &str, target: &str, creds: &str) {
        self.skopeo_ok(&[
            "copy",
            "--dest-tls-verify=false",
            "--dest-creds",
            creds,
            &layout.reference(tag),
            target,
        ]);
    }

    /// `skopeo copy` of `source` (a `docker://` reference over plain HTTP)
    /// as `creds` into a new OCI layout at `dir`, tagged `tag`; returns what
    /// the layout holds.
    pub fn pull_to_layout(&self, source: &str, creds: &str, dir: &Path, tag: &str) -> OciImage {
        self.skopeo_ok(&[
            "copy",
            "--src-tls-verify=false",
            "--src-creds",
            creds,
            source,
            &format!("oci:{}:{tag}", dir.display()),
        ]);
        read_layout_image(dir, tag)
    }
}

impl Default for Skopeo {
    fn default() -> Self {
        Self::new()
    }
}
