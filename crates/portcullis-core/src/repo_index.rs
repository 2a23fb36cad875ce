//! An in-memory sorted index of repository names for `/v2/_catalog`, so a
//! catalog page does not walk the storage tree. It is built by one walk at
//! start, rebuilt in the background when older than [`MAX_AGE`] (other
//! processes, such as registry:2 on the same storage, may add repositories),
//! and updated at once by this process's own writes. A page reads only the ranges under the caller's
//! visible prefixes when the policy can name them.

use std::collections::BTreeSet;
use std::ops::Bound;
use std::time::{Duration, Instant};

use portcullis_types::RepoName;

use crate::{CoreError, Page, Registry};

/// How long a walk's result is trusted.
const MAX_AGE: Duration = Duration::from_secs(30);

#[derive(Default)]
pub(crate) struct RepoIndex {
    names: parking_lot::RwLock<BTreeSet<String>>,
    built: parking_lot::Mutex<Option<Instant>>,
    rebuild: tokio::sync::Mutex<()>,
    /// A background refresh is under way.
    refreshing: std::sync::atomic::AtomicBool,
}

impl RepoIndex {
    fn fresh(&self) -> bool {
        self.built.lock().is_some_and(|t| t.elapsed() < MAX_AGE)
    }
}

/// The first `limit` names after `last` that start with `prefix` (all names
/// when `prefix` is empty) and pass `visible`.
fn scan<'a>(
    names: &'a BTreeSet<String>,
    prefix: &str,
    last: Option<&str>,
    limit: usize,
    visible: &impl Fn(&str) -> bool,
) -> Vec<&'a String> {
    let start = match last {
        Some(l) if l >= prefix => Bound::Excluded(l.to_owned()),
        _ => Bound::Included(prefix.to_owned()),
    };
    names
        .range::<String, _>((start, Bound::Unbounded))
        .take_while(|n| n.starts_with(prefix))
        .filter(|n| visible(n))
        .take(limit)
        .collect()
}

impl Registry {
    /// Records a repository this process just wrote to.
    pub(crate) fn note_repository(&self, name: &RepoName) {
        if self.index.built.lock().is_none() || self.index.names.read().contains(name.as_str()) {
            return;
        }
        self.index.names.write().insert(name.as_str().to_owned());
    }

    /// Builds the index once; later, when it is stale, starts a rebuild in
    /// the background and keeps answering from the current one, so no
    /// request waits for a walk after the first.
    async fn ensure_index(&self) -> Result<(), CoreError> {
        if self.index.fresh() {
            return Ok(());
        }
        if self.index.built.lock().is_some() {
            use std::sync::atomic::Ordering;
            if !self.index.refreshing.swap(true, Ordering::AcqRel) {
                let me = self.clone();
                tokio::spawn(async move {
                    if let Err(e) = me.rebuild_index().await {
                        tracing::warn!(error = %e, "repository index refresh failed; keeping the old one");
                    }
                    me.index.refreshing.store(false, Ordering::Release);
                });
            }
            return Ok(());
        }
        self.rebuild_index().await
    }

    /// Walks the storage and replaces the index (one walk at a time).
    ///
    /// # Errors
    /// Storage failures during the walk.
    pub async fn rebuild_index(&self) -> Result<(), CoreError> {
        let _one_walk_at_a_time = self.index.rebuild.lock().await;
        if self.index.fresh() {
            return Ok(());
        }
        let started = Instant::now();
        let names: BTreeSet<String> = self.all_repositories().await?.into_iter().collect();
        *self.index.names.write() = names;
        *self.index.built.lock() = Some(started);
        Ok(())
    }

    /// One catalog page: names after `last`, passing `visible`, at most `n`.
    /// With `prefixes`, only names under them are considered (the policy's
    /// literal prefixes for the caller); `visible` still decides each name.
    ///
    /// # Errors
    /// Storage failures while (re)building the index.
    pub async fn catalog(
        &self,
        n: usize,
        last: Option<&str>,
        prefixes: Option<&[String]>,
        visible: impl Fn(&str) -> bool,
    ) -> Result<Page<String>, CoreError> {
        self.ensure_index().await?;
        let names = self.index.names.read();
        let mut found: Vec<&String> = match prefixes {
            None => scan(&names, "", last, n.saturating_add(1), &visible),
            Some(ps) => {
                let mut all: Vec<&String> = ps
                    .iter()
                    .flat_map(|p| scan(&names, p, last, n.saturating_add(1), &visible))
                    .collect();
                all.sort();
                all.dedup();
                all
            }
        };
        let more = found.len() > n;
        found.truncate(n);
        Ok(Page {
            items: found.into_iter().cloned().collect(),
            more,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scans_prefix_ranges_after_last() {
        let names: BTreeSet<String> = ["a/1", "a/2", "b/1", "b/2", "c"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        let all = |_: &str| true;
        assert_eq!(scan(&names, "", None, 10, &all).len(), 5);
        assert_eq!(scan(&names, "b/", None, 10, &all), vec!["b/1", "b/2"]);
        assert_eq!(scan(&names, "b/", Some("b/1"), 10, &all), vec!["b/2"]);
        assert_eq!(scan(&names, "a/", Some("b/1"), 10, &all).len(), 0);
        assert_eq!(
            scan(&names, "", Some("a/2"), 2, &|n: &str| n != "b/1"),
            vec!["b/2", "c"]
        );
    }
}
