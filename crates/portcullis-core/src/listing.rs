//! Listings: tags of a repository, the catalog of repositories, and the
//! referrers of a manifest. Tag and catalog results are sorted lexically and
//! paginated with `n` and `last`.

use std::collections::BTreeMap;

use portcullis_storage::paths;
use portcullis_types::{Digest, RepoName, Tag};

use crate::manifest::{self, Descriptor};
use crate::{CoreError, Registry};

/// One page of a sorted listing.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// True when more entries follow the last one returned.
    pub more: bool,
}

/// Referrers of a subject, after filtering.
#[derive(Debug, Clone)]
pub struct Referrers {
    pub manifests: Vec<Descriptor>,
    pub filtered_by_artifact_type: bool,
}

/// Applies `last` and `n` to a sorted list.
fn paginate<T: Ord + AsRef<str>>(sorted: Vec<T>, n: Option<usize>, last: Option<&str>) -> Page<T> {
    let mut it: Vec<T> = match last {
        Some(l) => sorted.into_iter().filter(|x| x.as_ref() > l).collect(),
        None => sorted,
    };
    let more = n.is_some_and(|n| it.len() > n);
    if let Some(n) = n {
        it.truncate(n);
    }
    Page { items: it, more }
}

impl Registry {
    pub(crate) async fn list_all_tags(&self, name: &RepoName) -> Result<Vec<Tag>, CoreError> {
        match self.driver.list(&paths::tags_dir(name)).await {
            Ok(names) => Ok(names.into_iter().filter_map(|n| n.parse().ok()).collect()),
            Err(e) if e.is_not_found() => Ok(Vec::new()),
            Err(e) => Err(e.into()),
        }
    }

    /// Tags of a repository, sorted, one page.
    ///
    /// # Errors
    /// `NameUnknown` when the repository does not exist.
    pub async fn list_tags(
        &self,
        name: &RepoName,
        n: Option<usize>,
        last: Option<&str>,
    ) -> Result<Page<String>, CoreError> {
        if !self.repo_exists(name).await? {
            return Err(CoreError::NameUnknown);
        }
        let mut tags: Vec<String> = self
            .list_all_tags(name)
            .await?
            .into_iter()
            .map(|t| t.as_str().to_owned())
            .collect();
        tags.sort();
        Ok(paginate(tags, n, last))
    }

    /// Every repository name in storage, sorted.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn all_repositories(&self) -> Result<Vec<String>, CoreError> {
        let root = paths::repositories();
        let mut out = Vec::new();
        let mut stack = vec![String::new()];
        while let Some(prefix) = stack.pop() {
            let dir = if prefix.is_empty() {
                root.clone()
            } else {
                format!("{root}/{prefix}")
            };
            let children = match self.driver.list_dirs(&dir).await {
                Ok(c) => c,
                Err(e) if e.is_not_found() => continue,
                Err(e) => return Err(e.into()),
            };
            if !prefix.is_empty()
                && children
                    .iter()
                    .any(|c| c == "_manifests" || c == "_layers" || c == "_uploads")
            {
                out.push(prefix.clone());
            }
            for c in children.into_iter().filter(|c| !c.starts_with('_')) {
                stack.push(if prefix.is_empty() {
                    c
                } else {
                    format!("{prefix}/{c}")
                });
            }
        }
        out.retain(|n| n.parse::<RepoName>().is_ok());
        out.sort();
        Ok(out)
    }

    /// Manifests in `name` whose `subject` is `subject`, optionally filtered by
    /// artifact type.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn referrers(
        &self,
        name: &RepoName,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Referrers, CoreError> {
        let dir = paths::referrers_dir(name, subject);
        let mut found: BTreeMap<Digest, Descriptor> = BTreeMap::new();
        let algs = match self.driver.list(&dir).await {
            Ok(a) => a,
            Err(e) if e.is_not_found() => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        for alg in algs {
            for hex in self
                .driver
                .list(&format!("{dir}/{alg}"))
                .await
                .unwrap_or_default()
            {
                let Ok(d) = format!("{alg}:{hex}").parse::<Digest>() else {
                    continue;
                };
                if self
                    .driver
                    .stat(&paths::revision_link(name, &d))
                    .await
                    .is_err()
                {
                    continue;
                }
                let Ok(m) = self.read_manifest(&d).await else {
                    continue;
                };
                let Ok(parsed) = manifest::parse(&m.bytes, None) else {
                    continue;
                };
                let desc = Descriptor {
                    media_type: m.media_type.clone(),
                    digest: d.clone(),
                    size: i64::try_from(m.bytes.len()).unwrap_or(i64::MAX),
                    artifact_type: parsed.effective_artifact_type(),
                    annotations: parsed.annotations.clone(),
                    urls: Vec::new(),
                    platform: None,
                };
                found.insert(d, desc);
            }
        }
        let mut manifests: Vec<Descriptor> = found.into_values().collect();
        if let Some(t) = artifact_type {
            manifests.retain(|d| d.artifact_type.as_deref() == Some(t));
        }
        Ok(Referrers {
            manifests,
            filtered_by_artifact_type: artifact_type.is_some(),
        })
    }
}
