//! portcullis-auth: authentication and authorization for portcullis.
//!
//! This crate decides who a request comes from ([`identity`]) and checks
//! credentials ([`htpasswd`]). It knows nothing about HTTP or storage.

pub mod htpasswd;
pub mod identity;
pub mod token;
pub mod refresh;
