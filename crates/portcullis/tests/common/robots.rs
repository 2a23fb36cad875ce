//! Robot tokens for authorization tests, made with `portcullis token
//! create --json` against a test registry's config.

use serde_json::Value;

use super::authz::Who;
use super::registry::Registry;
use super::token;

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
    let printed = token::cli_ok(
        registry,
        &[
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
        ],
    );
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
