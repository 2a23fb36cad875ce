//! Command-line parsing and the subcommands. Exit status: 0 on success, 1
//! for a problem the user must fix, 2 for a usage error (clap's default).

use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use portcullis_auth::htpasswd;
use portcullis_auth::identity::UserName;
use portcullis_config::{Config, Loaded, LogFormatter};
use secrecy::SecretString;

use crate::defaults;

#[derive(Parser)]
#[command(
    name = "portcullis",
    version,
    about = "A container registry whose authentication works out of the box"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the registry (without --config: the embedded default on 127.0.0.1:5000).
    Serve {
        #[arg(long, value_name = "PATH")]
        config: Option<PathBuf>,
    },
    /// Configuration tools.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Manage htpasswd users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Per-repository permissions.
    Access {
        #[command(subcommand)]
        command: crate::access::AccessCommand,
    },
    /// Token signing keys of the built-in token service.
    Keys {
        #[command(subcommand)]
        command: crate::keys::KeysCommand,
    },
    /// Robot tokens (personal access tokens) and refresh tokens: create, list, revoke.
    Token {
        #[command(subcommand)]
        command: crate::tokens::TokenCommand,
    },
    /// TLS certificates: a private CA, server certificates for HTTPS, and client certificates (mTLS).
    Cert {
        #[command(subcommand)]
        command: crate::cert::CertCommand,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Check a configuration: exit 0 when valid, 1 with every error listed.
    Check {
        #[arg(long, value_name = "PATH")]
        config: Option<PathBuf>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
        /// The configuration under check is a registry:2-style one whose
        /// auth.token trusts portcullis: compare its issuer, service, realm,
        /// rootcertbundle and algorithms with this portcullis configuration.
        #[arg(long, value_name = "PORTCULLIS_CONFIG")]
        token_server: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add or replace a user (bcrypt). The password is read from stdin or a prompt.
    Add {
        name: String,
        #[arg(long, value_name = "PATH")]
        htpasswd: PathBuf,
        /// bcrypt cost (4-31).
        #[arg(long, default_value_t = htpasswd::DEFAULT_COST)]
        cost: u32,
    },
}

/// Loads and validates a configuration for a management command, or
/// explains what to fix.
pub(crate) fn load_valid(path: Option<&Path>) -> anyhow::Result<Config> {
    let loaded = load(path).map_err(|e| anyhow::anyhow!("fix these configuration errors:\n{e}"))?;
    loaded
        .config
        .validate()
        .map_err(|e| anyhow::anyhow!("fix these configuration errors:\n{e}"))?;
    Ok(loaded.config)
}

fn env_overrides() -> Vec<(String, String)> {
    std::env::vars()
        .filter(|(k, _)| k.starts_with("REGISTRY_"))
        .collect()
}

pub(crate) fn load(path: Option<&Path>) -> Result<Loaded, portcullis_config::ConfigErrors> {
    let env = env_overrides();
    match path {
        Some(p) => Config::load(p, &env),
        None => Config::from_yaml(defaults::DEFAULT_CONFIG, defaults::DEFAULT_SOURCE, &env),
    }
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve { config } => serve(config.as_deref()),
        Command::Config {
            command:
                ConfigCommand::Check {
                    config,
                    json,
                    token_server,
                },
        } => Ok(crate::check::run(
            config.as_deref(),
            json,
            token_server.as_deref(),
        )),
        Command::User {
            command:
                UserCommand::Add {
                    name,
                    htpasswd,
                    cost,
                },
        } => user_add(&name, &htpasswd, cost),
        Command::Keys { command } => crate::keys::run(command),
        Command::Access { command } => crate::access::run(command),
        Command::Token { command } => crate::tokens::run(command),
        Command::Cert { command } => crate::cert::run(command),
    }
}

fn init_logging(log: &portcullis_config::LogConfig) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PORTCULLIS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(log.level.as_str()));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match log.formatter {
        LogFormatter::Text => builder.try_init(),
        LogFormatter::Json | LogFormatter::Logstash => builder.json().try_init(),
    };
}

fn serve(path: Option<&Path>) -> anyhow::Result<ExitCode> {
    let loaded = match load(path) {
        Ok(l) => l,
        Err(errors) => {
            eprintln!("portcullis cannot start; fix these configuration errors:\n{errors}");
            return Ok(ExitCode::from(1));
        }
    };
    init_logging(&loaded.config.log);
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    if path.is_none()
        && let Some(h) = &loaded.config.auth.htpasswd
    {
        defaults::ensure_admin(&h.path)?;
    }
    if let Err(errors) = loaded.config.validate() {
        eprintln!("portcullis cannot start; fix these configuration errors:\n{errors}");
        return Ok(ExitCode::from(1));
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let config = loaded.config;
    rt.block_on(async move {
        portcullis_server::serve(&config, |addr| {
            tracing::info!(%addr, "portcullis is listening");
        })
        .await
    })?;
    Ok(ExitCode::SUCCESS)
}

fn read_password() -> anyhow::Result<SecretString> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        let first = rpassword::prompt_password("Password: ")?;
        let second = rpassword::prompt_password("Repeat password: ")?;
        if first != second {
            bail!("the passwords do not match");
        }
        return Ok(SecretString::from(first));
    }
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from stdin")?;
    let pass = line.trim_end_matches(['\n', '\r']).to_owned();
    Ok(SecretString::from(pass))
}

fn user_add(name: &str, path: &Path, cost: u32) -> anyhow::Result<ExitCode> {
    let user =
        UserName::new(name).map_err(|e| anyhow::anyhow!("invalid user name `{name}`: {e}"))?;
    let password = read_password()?;
    if secrecy::ExposeSecret::expose_secret(&password).is_empty() {
        bail!(
            "the password is empty; pipe it on stdin, e.g. `printf '%s\\n' \"$PASS\" | portcullis user add {name} --htpasswd {}`",
            path.display()
        );
    }
    htpasswd::add_user(path, &user, &password, cost)
        .with_context(|| format!("cannot update {}", path.display()))?;
    eprintln!("user `{name}` saved in {}", path.display());
    Ok(ExitCode::SUCCESS)
}
