//! The audit sink: an [`EventSink`] whose `emit` only queues; one writer
//! thread numbers, seals and writes the lines to every output.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::time::{Duration, SystemTime};

use portcullis_types::event::{Event, EventSink, Kind};

use crate::chain::Head;
use crate::output::Output;
use crate::record::{Record, rfc3339};

/// How pulls are written: every one, every n-th per identity and
/// repository, or one line per identity and repository per minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pulls {
    #[default]
    All,
    Sample(u32),
    Aggregate,
}

/// The sink's settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Events queued at most; past that they are counted as dropped, and
    /// the count is written as an `audit.dropped` line once there is room.
    pub queue: usize,
    pub pulls: Pulls,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            queue: 65_536,
            pulls: Pulls::All,
        }
    }
}

enum Msg {
    /// A pull to fold into its minute's aggregate.
    Record(Box<Record>),
    /// A record serialized where it happened ([`Record::fields`]), so one
    /// string crosses to the writer rather than each of the record's
    /// (a free on another thread is what costs in the allocator); `sample`
    /// is a pull's identity and repository, hashed, when pulls are sampled.
    Line {
        fields: String,
        sample: Option<u64>,
    },
    Flush(SyncSender<()>),
}

/// Numbers of the queue, for metrics.
#[derive(Debug, Default)]
pub struct Counters {
    pub queued: AtomicUsize,
    pub dropped: AtomicU64,
    pub written: AtomicU64,
    pub write_errors: AtomicU64,
}

/// The audit log as an event sink.
pub struct AuditSink {
    tx: SyncSender<Msg>,
    counters: Arc<Counters>,
    pulls: Pulls,
}

impl std::fmt::Debug for AuditSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditSink")
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl AuditSink {
    /// Starts the writer over `outputs`, continuing the chain at `head`
    /// (from [`crate::FileOutput::head`], or the genesis).
    ///
    /// # Errors
    /// When the writer thread cannot be started.
    pub fn start(
        outputs: Vec<Box<dyn Output>>,
        head: Head,
        settings: &Settings,
    ) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::sync_channel(settings.queue.max(1));
        let counters = Arc::new(Counters::default());
        let writer = Writer {
            outputs,
            head,
            counters: counters.clone(),
            pulls: settings.pulls,
            sampled: HashMap::new(),
            aggregated: BTreeMap::new(),
            minute: minute_of(SystemTime::now()),
            lines: 0,
        };
        std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || writer.run(&rx))?;
        Ok(Self {
            tx,
            counters,
            pulls: settings.pulls,
        })
    }

    /// The queue's numbers.
    #[must_use]
    pub fn counters(&self) -> &Arc<Counters> {
        &self.counters
    }

    /// Queues a record (for events that are not [`Event`]s yet, such as
    /// pulls): never blocks.
    pub fn record(&self, record: Record) {
        let pull = record.event.ends_with(".pull");
        let msg = match self.pulls {
            Pulls::Aggregate if pull => Msg::Record(Box::new(record)),
            Pulls::Sample(_) if pull => Msg::Line {
                sample: Some(pull_key(&record)),
                fields: record.fields(),
            },
            _ => Msg::Line {
                fields: record.fields(),
                sample: None,
            },
        };
        self.counters.queued.fetch_add(1, Ordering::Relaxed);
        match self.tx.try_send(msg) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.counters.queued.fetch_sub(1, Ordering::Relaxed);
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Waits until everything queued so far is written (or `timeout`
    /// passes): for shutdown and tests.
    pub fn flush(&self, timeout: Duration) -> bool {
        let (done, wait) = mpsc::sync_channel(1);
        let deadline = std::time::Instant::now() + timeout;
        loop {
            match self.tx.try_send(Msg::Flush(done.clone())) {
                Ok(()) => break,
                Err(TrySendError::Disconnected(_)) => return false,
                Err(TrySendError::Full(_)) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(TrySendError::Full(_)) => return false,
            }
        }
        wait.recv_timeout(timeout).is_ok()
    }
}

impl EventSink for AuditSink {
    fn name(&self) -> &'static str {
        "audit"
    }

    /// Everything but allowed decisions: each authorized request is one,
    /// and what it did is recorded as the change or pull it made.
    fn wants(&self, kind: Kind) -> bool {
        kind != Kind::Decision
    }

    fn emit(&self, event: &Event) {
        self.record(Record::of(event));
    }
}

fn minute_of(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 60)
}

type PullKey = (Option<String>, Option<String>);

/// A pull's identity and repository, hashed: the key pulls are sampled by.
fn pull_key(r: &Record) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (&r.identity, &r.repository).hash(&mut h);
    h.finish()
}

struct Aggregate {
    first: Record,
    count: u64,
}

/// How long a busy writer gathers events before writing them.
const GATHER: Duration = Duration::from_millis(20);

struct Writer {
    outputs: Vec<Box<dyn Output>>,
    head: Head,
    counters: Arc<Counters>,
    pulls: Pulls,
    sampled: HashMap<u64, u64>,
    aggregated: BTreeMap<PullKey, Aggregate>,
    minute: u64,
    /// Lines sealed into the batch since it was last written.
    lines: u64,
}

impl Writer {
    fn run(mut self, rx: &Receiver<Msg>) {
        let mut batch = String::new();
        let mut busy = false;
        loop {
            // While events keep coming, collect them for a few milliseconds
            // rather than being woken for each: a wake-up per event costs
            // the request threads more than writing the event does.
            let first = if busy {
                std::thread::sleep(GATHER);
                match rx.try_recv() {
                    Ok(m) => Some(m),
                    Err(std::sync::mpsc::TryRecvError::Empty) => {
                        busy = false;
                        None
                    }
                    Err(std::sync::mpsc::TryRecvError::Disconnected) => break,
                }
            } else {
                match rx.recv_timeout(Duration::from_secs(1)) {
                    Ok(m) => {
                        busy = true;
                        Some(m)
                    }
                    Err(RecvTimeoutError::Timeout) => {
                        self.settle();
                        None
                    }
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            };
            let mut flushes = Vec::new();
            for msg in first
                .into_iter()
                .chain(std::iter::from_fn(|| rx.try_recv().ok()))
            {
                match msg {
                    Msg::Record(r) => {
                        self.counters.queued.fetch_sub(1, Ordering::Relaxed);
                        self.aggregate(*r);
                    }
                    Msg::Line { fields, sample } => {
                        self.counters.queued.fetch_sub(1, Ordering::Relaxed);
                        self.take(&fields, sample, &mut batch);
                    }
                    Msg::Flush(done) => flushes.push(done),
                }
                if batch.len() > 1 << 20 {
                    break;
                }
            }
            let now = SystemTime::now();
            if minute_of(now) != self.minute || !flushes.is_empty() {
                self.minute = minute_of(now);
                self.sampled.clear();
                self.flush_aggregates(&mut batch);
            }
            self.note_drops(&mut batch);
            self.write(&mut batch);
            if !flushes.is_empty() {
                self.settle();
            }
            for done in flushes {
                let _ = done.try_send(());
            }
        }
        self.flush_aggregates(&mut batch);
        self.note_drops(&mut batch);
        self.write(&mut batch);
        self.settle();
    }

    fn settle(&mut self) {
        for out in &mut self.outputs {
            if let Err(e) = out.settle() {
                self.counters.write_errors.fetch_add(1, Ordering::Relaxed);
                tracing::error!(output = out.name(), error = %e, "audit head anchor write failed");
            }
        }
    }

    /// Seals a line into the batch, unless it is a pull that sampling
    /// leaves out.
    fn take(&mut self, fields: &str, sample: Option<u64>, batch: &mut String) {
        if let (Some(key), Pulls::Sample(n)) = (sample, self.pulls) {
            let seen = self.sampled.entry(key).or_insert(0);
            *seen += 1;
            if !(*seen - 1).is_multiple_of(u64::from(n.max(1))) {
                return;
            }
        }
        self.head.seal_into(fields, batch);
        self.lines += 1;
    }

    /// Folds a pull into its identity and repository's aggregate.
    fn aggregate(&mut self, record: Record) {
        let key = (record.identity.clone(), record.repository.clone());
        self.aggregated
            .entry(key)
            .and_modify(|a| a.count += 1)
            .or_insert(Aggregate {
                first: record,
                count: 1,
            });
    }

    fn seal(&mut self, record: &Record, batch: &mut String) {
        self.head.seal_into(&record.fields(), batch);
        self.lines += 1;
    }

    fn flush_aggregates(&mut self, batch: &mut String) {
        for (_, a) in std::mem::take(&mut self.aggregated) {
            let mut r = a.first;
            r.event = "pull.aggregate".into();
            r.count = Some(a.count);
            r.request_id = None;
            r.reference = None;
            r.digest = None;
            self.seal(&r, batch);
        }
    }

    fn note_drops(&mut self, batch: &mut String) {
        let dropped = self.counters.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            tracing::warn!(dropped, "audit queue full: events were dropped");
            let r = Record {
                time: rfc3339(SystemTime::now()),
                event: "audit.dropped".into(),
                count: Some(dropped),
                reason: Some("the audit queue was full".into()),
                ..Record::default()
            };
            self.seal(&r, batch);
        }
    }

    fn write(&mut self, batch: &mut String) {
        if batch.is_empty() {
            return;
        }
        let lines = std::mem::take(&mut self.lines);
        for out in &mut self.outputs {
            if let Err(e) = out.write(batch, &self.head) {
                self.counters.write_errors.fetch_add(1, Ordering::Relaxed);
                tracing::error!(output = out.name(), error = %e, "audit log write failed");
            }
        }
        self.counters.written.fetch_add(lines, Ordering::Relaxed);
        batch.clear();
    }
}
