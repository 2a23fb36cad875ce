//! `portcullis keys`: generate, list and bundle the token service's keys.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Subcommand;
use portcullis_app::keys;
use portcullis_auth::token::{Algorithm, SigningKey};
use portcullis_config::{Config, TokenServerConfig};

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Generate a signing key and its self-signed certificate.
    Generate {
        /// The configuration file (distribution's config.yml format). Without it, the
        /// embedded default that `serve` uses: 127.0.0.1:5000, data under ./data.
        #[arg(long, value_name = "PATH")]
        config: Option<PathBuf>,
        /// ES256 (default), RS256 or EdDSA, in any case (`rs256` is RS256).
        #[arg(long)]
        algorithm: Option<String>,
        /// Write `signing.key` and `signing.crt` here instead of the configured place.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Replace an existing key.
        #[arg(long)]
        force: bool,
    },
    /// List the signing key and the verify-only keys.
    List {
        /// The configuration file (distribution's config.yml format). Without it, the
        /// embedded default that `serve` uses: 127.0.0.1:5000, data under ./data.
        #[arg(long, value_name = "PATH")]
        config: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Print the PEM certificates that distribution's `auth.token.rootcertbundle` needs.
    Bundle {
        /// The configuration file (distribution's config.yml format). Without it, the
        /// embedded default that `serve` uses: 127.0.0.1:5000, data under ./data.
        #[arg(long, value_name = "PATH")]
        config: Option<PathBuf>,
    },
}

fn tokenserver(config: &Config) -> TokenServerConfig {
    config.auth.tokenserver.clone().unwrap_or_default()
}

pub fn run(cmd: KeysCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        KeysCommand::Generate {
            config,
            algorithm,
            out,
            force,
        } => {
            let cfg = crate::cli::load_valid(config.as_deref())?;
            let ts = tokenserver(&cfg);
            let name = algorithm.as_deref().unwrap_or(ts.algorithm.as_str());
            let alg: Algorithm = crate::check::parse_algorithm(name).with_context(|| {
                format!("unsupported algorithm `{name}`; use ES256, RS256 or EdDSA (any case)")
            })?;
            let (key, cert) = match out {
                Some(dir) => (dir.join("signing.key"), dir.join("signing.crt")),
                None => keys::signing_paths(&cfg, &ts).context(
                    "no place for keys: set storage.filesystem.rootdirectory or use --out DIR",
                )?,
            };
            if key.exists() && !force {
                bail!(
                    "{} already exists; pass --force to replace it (tokens signed by the old key stop verifying unless its certificate is listed in auth.tokenserver.keys.verify)",
                    key.display()
                );
            }
            let k = SigningKey::generate(alg, &ts.issuer)?;
            keys::write_new(&k, &key, &cert)?;
            println!(
                "key:         {}\ncertificate: {}\nkid:         {}",
                key.display(),
                cert.display(),
                k.kid()
            );
            Ok(ExitCode::SUCCESS)
        }
        KeysCommand::List { config, json } => {
            let cfg = crate::cli::load_valid(config.as_deref())?;
            let set = keys::load_or_generate(&cfg, &tokenserver(&cfg))?;
            let signing = set.signing();
            let mut rows = vec![serde_json::json!({
                "role": "signing",
                "kid": signing.kid(),
                "algorithm": format!("{:?}", signing.algorithm()),
                "not_after": time::OffsetDateTime::from(signing.not_after()).format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
            })];
            for v in set.verify_only() {
                rows.push(serde_json::json!({ "role": "verify", "kid": v.kid(), "algorithm": format!("{:?}", v.algorithm()) }));
            }
            if json {
                println!("{}", serde_json::Value::Array(rows));
            } else {
                for r in rows {
                    println!(
                        "{:8} {:6} {}  {}",
                        r["role"].as_str().unwrap_or_default(),
                        r["algorithm"].as_str().unwrap_or_default(),
                        r["kid"].as_str().unwrap_or_default(),
                        r["not_after"]
                            .as_str()
                            .map(|t| format!("valid until {t}"))
                            .unwrap_or_default()
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        KeysCommand::Bundle { config } => {
            let cfg = crate::cli::load_valid(config.as_deref())?;
            let set = keys::load_or_generate(&cfg, &tokenserver(&cfg))?;
            if set.signing().algorithm() == Algorithm::EdDsa {
                eprintln!(
                    "warning: the signing key is EdDSA, which registry:2 (distribution 2.8) cannot verify: \
                     it panics on EdDSA keys in rootcertbundle. Unless the registry is distribution 3.x, \
                     switch to ES256 with `portcullis keys generate --algorithm ES256 --force{}`",
                    config
                        .as_deref()
                        .map(|p| format!(" --config {}", p.display()))
                        .unwrap_or_default()
                );
            }
            print!("{}", set.bundle_pem());
            Ok(ExitCode::SUCCESS)
        }
    }
}
