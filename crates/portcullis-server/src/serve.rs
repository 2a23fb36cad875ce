//! Builds the application state from a loaded configuration (the backends
//! come from `portcullis_app`) and serves it.

use std::sync::Arc;

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use portcullis_app::{Authentication, Backends};
use portcullis_config::{Config, ListenAddr};
use portcullis_core::Registry;
use portcullis_types::event::{EventSink, Sinks};

use crate::metrics::Metrics;
use crate::{AppState, AuthMode, Bearer, UrlPolicy, app};

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
    Assemble(#[from] portcullis_app::AssembleError),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
}

/// Builds the state from a validated configuration: the backends from
/// `portcullis_app`, and what only the HTTP edge needs (response headers,
/// URLs, metrics, rate limits, CORS).
///
/// # Errors
/// When the htpasswd file cannot be loaded or a header is invalid.
pub fn build_state(config: &Config) -> Result<AppState, ServeError> {
    let backends = Backends::assemble(config)?;
    let headers = response_headers(config)?;
    let metrics = metrics_for(config);
    let mut sinks: Vec<Arc<dyn EventSink>> = vec![Arc::new(crate::events::LogSink)];
    sinks.extend(backends.event_sinks());
    if let Some(m) = &metrics {
        sinks.push(Arc::new(crate::metrics::MetricsSink(m.clone())));
        m.set_queue_probe(queue_probe(&backends));
    }
    let Backends {
        registry,
        access,
        auth,
        token_service,
        enforce_policy,
        uploads,
        audit,
        notifier,
        lockout,
    } = backends;
    Ok(AppState {
        registry,
        auth: auth_mode(auth),
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
        events: Sinks::new(sinks),
        audit,
        notifier,
        abuse: crate::abuse::Abuse::from_config(config, lockout)?,
        cors: cors(config)?,
        catalog_max: usize::try_from(config.catalog.maxentries)
            .unwrap_or(usize::MAX)
            .max(1),
    })
}

/// `http.headers`, for every response.
fn response_headers(config: &Config) -> Result<HeaderMap, ServeError> {
    let mut headers = HeaderMap::new();
    let cors = config.cors().is_some();
    for (k, values) in &config.http.headers {
        // With CORS settings in force, Access-Control-* go only to allowed
        // origins, from the CORS layer.
        if cors && portcullis_config::is_cors_header(k) {
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
    Ok(headers)
}

/// `http.cors` (or `http.headers: Access-Control-*` read as it).
fn cors(config: &Config) -> Result<Option<Arc<crate::cors::Cors>>, ServeError> {
    let Some((c, _)) = config.cors() else {
        return Ok(None);
    };
    let cors = crate::cors::Cors::new(&c).ok_or_else(|| {
        config_err("http.cors")("a method or header name is not a valid header value".into())
    })?;
    Ok(Some(Arc::new(cors)))
}

/// The depths of the audit and notification queues, for the metrics.
fn queue_probe(backends: &Backends) -> crate::metrics::QueueProbe {
    let (a, n) = (backends.audit.clone(), backends.notifier.clone());
    Box::new(move || {
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
    })
}

/// The pipeline's authentication mode for the configured one.
fn auth_mode(auth: Authentication) -> AuthMode {
    match auth {
        Authentication::None => AuthMode::None,
        Authentication::Basic { realm } => AuthMode::Basic { realm },
        Authentication::Bearer(b) => AuthMode::Bearer(Box::new(Bearer {
            verifiers: b.verifiers,
            realm: b.realm,
            realm_path: b.realm_path,
            service: b.service,
            cache: crate::token_cache::TokenCache::default(),
        })),
    }
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
