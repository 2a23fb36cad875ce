//! Streaming a file to a slow or fast reader with bounded memory and
//! without tying up a blocking thread per reader.
//!
//! A blocking thread reads chunks straight into the buffers that become
//! response chunks (one copy from the page cache) for as long as the
//! channel has room. When it is full (the client reads slower than the
//! disk) the thread gives the file back and an async task waits for room,
//! so 200 slow pulls hold 200 small channels, not 200 threads of tokio's
//! bounded blocking pool.
//!
//! Chunks adapt to the reader: they start at [`MIN_CHUNK`], double while
//! the client keeps the channel empty, up to [`MAX_CHUNK`], and halve each
//! time it fills up. A fast pull moves megabyte chunks; a stalled one holds
//! at most [`DEPTH`] small ones.
//!
//! At most [`READERS`] streams read at once, and one turn reads at most
//! [`TURN_BYTES`]. Without that bound, a burst of new pulls (whose first
//! megabytes the kernel's socket buffers absorb at once) starts one
//! blocking thread per pull, and each thread keeps the allocator's memory
//! for the chunks it allocated: about 4.5 MiB per pull, as measured with
//! `bench/pullmem`.

use std::io::{Read, Seek};

use bytes::Bytes;
use tokio::sync::mpsc::{self, OwnedPermit, Sender, error::TrySendError};

/// The smallest chunk, where every stream starts and slow ones stay.
pub(crate) const MIN_CHUNK: usize = 64 << 10;
/// The largest chunk, which a client that keeps up reaches.
pub(crate) const MAX_CHUNK: usize = 1 << 20;
/// Chunks buffered ahead of the client.
const DEPTH: usize = 2;
/// Streams reading at the same time (each on a blocking thread).
const READERS: usize = 4;
/// Bytes one stream reads before it lets another read.
const TURN_BYTES: u64 = 8 << 20;

/// The turns to read, shared by every stream of the process (the blocking
/// threads and the allocator's per-thread memory are the process's too).
fn turns() -> &'static std::sync::Arc<tokio::sync::Semaphore> {
    static TURNS: std::sync::OnceLock<std::sync::Arc<tokio::sync::Semaphore>> =
        std::sync::OnceLock::new();
    TURNS.get_or_init(|| std::sync::Arc::new(tokio::sync::Semaphore::new(READERS)))
}

type Item = std::io::Result<Bytes>;

/// Where a stream stands between turns.
struct Reading {
    file: std::fs::File,
    left: u64,
    chunk: usize,
}

/// Streams `len` bytes of `file` from where it stands; returns the chunk receiver.
pub(crate) fn spawn(file: std::fs::File, len: u64) -> mpsc::Receiver<Item> {
    let (tx, rx) = mpsc::channel::<Item>(DEPTH);
    tokio::spawn(async move {
        let mut state = Reading {
            file,
            left: len,
            chunk: MIN_CHUNK,
        };
        loop {
            // Wait, off any thread, until the client has room for a chunk.
            let Ok(permit) = tx.clone().reserve_owned().await else {
                return; // the client went away
            };
            let Ok(turn) = turns().clone().acquire_owned().await else {
                return; // never closed
            };
            let run = tokio::task::spawn_blocking(move || {
                let next = fill(state, permit);
                drop(turn);
                next
            })
            .await;
            match run {
                Ok(Some(next)) => state = next,
                Ok(None) => return,
                Err(e) => {
                    let _ = tx.send(Err(std::io::Error::other(e))).await;
                    return;
                }
            }
        }
    });
    rx
}

/// Reads chunks while the channel has room, for one turn; gives the file
/// back (`Some`) when the channel is full or the turn is over, `None` when
/// the file is done, failed or unwanted.
fn fill(mut r: Reading, mut permit: OwnedPermit<Item>) -> Option<Reading> {
    let mut turn = 0u64;
    loop {
        let want = r.left.min(r.chunk as u64);
        let mut buf = Vec::with_capacity(usize::try_from(want).unwrap_or(r.chunk));
        let sender: Sender<Item> = match (&mut r.file).take(want).read_to_end(&mut buf) {
            Ok(0) => return None,
            Ok(n) => {
                r.left -= n as u64;
                turn += n as u64;
                permit.send(Ok(Bytes::from(buf)))
            }
            Err(e) => {
                permit.send(Err(e));
                return None;
            }
        };
        if r.left == 0 {
            return None;
        }
        // Nothing queued: the client has taken every chunk sent so far.
        let drained = sender.capacity() == sender.max_capacity();
        permit = match sender.try_reserve_owned() {
            Ok(p) => {
                if drained {
                    r.chunk = (r.chunk * 2).min(MAX_CHUNK);
                }
                p
            }
            Err(TrySendError::Full(_)) => {
                r.chunk = (r.chunk / 2).max(MIN_CHUNK);
                return Some(r);
            }
            Err(TrySendError::Closed(_)) => return None,
        };
        if turn >= TURN_BYTES {
            return Some(r);
        }
    }
}

/// Opens `full` and seeks to `offset`, on a blocking thread.
pub(crate) async fn open_at(
    full: std::path::PathBuf,
    offset: u64,
) -> std::io::Result<std::fs::File> {
    tokio::task::spawn_blocking(move || {
        let mut f = std::fs::File::open(&full)?;
        f.seek(std::io::SeekFrom::Start(offset))?;
        Ok(f)
    })
    .await
    .map_err(std::io::Error::other)?
}
