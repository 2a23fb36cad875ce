//! One endpoint's queue and its delivery.
//!
//! `emit` hands an envelope to the lane's channel; the writer task stores
//! it under `notify/<name, base64>/<sequence>`, so it survives a restart,
//! and the deliverer posts stored envelopes in order, deleting each one
//! the endpoint accepted and retrying with back-off the one it did not.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine as _;
use portcullis_state::{StateError, StateStore};
use tokio::sync::{Notify, mpsc, watch};

use crate::envelope::EVENTS_MEDIA_TYPE;
use crate::{Endpoint, NotifyError};

/// The shortest wait between attempts, so a zero `backoff` cannot spin.
const MIN_DELAY: Duration = Duration::from_millis(10);
/// The longest wait between attempts, unless `backoff` itself is longer.
const MAX_DELAY: Duration = Duration::from_secs(300);

/// An endpoint's counters, shared by `emit` and the tasks.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub queued: AtomicU64,
    pub delivered: AtomicU64,
    pub failed: AtomicU64,
    pub dropped: AtomicU64,
    /// Envelopes accepted and not yet delivered (in the channel or stored).
    pub pending: AtomicUsize,
}

impl Counters {
    /// Counts an envelope that left the queue without being delivered.
    pub fn drop_one(&self, name: &str, why: &str) {
        let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        // the first drop and then every thousandth, so a flood stays quiet
        if n % 1000 == 1 {
            tracing::warn!(endpoint = name, dropped = n, why, "notification dropped");
        }
    }
}

/// The part of a lane that `emit` uses.
pub(crate) struct Lane {
    pub endpoint: Endpoint,
    pub counters: Arc<Counters>,
    pub tx: Option<mpsc::Sender<Vec<u8>>>,
    pub queue_max: usize,
}

impl Lane {
    /// Queues `body` unless the queue is full; never waits.
    pub fn offer(&self, body: Vec<u8>) {
        let c = &self.counters;
        if c.pending.fetch_add(1, Ordering::AcqRel) >= self.queue_max {
            c.pending.fetch_sub(1, Ordering::AcqRel);
            c.drop_one(&self.endpoint.name, "the queue is full");
            return;
        }
        match self.tx.as_ref().map(|tx| tx.try_send(body)) {
            Some(Ok(())) => {
                c.queued.fetch_add(1, Ordering::Relaxed);
            }
            _ => {
                c.pending.fetch_sub(1, Ordering::AcqRel);
                c.drop_one(&self.endpoint.name, "the sink is shutting down");
            }
        }
    }
}

/// The part of a lane that the tasks use.
pub(crate) struct Worker {
    name: String,
    url: reqwest::Url,
    client: reqwest::Client,
    headers: reqwest::header::HeaderMap,
    threshold: u32,
    backoff: Duration,
    store: Arc<dyn StateStore>,
    prefix: String,
    counters: Arc<Counters>,
    /// Stored keys not yet delivered, oldest first.
    keys: std::sync::Mutex<VecDeque<String>>,
    wake: Notify,
}

/// The key prefix of an endpoint's queue.
pub(crate) fn prefix(name: &str) -> String {
    format!(
        "notify/{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(name)
    )
}

fn key(prefix: &str, seq: u64) -> String {
    format!("{prefix}/{seq:020}")
}

/// The wait after `failures` consecutive failed attempts: `backoff` until
/// `threshold` failures, then doubling, at most 64 × `backoff` or five
/// minutes.
pub(crate) fn retry_delay(failures: u32, threshold: u32, backoff: Duration) -> Duration {
    let backoff = backoff.max(MIN_DELAY);
    let cap = (backoff * 64).min(MAX_DELAY.max(backoff));
    let doublings = failures.saturating_sub(threshold).min(6);
    (backoff * 2u32.pow(doublings)).min(cap)
}

/// The headers of every request to an endpoint: the configured ones
/// (marked sensitive, so they never show in debug output) and the
/// envelope's content type.
fn headers(e: &Endpoint) -> Result<reqwest::header::HeaderMap, NotifyError> {
    use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
    let mut headers = HeaderMap::new();
    for (name, values) in &e.headers {
        let bad = || NotifyError::Header {
            endpoint: e.name.clone(),
            header: name.clone(),
        };
        let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad())?;
        for v in values {
            let mut value = HeaderValue::from_str(v).map_err(|_| bad())?;
            value.set_sensitive(true);
            headers.append(header.clone(), value);
        }
    }
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(EVENTS_MEDIA_TYPE));
    Ok(headers)
}

/// The HTTP client of an endpoint, with its timeout.
fn client(e: &Endpoint) -> Result<reqwest::Client, NotifyError> {
    reqwest::Client::builder()
        .timeout(e.timeout)
        .user_agent(concat!("portcullis/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|err| NotifyError::Client {
            endpoint: e.name.clone(),
            cause: describe(err),
        })
}

/// An HTTP error's text with its causes, without the URL (which may carry
/// credentials).
fn describe(err: reqwest::Error) -> String {
    let err = err.without_url();
    let mut text = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// An opened lane: `emit`'s side, and the tasks' side with the channel
/// they read and the next free sequence number.
pub(crate) struct Opened {
    pub lane: Lane,
    pub worker: Arc<Worker>,
    pub rx: mpsc::Receiver<Vec<u8>>,
    pub next_seq: u64,
}

/// Opens an endpoint's lane: reads what its queue holds from `store` (the
/// envelopes a previous run left) and builds the client.
pub(crate) fn open(
    e: &Endpoint,
    queue_max: usize,
    store: Arc<dyn StateStore>,
) -> Result<Opened, NotifyError> {
    let url = reqwest::Url::parse(&e.url)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .ok_or_else(|| NotifyError::Url {
            endpoint: e.name.clone(),
        })?;
    let client = client(e)?;
    let headers = headers(e)?;
    let prefix = prefix(&e.name);
    let stored = store.list(&prefix).map_err(NotifyError::Store)?;
    let next_seq = stored
        .last()
        .and_then(|k| k.rsplit('/').next()?.parse::<u64>().ok())
        .map_or(0, |s| s + 1);
    let counters = Arc::new(Counters::default());
    counters.pending.store(stored.len(), Ordering::Release);
    if !stored.is_empty() {
        tracing::info!(
            endpoint = %e.name,
            pending = stored.len(),
            "resuming stored notifications"
        );
    }
    let (tx, rx) = mpsc::channel(queue_max.max(1));
    let worker = Arc::new(Worker {
        name: e.name.clone(),
        url,
        client,
        headers,
        threshold: e.threshold,
        backoff: e.backoff,
        store,
        prefix,
        counters: counters.clone(),
        keys: std::sync::Mutex::new(stored.into()),
        wake: Notify::new(),
    });
    let lane = Lane {
        endpoint: e.clone(),
        counters,
        tx: Some(tx),
        queue_max,
    };
    Ok(Opened {
        lane,
        worker,
        rx,
        next_seq,
    })
}

impl Worker {
    /// The queue's keys; a task that panicked holding them leaves them usable.
    fn keys(&self) -> std::sync::MutexGuard<'_, VecDeque<String>> {
        self.keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs `f` on the store off the async thread.
    async fn on_store<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn StateStore) -> Result<T, StateError> + Send + 'static,
    ) -> Result<T, String> {
        let store = self.store.clone();
        match tokio::task::spawn_blocking(move || f(&*store)).await {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Stores each envelope `emit` queued, until the sink is dropped and
    /// the channel is drained.
    pub async fn write(self: Arc<Self>, mut rx: mpsc::Receiver<Vec<u8>>, mut seq: u64) {
        while let Some(body) = rx.recv().await {
            let prefix = self.prefix.clone();
            let stored = self
                .on_store(move |s| {
                    // create-only, so a key some other writer took is never overwritten
                    loop {
                        let k = key(&prefix, seq);
                        if s.compare_and_set(&k, None, &body, None)?.is_some() {
                            return Ok((k, seq));
                        }
                        seq += 1;
                    }
                })
                .await;
            match stored {
                Ok((k, written)) => {
                    seq = written + 1;
                    self.keys().push_back(k);
                    self.wake.notify_one();
                }
                Err(cause) => {
                    tracing::warn!(endpoint = %self.name, %cause, "cannot store a notification");
                    self.counters.pending.fetch_sub(1, Ordering::AcqRel);
                    self.counters
                        .drop_one(&self.name, "the store cannot be written");
                }
            }
        }
    }

    /// Posts one envelope; `Err` says why it was not accepted.
    async fn post(&self, body: Vec<u8>) -> Result<(), String> {
        let resp = self
            .client
            .post(self.url.clone())
            .headers(self.headers.clone())
            .body(body)
            .send()
            .await
            .map_err(describe)?;
        let status = resp.status();
        if status.is_success() || status.is_redirection() {
            Ok(())
        } else {
            Err(format!("the endpoint answered {status}"))
        }
    }

    /// Takes the oldest key off the queue after it was delivered or lost.
    fn done(&self, key: &str) {
        let mut keys = self.keys();
        if keys.front().is_some_and(|k| k == key) {
            keys.pop_front();
        }
        drop(keys);
        self.counters.pending.fetch_sub(1, Ordering::AcqRel);
    }

    /// Delivers stored envelopes in order until the sink shuts down.
    pub async fn deliver(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut failures: u32 = 0;
        loop {
            let next = self.keys().front().cloned();
            let Some(key) = next else {
                tokio::select! {
                    () = self.wake.notified() => continue,
                    _ = shutdown.changed() => return,
                }
            };
            let k = key.clone();
            let attempt = match self.on_store(move |s| s.get(&k)).await {
                Ok(None) => {
                    // gone (delivered by another process sharing the store)
                    self.done(&key);
                    continue;
                }
                Ok(Some(v)) => {
                    tokio::select! {
                        r = self.post(v.value) => r,
                        _ = shutdown.changed() => return,
                    }
                }
                Err(cause) => Err(format!("cannot read the queue: {cause}")),
            };
            match attempt {
                Ok(()) => {
                    failures = 0;
                    let k = key.clone();
                    if let Err(cause) = self.on_store(move |s| s.delete(&k)).await {
                        // it will be sent again after a restart: at least once
                        tracing::warn!(endpoint = %self.name, %cause, "cannot remove a delivered notification");
                    }
                    self.counters.delivered.fetch_add(1, Ordering::Relaxed);
                    self.done(&key);
                }
                Err(cause) => {
                    failures = failures.saturating_add(1);
                    self.counters.failed.fetch_add(1, Ordering::Relaxed);
                    let wait = retry_delay(failures, self.threshold, self.backoff);
                    if failures == 1 || failures >= self.threshold {
                        tracing::warn!(
                            endpoint = %self.name, %cause, failures, retry_in = ?wait,
                            "notification not delivered; retrying"
                        );
                    } else {
                        tracing::debug!(endpoint = %self.name, %cause, failures, "notification not delivered");
                    }
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        _ = shutdown.changed() => return,
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_waits_back_off_after_the_threshold_and_are_capped() {
        let s = Duration::from_secs(1);
        assert_eq!(retry_delay(1, 3, s), s);
        assert_eq!(retry_delay(3, 3, s), s);
        assert_eq!(retry_delay(4, 3, s), 2 * s);
        assert_eq!(retry_delay(6, 3, s), 8 * s);
        assert_eq!(retry_delay(100, 3, s), 64 * s);
        assert_eq!(retry_delay(100, 0, Duration::from_secs(10)), MAX_DELAY);
        assert_eq!(
            retry_delay(1, 0, Duration::from_secs(600)),
            Duration::from_secs(600)
        );
        assert_eq!(retry_delay(1, 1, Duration::ZERO), MIN_DELAY);
    }

    #[test]
    fn keys_are_valid_state_keys_and_sort_by_sequence() {
        for name in ["alistener", "a/b c", "ünïcode", "--", "."] {
            portcullis_state::check_key(&key(&prefix(name), 7)).unwrap();
        }
        assert!(key("p", 9) < key("p", 10));
    }
}
