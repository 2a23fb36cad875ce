//! Abuse resistance over the `StateStore`: rate limits ([`gcra`]) and
//! brute-force lockout ([`lockout`]). Both keep one small entry per key
//! that expires on its own, and move it atomically (a read-modify-write
//! for rate limits, compare-and-set for lockouts), so every
//! replica that shares the store enforces the same limit.

pub mod gcra;
pub mod lockout;

pub use gcra::{Limiter, Rate, Verdict};
pub use lockout::{Locked, Lockout, Policy};
