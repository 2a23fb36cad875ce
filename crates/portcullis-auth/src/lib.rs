//! portcullis-auth: authentication and authorization for portcullis.
//!
//! This crate decides who a request comes from ([`identity`]) and checks
//! credentials ([`htpasswd`]). It knows nothing about HTTP or storage.

pub mod htpasswd;
pub mod identity;
pub mod refresh;
pub mod scope;
pub mod service;
pub mod token;
pub mod upload;
