//! The embedded default configuration that `serve` uses without `--config`:
//! 127.0.0.1:5000, storage under `./data`, htpasswd auth with a generated
//! `admin` user whose password is printed once and stored only as a bcrypt hash,
//! and the built-in token service (a signing key is generated on first start).

use std::path::Path;

use anyhow::Context;
use portcullis_auth::htpasswd;
use portcullis_auth::identity::UserName;
use secrecy::ExposeSecret;

/// The default configuration, in distribution's format.
pub const DEFAULT_CONFIG: &str = "\
version: 0.1
log:
  level: info
http:
  addr: 127.0.0.1:5000
storage:
  filesystem:
    rootdirectory: ./data
  delete:
    enabled: true
auth:
  htpasswd:
    realm: portcullis
    path: ./data/htpasswd
  tokenserver:
    issuer: portcullis
    service: portcullis
";

/// Source name used in messages about the embedded default.
pub const DEFAULT_SOURCE: &str = "<embedded default>";

/// Creates the htpasswd file with a generated `admin` user when it does not
/// exist yet, and prints the password once.
pub fn ensure_admin(path: &Path) -> anyhow::Result<()> {
    if path.exists() {
        return Ok(());
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let password = htpasswd::generate_password();
    let admin = UserName::new("admin").expect("`admin` is a valid user name");
    htpasswd::add_user(path, &admin, &password, htpasswd::DEFAULT_COST)
        .with_context(|| format!("cannot write {}", path.display()))?;
    eprintln!(
        "\nportcullis: created user `admin` in {}.\n  password: {}\n  This is shown once; only a bcrypt hash is stored.\n  Log in with: docker login 127.0.0.1:5000 -u admin\n",
        path.display(),
        password.expose_secret()
    );
    Ok(())
}
