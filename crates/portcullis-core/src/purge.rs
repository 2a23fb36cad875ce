//! Upload purging (`storage.maintenance.uploadpurging`): removes upload
//! sessions older than a given age.

use std::time::{Duration, SystemTime};

use portcullis_storage::{WalkEntry, WalkStep, paths};
use portcullis_types::RepoName;

use crate::{CoreError, Registry};

/// What a purge pass found and did.
#[derive(Debug, Clone, Default)]
pub struct PurgeReport {
    pub examined: usize,
    pub removed: usize,
}

impl Registry {
    /// Deletes upload sessions that started more than `age` ago. With `dry_run`,
    /// only counts them.
    ///
    /// # Errors
    /// Storage failures while listing.
    pub async fn purge_uploads(
        &self,
        age: Duration,
        dry_run: bool,
    ) -> Result<PurgeReport, CoreError> {
        let mut report = PurgeReport::default();
        let now = SystemTime::now();
        for (name, id) in self.upload_sessions().await? {
            report.examined += 1;
            let started = self.upload_started(&name, &id).await;
            let old = started.is_none_or(|t| now.duration_since(t).unwrap_or_default() > age);
            if old {
                report.removed += 1;
                if !dry_run {
                    let _ = self.driver.delete(&paths::upload_dir(&name, &id)).await;
                    self.uploads_forget(&id);
                }
            }
        }
        Ok(report)
    }

    /// Every upload session in storage, found in one walk of the
    /// repositories that skips everything under `_manifests` and `_layers`
    /// and inside the sessions.
    async fn upload_sessions(&self) -> Result<Vec<(RepoName, String)>, CoreError> {
        let root = paths::repositories();
        let mut found = Vec::new();
        let walked = self
            .driver
            .walk(&root, &mut |e: &WalkEntry| {
                let Some(rel) = e
                    .path
                    .strip_prefix(&root)
                    .map(|r| r.trim_start_matches('/'))
                else {
                    return WalkStep::SkipDir;
                };
                if !e.info.is_dir {
                    return WalkStep::Continue;
                }
                let (parent, leaf) = rel.rsplit_once('/').unwrap_or(("", rel));
                if let Some(repo) = parent.strip_suffix("/_uploads") {
                    if let Ok(name) = repo.parse::<RepoName>() {
                        found.push((name, leaf.to_owned()));
                    }
                    WalkStep::SkipDir
                } else if leaf.starts_with('_') && leaf != "_uploads" {
                    WalkStep::SkipDir
                } else {
                    WalkStep::Continue
                }
            })
            .await;
        match walked {
            Ok(()) => Ok(found),
            Err(e) if e.is_not_found() => Ok(Vec::new()),
            Err(e) => Err(e.into()),
        }
    }
}
