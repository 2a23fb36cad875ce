//! The central "which access does this request need" function
//! (distribution's `app.go`): computed from the route, the method and
//! `?from=` before any handler runs, so no handler can forget a check.

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
    },
}

/// Computes the access needed, or `None` when the method is not allowed on the route.
#[must_use]
pub fn required(route: &Route, method: &Method, mount_from: Option<RepoName>) -> Option<Required> {
    let read = method == Method::GET || method == Method::HEAD;
    let repo = |actions: Vec<Action>, from: Option<RepoName>| {
        route.repo().map(|n| Required::Repo {
            name: n.clone(),
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
        let req = required(&r, &Method::POST, Some("b".parse().unwrap())).unwrap();
        assert!(matches!(req, Required::Repo { mount_from: Some(f), .. } if f.as_str() == "b"));
        assert!(required(&r, &Method::GET, None).is_none());
        assert_eq!(
            required(&Route::Base, &Method::GET, None),
            Some(Required::Base)
        );
        assert!(required(&Route::Catalog, &Method::DELETE, None).is_none());
    }
}
