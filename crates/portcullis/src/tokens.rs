//! `portcullis token`: robot accounts (personal access tokens) and the
//! refresh (identity) tokens of the token service: create robots, list and
//! revoke both kinds.
//!
//! A robot's secret is printed once by `create` and never again: the store
//! keeps only its SHA-256, and neither `list` nor `--json` prints hashes.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use clap::builder::TypedValueParser as _;
use clap::{ArgGroup, Subcommand};
use portcullis_auth::htpasswd::Htpasswd;
use portcullis_auth::refresh::RefreshStore;
use portcullis_auth::robots::{self, Robot, RobotStore};
use portcullis_config::Config;
use portcullis_types::{Action, ScopeAction};
use secrecy::ExposeSecret;

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Create a robot account with a limited scope and print its secret
    /// (once). It logs in as `<owner>+<name>` with the secret as password.
    Create {
        /// The configuration file (distribution's config.yml format). Without it, the
        /// embedded default that `serve` uses: 127.0.0.1:5000, data under ./data.
        #[arg(long, value_name = "PATH")]
        config: Option<PathBuf>,
        /// The htpasswd user the robot belongs to; it can never do more
        /// than this user.
        #[arg(long, value_name = "USER")]
        owner: String,
        /// The robot's name, unique for its owner: 1 to 64 of a-z 0-9 - _.
        #[arg(long)]
        name: String,
        /// Repository patterns, as in the access policy (`*` one path
        /// segment or a glob inside one, `**` any number, `${user}` the
        /// owner); repeat the flag or separate with commas.
        #[arg(long, value_name = "PATTERN", required = true, value_delimiter = ',')]
        repos: Vec<String>,
        /// Allowed actions, comma-separated: pull, push, delete, or * for all.
        #[arg(long, value_name = "ACTIONS", required = true, value_delimiter = ',',
              value_parser = clap::builder::PossibleValuesParser::new(robots::ACTIONS.map(ScopeAction::as_str))
                  .try_map(|s| s.parse::<ScopeAction>()))]
        actions: Vec<ScopeAction>,
        /// Lifetime: a number with `d`, `h` or `m` (`30d`, `12h`, `90m`), or `never`.
        #[arg(long, value_name = "DURATION", default_value = "90d", value_parser = parse_expires)]
        expires: Expires,
        #[arg(long)]
        json: bool,
    },
    /// List robot and refresh tokens (never their secrets or hashes).
    List {
        /// The configuration file (distribution's config.yml format). Without it, the
        /// embedded default that `serve` uses: 127.0.0.1:5000, data under ./data.
        #[arg(long, value_name = "PATH")]
        config: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Revoke one token by id, one robot by login name, or every token of a
    /// user (their refresh tokens and the robots they own).
    #[command(group(ArgGroup::new("which").required(true).args(["user", "id", "robot"])))]
    Revoke {
        /// The configuration file (distribution's config.yml format). Without it, the
        /// embedded default that `serve` uses: 127.0.0.1:5000, data under ./data.
        #[arg(long, value_name = "PATH")]
        config: Option<PathBuf>,
        #[arg(long)]
        user: Option<String>,
        #[arg(long)]
        id: Option<String>,
        /// A robot's login name (`<owner>+<name>`) or id.
        #[arg(long, value_name = "LOGIN")]
        robot: Option<String>,
    },
}

/// A parsed `--expires`: `None` is `never`.
#[derive(Clone, Copy, Debug)]
pub struct Expires(Option<Duration>);

/// Longest lifetime `--expires` accepts (`never` aside): 100 years.
const MAX_EXPIRES_DAYS: u64 = 36_500;

fn parse_expires(s: &str) -> Result<Expires, String> {
    if s == "never" {
        return Ok(Expires(None));
    }
    let help = || format!("`{s}` is not a lifetime: use e.g. `30d`, `12h`, `90m`, or `never`");
    let split = s.len().checked_sub(1).ok_or_else(help)?;
    let (number, unit) = (s.get(..split).ok_or_else(help)?, &s[split..]);
    let n: u64 = number
        .parse()
        .ok()
        .filter(|_| number.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(help)?;
    let unit_secs = match unit {
        "d" => 86_400,
        "h" => 3_600,
        "m" => 60,
        _ => return Err(help()),
    };
    if n == 0 {
        return Err(format!(
            "`{s}` would expire at once: give a positive lifetime, or `never`"
        ));
    }
    match n.checked_mul(unit_secs) {
        Some(total) if total <= MAX_EXPIRES_DAYS * 86_400 => {
            Ok(Expires(Some(Duration::from_secs(total))))
        }
        _ => Err(format!(
            "`{s}` is longer than {MAX_EXPIRES_DAYS}d; use `never` for no expiry"
        )),
    }
}

fn state_dir(config: &Config, what: &str) -> anyhow::Result<PathBuf> {
    config.storage.state_dir().with_context(|| {
        format!("{what} need filesystem storage (storage.filesystem.rootdirectory)")
    })
}

/// Where the token stores are, and which configuration said so.
fn stores(config: &Config) -> String {
    let dir = config
        .storage
        .state_dir()
        .map_or_else(|| "memory".to_owned(), |d| d.display().to_string());
    format!(
        "the token stores under {dir}, read from {}",
        crate::cli::read_from(config)
    )
}

/// The refresh-token store, as `serve` opens it.
fn refresh_store(config: &Config) -> anyhow::Result<RefreshStore> {
    let dir = state_dir(config, "refresh tokens")?;
    Ok(portcullis_app::state::refresh_store(&dir)?)
}

/// The robot-token store, as `serve` opens it.
fn robot_store(config: &Config) -> anyhow::Result<RobotStore> {
    let dir = state_dir(config, "robot tokens")?;
    Ok(portcullis_app::state::robot_store(&dir)?)
}

fn when(secs: u64) -> String {
    time::OffsetDateTime::from(UNIX_EPOCH + Duration::from_secs(secs))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// `None` (never) for 0.
fn when_used(secs: u64) -> Option<String> {
    (secs != 0).then(|| when(secs))
}

/// What to put after `docker login`: `http.host` without its scheme, else
/// the listen address `addr` (`http.addr`, or the address actually bound)
/// with a wildcard address replaced by `localhost`.
pub(crate) fn registry_host(config: &Config, addr: &str) -> String {
    if let Some(host) = &config.http.host {
        let bare = host
            .split_once("://")
            .map_or(host.as_str(), |(_, rest)| rest);
        let bare = bare.split('/').next().unwrap_or(bare);
        if !bare.is_empty() {
            return bare.to_owned();
        }
    }
    if config.http.net == "unix" {
        return "HOST".to_owned();
    }
    for wildcard in ["0.0.0.0:", "[::]:", ":"] {
        if let Some(port) = addr.strip_prefix(wildcard) {
            return format!("localhost:{port}");
        }
    }
    addr.to_owned()
}

/// Fails, saying how to fix it, unless `owner` is a user of `auth.htpasswd`.
fn check_owner(config: &Config, owner: &str) -> anyhow::Result<()> {
    let Some(h) = &config.auth.htpasswd else {
        bail!(
            "robot tokens belong to an htpasswd user, and {} has no \
             auth.htpasswd; set auth.htpasswd.path and add `{owner}` with \
             `portcullis user add {owner} --htpasswd FILE`",
            crate::cli::read_from(config)
        );
    };
    let path = &h.path;
    let users = Htpasswd::load(path).with_context(|| {
        format!(
            "cannot read the users of auth.htpasswd ({})",
            path.display()
        )
    })?;
    if users.password_fingerprint(owner).is_none() {
        bail!(
            "user `{owner}` is not in {p} (auth.htpasswd.path of {from}); a robot's owner must be \
             an htpasswd user. If this is the wrong configuration, pass --config; otherwise add \
             the user first with `portcullis user add {owner} --htpasswd {p}`",
            p = path.display(),
            from = crate::cli::read_from(config)
        );
    }
    Ok(())
}

struct CreateArgs {
    config: Option<PathBuf>,
    owner: String,
    name: String,
    repos: Vec<String>,
    actions: Vec<ScopeAction>,
    expires: Expires,
    json: bool,
}

fn create(args: CreateArgs) -> anyhow::Result<ExitCode> {
    let cfg = crate::cli::load_valid(args.config.as_deref())?;
    check_owner(&cfg, &args.owner)?;
    let store = robot_store(&cfg)?;
    let (robot, secret) = store.create(
        &args.owner,
        &args.name,
        args.repos,
        args.actions,
        args.expires.0,
        SystemTime::now(),
    )?;
    let login = robot.login();
    crate::abuse::admin_action(
        &cfg,
        "token create",
        &format!(
            "robot {login} (id {}) on {} for {}",
            robot.id,
            robot.repositories.join(","),
            ScopeAction::join(&robot.actions, ",")
        ),
    );
    let host = registry_host(&cfg, &cfg.http.addr);
    let docker_login = format!("docker login -u {login} --password-stdin {host}");
    let push_without_pull = robot.actions.contains(&ScopeAction::One(Action::Push))
        && !robot.actions.iter().any(|a| a.covers(Action::Pull));
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "kind": "robot",
                "id": robot.id,
                "login": login,
                "owner": robot.owner,
                "name": robot.name,
                "repositories": robot.repositories,
                "actions": robot.actions,
                "created": when(robot.created),
                "expires": robot.expires.map(when),
                "secret": secret.expose_secret(),
                "docker_login": docker_login,
            })
        );
    } else {
        println!("robot {login} created (id {})", robot.id);
        println!("  owner:        {}", robot.owner);
        println!("  repositories: {}", robot.repositories.join(", "));
        println!(
            "  actions:      {}",
            ScopeAction::join(&robot.actions, ", ")
        );
        println!(
            "  expires:      {}",
            robot.expires.map_or_else(|| "never".to_owned(), when)
        );
        println!();
        println!("login name: {login}");
        println!("secret (shown only this once; portcullis keeps only its hash):");
        println!("{}", secret.expose_secret());
        println!();
        println!("log in with the secret on stdin:");
        println!("  {docker_login}");
        println!(
            "It can do what it was given and what {} may do, never more.",
            robot.owner
        );
    }
    if push_without_pull {
        eprintln!(
            "note: `docker push` also needs pull (to check for existing layers); \
             to allow it, revoke this robot and create it with --actions pull,push"
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn robot_scope(r: &Robot) -> String {
    format!(
        "{} on {}",
        ScopeAction::join(&r.actions, ","),
        r.repositories.join(",")
    )
}

fn list(config: Option<&Path>, json: bool) -> anyhow::Result<ExitCode> {
    let cfg = crate::cli::load_valid(config)?;
    let refresh = refresh_store(&cfg)?.list()?;
    let robots = robot_store(&cfg)?.list()?;
    let now = SystemTime::now();
    if json {
        let refresh_rows = refresh.iter().map(|r| {
            serde_json::json!({ "kind": "refresh", "id": r.id, "user": r.user, "client_id": r.client_id,
            "created": when(r.created), "last_used": when(r.last_used), "expires": when(r.expires) })
        });
        let robot_rows = robots.iter().map(|r| {
            serde_json::json!({ "kind": "robot", "id": r.id, "user": r.login(), "login": r.login(),
            "owner": r.owner, "name": r.name, "repositories": r.repositories, "actions": r.actions,
            "created": when(r.created), "last_used": when_used(r.last_used),
            "expires": r.expires.map(when), "expired": r.is_expired(now) })
        });
        let rows: Vec<serde_json::Value> = refresh_rows.chain(robot_rows).collect();
        println!("{}", serde_json::Value::Array(rows));
        return Ok(ExitCode::SUCCESS);
    }
    if refresh.is_empty() && robots.is_empty() {
        println!("no robot or refresh tokens");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:7}  {:16}  {:20}  {:25}  {:25}  {:25}  SCOPE",
        "KIND", "ID", "USER", "CREATED", "LAST USED", "EXPIRES"
    );
    for r in robots {
        let expires = match r.expires {
            None => "never".to_owned(),
            Some(e) if r.is_expired(now) => format!("{} (expired)", when(e)),
            Some(e) => when(e),
        };
        println!(
            "{:7}  {:16}  {:20}  {:25}  {:25}  {:25}  {}",
            "robot",
            r.id,
            r.login(),
            when(r.created),
            when_used(r.last_used).unwrap_or_else(|| "never".to_owned()),
            expires,
            robot_scope(&r)
        );
    }
    for r in refresh {
        println!(
            "{:7}  {:16}  {:20}  {:25}  {:25}  {:25}  client {}",
            "refresh",
            r.id,
            r.user,
            when(r.created),
            when(r.last_used),
            when(r.expires),
            if r.client_id.is_empty() {
                "-"
            } else {
                &r.client_id
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn revoke(
    config: Option<&Path>,
    user: Option<String>,
    id: Option<String>,
    robot: Option<String>,
) -> anyhow::Result<ExitCode> {
    let cfg = crate::cli::load_valid(config)?;
    let now = SystemTime::now();
    if let Some(user) = user {
        let refresh = refresh_store(&cfg)?.revoke_user(&user, now)?;
        let robots = robot_store(&cfg)?.revoke_owner(&user, now)?;
        println!("revoked {refresh} refresh token(s) and {robots} robot token(s) of user `{user}`");
        crate::abuse::admin_action(&cfg, "token revoke", &format!("every token of user {user}"));
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(id) = id {
        let refresh = refresh_store(&cfg)?.revoke_id(&id, now)?;
        let robots = robot_store(&cfg)?.revoke(&id, now)?;
        if refresh + robots == 0 {
            bail!(
                "no token has id `{id}` in {}; `portcullis token list` shows the ids",
                stores(&cfg)
            );
        }
        println!("revoked {refresh} refresh token(s) and {robots} robot token(s)");
        crate::abuse::admin_action(&cfg, "token revoke", &format!("id {id}"));
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(login) = robot {
        if robot_store(&cfg)?.revoke(&login, now)? == 0 {
            bail!(
                "no robot `{login}` in {}; `portcullis token list` shows robots by login name (owner+name) and id",
                stores(&cfg)
            );
        }
        println!("revoked robot `{login}`");
        crate::abuse::admin_action(&cfg, "token revoke", &format!("robot {login}"));
        return Ok(ExitCode::SUCCESS);
    }
    bail!("give --user NAME, --id ID or --robot LOGIN")
}

pub fn run(cmd: TokenCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        TokenCommand::Create {
            config,
            owner,
            name,
            repos,
            actions,
            expires,
            json,
        } => create(CreateArgs {
            config,
            owner,
            name,
            repos,
            actions,
            expires,
            json,
        }),
        TokenCommand::List { config, json } => list(config.as_deref(), json),
        TokenCommand::Revoke {
            config,
            user,
            id,
            robot,
        } => revoke(config.as_deref(), user, id, robot),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expires_values() {
        let secs = |s: &str| parse_expires(s).unwrap().0.map(|d| d.as_secs());
        assert_eq!(secs("never"), None);
        assert_eq!(secs("30d"), Some(30 * 86_400));
        assert_eq!(secs("12h"), Some(12 * 3_600));
        assert_eq!(secs("90m"), Some(90 * 60));
        assert_eq!(secs("36500d"), Some(36_500 * 86_400));
        for bad in [
            "",
            "d",
            "30",
            "30s",
            "0d",
            "-1d",
            "+1d",
            "1.5d",
            "30 d",
            "Never",
            "36501d",
            "99999999999999999999d",
            "3é",
            "é",
        ] {
            assert!(parse_expires(bad).is_err(), "{bad}");
        }
    }
}
