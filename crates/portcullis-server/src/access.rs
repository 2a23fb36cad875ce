//! The central "which access does this request need" function
//! (distribution's `app.go`): computed from the route, the method and
//! `?from=` before any handler runs, so no handler can forget a check. It
//! includes what `access.immutable` demands of the write: in an immutable
//! repository a manifest put may only create a tag (checked atomically with
//! the write, under the tag's lock in core), a manifest delete is refused
//! by the authorization step, and a blob delete spares blobs a tag needs.

use axum::http::Method;
use portcullis_types::{Action, RepoName};

use crate::route::Route;

/// Access a request needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Required {
    /// `GET /v2/`: any authenticated identity (this is how clients probe auth).
    Base,
    /// `GET /v2/_catalog`.
    Catalog,
    /// Actions on one repository, plus pull on a mount source.
    Repo {
        name: RepoName,
        actions: Vec<Action>,
        mount_from: Option<RepoName>,
        /// `access.immutable` names the repository.
        immutable: bool,
    },
}

impl Required {
    /// Whether the request writes to an immutable repository's tags.
    #[must_use]
    pub fn immutable(&self) -> bool {
        matches!(
            self,
            Self::Repo {
                immutable: true,
                ..
            }
        )
    }
}

/// The refusal of a write that `access.immutable` forbids outright.
#[must_use]
pub fn immutable_denied(name: &RepoName, what: &str) -> String {
    format!("{name} is immutable (access.immutable): {what}")
}

/// Computes the access needed, or `None` when the method is not allowed on
/// the route; `immutable` says which repositories `access.immutable` names.
#[must_use]
pub fn required(
    route: &Route,
    method: &Method,
    mount_from: Option<RepoName>,
    immutable: &dyn Fn(&RepoName) -> bool,
) -> Option<Required> {
    let read = method == Method::GET || method == Method::HEAD;
    let repo = |actions: Vec<Action>, from: Option<RepoName>| {
        route.repo().map(|n| Required::Repo {
            name: n.clone(),
            immutable: !read && immutable(n),
            actions,
            mount_from: from,
        })
    };
    match route {
        Route::Base if read => Some(Required::Base),
        Route::Catalog if read => Some(Required::Catalog),
        Route::Tags(_) | Route::Referrers(..) if read => repo(vec![Action::Pull], None),
        Route::Manifest(..) | Route::Blob(..) if read => repo(vec![Action::Pull], None),
        Route::Manifest(..) if method == Method::PUT => {
            repo(vec![Action::Pull, Action::Push], None)
        }
        Route::Manifest(..) | Route::Blob(..) if method == Method::DELETE => {
            repo(vec![Action::Delete], None)
        }
        Route::UploadStart(_) if method == Method::POST => {
            repo(vec![Action::Pull, Action::Push], mount_from)
        }
        Route::Upload(..)
            if method == Method::GET
                || method == Method::HEAD
                || method == Method::PATCH
                || method == Method::PUT
                || method == Method::DELETE =>
        {
            repo(vec![Action::Pull, Action::Push], None)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_needs_pull_on_source() {
        let r = Route::UploadStart("a".parse().unwrap());
        let none = |_: &RepoName| false;
        let req = required(&r, &Method::POST, Some("b".parse().unwrap()), &none).unwrap();
        assert!(matches!(req, Required::Repo { mount_from: Some(f), .. } if f.as_str() == "b"));
        assert!(required(&r, &Method::GET, None, &none).is_none());
        assert_eq!(
            required(&Route::Base, &Method::GET, None, &none),
            Some(Required::Base)
        );
        assert!(required(&Route::Catalog, &Method::DELETE, None, &none).is_none());
    }

    #[test]
    fn writes_to_an_immutable_repository_say_so_and_reads_do_not() {
        let all = |_: &RepoName| true;
        let m = Route::Manifest("rel/app".parse().unwrap(), "v1".parse().unwrap());
        for (method, immutable) in [
            (Method::PUT, true),
            (Method::DELETE, true),
            (Method::GET, false),
            (Method::HEAD, false),
        ] {
            let req = required(&m, &method, None, &all).unwrap();
            assert_eq!(req.immutable(), immutable, "{method}");
        }
        let none = |_: &RepoName| false;
        assert!(!required(&m, &Method::PUT, None, &none).unwrap().immutable());
    }
}
