//! Admin actions from the CLI reach the audit log through an outbox in the
//! state store: `portcullis user add`, `token create`, `lockout clear` and
//! the like run in their own process and must not write to the log the
//! server is writing (two writers would fork the chain). The CLI puts a
//! record in the outbox ([`post`]); the serving process moves each into its
//! chain ([`drain`]), in the order they were posted, and deletes it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use portcullis_state::{StateError, StateStore};
use portcullis_types::event::{Event, What};

use crate::{AuditSink, Record};

const PREFIX: &str = "audit-outbox";

/// Posts an admin action by `actor` (the operating-system user running the
/// command) for the serving process to write.
///
/// # Errors
/// When the store fails.
pub fn post(
    store: &dyn StateStore,
    actor: &str,
    command: &str,
    detail: &str,
) -> Result<(), StateError> {
    let event = Event::new(
        actor,
        What::Admin {
            command: command.to_owned(),
            detail: detail.to_owned(),
        },
    );
    let record = Record::of(&event);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let key = format!("{PREFIX}/{nanos:024}-{:08x}-{n:08x}", std::process::id());
    let body = serde_json::to_vec(&record).unwrap_or_default();
    // Kept a week if no server ever drains it.
    store.put(&key, &body, Some(Duration::from_secs(7 * 24 * 3600)))?;
    Ok(())
}

/// Tells apart two posts of one process in the same nanosecond.
static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// Moves every posted record into `sink`'s chain, oldest first; returns
/// how many.
///
/// # Errors
/// When the store fails.
pub fn drain(store: &dyn StateStore, sink: &AuditSink) -> Result<usize, StateError> {
    let mut keys = store.list(PREFIX)?;
    keys.sort();
    let mut n = 0;
    for key in keys {
        if let Some(v) = store.get(&key)?
            && let Ok(record) = serde_json::from_slice::<Record>(&v.value)
        {
            sink.record(record);
            n += 1;
        }
        store.delete(&key)?;
    }
    Ok(n)
}
