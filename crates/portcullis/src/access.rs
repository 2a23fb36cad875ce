//! `portcullis access explain`: what the policy decides for one identity,
//! repository and action, and the rule (file and line) that decided it.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use clap::{Args, Subcommand, ValueEnum};
use portcullis_auth::access;
use portcullis_auth::identity::{Identity, RobotIdentity, UserName};
use portcullis_auth::policy::PolicyAction;

#[derive(Subcommand)]
pub enum AccessCommand {
    /// Explain whether an identity may do an action on a repository.
    Explain(ExplainArgs),
}

#[derive(Clone, Copy, ValueEnum)]
enum ActionArg {
    Pull,
    Push,
    Delete,
    Catalog,
}

#[derive(Args)]
pub struct ExplainArgs {
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// A user name.
    #[arg(long, conflicts_with_all = ["anonymous", "robot"])]
    user: Option<String>,
    /// Explain for an anonymous caller.
    #[arg(long)]
    anonymous: bool,
    /// A robot token's login (`owner+name`), with the scope it was given.
    #[arg(long, conflicts_with = "anonymous")]
    robot: Option<String>,
    /// A client certificate (PEM): who it identifies under
    /// `http.tls.clientidentity`, and whether a client CA signed it.
    #[arg(long, value_name = "PEM", conflicts_with_all = ["anonymous", "user", "robot"])]
    certificate: Option<PathBuf>,
    /// The repository (not needed for `catalog`).
    #[arg(long, default_value = "")]
    repo: String,
    #[arg(long, value_enum)]
    action: ActionArg,
    #[arg(long)]
    json: bool,
}

fn robot_identity(cfg: &portcullis_config::Config, login: &str) -> anyhow::Result<Identity> {
    let Some(store) = portcullis_server::policy::robots(cfg)? else {
        bail!("robot tokens need filesystem storage (storage.filesystem.rootdirectory)");
    };
    let Some(robot) = store.list()?.into_iter().find(|r| r.login() == login) else {
        bail!("no robot token `{login}`; see `portcullis token list`");
    };
    Ok(Identity::Robot(RobotIdentity {
        owner: UserName::new(&robot.owner).map_err(|e| anyhow::anyhow!("{e}"))?,
        name: robot.name,
        repositories: robot.repositories,
        actions: robot.actions,
    }))
}

pub fn run(cmd: AccessCommand) -> anyhow::Result<ExitCode> {
    let AccessCommand::Explain(args) = cmd;
    let cfg = crate::cli::load_valid(args.config.as_deref())?;
    let policy = portcullis_server::policy::load(&cfg)?.current();
    let mut preface = None;
    let identity = match (&args.user, &args.robot, args.anonymous, &args.certificate) {
        (Some(u), ..) => Identity::User(
            UserName::new(u).map_err(|e| anyhow::anyhow!("invalid user `{u}`: {e}"))?,
        ),
        (None, Some(r), ..) => robot_identity(&cfg, r)?,
        (None, None, true, _) => Identity::Anonymous,
        (None, None, false, Some(path)) => {
            let (identity, says) = crate::access_cert::identify(&cfg, path)?;
            preface = Some(says);
            identity
        }
        (None, None, false, None) => {
            bail!("give --user NAME, --robot LOGIN, --certificate PEM or --anonymous")
        }
    };
    let action = match args.action {
        ActionArg::Pull => PolicyAction::Pull,
        ActionArg::Push => PolicyAction::Push,
        ActionArg::Delete => PolicyAction::Delete,
        ActionArg::Catalog => PolicyAction::Catalog,
    };
    if !matches!(action, PolicyAction::Catalog) && args.repo.is_empty() {
        bail!("give --repo NAME for pull, push and delete");
    }
    let d = access::decide(&policy, &identity, &args.repo, action);
    if let Some(says) = &preface
        && !args.json
    {
        println!("{says}");
    }
    if args.json {
        let rule = d
            .rule
            .as_ref()
            .map(|r| serde_json::json!({ "source": r.source, "line": r.line, "index": r.index }));
        println!(
            "{}",
            serde_json::json!({ "allowed": d.allowed, "explanation": d.explanation, "rule": rule, "certificate": preface })
        );
    } else {
        println!("{}", d.explanation);
    }
    Ok(ExitCode::SUCCESS)
}
