//! portcullis-config: distribution's `config.yml`, read unchanged.
//!
//! [`Config::from_yaml`] and [`Config::load`] read a configuration written for
//! CNCF distribution (`registry:2`), apply `REGISTRY_*` environment overrides,
//! and check every key. [`Config::validate`] then checks what needs the
//! filesystem or several keys at once. Problems come back as [`ConfigErrors`],
//! all of them at once, each naming the key, its line, the fix and, for a
//! misspelt key, the closest valid one.
//!
//! How loading works, and why:
//!
//! 1. `tree` parses the YAML into a tree that keeps each key's line and each
//!    scalar's exact text, using the event parser under serde-saphyr rather
//!    than serde, so lines survive and the schema decides what `0.1` or `yes`
//!    means (as Go's YAML decoder does for distribution).
//! 2. `env` applies `REGISTRY_*` overrides to that tree.
//! 3. `check` walks the tree against `schema`, the table of every key
//!    distribution and portcullis define: unknown keys and wrong types are
//!    errors, keys portcullis ignores are warnings.
//! 4. serde reads the checked values into the typed structs in `model`,
//!    which supply the defaults.

mod access;
mod addr;
mod check;
mod duration;
mod env;
mod error;
mod load;
mod model;
mod schema;
mod tree;
mod validate;

use std::path::Path;

pub use access::{AccessSection, InlineText};
pub use addr::{ListenAddr, parse_listen_addr};
pub use duration::{format_duration, parse_duration};
pub use error::{ConfigError, ConfigErrors};
pub use model::{
    AccessLogConfig, AuthConfig, CatalogConfig, Config, DebugConfig, DeleteConfig,
    FilesystemConfig, H2cConfig, HtpasswdConfig, Http2Config, HttpConfig, LogConfig, LogFormatter,
    LogLevel, MaintenanceConfig, OtherStorageDriver, PortcullisConfig, PrometheusConfig, ReadOnly,
    RedirectConfig, RefreshConfig, SigningKeyConfig, SillyConfig, StorageConfig, StorageDriver,
    TlsConfig, TokenConfig, TokenKeysConfig, TokenServerConfig, UploadPurging,
};

/// The configuration used when none is given: filesystem storage under
/// `/var/lib/registry`, listening on `:5000`, no authentication.
pub const DEFAULT_YAML: &str = "\
version: 0.1
storage:
  filesystem:
    rootdirectory: /var/lib/registry
http:
  addr: :5000
  headers:
    X-Content-Type-Options: [nosniff]
";

/// A loaded configuration and the warnings to show at startup (keys accepted
/// for compatibility but ignored, deprecated keys, ...).
#[derive(Clone, Debug, PartialEq)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<String>,
}

impl Config {
    /// Parses YAML text (`source` is a file name used in messages), then
    /// applies the `REGISTRY_*` overrides among `env`.
    ///
    /// # Errors
    /// Returns every problem found: YAML syntax, unknown keys, wrong types,
    /// a missing or unsupported version, no storage driver or more than one,
    /// and environment variables that map to no key.
    pub fn from_yaml(
        text: &str,
        source: &str,
        env: &[(String, String)],
    ) -> Result<Loaded, ConfigErrors> {
        load::from_yaml(text, source, env)
    }

    /// Reads the file at `path`, then behaves as [`Config::from_yaml`].
    ///
    /// # Errors
    /// As [`Config::from_yaml`], and when the file cannot be read.
    pub fn load(path: &Path, env: &[(String, String)]) -> Result<Loaded, ConfigErrors> {
        let source = path.display().to_string();
        match std::fs::read_to_string(path) {
            Ok(text) => Self::from_yaml(&text, &source, env),
            Err(e) => Err(ConfigError::new(
                "",
                format!("cannot read configuration file {source}: {e}"),
                "check the path given with --config, and that portcullis may read it",
            )
            .into()),
        }
    }

    /// Checks that need the filesystem or several keys: the htpasswd file,
    /// TLS files and token keys are readable, the storage root is usable, at
    /// most one auth method and exactly one supported storage driver are set,
    /// addresses parse, and so on. Relative paths are relative to the working
    /// directory, as in distribution.
    ///
    /// # Errors
    /// Returns every problem found.
    pub fn validate(&self) -> Result<(), ConfigErrors> {
        validate::run(self, Path::new(""))
    }

    /// As [`Config::validate`], with relative paths resolved against `base`
    /// instead of the working directory.
    ///
    /// # Errors
    /// Returns every problem found.
    pub fn validate_relative_to(&self, base: &Path) -> Result<(), ConfigErrors> {
        validate::run(self, base)
    }

    /// The file this configuration was loaded from (empty for one built in code).
    #[must_use]
    pub fn source(&self) -> &str {
        &self.meta.source
    }

    /// The line of the configuration file that set `key` (a dotted path such
    /// as `http.addr`), if it was set in the file.
    #[must_use]
    pub fn line_of(&self, key: &str) -> Option<usize> {
        self.meta
            .origins
            .get(key)
            .filter(|loc| loc.env.is_none())
            .map(|loc| loc.line)
    }
}

impl HttpConfig {
    /// Where to listen, parsed from `addr` and `net`.
    ///
    /// # Errors
    /// Returns a message when the address does not parse.
    pub fn listen_addr(&self) -> Result<ListenAddr, String> {
        parse_listen_addr(&self.net, &self.addr)
    }
}
