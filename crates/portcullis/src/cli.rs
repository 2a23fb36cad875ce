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
        /// The configuration file (distribution's config.yml format). Without it, the
        /// embedded default: 127.0.0.1:5000, data under ./data, a generated `admin` user.
        #[arg(long, value_name = "PATH")]
        config: Option<PathBuf>,
        /// Listen on HOST:PORT (or :PORT), overriding http.addr and REGISTRY_HTTP_ADDR.
        #[arg(long, value_name = "HOST:PORT")]
        addr: Option<String>,
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
    /// The audit log: verify its hash chain, show its events.
    Audit {
        #[command(subcommand)]
        command: crate::abuse::AuditCommand,
    },
    /// Brute-force lockouts: list them, clear them.
    Lockout {
        #[command(subcommand)]
        command: crate::abuse::LockoutCommand,
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
        /// The configuration file (distribution's config.yml format). Without it, the
        /// embedded default that `serve` uses: 127.0.0.1:5000, data under ./data.
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
    if let Err(e) = loaded.config.validate() {
        bail!(
            "fix these configuration errors:\n{e}\n(this is {})",
            read_from(&loaded.config)
        );
    }
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
        Command::Serve { config, addr } => serve(config.as_deref(), addr),
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
        Command::Audit { command } => crate::abuse::run_audit(command),
        Command::Lockout { command } => crate::abuse::run_lockout(command),
    }
}

fn init_logging(log: &portcullis_config::LogConfig) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PORTCULLIS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(log.level.as_str()));
    // Colour codes only for a person at a terminal, never in a log file.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = match log.formatter {
        LogFormatter::Text => builder.try_init(),
        LogFormatter::Json | LogFormatter::Logstash => builder.json().try_init(),
    };
}

fn cannot_start(errors: &impl std::fmt::Display) -> ExitCode {
    eprintln!("portcullis cannot start; fix these configuration errors:\n{errors}");
    ExitCode::from(1)
}

fn serve(path: Option<&Path>, addr: Option<String>) -> anyhow::Result<ExitCode> {
    let mut loaded = match load(path) {
        Ok(l) => l,
        Err(errors) => return Ok(cannot_start(&errors)),
    };
    // CLI flags come after the file and REGISTRY_* in precedence.
    if let Some(addr) = addr {
        loaded.config.set_by_flag("http.addr", "--addr", addr);
    }
    init_logging(&loaded.config.log);
    for w in loaded.warnings.iter().chain(&loaded.config.advice()) {
        tracing::warn!("{w}");
    }
    // The embedded default's admin is created only once everything else
    // checks out, and announced only once the listener is bound; a start
    // that fails removes it again, so its password is never shown for
    // nothing.
    let admin = defaults::admin_to_create(path, &loaded.config);
    if let Err(errors) = defaults::validate(&loaded.config, admin.as_deref()) {
        return Ok(cannot_start(&errors));
    }
    let admin = match admin {
        Some(path) => Some(defaults::NewAdmin::create(&path)?),
        None => None,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let config = loaded.config;
    let result = rt.block_on(async {
        portcullis_server::serve(&config, |addr| {
            if let Some(admin) = &admin {
                admin.announce(&crate::tokens::registry_host(&config, &addr));
            }
            tracing::info!(%addr, "portcullis is listening");
        })
        .await
    });
    if let (Err(_), Some(admin)) = (&result, admin) {
        admin.roll_back();
    }
    result?;
    Ok(ExitCode::SUCCESS)
}

/// Which configuration a command read, for messages about what it did not
/// find: the file, or the embedded default and where its data lives.
pub(crate) fn read_from(config: &Config) -> String {
    let source = config.source();
    if !source.is_empty() && source != defaults::DEFAULT_SOURCE {
        return format!("the configuration {source}");
    }
    let root = config.storage.filesystem.as_ref().map_or_else(
        || "memory".to_owned(),
        |fs| {
            std::env::current_dir()
                .map(|cwd| cwd.join(&fs.rootdirectory))
                .unwrap_or_else(|_| fs.rootdirectory.clone())
                .display()
                .to_string()
        },
    );
    format!(
        "the embedded default configuration (no --config given; its data is under {root}); \
         pass --config FILE to use your registry's configuration"
    )
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
