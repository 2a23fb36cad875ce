//! The rules' repository patterns: the registry's one dialect,
//! [`portcullis_types::pattern`], which robot scopes use too.

pub(super) use portcullis_types::pattern::{Prefix, RepoPattern as Pattern};
