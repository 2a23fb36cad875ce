//! Loads the per-repository policy, the robot-token store and the identity
//! providers (htpasswd users, robot tokens) from the configuration, as
//! one `AccessControl`. Shared by `serve` and the CLI (`access explain`,
//! `config check`).

use std::sync::Arc;

use portcullis_auth::access::AccessControl;
use portcullis_auth::htpasswd::Htpasswd;
use portcullis_auth::policy::{Policy, PolicyError, PolicyStore, check_file};
use portcullis_auth::robots::{RobotError, RobotStore};
use portcullis_config::Config;

use crate::AssembleError;

/// The policy of a configuration. Without an `access` section, authenticated
/// identities may do everything and anonymous nothing.
///
/// # Errors
/// A policy that does not parse, with its file and line.
pub fn load(config: &Config) -> Result<Arc<PolicyStore>, PolicyError> {
    let store = match &config.access {
        None => PolicyStore::fixed(Policy::allow_all()),
        Some(section) => match (&section.path, &section.inline) {
            (Some(path), _) => PolicyStore::from_file(path)?,
            (None, Some(inline)) => PolicyStore::fixed(Policy::from_yaml(
                &inline.text,
                &inline.source,
                inline.line_offset,
            )?),
            (None, None) => PolicyStore::fixed(Policy::empty()),
        },
    };
    Ok(Arc::new(store))
}

/// The robot-token store (in the state directory's store,
/// `<rootdirectory>/portcullis/robots.json`), when there is a place for it.
///
/// # Errors
/// A store that exists but cannot be read.
pub fn robots(config: &Config) -> Result<Option<Arc<RobotStore>>, RobotError> {
    config
        .storage
        .state_dir()
        .map(|dir| crate::state::robot_store(&dir).map(Arc::new))
        .transpose()
}

/// Users, robot tokens and the policy of a configuration, as `serve` uses
/// them; the key at fault and why, on failure.
///
/// # Errors
/// A policy that does not parse, an unreadable htpasswd file or robot store.
pub fn access_control(config: &Config) -> Result<AccessControl, AssembleError> {
    let users = config
        .auth
        .htpasswd
        .as_ref()
        .map(|h| Htpasswd::load(&h.path).map(Arc::new))
        .transpose()
        .map_err(AssembleError::at("auth.htpasswd.path"))?;
    Ok(AccessControl::new(
        load(config).map_err(AssembleError::at("access"))?,
        users,
        robots(config).map_err(AssembleError::at("auth"))?,
    ))
}

/// Every problem of the configured policy, for `config check`.
#[must_use]
pub fn check(config: &Config) -> Vec<PolicyError> {
    let Some(section) = &config.access else {
        return Vec::new();
    };
    let result = match (&section.path, &section.inline) {
        (Some(path), _) => check_file(path),
        (None, Some(inline)) => {
            Policy::from_yaml_all(&inline.text, &inline.source, inline.line_offset).map(|_| ())
        }
        (None, None) => Ok(()),
    };
    result.err().unwrap_or_default()
}
