//! Robot tokens for authorization tests, made with `portcullis token
//! create --json` against a test registry's config.

use std::path::Path;

use serde_json::Value;

use super::authz::Who;
use super::registry::Registry;
use super::{assert_success, portcullis_cli};

/// A robot token made by `portcullis token create --json`.
#[derive(Clone, Debug)]
pub struct Robot {
    /// `<owner>+<name>`.
    pub login: String,
    /// The secret, the robot's password.
    pub secret: String,
    /// Its public id (for `token revoke --id`).
    pub id: String,
}

impl Robot {
    /// The robot as a caller's identity.
    pub fn who(&self) -> Who {
        Who::login(&self.login, &self.secret)
    }
}

/// `portcullis token create --owner OWNER --name NAME --repos REPOS
/// --actions ACTIONS --json` against `registry`'s config.
pub fn create_robot(
    registry: &Registry,
    owner: &str,
    name: &str,
    repos: &str,
    actions: &str,
) -> Robot {
    create_robot_with(&registry.config_path(), owner, name, repos, actions)
}

/// [`create_robot`] against the config file `config` (no registry need
/// run).
pub fn create_robot_with(
    config: &Path,
    owner: &str,
    name: &str,
    repos: &str,
    actions: &str,
) -> Robot {
    let args = [
        "token",
        "create",
        "--owner",
        owner,
        "--name",
        name,
        "--repos",
        repos,
        "--actions",
        actions,
        "--json",
    ];
    let out = portcullis_cli(&args, config);
    assert_success(&format!("portcullis {}", args.join(" ")), &out);
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    let value: Value = serde_json::from_str(printed.trim())
        .unwrap_or_else(|e| panic!("token create --json printed no JSON ({e}):\n{printed}"));
    let field = |key: &str| {
        value[key]
            .as_str()
            .unwrap_or_else(|| panic!("token create --json has no `{key}`:\n{printed}"))
            .to_owned()
    };
    let robot = Robot {
        login: field("login"),
        secret: field("secret"),
        id: field("id"),
    };
    assert_eq!(
        robot.login,
        format!("{owner}+{name}"),
        "unexpected robot login"
    );
    robot
}
