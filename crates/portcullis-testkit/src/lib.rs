//! Test support shared by portcullis's test suites (a dev-dependency only,
//! never published).
//!
//! - [`gate`]: whether a test that needs root, a daemon or an external tool
//!   can run here; it skips with the reason, or fails under
//!   `PORTCULLIS_E2E=required`;
//! - [`process`]: external programs with deadlines, readable failures and
//!   signals, and [`Supervised`] daemons that cannot outlive the test;
//! - [`wait`]: bounded polling until something is ready;
//! - [`netns`]: a [`TestHost`], a network namespace of the test's own with
//!   a non-loopback address, for servers clients must not treat as local;
//! - [`oci`]: media types and digests;
//! - small helpers: [`temp_dir`], [`free_port`], [`random_bytes`].

pub mod gate;
pub mod netns;
pub mod oci;
pub mod process;
pub mod wait;

pub use gate::{e2e_gate, find_in_path, is_root, path_with_sbin, skip_or_fail};
pub use netns::TestHost;
pub use process::{Supervised, assert_failure, assert_success, combined_output, run, signal};
pub use wait::{Attempt, wait_for};

use std::net::TcpListener;

use tempfile::TempDir;

/// A loopback TCP port that was free a moment ago.
///
/// Another process can take it before the caller binds it: a caller that
/// starts a server on it should retry on a new port when that happens.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// A fresh temporary directory, removed on drop.
pub fn temp_dir() -> TempDir {
    tempfile::Builder::new()
        .prefix("portcullis-test-")
        .tempdir()
        .expect("create temporary directory")
}

/// Pseudo-random bytes (xorshift64*), different on every call: test images
/// only need to differ from each other, not to be unpredictable.
pub fn random_bytes(len: usize) -> Vec<u8> {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::{SystemTime, UNIX_EPOCH};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    // Only the low bits of the time seed the generator.
    let mut state = (nanos as u64)
        ^ (u64::from(std::process::id()) << 32)
        ^ COUNTER
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}
