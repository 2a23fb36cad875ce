//! Bounded polling: a test waits for a server, a daemon or a reload for at
//! most a given time, and then fails saying what it last saw.

use std::thread;
use std::time::{Duration, Instant};

/// How often [`wait_for`] tries again.
const INTERVAL: Duration = Duration::from_millis(100);

/// The outcome of one try in [`wait_for`].
#[derive(Debug)]
pub enum Attempt {
    /// What we waited for has happened.
    Done,
    /// Not yet; the text says what was seen instead.
    Retry(String),
    /// It will never happen (the process exited, say); stop waiting.
    Fail(String),
}

/// Calls `attempt` every 100 ms until it returns [`Attempt::Done`], for at
/// most `timeout`. The error says why it gave up: the [`Attempt::Fail`]
/// text, or `not ready after ... (<last retry text>)`.
pub fn wait_for(timeout: Duration, mut attempt: impl FnMut() -> Attempt) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    loop {
        let last = match attempt() {
            Attempt::Done => return Ok(()),
            Attempt::Fail(why) => return Err(why),
            Attempt::Retry(seen) => seen,
        };
        if Instant::now() >= deadline {
            return Err(format!("not ready after {timeout:?} ({last})"));
        }
        thread::sleep(INTERVAL);
    }
}
