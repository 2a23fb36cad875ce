//! distribution's storage layout, so portcullis and registry:2 can serve the
//! same root directory:
//!
//! ```text
//! /docker/registry/v2/blobs/<alg>/<hex[0..2]>/<hex>/data
//! /docker/registry/v2/repositories/<name>/_layers/<alg>/<hex>/link
//! /docker/registry/v2/repositories/<name>/_manifests/revisions/<alg>/<hex>/link
//! /docker/registry/v2/repositories/<name>/_manifests/tags/<tag>/current/link
//! /docker/registry/v2/repositories/<name>/_manifests/tags/<tag>/index/<alg>/<hex>/link
//! /docker/registry/v2/repositories/<name>/_uploads/<uuid>/{data,startedat}
//! /docker/registry/v2/repositories/<name>/_uploads/<uuid>/hashstates/<alg>/<offset>
//! ```
//!
//! portcullis adds one directory that registry:2 ignores:
//! `_manifests/referrers/<subject alg>/<subject hex>/<alg>/<hex>/link`, an index
//! of manifests whose `subject` is the given digest.

use portcullis_types::{Algorithm, Digest, RepoName, Tag};

pub const ROOT: &str = "/docker/registry/v2";

#[must_use]
pub fn repositories() -> String {
    format!("{ROOT}/repositories")
}

#[must_use]
pub fn blob_data(d: &Digest) -> String {
    let hex = d.hex();
    format!(
        "{ROOT}/blobs/{}/{}/{hex}/data",
        d.algorithm().as_str(),
        &hex[..2]
    )
}

#[must_use]
pub fn blob_dir(d: &Digest) -> String {
    let hex = d.hex();
    format!(
        "{ROOT}/blobs/{}/{}/{hex}",
        d.algorithm().as_str(),
        &hex[..2]
    )
}

#[must_use]
pub fn repo(name: &RepoName) -> String {
    format!("{ROOT}/repositories/{name}")
}

#[must_use]
pub fn layer_link(name: &RepoName, d: &Digest) -> String {
    format!(
        "{}/_layers/{}/{}/link",
        repo(name),
        d.algorithm().as_str(),
        d.hex()
    )
}

#[must_use]
pub fn layer_dir(name: &RepoName, d: &Digest) -> String {
    format!(
        "{}/_layers/{}/{}",
        repo(name),
        d.algorithm().as_str(),
        d.hex()
    )
}

#[must_use]
pub fn revision_link(name: &RepoName, d: &Digest) -> String {
    format!("{}/link", revision_dir(name, d))
}

#[must_use]
pub fn revision_dir(name: &RepoName, d: &Digest) -> String {
    format!(
        "{}/_manifests/revisions/{}/{}",
        repo(name),
        d.algorithm().as_str(),
        d.hex()
    )
}

#[must_use]
pub fn tags_dir(name: &RepoName) -> String {
    format!("{}/_manifests/tags", repo(name))
}

#[must_use]
pub fn tag_dir(name: &RepoName, tag: &Tag) -> String {
    format!("{}/{tag}", tags_dir(name))
}

#[must_use]
pub fn tag_current_link(name: &RepoName, tag: &Tag) -> String {
    format!("{}/current/link", tag_dir(name, tag))
}

#[must_use]
pub fn tag_index_link(name: &RepoName, tag: &Tag, d: &Digest) -> String {
    format!(
        "{}/index/{}/{}/link",
        tag_dir(name, tag),
        d.algorithm().as_str(),
        d.hex()
    )
}

#[must_use]
pub fn referrers_dir(name: &RepoName, subject: &Digest) -> String {
    format!(
        "{}/_manifests/referrers/{}/{}",
        repo(name),
        subject.algorithm().as_str(),
        subject.hex()
    )
}

#[must_use]
pub fn referrer_dir(name: &RepoName, subject: &Digest, d: &Digest) -> String {
    format!(
        "{}/{}/{}",
        referrers_dir(name, subject),
        d.algorithm().as_str(),
        d.hex()
    )
}

#[must_use]
pub fn referrer_link(name: &RepoName, subject: &Digest, d: &Digest) -> String {
    format!("{}/link", referrer_dir(name, subject, d))
}

#[must_use]
pub fn uploads_dir(name: &RepoName) -> String {
    format!("{}/_uploads", repo(name))
}

#[must_use]
pub fn upload_dir(name: &RepoName, id: &str) -> String {
    format!("{}/{id}", uploads_dir(name))
}

#[must_use]
pub fn upload_data(name: &RepoName, id: &str) -> String {
    format!("{}/data", upload_dir(name, id))
}

#[must_use]
pub fn upload_started(name: &RepoName, id: &str) -> String {
    format!("{}/startedat", upload_dir(name, id))
}

/// The directory of an upload's saved hash states for `alg`.
#[must_use]
pub fn upload_hash_states(name: &RepoName, id: &str, alg: Algorithm) -> String {
    format!("{}/hashstates/{}", upload_dir(name, id), alg.as_str())
}

/// An upload's hash state after its first `offset` bytes (distribution's
/// `uploadHashStatePathSpec`).
#[must_use]
pub fn upload_hash_state(name: &RepoName, id: &str, alg: Algorithm, offset: u64) -> String {
    format!("{}/{offset}", upload_hash_states(name, id, alg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_distribution() {
        let d: Digest = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
            .parse()
            .unwrap();
        let n: RepoName = "library/ubuntu".parse().unwrap();
        assert_eq!(
            blob_data(&d),
            "/docker/registry/v2/blobs/sha256/e3/e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855/data"
        );
        assert_eq!(
            revision_link(&n, &d),
            "/docker/registry/v2/repositories/library/ubuntu/_manifests/revisions/sha256/e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855/link"
        );
        let t: Tag = "latest".parse().unwrap();
        assert_eq!(
            tag_current_link(&n, &t),
            "/docker/registry/v2/repositories/library/ubuntu/_manifests/tags/latest/current/link"
        );
        assert_eq!(
            upload_hash_state(&n, "u-1", Algorithm::Sha256, 1024),
            "/docker/registry/v2/repositories/library/ubuntu/_uploads/u-1/hashstates/sha256/1024"
        );
    }
}
