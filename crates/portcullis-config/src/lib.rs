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
//! 1. `portcullis-yaml` parses the YAML into a tree that keeps each key's line and each
//!    scalar's exact text, using the event parser under serde-saphyr rather
//!    than serde, so lines survive and the schema decides what `0.1` or `yes`
//!    means (as Go's YAML decoder does for distribution).
//! 2. `env` applies `REGISTRY_*` overrides to that tree.
//! 3. `check` walks the tree against `schema`, the table of every key
//!    distribution and portcullis define: unknown keys and wrong types are
//!    errors, keys portcullis ignores are warnings.
//! 4. serde reads the checked values into the typed structs in `model`,
//!    which supply the defaults.

mod abuse;
mod access;
mod addr;
mod advice;
mod check;
mod cors;
mod crypto;
mod duration;
mod env;
mod error;
mod load;
mod model;
mod schema;
mod secret;
mod validate;

use std::path::Path;

pub use abuse::{
    AuditConfig, AuditFile, AuditPulls, AuditSyslog, LockoutConfig, RateConfig, RateLimitConfig,
    RateOverride, parse_pulls,
};
pub use access::{AccessSection, InlineText};
pub use addr::{ListenAddr, parse_listen_addr};
pub use cors::{
    CorsConfig, CorsSource, DEFAULT_EXPOSED, DEFAULT_HEADERS, DEFAULT_METHODS, is_cors_header,
};
pub use crypto::{
    CipherSuite, ClientAuthMode, ClientIdentityMode, Named, SigningAlgorithm, TlsVersion,
    UnknownName,
};
pub use duration::{format_duration, parse_duration};
pub use error::{ConfigError, ConfigErrors};
pub use model::{
    AccessLogConfig, AuthConfig, CatalogConfig, Config, DebugConfig, DeleteConfig,
    FilesystemConfig, H2cConfig, HtpasswdConfig, Http2Config, HttpConfig, LogConfig, LogFormatter,
    LogLevel, MaintenanceConfig, OtherStorageDriver, PortcullisConfig, PrometheusConfig, ReadOnly,
    RedirectConfig, RefreshConfig, SigningKeyConfig, SillyConfig, StorageConfig, StorageDriver,
    TlsConfig, TokenConfig, TokenKeysConfig, TokenServerConfig, UploadPurging,
};
pub use secrecy::ExposeSecret;
pub use secret::Secret;

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

    /// An error about `key` (a dotted path, optionally with `[i]`), placed at
    /// the line (or environment variable) that set it, or else at the
    /// closest enclosing section that was written down.
    #[must_use]
    pub fn error_at(
        &self,
        key: &str,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> ConfigError {
        let (source, line) = self.place_of(key);
        ConfigError::new(key, message, fix).at(source, line)
    }

    /// A warning about `key`, in the form of the loading warnings:
    /// `config.yml:7: http.addr: message`.
    #[must_use]
    pub fn warning_at(&self, key: &str, message: &str) -> String {
        match self.place_of(key) {
            (source, Some(line)) => format!("{source}:{line}: {key}: {message}"),
            (source, None) if !source.is_empty() => format!("{source}: {key}: {message}"),
            _ => format!("{key}: {message}"),
        }
    }

    fn place_of(&self, key: &str) -> (String, Option<usize>) {
        let meta = &self.meta;
        let mut probe = key.split('[').next().unwrap_or(key);
        let origin = loop {
            if let Some(loc) = meta.origins.get(probe) {
                break Some(loc);
            }
            match probe.rfind('.') {
                Some(i) => probe = &probe[..i],
                None => break None,
            }
        };
        match origin {
            Some(loc) => check::place(&meta.source, loc),
            None => (meta.source.clone(), None),
        }
    }

    /// Advice about a configuration that is valid but probably not what was
    /// meant, as warnings for `serve` and `config check`: for now, that
    /// `http.host` should be set when the registry listens beyond loopback.
    #[must_use]
    pub fn advice(&self) -> Vec<String> {
        advice::run(self)
    }

    /// Sets a key from a command-line flag, which comes after the file and
    /// the environment in precedence; messages about the key then name the
    /// flag. Only `http.addr` (`serve --addr`) for now; other keys are
    /// ignored.
    pub fn set_by_flag(&mut self, key: &str, flag: &str, value: String) {
        if key == "http.addr" {
            self.http.addr = value;
            self.meta
                .origins
                .insert(key.to_owned(), portcullis_yaml::Loc::from_origin(flag));
        }
    }

    /// The line of the configuration file that set `key` (a dotted path such
    /// as `http.addr`), if it was set in the file.
    #[must_use]
    pub fn line_of(&self, key: &str) -> Option<usize> {
        self.meta
            .origins
            .get(key)
            .filter(|loc| loc.origin.is_none())
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
