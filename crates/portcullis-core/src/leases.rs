//! Upload sessions held across processes. Within one process a session is
//! serialized by its lock slot (`uploads.rs`); processes that share a
//! storage root also take a lease on `uploads/<id>` in the shared
//! `StateStore`, so two replicas never write one session at once. The
//! lease is renewed while a request holds it, and lapses on its own when
//! its holder dies, so a client's retry on another replica waits at most
//! [`TTL`]. A store that fails is logged and the request goes on under the
//! process's own lock (failing open, as a lost lease would only matter to
//! a client writing one session through two replicas at once).

use std::sync::Arc;
use std::time::{Duration, Instant};

use portcullis_state::{Lease, StateStore};

use crate::CoreError;

/// How long a lease lasts unless renewed: also the longest a retry waits
/// for the lease of a replica that died.
pub const TTL: Duration = Duration::from_secs(30);
/// How long a request waits for a session another process holds.
const WAIT: Duration = Duration::from_secs(35);
const POLL: Duration = Duration::from_millis(100);

/// The leases of one process.
pub(crate) struct Leases {
    store: Arc<dyn StateStore>,
    /// This process, unique among the replicas sharing the store.
    holder: String,
}

/// A held lease: renewed until dropped, then released.
pub(crate) struct LeaseGuard {
    store: Arc<dyn StateStore>,
    lease: Lease,
    renew: tokio::task::JoinHandle<()>,
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        self.renew.abort();
        if let Err(e) = self.store.release(&self.lease) {
            tracing::warn!(key = %self.lease.key, error = %e, "upload lease not released; it lapses on its own");
        }
    }
}

impl Leases {
    pub(crate) fn new(store: Arc<dyn StateStore>) -> Self {
        let holder = format!("{}-{}", std::process::id(), uuid::Uuid::new_v4().simple());
        Self { store, holder }
    }

    /// Takes the lease of session `id`, waiting while another process
    /// holds it. `None` when the store failed (logged; the caller goes on).
    ///
    /// # Errors
    /// `UploadBusy` when another process held the session throughout.
    pub(crate) async fn hold(&self, id: &str) -> Result<Option<LeaseGuard>, CoreError> {
        let key = format!("uploads/{id}");
        let deadline = Instant::now() + WAIT;
        loop {
            match self.store.acquire(&key, &self.holder, TTL) {
                Ok(Some(lease)) => return Ok(Some(self.guard(lease))),
                Ok(None) if Instant::now() < deadline => tokio::time::sleep(POLL).await,
                Ok(None) => return Err(CoreError::UploadBusy),
                Err(e) => {
                    tracing::warn!(%key, error = %e, "upload lease store failed; going on under this process's lock");
                    return Ok(None);
                }
            }
        }
    }

    fn guard(&self, lease: Lease) -> LeaseGuard {
        let store = self.store.clone();
        let (key, holder) = (lease.key.clone(), lease.holder.clone());
        let renew = tokio::spawn(async move {
            loop {
                tokio::time::sleep(TTL / 3).await;
                match store.acquire(&key, &holder, TTL) {
                    Ok(Some(_)) => {}
                    Ok(None) => {
                        tracing::warn!(%key, "upload lease taken by another process while held");
                        return;
                    }
                    Err(e) => tracing::warn!(%key, error = %e, "upload lease not renewed"),
                }
            }
        });
        LeaseGuard {
            store: self.store.clone(),
            lease,
            renew,
        }
    }
}
