//! Durable publication for the filesystem driver. A file is published by a
//! rename; before it, the file's data is flushed, and after it, the directory
//! that holds the new name is flushed (as is the parent of every directory
//! created on the way), so a file the registry acknowledged survives a power
//! cut. Everything here is blocking and runs on a blocking thread.
//!
//! An upload's data is flushed once, when it is committed. So that this
//! flush does not have to write a whole large blob back at the end, a
//! writer hands the data written so far to a background flush every
//! [`FLUSH_AHEAD`] bytes ([`FlushAhead`]): write-back then overlaps receiving.

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

/// Moves `src`, whose data is already flushed, to `dst` (creating the
/// parents) and flushes the destination directory.
pub(crate) fn publish(src: &Path, dst: &Path) -> io::Result<()> {
    fs::symlink_metadata(src)?; // a missing source creates no directories
    let dir = dst.parent().unwrap_or(Path::new("/"));
    create_dirs(dir)?;
    fs::rename(src, dst)?;
    sync_dir(dir)
}

/// Bytes written between two background flushes of a growing file.
pub(crate) const FLUSH_AHEAD: u64 = 8 * 1024 * 1024;

/// Starts write-back of a file being appended to, on a thread of its own,
/// whenever [`FLUSH_AHEAD`] new bytes were written and the previous flush is
/// done; the writer never waits for it, except once in [`FlushAhead::finish`].
/// An error of a background flush fails the write, so no write-back error is
/// consumed unseen before the file is published.
#[derive(Default)]
pub(crate) struct FlushAhead {
    pending: u64,
    inflight: Option<std::thread::JoinHandle<io::Result<()>>>,
}

impl FlushAhead {
    /// Records `n` more bytes written to `f`.
    pub fn wrote(&mut self, f: &File, n: u64) -> io::Result<()> {
        self.pending += n;
        if self.pending < FLUSH_AHEAD || self.inflight.as_ref().is_some_and(|h| !h.is_finished()) {
            return Ok(());
        }
        self.reap()?;
        let dup = f.try_clone()?;
        self.inflight = Some(std::thread::spawn(move || dup.sync_data()));
        self.pending = 0;
        Ok(())
    }

    /// Waits for the flush in flight, if any, and reports its error.
    pub fn finish(mut self) -> io::Result<()> {
        self.reap()
    }

    fn reap(&mut self) -> io::Result<()> {
        match self.inflight.take() {
            Some(h) => h
                .join()
                .map_err(|_| io::Error::other("background flush panicked"))?,
            None => Ok(()),
        }
    }
}

/// Bytes available to an unprivileged writer on the filesystem of `path`.
pub(crate) fn available_space(path: &Path) -> Option<u64> {
    let st = rustix::fs::statvfs(path).ok()?;
    Some(st.f_bavail.saturating_mul(st.f_frsize))
}
