//! What immutable releases need from the core: whether a blob is part of a
//! tagged manifest (as its config, a layer, a child manifest, or a child's
//! config or layer), and a blob delete that refuses such blobs atomically
//! with respect to this process's manifest writes.

use std::collections::HashSet;

use portcullis_storage::paths;
use portcullis_types::{Digest, RepoName, Tag};

use crate::{CoreError, Registry, manifest};

impl Registry {
    /// The first tag (in sorted order) among those that `tags` selects whose
    /// manifest references `digest`: as the manifest itself, its config, a
    /// layer, a child manifest of an index, or anything a child references.
    /// `None` when no selected tag needs the blob. Tags whose manifests
    /// cannot be read are skipped.
    ///
    /// # Errors
    /// Storage failures while listing tags.
    pub async fn blob_referenced_by_tag(
        &self,
        name: &RepoName,
        digest: &Digest,
        tags: impl Fn(&Tag) -> bool,
    ) -> Result<Option<Tag>, CoreError> {
        let mut all = self.list_all_tags(name).await?;
        all.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        let mut seen = HashSet::new();
        for tag in all.into_iter().filter(|t| tags(t)) {
            let Some(target) = self.tag_target(name, &tag).await? else {
                continue;
            };
            if self.references(&target, digest, &mut seen).await {
                return Ok(Some(tag));
            }
        }
        Ok(None)
    }

    /// Whether the manifest `root` is, or (through children) references,
    /// `wanted`. Manifests in `seen` were already searched without success.
    async fn references(&self, root: &Digest, wanted: &Digest, seen: &mut HashSet<Digest>) -> bool {
        let mut stack = vec![root.clone()];
        while let Some(d) = stack.pop() {
            if d == *wanted {
                return true;
            }
            if !seen.insert(d.clone()) {
                continue;
            }
            let Ok(m) = self.read_manifest(&d).await else {
                continue;
            };
            let Ok(parsed) = manifest::parse(&m.bytes, None) else {
                continue;
            };
            for r in parsed.config.iter().chain(&parsed.references) {
                if r.digest == *wanted {
                    return true;
                }
                if parsed.media_type.is_index() {
                    stack.push(r.digest.clone());
                }
            }
        }
        false
    }

    /// Unlinks a blob from a repository unless a tag that `tags` selects
    /// needs it (see [`Registry::blob_referenced_by_tag`]). The check and the
    /// unlink run while no manifest write to the repository is in progress in
    /// this process, so a manifest cannot start needing the blob in between.
    ///
    /// # Errors
    /// `BlobInUse` naming the tag, or as [`Registry::delete_blob`].
    pub async fn delete_blob_unless_tagged(
        &self,
        name: &RepoName,
        digest: &Digest,
        tags: impl Fn(&Tag) -> bool,
    ) -> Result<(), CoreError> {
        self.check_delete()?;
        let _repo = self.locks.repos.exclusive(name.clone()).await;
        if let Some(tag) = self.blob_referenced_by_tag(name, digest, tags).await? {
            return Err(CoreError::BlobInUse {
                digest: digest.clone(),
                tag: tag.as_str().to_owned(),
            });
        }
        self.driver
            .delete(&paths::layer_dir(name, digest))
            .await
            .map_err(|e| CoreError::not_found_as(e, CoreError::BlobUnknown))
    }
}
