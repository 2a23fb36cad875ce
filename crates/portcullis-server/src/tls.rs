//! TLS termination with rustls (`http.tls`): hot reload of the certificate,
//! key and client CAs, and the acceptor the listener (`crate::listen`) takes
//! for each connection. Reading and checking the files, and the names of
//! client certificates, are `portcullis_app::tls`'s (re-exported here).
//!
//! Each accepted connection takes the current `Arc<ServerConfig>`, so a
//! reload affects new handshakes only; connections already open keep theirs.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

pub use portcullis_app::tls::{
    ClientAuth, ClientCertificate, ClientIdentity, Loaded, TlsError, TlsSettings,
    client_certificate, load,
};

/// The contents of every file the settings point at, to notice changes.
type Snapshot = Vec<Option<Vec<u8>>>;

/// The serving TLS configuration, replaced when its files change.
pub struct TlsReloader {
    settings: TlsSettings,
    current: RwLock<Arc<ServerConfig>>,
    seen: Mutex<Snapshot>,
    /// When the served certificate expires.
    not_after: Mutex<time::OffsetDateTime>,
    /// Where the certificate's expiry is exported, when metrics are served.
    metrics: Option<Arc<crate::metrics::Metrics>>,
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

/// Exports the loaded certificate's expiry and the warning window.
fn record_expiry(
    metrics: Option<&crate::metrics::Metrics>,
    settings: &TlsSettings,
    loaded: &Loaded,
) {
    if let Some(m) = metrics {
        m.set_tls_certificate(loaded.not_after.unix_timestamp(), settings.expiry_warning);
    }
}

impl TlsReloader {
    /// Loads and checks the TLS files; any problem stops the start.
    ///
    /// # Errors
    /// The first problem found, naming the key and file.
    pub fn new(
        settings: TlsSettings,
        metrics: Option<Arc<crate::metrics::Metrics>>,
    ) -> Result<Arc<Self>, TlsError> {
        let seen = snapshot(&settings);
        let loaded = load(&settings, time::OffsetDateTime::now_utc())?;
        log_loaded(&loaded);
        record_expiry(metrics.as_deref(), &settings, &loaded);
        tracing::info!(
            certificate = %settings.certificate.display(),
            expires = %loaded.not_after,
            client_auth = ?settings.client_auth,
            "TLS enabled"
        );
        Ok(Arc::new(Self {
            not_after: Mutex::new(loaded.not_after),
            current: RwLock::new(loaded.config),
            seen: Mutex::new(seen),
            settings,
            metrics,
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
                record_expiry(self.metrics.as_deref(), &self.settings, &loaded);
                *self.current.write() = loaded.config;
                *self.not_after.lock() = loaded.not_after;
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

    /// Logs, at the moment it happens, that the served certificate expired
    /// (clients refuse it from then on), and once when it enters the
    /// `expirywarning` window. Checks at least once a minute, so a renewal
    /// picked up by a reload is noticed.
    fn spawn_expiry_watch(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut expired_reported = None;
            // Loading already warned about a certificate that expires soon.
            let mut warned = weak.upgrade().map(|this| *this.not_after.lock());
            loop {
                let Some(this) = weak.upgrade() else { break };
                let expires = *this.not_after.lock();
                let now = time::OffsetDateTime::now_utc();
                let path = this.settings.certificate.display().to_string();
                let warning = this.settings.expiry_warning;
                drop(this);
                let left = expires - now;
                if left <= time::Duration::ZERO {
                    if expired_reported != Some(expires) {
                        expired_reported = Some(expires);
                        tracing::error!(
                            certificate = %path, %expires,
                            "the served TLS certificate has expired: clients now refuse to connect (x509: certificate has expired). Fix: renew it (`portcullis config check` prints the command); portcullis picks up the new files without a restart"
                        );
                    }
                } else if left <= warning && warned != Some(expires) {
                    warned = Some(expires);
                    tracing::warn!(certificate = %path, %expires, "the served TLS certificate expires soon: renew it");
                }
                let wait = if left > time::Duration::ZERO {
                    Duration::try_from(left).unwrap_or(Duration::from_secs(60))
                } else {
                    Duration::from_secs(60)
                };
                tokio::time::sleep(wait.clamp(Duration::from_millis(100), Duration::from_secs(60)))
                    .await;
            }
        });
    }

    /// Polls the files every `reloadinterval`, reloads on SIGHUP, and
    /// watches the certificate's expiry.
    pub fn spawn_watchers(self: &Arc<Self>) {
        self.spawn_expiry_watch();
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
