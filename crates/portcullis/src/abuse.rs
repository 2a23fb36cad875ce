//! `portcullis audit` (verify and read the audit log) and `portcullis
//! lockout` (list and clear brute-force lockouts).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::Subcommand;
use portcullis_audit::read::{Filter, human, show, verify};
use portcullis_limits::Lockout;

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Check that the log's hash chain is intact: exit 0 when it is, 1 naming
    /// the first edited, deleted, inserted or reordered line.
    Verify {
        /// The audit file and its rotated files (any order); without FILES,
        /// `audit.file.path` of the configuration and its rotated files.
        files: Vec<PathBuf>,
        #[arg(long, value_name = "PATH")]
        config: Option<PathBuf>,
        /// The first line must be the log's very first (no file was removed).
        #[arg(long)]
        from_genesis: bool,
    },
    /// Print the events that match, oldest first.
    Show {
        files: Vec<PathBuf>,
        #[arg(long, value_name = "PATH")]
        config: Option<PathBuf>,
        #[arg(long)]
        user: Option<String>,
        #[arg(long)]
        repo: Option<String>,
        /// RFC 3339 time (2026-12-04T10:00:00Z), or a date (2026-12-04).
        #[arg(long)]
        since: Option<String>,
        /// An event name or its start: auth, auth.failure, manifest.push, …
        #[arg(long)]
        event: Option<String>,
        /// The lines as written (JSON), not a summary.
        #[arg(long)]
        json: bool,
    },
}

/// The files named, or the configured file and its rotated ones.
fn audit_files(files: Vec<PathBuf>, config: Option<&Path>) -> anyhow::Result<Vec<PathBuf>> {
    if !files.is_empty() {
        return Ok(files);
    }
    let config = crate::cli::load_valid(config)?;
    let Some(file) = &config.audit.file else {
        bail!("name the audit files, or give --config with an audit.file.path");
    };
    let path = PathBuf::from(&file.path);
    let mut all = portcullis_audit::output::rotated_files(&path)
        .with_context(|| format!("cannot list the rotated files of {}", path.display()))?;
    all.push(path);
    Ok(all)
}

pub fn run_audit(command: AuditCommand) -> anyhow::Result<ExitCode> {
    match command {
        AuditCommand::Verify {
            files,
            config,
            from_genesis,
        } => {
            let files = audit_files(files, config.as_deref())?;
            match verify(&files, from_genesis).context("cannot read the audit log")? {
                Ok(v) => {
                    println!(
                        "intact: {} lines in {} file(s), from line {}{}",
                        v.lines,
                        v.files,
                        v.first_seq.unwrap_or(0),
                        if v.anchored {
                            ", up to the head anchor"
                        } else {
                            " (no head anchor found: lines removed from the end would not be seen)"
                        }
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(broken) => {
                    eprintln!("audit log broken at {broken}");
                    eprintln!(
                        "lines after it cannot be trusted; keep the files as evidence and look at the line with: sed -n '{}p' {}",
                        broken.line,
                        broken.file.display()
                    );
                    Ok(ExitCode::from(1))
                }
            }
        }
        AuditCommand::Show {
            files,
            config,
            user,
            repo,
            since,
            event,
            json,
        } => {
            let files = audit_files(files, config.as_deref())?;
            let since = since.map(|s| {
                if s.len() == 10 {
                    format!("{s}T00:00:00.000Z")
                } else {
                    s
                }
            });
            let filter = Filter {
                user,
                repo,
                since,
                event,
            };
            show(&files, &filter, |r, line| {
                if json {
                    println!("{line}");
                } else {
                    println!("{}", human(r));
                }
            })
            .context("cannot read the audit log")?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

#[derive(Subcommand)]
pub enum LockoutCommand {
    /// List the accounts and addresses that are backing off or locked out.
    List {
        #[arg(long, value_name = "PATH")]
        config: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Let an account (or an address, or both) try again at once.
    Clear {
        #[arg(long, value_name = "PATH")]
        config: Option<PathBuf>,
        /// The account (user or robot login) to clear.
        #[arg(long)]
        user: Option<String>,
        /// The client address to clear.
        #[arg(long)]
        client: Option<String>,
        /// Clear every lockout.
        #[arg(long, conflicts_with_all = ["user", "client"])]
        all: bool,
    },
}

/// Records an admin action in the audit log, when there is one: through
/// the state directory's outbox, which the serving process drains (see
/// `portcullis_audit::outbox`). The actor is the operating-system user.
pub fn admin_action(config: &portcullis_config::Config, command: &str, detail: &str) {
    let (true, Some(dir)) = (config.audit.enabled(), config.storage.state_dir()) else {
        return;
    };
    let actor = std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| {
            use std::os::unix::fs::MetadataExt;
            std::fs::metadata("/proc/self")
                .map_or_else(|_| "unknown".to_owned(), |m| format!("uid {}", m.uid()))
        });
    let store = portcullis_app::state::dir_store(&dir);
    if let Err(e) = portcullis_audit::outbox::post(&store, &format!("os:{actor}"), command, detail)
    {
        eprintln!("warning: this action could not be recorded for the audit log: {e}");
    }
}

fn lockout_store(config: &portcullis_config::Config) -> anyhow::Result<Lockout> {
    let Some(dir) = config.storage.state_dir() else {
        bail!(
            "without filesystem storage lockouts live only in the serving process; restart it to clear them"
        );
    };
    let store = portcullis_app::state::dir_store(&dir);
    Ok(Lockout::new(
        Arc::new(store),
        portcullis_app::lockout::policy(&config.lockout),
    ))
}

pub fn run_lockout(command: LockoutCommand) -> anyhow::Result<ExitCode> {
    match command {
        LockoutCommand::List { config, json } => {
            let config = crate::cli::load_valid(config.as_deref())?;
            let lockout = lockout_store(&config)?;
            let list = lockout.list().context("cannot read the lockouts")?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else if list.is_empty() {
                println!("no account is backing off or locked out");
            } else {
                println!(
                    "{:<32} {:<40} {:>8} {:>10}",
                    "ACCOUNT", "CLIENT", "FAILURES", "WAIT (s)"
                );
                for l in &list {
                    println!(
                        "{:<32} {:<40} {:>8} {:>10}",
                        l.account, l.client, l.failures, l.retry_after
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        LockoutCommand::Clear {
            config,
            user,
            client,
            all,
        } => {
            if !all && user.is_none() && client.is_none() {
                bail!("say what to clear: --user NAME, --client ADDRESS, both, or --all");
            }
            let config = crate::cli::load_valid(config.as_deref())?;
            let lockout = lockout_store(&config)?;
            let n = lockout
                .clear(user.as_deref(), client.as_deref())
                .context("cannot clear the lockouts")?;
            admin_action(
                &config,
                "lockout clear",
                &format!(
                    "user {} client {}: {n} entries",
                    user.as_deref().unwrap_or("*"),
                    client.as_deref().unwrap_or("*")
                ),
            );
            println!(
                "cleared {n} lockout entr{}",
                if n == 1 { "y" } else { "ies" }
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
