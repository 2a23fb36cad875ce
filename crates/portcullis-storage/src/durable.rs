//! Durable publication for the filesystem driver. A file is published by a
//! rename; before it, the file's data is flushed, and after it, the directory
//! that holds the new name is flushed (as is the parent of every directory
//! created on the way), so a file the registry acknowledged survives a power
//! cut. Everything here is blocking and runs on a blocking thread.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

/// Flushes a directory, so names created or replaced in it are on disk.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Creates `dir` and its missing ancestors, flushing the parent of each one
/// it creates. A directory that another writer created at the same moment
/// gets its parent flushed here too, so neither depends on the other.
pub(crate) fn create_dirs(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut missing = Vec::new();
    let mut cur = dir;
    while !cur.exists() {
        missing.push(cur);
        match cur.parent() {
            Some(p) => cur = p,
            None => break,
        }
    }
    for d in missing.into_iter().rev() {
        match fs::create_dir(d) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && d.is_dir() => {}
            Err(e) => return Err(e),
        }
        if let Some(parent) = d.parent() {
            sync_dir(parent)?;
        }
    }
    Ok(())
}

/// Writes `data` to `tmp`, flushes it, renames it to `full` and flushes the
/// directory. On failure the temp file is removed and `full` is untouched.
pub(crate) fn write_file(tmp: &Path, full: &Path, data: &[u8]) -> io::Result<()> {
    let dir = full.parent().unwrap_or(Path::new("/"));
    create_dirs(dir)?;
    let written = (|| {
        let mut f = File::create(tmp)?;
        f.write_all(data)?;
        f.sync_data()?;
        fs::rename(tmp, full)
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(tmp);
        return Err(e);
    }
    sync_dir(dir)
}

/// Flushes the data of `src`, then moves it to `dst` (creating the parents)
/// and flushes the destination directory.
pub(crate) fn publish(src: &Path, dst: &Path) -> io::Result<()> {
    let f = File::open(src)?;
    if f.metadata()?.is_file() {
        f.sync_data()?;
    }
    drop(f);
    let dir = dst.parent().unwrap_or(Path::new("/"));
    create_dirs(dir)?;
    fs::rename(src, dst)?;
    sync_dir(dir)
}

/// Bytes available to an unprivileged writer on the filesystem of `path`.
pub(crate) fn available_space(path: &Path) -> Option<u64> {
    let st = rustix::fs::statvfs(path).ok()?;
    Some(st.f_bavail.saturating_mul(st.f_frsize))
}
