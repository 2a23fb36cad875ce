//! The embedded default configuration that `serve` uses without `--config`:
//! 127.0.0.1:5000, storage under `./data`, htpasswd auth with a generated
//! `admin` user whose password is printed once and stored only as a bcrypt hash,
//! and the built-in token service (a signing key is generated on first start).

use std::path::{Path, PathBuf};

use anyhow::Context;
use portcullis_auth::htpasswd;
use portcullis_auth::identity::UserName;
use secrecy::{ExposeSecret, SecretString};

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

/// With the embedded default (no `--config`), the htpasswd file that `serve`
/// will create with a generated `admin` on its first start, when it does not
/// exist yet. Its absence is then not an error.
pub fn admin_to_create(path: Option<&Path>, config: &portcullis_config::Config) -> Option<PathBuf> {
    match (path, &config.auth.htpasswd) {
        (None, Some(h)) if !h.path.exists() => Some(h.path.clone()),
        _ => None,
    }
}

/// Validates `config`, except that the htpasswd file `admin` (see
/// [`admin_to_create`]) may be missing.
pub fn validate(
    config: &portcullis_config::Config,
    admin: Option<&Path>,
) -> Result<(), portcullis_config::ConfigErrors> {
    let Err(errors) = config.validate() else {
        return Ok(());
    };
    portcullis_config::ConfigErrors(
        errors
            .0
            .into_iter()
            .filter(|e| admin.is_none() || e.key != "auth.htpasswd.path")
            .collect(),
    )
    .into_result()
}

/// The embedded default's generated `admin` user, created on first start.
pub struct NewAdmin {
    path: PathBuf,
    password: SecretString,
}

impl NewAdmin {
    /// Creates the htpasswd file at `path` (which must not exist) with a
    /// generated `admin` user. Nothing is printed yet: see [`Self::announce`].
    pub fn create(path: &Path) -> anyhow::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let password = htpasswd::generate_password();
        let admin = UserName::new("admin").expect("`admin` is a valid user name");
        htpasswd::add_user(path, &admin, &password, htpasswd::DEFAULT_COST)
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(Self {
            path: path.to_owned(),
            password,
        })
    }

    /// Prints the password, once the registry listens at `host`.
    pub fn announce(&self, host: &str) {
        eprintln!(
            "\nportcullis: created user `admin` in {}.\n  password: {}\n  This is shown once; only a bcrypt hash is stored.\n  Log in with: docker login {host} -u admin\n",
            self.path.display(),
            self.password.expose_secret()
        );
    }

    /// The start failed: remove the user again, so that the next start
    /// creates (and shows) a new one.
    pub fn roll_back(self) {
        if let Err(e) = std::fs::remove_file(&self.path) {
            eprintln!(
                "portcullis: could not remove {} after the failed start: {e}",
                self.path.display()
            );
        }
    }
}
