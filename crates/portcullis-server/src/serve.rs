//! Assembles the application from a loaded configuration and serves it.

use std::sync::Arc;

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use portcullis_config::{Config, ExposeSecret, ListenAddr};
use portcullis_core::{Options, Registry};
use portcullis_storage::{Driver, FsDriver, MemoryDriver};

use portcullis_auth::access::AccessControl;
use portcullis_auth::refresh::{self, RefreshStore};
use portcullis_auth::service::{ServiceSettings, TokenService};
use portcullis_auth::token::{Algorithm, Verifier};
use portcullis_auth::upload::UploadStates;
use portcullis_state::{DirStore, system_clock};

use crate::metrics::Metrics;
use crate::{AppState, AuthMode, Bearer, UrlPolicy, app, keys};

/// Errors while assembling or starting the server.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{key}: {message}")]
    Config { key: &'static str, message: String },
    #[error(
        "cannot listen on {addr}: {cause}. Fix: choose a free port in http.addr (or REGISTRY_HTTP_ADDR)"
    )]
    Bind { addr: String, cause: std::io::Error },
    #[error(
        "http.debug.addr: cannot listen on {addr}: {cause}. Fix: choose a free port in http.debug.addr (or REGISTRY_HTTP_DEBUG_ADDR), different from http.addr"
    )]
    DebugBind { addr: String, cause: std::io::Error },
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
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
    let access =
        Arc::new(crate::policy::access_control(config).map_err(|(key, e)| config_err(key)(e))?);
    let (auth, token_service, uploads) = auth_mode(config, &access)?;
    let enforce_policy = !matches!(auth, AuthMode::None) || config.access.is_some();
    let mut headers = HeaderMap::new();
    let cors = config.cors();
    for (k, values) in &config.http.headers {
        // With CORS settings in force, Access-Control-* go only to allowed
        // origins, from the CORS layer.
        if cors.is_some() && portcullis_config::is_cors_header(k) {
            continue;
        }
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
    let audit = crate::sinks::audit(config)?;
    let mut sinks: Vec<Arc<dyn portcullis_types::event::EventSink>> =
        vec![Arc::new(crate::events::LogSink)];
    if let Some(a) = &audit {
        sinks.push(a.clone());
    }
    let notifier = crate::sinks::notifier(config)?;
    if let Some(n) = &notifier {
        sinks.push(n.clone());
    }
    let metrics = metrics_for(config);
    if let Some(m) = &metrics {
        sinks.push(Arc::new(crate::metrics::MetricsSink(m.clone())));
        let (a, n) = (audit.clone(), notifier.clone());
        m.set_queue_probe(Box::new(move || {
            let mut q = Vec::new();
            if let Some(a) = &a {
                let depth = a
                    .counters()
                    .queued
                    .load(std::sync::atomic::Ordering::Relaxed);
                q.push(("audit", i64::try_from(depth).unwrap_or(i64::MAX)));
            }
            if let Some(n) = &n {
                q.push((
                    "notifications",
                    i64::try_from(n.pending()).unwrap_or(i64::MAX),
                ));
            }
            q
        }));
    }
    Ok(AppState {
        registry: Registry::new(driver, opts),
        auth,
        urls: UrlPolicy {
            host: config.http.host.clone().filter(|h| !h.is_empty()),
            relative: config.http.relativeurls,
            prefix: config.http.prefix.trim_end_matches('/').to_owned(),
            trusted_proxies: crate::proxy::TrustedProxies::parse(&config.http.trustedproxies)
                .map_err(config_err("http.trustedproxies"))?,
        },
        headers,
        access_log: !config.log.accesslog.disabled,
        metrics,
        token_service,
        access,
        enforce_policy,
        uploads,
        events: portcullis_types::event::Sinks::new(sinks),
        audit,
        notifier,
        abuse: crate::abuse::Abuse::from_config(config)?,
        cors: match cors {
            Some((c, _)) => Some(Arc::new(crate::cors::Cors::new(&c).ok_or_else(|| {
                config_err("http.cors")(
                    "a method or header name is not a valid header value".into(),
                )
            })?)),
            None => None,
        },
        catalog_max: usize::try_from(config.catalog.maxentries)
            .unwrap_or(usize::MAX)
            .max(1),
    })
}

/// The metrics, when the debug listener serves them (`http.debug.addr` and
/// `http.debug.prometheus.enabled`); otherwise nothing is recorded.
fn metrics_for(config: &Config) -> Option<Arc<Metrics>> {
    let debug = config.http.debug.as_ref()?;
    (!debug.addr.is_empty() && debug.prometheus.enabled)
        .then(|| Arc::new(Metrics::new(config.http.tls.is_some())))
}

fn config_err(key: &'static str) -> impl Fn(String) -> ServeError {
    move |message| ServeError::Config { key, message }
}

/// The authentication mode and, with `auth.tokenserver`, the token service.
fn auth_mode(
    config: &Config,
    access: &Arc<AccessControl>,
) -> Result<(AuthMode, Option<Arc<TokenService>>, UploadStates), ServeError> {
    let mut verifiers = Vec::new();
    let mut service = None;
    let mut realm = None;
    let mut realm_path = "/token".to_owned();
    let mut audience = None;
    let mut grace = std::time::Duration::from_secs(6 * 3600);
    if let Some(ts) = &config.auth.tokenserver {
        let keys = keys::load_or_generate(config, ts)
            .map_err(|e| config_err("auth.tokenserver.keys")(e.to_string()))?;
        verifiers.push(Verifier::new(
            keys.verify_keys(),
            ts.issuer.clone(),
            ts.service.clone(),
            ts.leeway,
            Vec::new(),
        ));
        let refresh = match (ts.refresh.enabled, config.storage.state_dir()) {
            (true, Some(dir)) => Some(Arc::new(
                RefreshStore::open_in(
                    Arc::new(DirStore::new(&dir, system_clock())),
                    Some(&dir.join(refresh::STATE_KEY)),
                )
                .map_err(|e| config_err("auth.tokenserver.refresh")(e.to_string()))?,
            )),
            _ => None,
        };
        let settings = ServiceSettings {
            issuer: ts.issuer.clone(),
            service: ts.service.clone(),
            ttl: ts.expiration,
            refresh_ttl: refresh.as_ref().map(|_| ts.refresh.expiration),
        };
        let svc = TokenService::new(Arc::new(keys), access.clone(), refresh, settings).ok_or_else(
            || config_err("auth.tokenserver")("needs auth.htpasswd.path for its users".into()),
        )?;
        service = Some(Arc::new(svc));
        realm.clone_from(&ts.realm);
        if realm.is_none() {
            realm = config
                .http
                .host
                .as_ref()
                .filter(|h| !h.is_empty())
                .map(|h| {
                    format!(
                        "{}{}/token",
                        h.trim_end_matches('/'),
                        config.http.prefix.trim_end_matches('/')
                    )
                });
        }
        audience = Some(ts.service.clone());
        grace = ts.uploadgrace;
    }
    if let Some(t) = &config.auth.token {
        let mut keys = Vec::new();
        if let Some(bundle) = &t.rootcertbundle {
            keys.extend(
                Verifier::load_bundle_file(bundle)
                    .map_err(|e| config_err("auth.token.rootcertbundle")(e.to_string()))?,
            );
        }
        if let Some(jwks) = &t.jwks {
            keys.extend(
                Verifier::load_jwks_file(jwks)
                    .map_err(|e| config_err("auth.token.jwks")(e.to_string()))?,
            );
        }
        // Listed algorithms portcullis cannot verify are skipped; a list
        // with none it can verify refuses to start rather than allow all.
        let algorithms: Vec<Algorithm> = t
            .signingalgorithms
            .iter()
            .filter_map(|a| a.known().and_then(keys::token_algorithm))
            .collect();
        if !t.signingalgorithms.is_empty() && algorithms.is_empty() {
            return Err(config_err("auth.token.signingalgorithms")(
                "none of the listed algorithms is supported; use ES256, RS256 or EdDSA".to_owned(),
            ));
        }
        let leeway = std::time::Duration::from_secs(60);
        verifiers.push(Verifier::new(
            keys,
            t.issuer.clone(),
            t.service.clone(),
            leeway,
            algorithms,
        ));
        if t.autoredirect {
            // distribution's autoredirect: the realm follows the request's host.
            realm = None;
            realm_path = t
                .autoredirectpath
                .clone()
                .unwrap_or_else(|| "/auth/token".to_owned());
        } else if realm.is_none() && config.auth.tokenserver.is_none() {
            realm = Some(t.realm.clone());
        }
        if audience.is_none() {
            audience = Some(t.service.clone());
        }
    }
    if let Some(service_name) = audience {
        let bearer = Bearer {
            verifiers,
            realm,
            realm_path,
            service: service_name,
            cache: crate::token_cache::TokenCache::default(),
        };
        return Ok((
            AuthMode::Bearer(Box::new(bearer)),
            service,
            upload_states(config, grace),
        ));
    }
    let mode = match &config.auth.htpasswd {
        Some(h) => AuthMode::Basic {
            realm: h.realm.clone(),
        },
        None => AuthMode::None,
    };
    Ok((mode, None, upload_states(config, grace)))
}

/// The key that binds upload sessions to their owner (`http.secret`).
fn upload_states(config: &Config, grace: std::time::Duration) -> UploadStates {
    if let Some(s) = config
        .http
        .secret
        .as_ref()
        .map(ExposeSecret::expose_secret)
        .filter(|s| !s.is_empty())
    {
        return UploadStates::new(s.as_bytes(), grace);
    }
    // Without http.secret, `Config::advice` has warned at start.
    let mut b = vec![0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut b);
    UploadStates::new(&b, grace)
}

/// Security settings this build cannot honour stop the start instead of being
/// skipped: serving plain HTTP when TLS was asked for, or an open registry
/// when token auth was asked for, would fail open.
fn refuse_unimplemented(config: &Config) -> Result<(), ServeError> {
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

/// With `http.tls`: checks the TLS files and starts watching them for changes.
///
/// # Errors
/// The first problem with the TLS settings or files.
pub fn tls_reloader(
    config: &Config,
    metrics: Option<Arc<Metrics>>,
) -> Result<Option<Arc<crate::tls::TlsReloader>>, ServeError> {
    let Some(tls) = &config.http.tls else {
        return Ok(None);
    };
    let settings = crate::tls::TlsSettings::from_config(tls, config.http.host.as_deref())?;
    let reloader = crate::tls::TlsReloader::new(settings, metrics)?;
    reloader.spawn_watchers();
    Ok(Some(reloader))
}

/// Serves until the process is stopped. `on_ready` runs once the socket is
/// bound, with a printable address.
///
/// # Errors
/// Assembly, bind or accept-loop failures.
pub async fn serve(config: &Config, on_ready: impl FnOnce(String)) -> Result<(), ServeError> {
    let state = build_state(config)?;
    spawn_upload_purger(config, state.registry.clone());
    // Build the catalog's repository index before the first catalog request.
    let registry = state.registry.clone();
    tokio::spawn(async move {
        if let Err(e) = registry.rebuild_index().await {
            tracing::warn!(error = %e, "could not index repositories");
        }
    });
    let addr = config
        .http
        .listen_addr()
        .map_err(|message| ServeError::Config {
            key: "http.addr",
            message,
        })?;
    // Checked before binding so a bad certificate fails the start at once.
    let tls = tls_reloader(config, state.metrics.clone())?;
    let debug = DebugServer::start(config, state.metrics.clone()).await?;
    let timeouts = crate::listen::Timeouts {
        header: config.portcullis.headertimeout,
        drain: config
            .http
            .draintimeout
            .unwrap_or(std::time::Duration::from_secs(30)),
    };
    let bind_err = |cause| ServeError::Bind {
        addr: config.http.addr.clone(),
        cause,
    };
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    match crate::listen::raise_descriptor_limit() {
        Some(limit) => tracing::debug!(limit, "file descriptor limit"),
        None => tracing::debug!("could not raise the file descriptor limit"),
    }
    let audit = state.audit.clone();
    let router = router(config, state);
    match addr {
        ListenAddr::Tcp { host, port } => {
            let host = host.unwrap_or_else(|| "0.0.0.0".to_owned());
            let listener = tokio::net::TcpListener::bind((host.as_str(), port))
                .await
                .map_err(bind_err)?;
            on_ready(listener.local_addr()?.to_string());
            crate::listen::serve(listener, router, tls, shutdown, timeouts).await?;
        }
        ListenAddr::Unix(path) => {
            // Bound under a temporary name and given its mode before it
            // appears at `path`, so no client ever sees the wrong mode.
            let staged = path.with_extension("portcullis-staged");
            let _ = std::fs::remove_file(&staged);
            let listener = tokio::net::UnixListener::bind(&staged).map_err(bind_err)?;
            let mode = config.portcullis.socket_mode().unwrap_or(0o666);
            set_mode(&staged, mode).map_err(|cause| ServeError::Config {
                key: "portcullis.socketmode",
                message: format!("cannot set mode {mode:o} on {}: {cause}", staged.display()),
            })?;
            std::fs::rename(&staged, &path).map_err(bind_err)?;
            on_ready(path.display().to_string());
            crate::listen::serve(listener, router, tls, shutdown, timeouts).await?;
        }
    }
    if let Some(debug) = debug {
        debug.stop().await;
    }
    if let Some(audit) = audit
        && !audit.flush(std::time::Duration::from_secs(5))
    {
        tracing::warn!("the audit log's last lines could not be written within 5 s");
    }
    Ok(())
}

#[cfg(unix)]
fn set_mode(path: &std::path::Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

/// The debug listener (`http.debug.addr`): plain HTTP, separate from the
/// registry's listener, serving the metrics and `/debug/health`. It stops
/// when [`DebugServer::stop`] is called or when it is dropped.
struct DebugServer {
    stop_tx: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl DebugServer {
    /// Binds and starts the debug listener when `http.debug.addr` is set.
    async fn start(
        config: &Config,
        metrics: Option<Arc<Metrics>>,
    ) -> Result<Option<Self>, ServeError> {
        let Some(debug) = &config.http.debug else {
            return Ok(None);
        };
        if debug.addr.is_empty() {
            if debug.prometheus.enabled {
                tracing::warn!(
                    "http.debug.prometheus.enabled has no effect without http.debug.addr; set http.debug.addr (such as localhost:5001) to serve metrics"
                );
            }
            return Ok(None);
        }
        let (host, port) = match portcullis_config::parse_listen_addr("tcp", &debug.addr) {
            Ok(ListenAddr::Tcp { host, port }) => {
                (host.unwrap_or_else(|| "0.0.0.0".to_owned()), port)
            }
            Ok(ListenAddr::Unix(_)) => {
                return Err(config_err("http.debug.addr")(
                    "must be a TCP address, such as localhost:5001".to_owned(),
                ));
            }
            Err(message) => return Err(config_err("http.debug.addr")(message)),
        };
        let listener = tokio::net::TcpListener::bind((host.as_str(), port))
            .await
            .map_err(|cause| ServeError::DebugBind {
                addr: debug.addr.clone(),
                cause,
            })?;
        let local = listener.local_addr()?;
        let path = match debug.prometheus.path.as_str() {
            "" => "/metrics",
            path => path,
        };
        if metrics.is_some() {
            tracing::info!(addr = %local, path = %path, "debug server listening; Prometheus metrics enabled");
        } else {
            tracing::info!(
                addr = %local,
                "debug server listening; it serves only /debug/health (set http.debug.prometheus.enabled for metrics)"
            );
        }
        let app = crate::metrics::debug_app(metrics, path);
        let (stop_tx, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::error!(error = %e, "debug server failed");
            }
        });
        Ok(Some(Self { stop_tx, task }))
    }

    /// Stops accepting and waits briefly for open requests.
    async fn stop(self) {
        let _ = self.stop_tx.send(());
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), self.task).await;
    }
}
