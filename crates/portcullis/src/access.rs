//! `portcullis access explain`: what the policy decides for one identity,
//! repository and action, and the rule (file and line) that decided it.

use std::path::PathBuf;
use std::process::ExitCode;

use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use portcullis_auth::access;
use portcullis_auth::htpasswd::Htpasswd;
use portcullis_auth::identity::{Identity, RobotIdentity, UserName};
use portcullis_auth::policy::Action;
use portcullis_config::Config;
use portcullis_core::{Options, Registry};
use portcullis_storage::FsDriver;
use portcullis_types::{Reference, RepoName, Tag};

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
    /// The configuration file (distribution's config.yml format). Without it, the
    /// embedded default that `serve` uses: 127.0.0.1:5000, data under ./data.
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
    /// With `--action push`: the tag to push, to tell whether an immutable
    /// repository (access.immutable) already has it and so refuses it.
    #[arg(long)]
    tag: Option<String>,
    #[arg(long, value_enum)]
    action: ActionArg,
    #[arg(long)]
    json: bool,
}

fn robot_identity(cfg: &Config, login: &str) -> anyhow::Result<Identity> {
    let Some(store) = portcullis_app::policy::robots(cfg)? else {
        bail!("robot tokens need filesystem storage (storage.filesystem.rootdirectory)");
    };
    let Some(robot) = store.list()?.into_iter().find(|r| r.login() == login) else {
        bail!(
            "no robot token `{login}` in {}; see `portcullis token list`",
            crate::cli::read_from(cfg)
        );
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
    let policy = portcullis_app::policy::load(&cfg)?.current();
    let mut preface = None;
    let identity = match (&args.user, &args.robot, args.anonymous, &args.certificate) {
        (Some(u), ..) => Identity::user_named(
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
        ActionArg::Pull => Action::Pull,
        ActionArg::Push => Action::Push,
        ActionArg::Delete => Action::Delete,
        ActionArg::Catalog => Action::Catalog,
    };
    if !matches!(action, Action::Catalog) && args.repo.is_empty() {
        bail!("give --repo NAME for pull, push and delete");
    }
    let d = access::decide(&policy, &identity, &args.repo, action);
    let mut verdict = Verdict {
        allowed: d.allowed,
        explanation: d.explanation,
        rule: d
            .rule
            .as_ref()
            .map(|r| serde_json::json!({ "source": r.source, "line": r.line, "index": r.index })),
    };
    if let Some(why) = unknown_identity(&cfg, &identity)? {
        verdict = Verdict {
            allowed: false,
            explanation: format!("deny: {why}"),
            rule: None,
        };
    }
    let immutable = !matches!(action, Action::Catalog) && policy.is_immutable(&args.repo);
    if immutable && verdict.allowed {
        immutable_rule(&cfg, &args, action, &mut verdict)?;
    }
    if let Some(says) = &preface
        && !args.json
    {
        println!("{says}");
    }
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "allowed": verdict.allowed,
                "explanation": verdict.explanation,
                "rule": verdict.rule,
                "immutable": immutable,
                "certificate": preface,
            })
        );
    } else {
        println!("{}", verdict.explanation);
    }
    // Like `test`: a deny is a failure, so scripts can branch on it.
    Ok(if verdict.allowed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The decision as printed.
struct Verdict {
    allowed: bool,
    explanation: String,
    rule: Option<serde_json::Value>,
}

/// Why `identity` could never log in: a user (or a robot's owner) that the
/// htpasswd file does not have, or whose line disables them.
fn unknown_identity(cfg: &Config, identity: &Identity) -> anyhow::Result<Option<String>> {
    let (user, what) = match identity {
        Identity::User(u) => (u.as_str(), String::new()),
        Identity::Robot(r) => (
            r.owner.as_str(),
            format!("robot {}+{}'s owner ", r.owner, r.name),
        ),
        _ => return Ok(None),
    };
    let Some(h) = &cfg.auth.htpasswd else {
        return Ok(None);
    };
    let users = Htpasswd::load(&h.path).with_context(|| {
        format!(
            "cannot read the users of auth.htpasswd ({}) named by {}",
            h.path.display(),
            crate::cli::read_from(cfg)
        )
    })?;
    if users.password_fingerprint(user).is_some() {
        return Ok(None);
    }
    let from = crate::cli::read_from(cfg);
    Ok(Some(match users.disabled(user) {
        Some(why) => format!("{what}`{user}` cannot log in: {why} (read from {from})"),
        None => format!(
            "no such user: {what}`{user}` is not in {} (auth.htpasswd.path of {from}), so nobody can log in as `{user}`",
            h.path.display()
        ),
    }))
}

/// `access.immutable` on top of an allowed push or delete, as the
/// registry's manifest handler applies it.
fn immutable_rule(
    cfg: &Config,
    args: &ExplainArgs,
    action: Action,
    verdict: &mut Verdict,
) -> anyhow::Result<()> {
    let repo = &args.repo;
    let rule = format!("{repo} is immutable (access.immutable)");
    match (action, &args.tag) {
        (Action::Delete, _) => {
            verdict.allowed = false;
            verdict.explanation = format!(
                "deny: {rule}: its manifests and tags cannot be deleted, by anyone (the policy alone would allow it: {})",
                verdict.explanation
            );
        }
        (Action::Push, Some(tag)) => match tag_exists(cfg, repo, tag)? {
            Some(true) => {
                verdict.allowed = false;
                verdict.explanation = format!(
                    "deny: {rule}: tag {tag} already exists and cannot be moved to another manifest; push a new tag \
                     (pushing the same manifest to {tag} again is allowed)"
                );
            }
            Some(false) => verdict.explanation.push_str(&format!(
                "; {rule}: tag {tag} does not exist yet, so it can be pushed once and never moved after"
            )),
            None => verdict.explanation.push_str(&format!(
                "; {rule}: pushing tag {tag} is refused if it already exists (in-memory storage cannot be read from here)"
            )),
        },
        (Action::Push, None) => verdict.explanation.push_str(&format!(
            "; {rule}: new tags may be pushed, but an existing tag cannot be moved (check one with --tag TAG)"
        )),
        _ => {}
    }
    Ok(())
}

/// Whether `repo` has `tag` in the configured filesystem storage; `None`
/// when the storage cannot be read from another process.
fn tag_exists(cfg: &Config, repo: &str, tag: &str) -> anyhow::Result<Option<bool>> {
    let Some(fs) = &cfg.storage.filesystem else {
        return Ok(None);
    };
    let name: RepoName = repo
        .parse()
        .map_err(|e| anyhow::anyhow!("invalid repository `{repo}`: {e}"))?;
    let tag: Tag = tag
        .parse()
        .map_err(|e| anyhow::anyhow!("invalid tag `{tag}`: {e}"))?;
    let registry = Registry::new(
        Arc::new(FsDriver::new(&fs.rootdirectory)),
        Options::default(),
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match rt.block_on(registry.resolve(&name, &Reference::Tag(tag))) {
        Ok(_) => Ok(Some(true)),
        Err(portcullis_core::CoreError::ManifestUnknown(_)) => Ok(Some(false)),
        Err(e) => Err(e).with_context(|| {
            format!(
                "cannot read the tags of {repo} under {}",
                fs.rootdirectory.display()
            )
        }),
    }
}
