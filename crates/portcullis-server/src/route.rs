//! Turns a `/v2/...` path into a typed route. Repository names contain
//! slashes, so the whole tail is parsed here instead of one axum route per
//! depth. Parsing validates names, digests and references, so handlers only
//! ever see well-formed values.

use portcullis_types::{Digest, Reference, RepoName};

use crate::error::{ApiError, Code};

/// Every endpoint of the distribution API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Base,
    Catalog,
    Tags(RepoName),
    Manifest(RepoName, Reference),
    Blob(RepoName, Digest),
    UploadStart(RepoName),
    Upload(RepoName, String),
    Referrers(RepoName, Digest),
}

/// Whether `path` (`/v2/…`) addresses a manifest, without parsing the
/// name: it ends in `/manifests/<reference>`, and a reference has no `/`
/// (so `/v2/a/manifests/b/blobs/…`, a blob of repository `a/manifests/b`,
/// is not one).
#[must_use]
pub fn is_manifest_path(path: &str) -> bool {
    path.rsplit_once("/manifests/")
        .is_some_and(|(name, reference)| {
            name.len() > "/v2".len() && !reference.is_empty() && !reference.contains('/')
        })
}

impl Route {
    /// The repository a route addresses, if any.
    #[must_use]
    pub fn repo(&self) -> Option<&RepoName> {
        match self {
            Route::Base | Route::Catalog => None,
            Route::Tags(n)
            | Route::Manifest(n, _)
            | Route::Blob(n, _)
            | Route::UploadStart(n)
            | Route::Upload(n, _)
            | Route::Referrers(n, _) => Some(n),
        }
    }
}

fn name(parts: &[&str]) -> Result<RepoName, ApiError> {
    Ok(parts.join("/").parse::<RepoName>()?)
}

/// Parses the path after `/v2/` (without a query string) for a write.
///
/// # Errors
/// `NAME_INVALID`, `DIGEST_INVALID`, `TAG_INVALID` for malformed parts, and
/// `NOT_FOUND` for paths that are no endpoint.
pub fn parse(rest: &str) -> Result<Route, ApiError> {
    parse_as(rest, Intent::Write)
}

/// Whether a request only reads (GET, HEAD) or may change something.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    Read,
    Write,
}

impl Intent {
    #[must_use]
    pub fn of(method: &http::Method) -> Self {
        if matches!(*method, http::Method::GET | http::Method::HEAD) {
            Intent::Read
        } else {
            Intent::Write
        }
    }
}

/// Parses the path after `/v2/` for a request of the given intent.
///
/// A read of a manifest or blob whose reference is not a valid tag or digest
/// asks for something that cannot exist, so it is answered as unknown (404
/// `MANIFEST_UNKNOWN` / `BLOB_UNKNOWN`, as distribution's router does and the
/// OCI conformance suite expects); a write of such a reference stays a 400
/// that names what is malformed.
///
/// # Errors
/// As [`parse`], with the read mapping above.
pub fn parse_as(rest: &str, intent: Intent) -> Result<Route, ApiError> {
    let unknown = |code: Code, what: &'static str| {
        move |e: ApiError| match intent {
            Intent::Write => e,
            Intent::Read => ApiError::msg(
                code,
                format!(
                    "no such {what}: {}, so nothing by that name can exist",
                    e.message
                ),
            ),
        }
    };
    if rest.is_empty() {
        return Ok(Route::Base);
    }
    if rest == "_catalog" {
        return Ok(Route::Catalog);
    }
    let parts: Vec<&str> = rest.split('/').collect();
    let n = parts.len();
    let not_found = || {
        ApiError::msg(
            Code::NotFound,
            format!(
                "no endpoint at /v2/{}",
                rest.chars().take(300).collect::<String>()
            ),
        )
    };
    if n >= 3 && parts[n - 2] == "tags" && parts[n - 1] == "list" {
        return Ok(Route::Tags(name(&parts[..n - 2])?));
    }
    if n >= 3 && parts[n - 2] == "manifests" {
        let repo = name(&parts[..n - 2])?;
        let reference = parts[n - 1]
            .parse::<portcullis_types::Reference>()
            .map_err(ApiError::from)
            .map_err(unknown(Code::ManifestUnknown, "manifest"))?;
        return Ok(Route::Manifest(repo, reference));
    }
    if n >= 4 && parts[n - 3] == "blobs" && parts[n - 2] == "uploads" {
        let repo = name(&parts[..n - 3])?;
        return Ok(if parts[n - 1].is_empty() {
            Route::UploadStart(repo)
        } else {
            Route::Upload(repo, parts[n - 1].to_owned())
        });
    }
    if n >= 3 && parts[n - 2] == "blobs" {
        let repo = name(&parts[..n - 2])?;
        if parts[n - 1] == "uploads" {
            return Ok(Route::UploadStart(repo));
        }
        let digest = parts[n - 1]
            .parse::<Digest>()
            .map_err(ApiError::from)
            .map_err(unknown(Code::BlobUnknown, "blob"))?;
        return Ok(Route::Blob(repo, digest));
    }
    if n >= 3 && parts[n - 2] == "referrers" {
        let repo = name(&parts[..n - 2])?;
        return Ok(Route::Referrers(repo, parts[n - 1].parse()?));
    }
    Err(not_found())
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn manifest_paths_are_told_from_blob_paths_of_look_alike_names() {
        assert!(is_manifest_path("/v2/a/manifests/v1"));
        assert!(is_manifest_path("/v2/a/manifests/b/manifests/v1"));
        assert!(!is_manifest_path(&format!("/v2/a/manifests/b/blobs/{D}")));
        assert!(!is_manifest_path("/v2/manifests/"));
        assert!(!is_manifest_path("/v2/a/tags/list"));
    }

    #[test]
    fn parses_routes() {
        assert_eq!(parse("").unwrap(), Route::Base);
        assert_eq!(parse("_catalog").unwrap(), Route::Catalog);
        assert!(matches!(parse("a/b/tags/list").unwrap(), Route::Tags(n) if n.as_str() == "a/b"));
        assert!(matches!(
            parse("a/manifests/latest").unwrap(),
            Route::Manifest(..)
        ));
        assert!(matches!(
            parse(&format!("a/b/c/blobs/{D}")).unwrap(),
            Route::Blob(..)
        ));
        assert!(matches!(
            parse("a/blobs/uploads/").unwrap(),
            Route::UploadStart(_)
        ));
        assert!(
            matches!(parse("a/blobs/uploads/abc").unwrap(), Route::Upload(_, id) if id == "abc")
        );
        assert!(matches!(
            parse(&format!("a/referrers/{D}")).unwrap(),
            Route::Referrers(..)
        ));
    }

    #[test]
    fn malformed_parts_get_precise_codes() {
        assert_eq!(parse("A/manifests/x").unwrap_err().code, Code::NameInvalid);
        assert_eq!(
            parse("a/../b/manifests/x").unwrap_err().code,
            Code::NameInvalid
        );
        assert_eq!(parse("a//manifests/x").unwrap_err().code, Code::NameInvalid);
        assert_eq!(
            parse("a/blobs/sha256:totallywrong").unwrap_err().code,
            Code::DigestInvalid
        );
        assert_eq!(
            parse("a/manifests/-bad").unwrap_err().code,
            Code::TagInvalid
        );
        assert_eq!(parse("a/unknown").unwrap_err().code, Code::NotFound);
    }

    #[test]
    fn reads_of_impossible_references_are_unknown() {
        let read = |p: &str| parse_as(p, Intent::Read).unwrap_err().code;
        assert_eq!(
            read("a/manifests/.INVALID_MANIFEST_NAME"),
            Code::ManifestUnknown
        );
        assert_eq!(read("a/blobs/sha256:totallywrong"), Code::BlobUnknown);
        // The name is still checked first, and writes keep the precise 400.
        assert_eq!(read("A/manifests/x"), Code::NameInvalid);
        assert_eq!(
            parse_as("a/manifests/.INVALID_MANIFEST_NAME", Intent::Write)
                .unwrap_err()
                .code,
            Code::TagInvalid
        );
    }
}
