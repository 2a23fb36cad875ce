//! Pure data types of the registry: digests, repository names, references,
//! media types, actions and repository patterns. No I/O and no async runtime
//! live here.

mod digest;
pub mod event;
mod media;
mod name;
pub mod pattern;
mod reference;
mod scope;

pub use digest::{Algorithm, Digest, DigestError};
pub use media::MediaType;
pub use name::{NameError, RepoName};
pub use reference::{Reference, ReferenceError, Tag};
pub use scope::{Action, ScopeAction, UnknownAction, UnknownScopeAction};
