//! `portcullis token`: list and revoke refresh (identity) tokens.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use clap::{ArgGroup, Subcommand};
use portcullis_auth::refresh::RefreshStore;
use portcullis_config::Config;

#[derive(Subcommand)]
pub enum TokenCommand {
    /// List refresh tokens (never their secrets).
    List {
        #[arg(long, value_name = "PATH")]
        config: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Revoke refresh tokens of a user, or one token by id.
    #[command(group(ArgGroup::new("which").required(true).args(["user", "id"])))]
    Revoke {
        #[arg(long, value_name = "PATH")]
        config: Option<PathBuf>,
        #[arg(long)]
        user: Option<String>,
        #[arg(long)]
        id: Option<String>,
    },
}

fn store(config: &Config) -> anyhow::Result<RefreshStore> {
    let dir = config
        .storage
        .state_dir()
        .context("refresh tokens need filesystem storage (storage.filesystem.rootdirectory)")?;
    Ok(RefreshStore::open(&dir.join("refresh-tokens.json"))?)
}

fn when(secs: u64) -> String {
    time::OffsetDateTime::from(UNIX_EPOCH + Duration::from_secs(secs))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

pub fn run(cmd: TokenCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        TokenCommand::List { config, json } => {
            let cfg = crate::cli::load_valid(config.as_deref())?;
            let records = store(&cfg)?.list()?;
            if json {
                let rows: Vec<serde_json::Value> = records
                    .iter()
                    .map(|r| {
                        serde_json::json!({ "id": r.id, "user": r.user, "client_id": r.client_id,
                        "created": when(r.created), "last_used": when(r.last_used), "expires": when(r.expires) })
                    })
                    .collect();
                println!("{}", serde_json::Value::Array(rows));
            } else if records.is_empty() {
                println!("no refresh tokens");
            } else {
                println!(
                    "{:16}  {:16}  {:10}  {:25}  {:25}  EXPIRES",
                    "ID", "USER", "CLIENT", "CREATED", "LAST USED"
                );
                for r in records {
                    println!(
                        "{:16}  {:16}  {:10}  {:25}  {:25}  {}",
                        r.id,
                        r.user,
                        r.client_id,
                        when(r.created),
                        when(r.last_used),
                        when(r.expires)
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        TokenCommand::Revoke { config, user, id } => {
            let cfg = crate::cli::load_valid(config.as_deref())?;
            let s = store(&cfg)?;
            let now = SystemTime::now();
            let n = match (user, id) {
                (Some(u), _) => s.revoke_user(&u, now)?,
                (None, Some(i)) => s.revoke_id(&i, now)?,
                (None, None) => bail!("give --user NAME or --id ID"),
            };
            println!("revoked {n} refresh token(s)");
            Ok(ExitCode::SUCCESS)
        }
    }
}
