//! Config in, backends out: everything portcullis builds from a
//! configuration that needs no HTTP stack. The server assembles its state
//! from [`Backends::assemble`]; the CLI's offline commands (`config check`,
//! `access explain`, `keys`, `token`, `lockout`, `audit`, `cert`) call the
//! individual builders, so they run the very code `serve` runs at start.
//!
//! - [`policy`]: the access policy, the robot-token store, and the identity
//!   providers combined as one `AccessControl`.
//! - [`auth`]: the authentication mode, the built-in token service, external
//!   issuers, and the upload-session key.
//! - [`keys`]: the token service's signing key (loaded, or generated once
//!   under a state-store lease) and the algorithm names of the config.
//! - [`sinks`]: the audit log and webhook notifications.
//! - [`lockout`]: the brute-force lockout policy and its store.
//! - [`state`]: which state store a configuration chooses.
//! - [`tls`]: the `http.tls` files read and checked, and client-certificate
//!   names.

pub mod auth;
pub mod keys;
pub mod lockout;
pub mod policy;
pub mod sinks;
pub mod state;
pub mod tls;

use std::sync::Arc;

use portcullis_audit::AuditSink;
use portcullis_auth::access::AccessControl;
use portcullis_auth::service::TokenService;
use portcullis_auth::upload::UploadStates;
use portcullis_config::Config;
use portcullis_core::{Options, Registry};
use portcullis_limits::Lockout;
use portcullis_notify::Notifier;
use portcullis_storage::{Driver, FsDriver, MemoryDriver};
use portcullis_types::event::EventSink;

pub use auth::{Authentication, BearerSetup};

/// A configuration that cannot be assembled: the key at fault and why.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{key}: {message}")]
pub struct AssembleError {
    pub key: &'static str,
    pub message: String,
}

impl AssembleError {
    /// Turns any error into one at `key`, for `map_err`.
    pub fn at<E: std::fmt::Display>(key: &'static str) -> impl Fn(E) -> Self {
        move |e| Self {
            key,
            message: e.to_string(),
        }
    }
}

/// The backends a configuration asks for.
pub struct Backends {
    /// The registry over the configured storage driver.
    pub registry: Registry,
    /// Users, robot tokens and the per-repository policy.
    pub access: Arc<AccessControl>,
    /// How requests are authenticated.
    pub auth: Authentication,
    /// The built-in token service (`auth.tokenserver`).
    pub token_service: Option<Arc<TokenService>>,
    /// Whether the policy applies. Off only without authentication and
    /// without an `access` section: then everyone may do everything, as in
    /// distribution.
    pub enforce_policy: bool,
    /// Signs upload-session states (`http.secret`).
    pub uploads: UploadStates,
    /// The audit log, when an output is configured.
    pub audit: Option<Arc<AuditSink>>,
    /// Webhook notifications, when an endpoint is enabled.
    pub notifier: Option<Arc<Notifier>>,
    /// Brute-force lockout, unless `lockout.disabled`.
    pub lockout: Option<Lockout>,
}

impl Backends {
    /// Builds every backend of a validated configuration.
    ///
    /// # Errors
    /// The first setting that cannot be honoured, or a file (htpasswd,
    /// policy, keys, audit log) that cannot be used, with its key.
    pub fn assemble(config: &Config) -> Result<Self, AssembleError> {
        refuse_unimplemented(config)?;
        let access = Arc::new(policy::access_control(config)?);
        let auth = auth::assemble(config, &access)?;
        let enforce_policy = !matches!(auth.mode, Authentication::None) || config.access.is_some();
        Ok(Self {
            registry: registry(config),
            access,
            auth: auth.mode,
            token_service: auth.token_service,
            enforce_policy,
            uploads: auth.uploads,
            audit: sinks::audit(config)?,
            notifier: sinks::notifier(config)?,
            lockout: lockout::from_config(config),
        })
    }

    /// The event sinks besides the decision log: the audit log, then the
    /// notifications.
    #[must_use]
    pub fn event_sinks(&self) -> Vec<Arc<dyn EventSink>> {
        let audit = self.audit.clone().map(|a| a as Arc<dyn EventSink>);
        let notifier = self.notifier.clone().map(|n| n as Arc<dyn EventSink>);
        audit.into_iter().chain(notifier).collect()
    }
}

/// The registry over the configured driver; on the filesystem, upload
/// sessions are also leased in the state directory, so processes sharing
/// the storage root never write one session at once.
#[must_use]
pub fn registry(config: &Config) -> Registry {
    let registry = Registry::new(driver(config), options(config));
    match state::store(config) {
        Some(store) => registry.with_leases(store),
        None => registry,
    }
}

/// The storage driver of `storage`: the filesystem, or memory.
#[must_use]
pub fn driver(config: &Config) -> Arc<dyn Driver> {
    match &config.storage.filesystem {
        Some(fs) => Arc::new(FsDriver::new(&fs.rootdirectory)),
        None => Arc::new(MemoryDriver::new()),
    }
}

/// The registry's options from `storage` and `portcullis`.
#[must_use]
pub fn options(config: &Config) -> Options {
    Options {
        delete_enabled: config.storage.delete.enabled,
        read_only: config.storage.maintenance.readonly.enabled,
        automount: config.portcullis.automount,
        manifest_max_bytes: config.portcullis.manifestmaxbytes,
    }
}

/// Security settings this build cannot honour stop the start instead of being
/// skipped: serving plain HTTP when TLS was asked for, or an open registry
/// when token auth was asked for, would fail open.
fn refuse_unimplemented(config: &Config) -> Result<(), AssembleError> {
    if config.auth.silly.is_some() {
        return Err(AssembleError {
            key: "auth.silly",
            message: "the `silly` test authenticator is not supported. Fix: use auth.htpasswd"
                .to_owned(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
