//! `portcullis config check`: everything `serve` would refuse at start, and
//! everything it would warn about, found without starting anything.
//!
//! Loading and [`portcullis_config::Config::validate`] find what the
//! configuration says; this module adds what only the files it points at
//! can tell (the access policy and robot store, the htpasswd lines, and in
//! `files` the TLS files, the storage root and the keys), and in
//! `token_server` whether a registry:2 configuration agrees with the
//! portcullis that issues its tokens.

use std::path::Path;
use std::process::ExitCode;

use portcullis_auth::htpasswd;
use portcullis_config::{Config, ConfigError, ConfigErrors};

use crate::{cli, defaults};

mod files;
mod token_server;

pub(crate) use files::parse_algorithm;

/// Errors (the configuration cannot be served) and warnings (it can, but
/// something is wrong).
#[derive(Default)]
struct Findings {
    errors: Vec<ConfigError>,
    warnings: Vec<String>,
}

impl Findings {
    /// Runs every check on a loaded configuration and, with `token_server`,
    /// compares it with that portcullis configuration.
    fn of(
        config: &Config,
        path: Option<&Path>,
        warnings: Vec<String>,
        token_server: Option<&Path>,
    ) -> Self {
        let mut f = Self {
            errors: Vec::new(),
            warnings,
        };
        f.warnings.extend(config.advice());
        let admin = defaults::admin_to_create(path, config);
        if let Some(file) = &admin {
            f.warnings.push(format!(
                "{}: no users yet: on its first start `serve` creates the user `admin` in {} and prints its password once",
                defaults::DEFAULT_SOURCE,
                file.display()
            ));
        }
        if let Err(e) = defaults::validate(config, admin.as_deref()) {
            f.errors.extend(e.0);
        }
        f.unsupported(config);
        f.policy(config);
        f.htpasswd(config);
        f.tls(config);
        f.storage_root(config);
        f.signing_keys(config);
        f.token_issuer(config);
        if let Some(path) = token_server {
            f.token_server(config, path);
        }
        f
    }

    /// Whether an error was already reported for `key` (or a key under it),
    /// so that a deeper check of the same file does not repeat it.
    fn reported(&self, key: &str) -> bool {
        self.errors.iter().any(|e| e.key.starts_with(key))
    }

    /// The policy and robot store must load too: their errors are
    /// configuration errors, with their own file and line.
    fn policy(&mut self, config: &Config) {
        self.errors
            .extend(portcullis_app::policy::check(config).into_iter().map(|e| {
                let (key, message) = e
                    .message
                    .split_once(": ")
                    .map_or(("access".to_owned(), e.message.clone()), |(k, m)| {
                        (format!("access.{k}"), m.to_owned())
                    });
                ConfigError::new(key, message, e.fix).at(e.source, e.line)
            }));
        if let Err(e) = portcullis_app::policy::robots(config) {
            self.errors.push(ConfigError::new(
                "auth",
                e.to_string(),
                "repair or remove the robot token store",
            ));
        }
    }

    /// Lines of the htpasswd file that disable their user or are weak:
    /// `serve` starts without those users, so these are warnings.
    fn htpasswd(&mut self, config: &Config) {
        let Some(h) = &config.auth.htpasswd else {
            return;
        };
        if self.reported("auth.htpasswd") {
            return;
        }
        if let Ok(warnings) = htpasswd::check_file(&h.path) {
            self.warnings
                .extend(warnings.iter().map(|w| format!("auth.htpasswd.path: {w}")));
        }
    }
}

/// Checks the configuration at `path` (or the embedded default) and prints
/// the findings; exit status 0 when it can be served, 1 otherwise.
pub(crate) fn run(path: Option<&Path>, json: bool, token_server: Option<&Path>) -> ExitCode {
    let source = path.map_or_else(
        || defaults::DEFAULT_SOURCE.to_owned(),
        |p| p.display().to_string(),
    );
    let findings = match cli::load(path) {
        Ok(loaded) => Findings::of(&loaded.config, path, loaded.warnings, token_server),
        Err(errors) => Findings {
            errors: errors.0,
            warnings: Vec::new(),
        },
    };
    let valid = findings.errors.is_empty();
    if json {
        let list: Vec<serde_json::Value> = findings
            .errors
            .iter()
            .map(|e| serde_json::json!({ "key": e.key, "line": e.line, "message": e.message, "fix": e.fix, "nearest": e.nearest }))
            .collect();
        let mut out = serde_json::json!({
            "source": source,
            "valid": valid,
            "warnings": findings.warnings,
        });
        if !valid {
            out["errors"] = serde_json::Value::from(list);
        }
        println!("{out}");
    } else {
        for w in &findings.warnings {
            eprintln!("warning: {w}");
        }
        if valid {
            println!("{source}: configuration is valid");
        } else {
            let n = findings.errors.len();
            eprintln!("{source}: {n} error(s):\n{}", ConfigErrors(findings.errors));
        }
    }
    if valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
