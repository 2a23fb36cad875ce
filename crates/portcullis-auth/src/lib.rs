//! portcullis-auth: authentication and authorization for portcullis.
//!
//! This crate decides who a request comes from ([`identity`]) and checks
//! credentials ([`htpasswd`]), and decides what they may do ([`policy`]). It
//! knows nothing about HTTP or storage.

pub mod access;
pub mod authn;
pub mod htpasswd;
pub mod identity;
pub mod policy;
mod records;
pub mod refresh;
pub mod robots;
pub mod scope;
pub mod service;
pub mod token;
pub mod upload;
