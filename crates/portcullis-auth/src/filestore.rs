//! Helpers shared by the small JSON stores (refresh tokens, robot tokens):
//! hashing and constant-time comparison of secrets, change detection, and
//! private atomic writes.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

/// What identifies a version of a file on disk (inode, size, mtime).
pub(crate) type Stamp = Option<(u64, u64, i64, i64)>;

pub(crate) fn secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Hex SHA-256 of a secret (what the stores keep instead of the secret).
pub(crate) fn hash_hex(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub(crate) fn stamp(path: &Path) -> Stamp {
    let md = fs::metadata(path).ok()?;
    Some((md.ino(), md.len(), md.mtime(), md.mtime_nsec()))
}

/// Constant-time comparison of two equal-length ASCII strings.
pub(crate) fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Writes `data` to `path` atomically with mode 0600: a temp file in the
/// same directory, synced, then renamed over the old one.
pub(crate) fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(data).and_then(|()| f.sync_all())?;
    fs::rename(&tmp, path)
}
