//! The audit log: one JSON line per event, each sealed onto a hash chain
//! (see [`chain`]), so an edited, deleted, inserted or reordered line is
//! found by [`read::verify`], across rotated files.
//!
//! [`AuditSink`] is an `EventSink`: `emit` only queues (bounded; overflow is
//! counted and itself written as an `audit.dropped` line), and one writer
//! thread seals the lines and writes them to every [`Output`]: a file with
//! size rotation and retention ([`FileOutput`]), stdout, or syslog. Pulls
//! can be written one by one, sampled, or aggregated per identity and
//! repository per minute ([`Pulls`]).
//!
//! Only what an `Event` carries reaches the log: names, addresses,
//! repositories, digests and reasons, never a password, token or secret.

pub mod chain;
pub mod outbox;
pub mod output;
pub mod read;
pub mod record;
mod sink;

pub use chain::{Fault, Head};
pub use output::{FileOutput, Output, StdoutOutput, SyslogOutput};
pub use record::Record;
pub use sink::{AuditSink, Counters, Pulls, Settings};

#[cfg(test)]
mod tests;
