//! The filesystem driver: files under a root directory, written with
//! temp-file-and-rename so a crash never leaves a partly written file visible.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;
use tokio::fs;

use crate::{Driver, FileInfo, Reader, StorageError, Writer, check_path};

/// Stores files under `root`, exactly where distribution's filesystem driver does.
#[derive(Debug, Clone)]
pub struct FsDriver {
    root: PathBuf,
}

impl FsDriver {
    #[must_use]
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn full(&self, path: &str) -> Result<PathBuf, StorageError> {
        check_path(path)?;
        Ok(self.root.join(path.trim_start_matches('/')))
    }
}

async fn ensure_parent(path: &str, full: &Path) -> Result<(), StorageError> {
    if let Some(parent) = full.parent() {
        fs::create_dir_all(parent)
            .await
            .map_err(|e| StorageError::io(path, e))?;
    }
    Ok(())
}

fn temp_sibling(full: &Path) -> PathBuf {
    let name = full.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    full.with_file_name(format!(".{name}.tmp-{}", uuid::Uuid::new_v4().simple()))
}

#[async_trait]
impl Driver for FsDriver {
    async fn get_content(&self, path: &str) -> Result<Bytes, StorageError> {
        let full = self.full(path)?;
        let data = fs::read(&full)
            .await
            .map_err(|e| StorageError::io(path, e))?;
        Ok(Bytes::from(data))
    }

    async fn put_content(&self, path: &str, data: Bytes) -> Result<(), StorageError> {
        let full = self.full(path)?;
        ensure_parent(path, &full).await?;
        let tmp = temp_sibling(&full);
        if let Err(e) = fs::write(&tmp, &data).await {
            let _ = fs::remove_file(&tmp).await;
            return Err(StorageError::io(path, e));
        }
        if let Err(e) = fs::rename(&tmp, &full).await {
            let _ = fs::remove_file(&tmp).await;
            return Err(StorageError::io(path, e));
        }
        Ok(())
    }

    async fn reader(&self, path: &str, offset: u64) -> Result<Reader, StorageError> {
        use tokio::io::AsyncSeekExt;
        let full = self.full(path)?;
        let mut f = fs::File::open(&full)
            .await
            .map_err(|e| StorageError::io(path, e))?;
        if offset > 0 {
            f.seek(std::io::SeekFrom::Start(offset))
                .await
                .map_err(|e| StorageError::io(path, e))?;
        }
        Ok(Box::new(f))
    }

    async fn appender(&self, path: &str) -> Result<Writer, StorageError> {
        let full = self.full(path)?;
        ensure_parent(path, &full).await?;
        let f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&full)
            .await
            .map_err(|e| StorageError::io(path, e))?;
        Ok(Box::new(f))
    }

    async fn truncate(&self, path: &str, len: u64) -> Result<(), StorageError> {
        let full = self.full(path)?;
        let f = fs::OpenOptions::new()
            .write(true)
            .open(&full)
            .await
            .map_err(|e| StorageError::io(path, e))?;
        f.set_len(len).await.map_err(|e| StorageError::io(path, e))
    }

    async fn stat(&self, path: &str) -> Result<FileInfo, StorageError> {
        let full = self.full(path)?;
        let md = fs::metadata(&full)
            .await
            .map_err(|e| StorageError::io(path, e))?;
        Ok(FileInfo {
            size: md.len(),
            is_dir: md.is_dir(),
            modified: md.modified().map_err(|e| StorageError::io(path, e))?,
        })
    }

    async fn list(&self, path: &str) -> Result<Vec<String>, StorageError> {
        let full = self.full(path)?;
        let mut rd = fs::read_dir(&full)
            .await
            .map_err(|e| StorageError::io(path, e))?;
        let mut out = Vec::new();
        while let Some(entry) = rd
            .next_entry()
            .await
            .map_err(|e| StorageError::io(path, e))?
        {
            if let Some(name) = entry.file_name().to_str()
                && !name.starts_with('.')
            {
                out.push(name.to_owned());
            }
        }
        out.sort();
        Ok(out)
    }

    async fn rename(&self, from: &str, to: &str) -> Result<(), StorageError> {
        let src = self.full(from)?;
        let dst = self.full(to)?;
        ensure_parent(to, &dst).await?;
        fs::rename(&src, &dst)
            .await
            .map_err(|e| StorageError::io(from, e))
    }

    async fn delete(&self, path: &str) -> Result<(), StorageError> {
        let full = self.full(path)?;
        let md = fs::symlink_metadata(&full)
            .await
            .map_err(|e| StorageError::io(path, e))?;
        let res = if md.is_dir() {
            fs::remove_dir_all(&full).await
        } else {
            fs::remove_file(&full).await
        };
        res.map_err(|e| StorageError::io(path, e))
    }
}
