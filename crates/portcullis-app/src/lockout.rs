//! Brute-force lockout from the `lockout` section: the policy, and the
//! store its entries live in (the state directory when there is one, so
//! `portcullis lockout list` and `clear` see and change what the server
//! enforces).

use portcullis_config::{Config, LockoutConfig};
use portcullis_limits::{Lockout, Policy};

/// The lockout policy of `lockout`.
#[must_use]
pub fn policy(lo: &LockoutConfig) -> Policy {
    Policy {
        free: lo.free,
        base: lo.delay,
        max_delay: lo.maxdelay,
        lock_after: lo.lockafter,
        lockout: lo.duration,
        forget: lo.forget,
    }
}

/// The lockout the server enforces, unless `lockout.disabled`.
#[must_use]
pub fn from_config(config: &Config) -> Option<Lockout> {
    let lo = &config.lockout;
    (!lo.disabled).then(|| Lockout::new(crate::state::store_or_memory(config), policy(lo)))
}
