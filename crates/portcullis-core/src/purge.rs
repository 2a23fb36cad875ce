//! Upload purging (`storage.maintenance.uploadpurging`): removes upload
//! sessions older than a given age.

use std::time::{Duration, SystemTime};

use portcullis_storage::paths;
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
        for repo in self.all_repositories().await? {
            let Ok(name) = repo.parse::<RepoName>() else {
                continue;
            };
            let ids = match self.driver.list(&paths::uploads_dir(&name)).await {
                Ok(ids) => ids,
                Err(e) if e.is_not_found() => continue,
                Err(e) => return Err(e.into()),
            };
            for id in ids {
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
        }
        Ok(report)
    }
}
