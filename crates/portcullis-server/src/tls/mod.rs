//! TLS termination with rustls (`http.tls`): startup checks, hot reload of
//! the certificate, key and client CAs, client certificates, and the accept
//! loop serving HTTP/1.1 and HTTP/2 (ALPN) over TLS.
//!
//! Each accepted connection takes the current `Arc<ServerConfig>`, so a
//! reload affects new handshakes only; connections already open keep theirs.

mod load;
mod settings;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use parking_lot::{Mutex, RwLock};
use rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

pub use load::{Loaded, load};
pub use settings::{ClientAuth, TlsSettings};

/// A TLS setting or file that cannot be used, with the key it came from.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{key}: {message}")]
pub struct TlsError {
    pub key: String,
    pub message: String,
}

impl TlsError {
    pub(crate) fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// How long a client has to complete the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The contents of every file the settings point at, to notice changes.
type Snapshot = Vec<Option<Vec<u8>>>;

/// The serving TLS configuration, replaced when its files change.
pub struct TlsReloader {
    settings: TlsSettings,
    current: RwLock<Arc<ServerConfig>>,
    seen: Mutex<Snapshot>,
}

impl std::fmt::Debug for TlsReloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsReloader")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

fn log_loaded(loaded: &Loaded) {
    for w in &loaded.warnings {
        tracing::warn!("http.tls: {w}");
    }
}

impl TlsReloader {
    /// Loads and checks the TLS files; any problem stops the start.
    ///
    /// # Errors
    /// The first problem found, naming the key and file.
    pub fn new(settings: TlsSettings) -> Result<Arc<Self>, TlsError> {
        let seen = snapshot(&settings);
        let loaded = load(&settings, time::OffsetDateTime::now_utc())?;
        log_loaded(&loaded);
        tracing::info!(
            certificate = %settings.certificate.display(),
            expires = %loaded.not_after,
            client_auth = ?settings.client_auth,
            "TLS enabled"
        );
        Ok(Arc::new(Self {
            current: RwLock::new(loaded.config),
            seen: Mutex::new(seen),
            settings,
        }))
    }

    /// The settings in use.
    pub fn settings(&self) -> &TlsSettings {
        &self.settings
    }

    /// The configuration new connections use.
    pub fn current(&self) -> Arc<ServerConfig> {
        self.current.read().clone()
    }

    /// An acceptor for one new connection.
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.current())
    }

    /// Reloads now. A failure keeps the current configuration and is logged.
    ///
    /// # Errors
    /// Why the files on disk cannot be used.
    pub fn reload(&self) -> Result<(), TlsError> {
        *self.seen.lock() = snapshot(&self.settings);
        match load(&self.settings, time::OffsetDateTime::now_utc()) {
            Ok(loaded) => {
                log_loaded(&loaded);
                *self.current.write() = loaded.config;
                tracing::info!(
                    certificate = %self.settings.certificate.display(),
                    expires = %loaded.not_after,
                    "TLS certificate reloaded"
                );
                Ok(())
            }
            Err(e) => {
                tracing::error!("TLS reload failed, still serving the previous certificate: {e}");
                Err(e)
            }
        }
    }

    /// Reloads when any file changed since the last look; each change is
    /// tried (and a failure logged) once. Returns whether it tried.
    pub fn reload_if_changed(&self) -> bool {
        let now = snapshot(&self.settings);
        if *self.seen.lock() == now {
            return false;
        }
        let _ = self.reload();
        true
    }

    /// Polls the files every `reloadinterval` and reloads on SIGHUP.
    pub fn spawn_watchers(self: &Arc<Self>) {
        let interval = self.settings.reload_interval;
        if !interval.is_zero() {
            let weak = Arc::downgrade(self);
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(interval);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    let Some(this) = weak.upgrade() else { break };
                    // File reads are small but blocking.
                    let _ = tokio::task::spawn_blocking(move || this.reload_if_changed()).await;
                }
            });
        }
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            match signal(SignalKind::hangup()) {
                Ok(mut hup) => {
                    let weak = Arc::downgrade(self);
                    tokio::spawn(async move {
                        while hup.recv().await.is_some() {
                            let Some(this) = weak.upgrade() else { break };
                            tracing::info!("SIGHUP: reloading TLS certificate, key and client CAs");
                            let _ = tokio::task::spawn_blocking(move || this.reload()).await;
                        }
                    });
                }
                Err(e) => tracing::warn!(error = %e, "cannot listen for SIGHUP"),
            }
        }
    }
}

fn snapshot(settings: &TlsSettings) -> Snapshot {
    std::iter::once(&settings.certificate)
        .chain(std::iter::once(&settings.key))
        .chain(settings.clientcas.iter())
        .map(|p| std::fs::read(p).ok())
        .collect()
}

/// Serves `router` over TLS on `listener` until `shutdown` completes, then
/// waits up to `drain` for open connections to finish.
///
/// # Errors
/// Never at present; the accept loop logs and retries accept errors.
pub async fn serve_tls<L>(
    mut listener: L,
    router: axum::Router,
    tls: Arc<TlsReloader>,
    shutdown: impl Future<Output = ()>,
    drain: Duration,
) -> std::io::Result<()>
where
    L: axum::serve::Listener,
    L::Addr: 'static,
{
    let graceful = GracefulShutdown::new();
    let builder = Arc::new(auto::Builder::new(TokioExecutor::new()));
    tokio::pin!(shutdown);
    loop {
        let (io, addr) = tokio::select! {
            conn = listener.accept() => conn,
            () = &mut shutdown => break,
        };
        let acceptor = tls.acceptor();
        // The peer address, as axum's `ConnectInfo`, for trusted-proxy checks.
        let peer = (&addr as &dyn std::any::Any)
            .downcast_ref::<std::net::SocketAddr>()
            .copied();
        let with_peer = tower::ServiceBuilder::new()
            .map_request(move |mut req: http::Request<hyper::body::Incoming>| {
                if let Some(p) = peer {
                    req.extensions_mut().insert(axum::extract::ConnectInfo(p));
                }
                req.extensions_mut().insert(crate::proxy::TlsConnection);
                req
            })
            .service(router.clone());
        let service = TowerToHyperService::new(with_peer);
        let builder = builder.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(io)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!("TLS handshake timed out");
                    return;
                }
            };
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            if let Err(e) = watcher.watch(conn).await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after {drain:?}; closing them");
    }
    Ok(())
}
