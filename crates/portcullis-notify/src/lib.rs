//! Webhook notifications the way distribution (registry:2) sends them: an
//! [`EventSink`] that turns pushes, pulls, deletes and mounts into
//! distribution's event envelope and `POST`s it to every configured
//! endpoint.
//!
//! [`Notifier::emit`] never waits: it builds the envelope and hands it to
//! the endpoint's bounded queue (full: dropped and counted). Queues live in
//! a [`StateStore`] under `notify/<endpoint name, base64url>/<sequence>`, so
//! envelopes not yet delivered survive a restart and are sent by the next
//! run. Each endpoint is delivered to in order by its own task, on a thread
//! the sink owns; an envelope is removed when the endpoint answers 2xx or
//! 3xx and retried with back-off otherwise. Delivery is at least once.

mod envelope;
mod lane;
mod settings;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use portcullis_state::{StateError, StateStore};
use portcullis_types::event::{Event, EventSink, Kind};

pub use envelope::{
    ActorRecord, BLOB_MEDIA_TYPE, EVENTS_MEDIA_TYPE, Envelope, Notification, RequestRecord,
    SourceRecord, Target, notification, timestamp,
};
pub use settings::{Endpoint, Ignore, Settings};

/// Why the sink could not start.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("a notification endpoint has no name: give each one a unique `name`")]
    Unnamed,
    #[error("two notification endpoints are named `{0}`: names must be unique")]
    DuplicateName(String),
    #[error("notification endpoint `{endpoint}`: `url` must be an http or https URL")]
    Url { endpoint: String },
    #[error("notification endpoint `{endpoint}`: header `{header}` has an invalid name or value")]
    Header { endpoint: String, header: String },
    #[error("notification endpoint `{endpoint}`: cannot build the HTTP client: {cause}")]
    Client { endpoint: String, cause: String },
    #[error("notification queue: {0}")]
    Store(#[source] StateError),
    #[error("cannot start the notification thread: {0}")]
    Thread(#[source] std::io::Error),
}

/// One endpoint's counters, for metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointStats {
    /// The endpoint's name.
    pub name: String,
    /// Envelopes accepted into the queue by this process.
    pub queued: u64,
    /// Envelopes the endpoint accepted.
    pub delivered: u64,
    /// Delivery attempts that failed (each retry counts).
    pub failed: u64,
    /// Envelopes dropped: the queue was full or could not be written.
    pub dropped: u64,
    /// Envelopes waiting now, including those a previous run left.
    pub pending: usize,
}

/// The notification sink. Dropping it stops delivery after the envelopes
/// already handed to it are stored.
pub struct Notifier {
    lanes: Vec<lane::Lane>,
    source: SourceRecord,
    shutdown: Option<tokio::sync::watch::Sender<bool>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // names only: urls and headers may hold credentials
        f.debug_struct("Notifier")
            .field(
                "endpoints",
                &self
                    .lanes
                    .iter()
                    .map(|l| &l.endpoint.name)
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Notifier {
    /// Starts delivery to the enabled endpoints of `settings`, resuming the
    /// envelopes that `store` holds for them. Reads the store once here
    /// (this may block briefly); delivery runs on a thread of its own, so
    /// this works inside or outside a tokio runtime.
    ///
    /// # Errors
    /// An endpoint without a name, with a duplicate name, an invalid URL or
    /// header; a store that cannot be read; no thread.
    pub fn start(settings: Settings, store: Arc<dyn StateStore>) -> Result<Self, NotifyError> {
        let mut names = BTreeSet::new();
        let mut lanes = Vec::new();
        let mut tasks = Vec::new();
        for e in settings.endpoints.iter().filter(|e| !e.disabled) {
            if e.name.is_empty() {
                return Err(NotifyError::Unnamed);
            }
            if !names.insert(e.name.clone()) {
                return Err(NotifyError::DuplicateName(e.name.clone()));
            }
            let lane::Opened {
                lane,
                worker,
                rx,
                next_seq,
            } = lane::open(e, settings.queue_max, store.clone())?;
            tracing::info!(endpoint = %e.name, timeout = ?e.timeout, "notification endpoint configured");
            lanes.push(lane);
            tasks.push((worker, rx, next_seq));
        }
        let (shutdown, mut stop) = tokio::sync::watch::channel(false);
        let thread = if tasks.is_empty() {
            None
        } else {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(NotifyError::Thread)?;
            let thread = std::thread::Builder::new()
                .name("portcullis-notify".into())
                .spawn(move || {
                    runtime.block_on(async move {
                        let mut writers = Vec::new();
                        for (worker, rx, next_seq) in tasks {
                            writers.push(tokio::spawn(worker.clone().write(rx, next_seq)));
                            tokio::spawn(worker.deliver(stop.clone()));
                        }
                        let _ = stop.changed().await;
                        // the channels are closed: store what is left in them
                        for w in writers {
                            let _ = w.await;
                        }
                    });
                })
                .map_err(NotifyError::Thread)?;
            Some(thread)
        };
        Ok(Self {
            lanes,
            source: SourceRecord {
                addr: settings.source_addr,
                instance_id: settings.instance_id,
            },
            shutdown: Some(shutdown),
            thread,
        })
    }

    /// Each enabled endpoint's counters.
    #[must_use]
    pub fn stats(&self) -> Vec<EndpointStats> {
        self.lanes
            .iter()
            .map(|l| {
                let c = &l.counters;
                EndpointStats {
                    name: l.endpoint.name.clone(),
                    queued: c.queued.load(Ordering::Relaxed),
                    delivered: c.delivered.load(Ordering::Relaxed),
                    failed: c.failed.load(Ordering::Relaxed),
                    dropped: c.dropped.load(Ordering::Relaxed),
                    pending: c.pending.load(Ordering::Acquire),
                }
            })
            .collect()
    }

    fn sum(&self, f: impl Fn(&EndpointStats) -> u64) -> u64 {
        self.stats().iter().map(f).sum()
    }

    /// Envelopes queued, over every endpoint.
    #[must_use]
    pub fn queued(&self) -> u64 {
        self.sum(|s| s.queued)
    }

    /// Envelopes delivered, over every endpoint.
    #[must_use]
    pub fn delivered(&self) -> u64 {
        self.sum(|s| s.delivered)
    }

    /// Failed delivery attempts, over every endpoint.
    #[must_use]
    pub fn failed(&self) -> u64 {
        self.sum(|s| s.failed)
    }

    /// Envelopes dropped, over every endpoint.
    #[must_use]
    pub fn dropped(&self) -> u64 {
        self.sum(|s| s.dropped)
    }

    /// Envelopes waiting, over every endpoint.
    #[must_use]
    pub fn pending(&self) -> usize {
        self.stats().iter().map(|s| s.pending).sum()
    }

    /// Waits until every endpoint's queue is empty, at most `timeout`;
    /// whether it is.
    pub async fn flush(&self, timeout: Duration) -> bool {
        let until = tokio::time::Instant::now() + timeout;
        loop {
            if self.pending() == 0 {
                return true;
            }
            if tokio::time::Instant::now() >= until {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl EventSink for Notifier {
    fn name(&self) -> &'static str {
        "notifications"
    }

    /// Changes and pulls, when an endpoint is enabled.
    fn wants(&self, kind: Kind) -> bool {
        !self.lanes.is_empty() && matches!(kind, Kind::Change | Kind::Pull)
    }

    fn emit(&self, event: &Event) {
        if self.lanes.is_empty() {
            return;
        }
        let Some(n) = notification(event, &self.source) else {
            return;
        };
        let mut body = None;
        for lane in &self.lanes {
            if lane.endpoint.ignores(&n.action, &n.target.media_type) {
                continue;
            }
            let body = body.get_or_insert_with(|| {
                serde_json::to_vec(&Envelope {
                    events: vec![n.clone()],
                })
                .unwrap_or_default()
            });
            lane.offer(body.clone());
        }
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        for lane in &mut self.lanes {
            lane.tx = None;
        }
        if let Some(s) = self.shutdown.take() {
            let _ = s.send(true);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
