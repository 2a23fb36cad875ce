//! Assembles the application from a loaded configuration and serves it.

use std::sync::Arc;

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use portcullis_auth::htpasswd::Htpasswd;
use portcullis_config::{Config, ListenAddr};
use portcullis_core::{Options, Registry};
use portcullis_storage::{Driver, FsDriver, MemoryDriver};

use crate::{AppState, AuthMode, UrlPolicy, app};

/// Errors while assembling or starting the server.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{key}: {message}")]
    Config { key: &'static str, message: String },
    #[error(
        "cannot listen on {addr}: {source}. Fix: choose a free port in http.addr (or REGISTRY_HTTP_ADDR)"
    )]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
}

/// Builds the state from a validated configuration.
///
/// # Errors
/// When the htpasswd file cannot be loaded or a header is invalid.
pub fn build_state(config: &Config) -> Result<AppState, ServeError> {
    refuse_unimplemented(config)?;
    let driver: Arc<dyn Driver> = match &config.storage.filesystem {
        Some(fs) => Arc::new(FsDriver::new(&fs.rootdirectory)),
        None => Arc::new(MemoryDriver::new()),
    };
    let opts = Options {
        delete_enabled: config.storage.delete.enabled,
        read_only: config.storage.maintenance.readonly.enabled,
        automount: config.portcullis.automount,
        manifest_max_bytes: config.portcullis.manifestmaxbytes,
    };
    let auth = match &config.auth.htpasswd {
        Some(h) => AuthMode::Htpasswd {
            realm: h.realm.clone(),
            file: Arc::new(Htpasswd::load(&h.path).map_err(|e| ServeError::Config {
                key: "auth.htpasswd.path",
                message: e.to_string(),
            })?),
        },
        None => AuthMode::None,
    };
    let mut headers = HeaderMap::new();
    for (k, values) in &config.http.headers {
        let name = HeaderName::try_from(k.as_str()).map_err(|e| ServeError::Config {
            key: "http.headers",
            message: format!("`{k}` is not a valid header name: {e}"),
        })?;
        for v in values {
            let value = HeaderValue::try_from(v.as_str()).map_err(|e| ServeError::Config {
                key: "http.headers",
                message: format!("value of `{k}` is not a valid header value: {e}"),
            })?;
            headers.append(name.clone(), value);
        }
    }
    Ok(AppState {
        registry: Registry::new(driver, opts),
        auth,
        urls: UrlPolicy {
            host: config.http.host.clone().filter(|h| !h.is_empty()),
            relative: config.http.relativeurls,
            prefix: config.http.prefix.trim_end_matches('/').to_owned(),
        },
        headers,
        access_log: !config.log.accesslog.disabled,
        catalog_max: usize::try_from(config.catalog.maxentries)
            .unwrap_or(usize::MAX)
            .max(1),
    })
}

/// Security settings this build cannot honour stop the start instead of being
/// skipped: serving plain HTTP when TLS was asked for, or an open registry
/// when token auth was asked for, would fail open.
fn refuse_unimplemented(config: &Config) -> Result<(), ServeError> {
    if config.http.tls.is_some() {
        return Err(ServeError::Config {
            key: "http.tls",
            message: "TLS termination is not available in this build yet. Fix: terminate TLS in a reverse proxy (e.g. nginx) in front of portcullis and remove http.tls".to_owned(),
        });
    }
    if config.auth.token.is_some() {
        return Err(ServeError::Config {
            key: "auth.token",
            message:
                "token authentication is not available in this build yet. Fix: use auth.htpasswd"
                    .to_owned(),
        });
    }
    if config.auth.silly.is_some() {
        return Err(ServeError::Config {
            key: "auth.silly",
            message: "the `silly` test authenticator is not supported. Fix: use auth.htpasswd"
                .to_owned(),
        });
    }
    Ok(())
}

/// The application router, under `http.prefix` when one is set.
fn router(config: &Config, state: AppState) -> axum::Router {
    let prefix = config.http.prefix.trim_end_matches('/');
    if prefix.is_empty() {
        app(state)
    } else {
        axum::Router::new().nest(prefix, app(state))
    }
}

/// Starts the background upload purger (`storage.maintenance.uploadpurging`).
pub fn spawn_upload_purger(config: &Config, registry: Registry) {
    let p = &config.storage.maintenance.uploadpurging;
    if !p.enabled {
        return;
    }
    let (age, interval, dry_run) = (p.age, p.interval, p.dryrun);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval.max(std::time::Duration::from_secs(1)));
        loop {
            tick.tick().await;
            match registry.purge_uploads(age, dry_run).await {
                Ok(r) if r.removed > 0 => tracing::info!(
                    examined = r.examined,
                    removed = r.removed,
                    dry_run,
                    "purged old uploads"
                ),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "upload purge failed"),
            }
        }
    });
}

/// Serves until the process is stopped. `on_ready` runs once the socket is
/// bound, with a printable address.
///
/// # Errors
/// Assembly, bind or accept-loop failures.
pub async fn serve(config: &Config, on_ready: impl FnOnce(String)) -> Result<(), ServeError> {
    let state = build_state(config)?;
    spawn_upload_purger(config, state.registry.clone());
    let addr = config
        .http
        .listen_addr()
        .map_err(|message| ServeError::Config {
            key: "http.addr",
            message,
        })?;
    let bind_err = |source| ServeError::Bind {
        addr: config.http.addr.clone(),
        source,
    };
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    match addr {
        ListenAddr::Tcp { host, port } => {
            let host = host.unwrap_or_else(|| "0.0.0.0".to_owned());
            let listener = tokio::net::TcpListener::bind((host.as_str(), port))
                .await
                .map_err(bind_err)?;
            on_ready(listener.local_addr()?.to_string());
            axum::serve(listener, router(config, state))
                .with_graceful_shutdown(shutdown)
                .await?;
        }
        ListenAddr::Unix(path) => {
            let _ = std::fs::remove_file(&path);
            let listener = tokio::net::UnixListener::bind(&path).map_err(bind_err)?;
            on_ready(path.display().to_string());
            axum::serve(listener, router(config, state))
                .with_graceful_shutdown(shutdown)
                .await?;
        }
    }
    Ok(())
}
