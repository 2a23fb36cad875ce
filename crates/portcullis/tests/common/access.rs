//! The access-policy fixture of the `access explain` and `config check`
//! tests: users in an htpasswd file, a policy with one rule per line, and
//! the CLI run against a config that uses them.

use std::path::{Path, PathBuf};
use std::process::Output;

/// An htpasswd entry's bcrypt hash (the password `demo`, from
/// docs/examples/htpasswd); the users' passwords do not matter here.
pub const HASH: &str = "$2y$05$JpOZHEckqMJ6i05HuREAYe6BIdrl1XkiSJUwUXvuGOwVXT00JFiee";

/// The policy of issue 4, one rule per line, so that each rule has exactly
/// one line an explanation can name.
pub const POLICY_LINES: &str = r#"  groups:
    devs: [alice, bob]
  immutable: ["release/**"]
  rules:
    - { subjects: [anonymous], repositories: ["public/**"], actions: [pull] }
    - { subjects: ["group:devs"], repositories: ["team/**"], actions: [pull, push] }
    - { subjects: [authenticated], repositories: ["${user}/**"], actions: [pull, push, delete] }
    - { subjects: ["user:admin"], repositories: ["**"], actions: ["*"] }
    - { subjects: ["user:bob"], repositories: ["team/secret/**"], actions: [pull, push], effect: deny }
"#;

/// A test directory with an htpasswd file (alice, bob, carol, admin).
pub struct Setup {
    pub dir: tempfile::TempDir,
}

impl Setup {
    pub fn new() -> Self {
        let dir = super::temp_dir();
        let users: String = ["alice", "bob", "carol", "admin"]
            .iter()
            .map(|u| format!("{u}:{HASH}\n"))
            .collect();
        std::fs::write(dir.path().join("htpasswd"), users).expect("write htpasswd");
        Self { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A config with Basic auth, filesystem storage and `access` (the
    /// section's text, `access:` line included) appended; returns its
    /// path and its text.
    pub fn config(&self, name: &str, access: &str) -> (PathBuf, String) {
        let text = format!(
            "version: 0.1\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
             auth:\n  htpasswd:\n    realm: portcullis-test\n    path: {}\n\
             {access}\n\
             http:\n  addr: 127.0.0.1:5000\n",
            super::registry::yaml_str(&self.path("data")),
            super::registry::yaml_str(&self.path("htpasswd")),
        );
        let path = self.path(name);
        std::fs::write(&path, &text).expect("write config");
        (path, text)
    }

    /// The config with [`POLICY_LINES`] inline.
    pub fn inline(&self) -> (PathBuf, String) {
        self.config("config.yml", &format!("access:\n{POLICY_LINES}"))
    }
}

/// `portcullis ARGS...`, without `REGISTRY_*` from the environment.
pub fn portcullis(args: &[&str], config: &Path) -> Output {
    super::portcullis_cli(args, config)
}
