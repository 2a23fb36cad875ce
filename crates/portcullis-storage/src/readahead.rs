//! Streaming a file to a slow or fast reader with bounded memory and
//! without tying up a blocking thread per reader.
//!
//! A blocking thread reads fixed-size chunks straight into the buffers that
//! become response chunks (one copy from the page cache) for as long as the
//! channel has room. When it is full (the client reads slower than the disk)
//! the thread gives the file back and an async task waits for room, so 200
//! slow pulls hold 200 small channels, not 200 threads of tokio's bounded
//! blocking pool.
//!
//! At most [`READERS`] streams read at once, each for at most [`TURN`]
//! before it lets another read. Without that bound, a burst of new pulls
//! (whose first megabytes the kernel's socket buffers absorb at once)
//! starts one blocking thread per pull, and each thread keeps the
//! allocator's memory for the chunks it allocated (`bench/pullmem`).

use std::io::{Read, Seek};

use bytes::Bytes;
use tokio::sync::mpsc::{self, OwnedPermit, Sender, error::TrySendError};

/// Bytes per chunk: small enough that a stalled reader costs little
/// (`DEPTH` + 1 chunks), large enough that a fast one costs one thread
/// hand-off per 256 KiB.
pub(crate) const CHUNK: usize = 256 << 10;
/// Chunks buffered ahead of the client.
const DEPTH: usize = 2;
/// Streams reading at the same time (each on a blocking thread).
const READERS: usize = 4;
/// Bytes one stream reads before it lets another read.
const TURN: u64 = 64 << 20;

/// The turns to read, shared by every stream of the process (the blocking
/// threads and the allocator's per-thread memory are the process's too).
fn turns() -> &'static std::sync::Arc<tokio::sync::Semaphore> {
    static TURNS: std::sync::OnceLock<std::sync::Arc<tokio::sync::Semaphore>> =
        std::sync::OnceLock::new();
    TURNS.get_or_init(|| std::sync::Arc::new(tokio::sync::Semaphore::new(READERS)))
}

type Item = std::io::Result<Bytes>;

/// Streams `len` bytes of `file` from where it stands; returns the chunk receiver.
pub(crate) fn spawn(file: std::fs::File, len: u64) -> mpsc::Receiver<Item> {
    let (tx, rx) = mpsc::channel::<Item>(DEPTH);
    tokio::spawn(async move {
        let mut state = (file, len);
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
/// back (`Some`) when it is full or the turn is over, `None` when the file
/// is done, failed or unwanted.
fn fill(
    (mut file, mut left): (std::fs::File, u64),
    mut permit: OwnedPermit<Item>,
) -> Option<(std::fs::File, u64)> {
    let mut turn = 0u64;
    loop {
        if left == 0 {
            return None;
        }
        let want = left.min(CHUNK as u64);
        let mut buf = Vec::with_capacity(usize::try_from(want).unwrap_or(CHUNK));
        let sender: Sender<Item> = match (&mut file).take(want).read_to_end(&mut buf) {
            Ok(0) => return None,
            Ok(n) => {
                left -= n as u64;
                turn += n as u64;
                permit.send(Ok(Bytes::from(buf)))
            }
            Err(e) => {
                permit.send(Err(e));
                return None;
            }
        };
        if left == 0 {
            return None;
        }
        permit = match sender.try_reserve_owned() {
            Ok(p) => p,
            Err(TrySendError::Full(_)) => return Some((file, left)),
            Err(TrySendError::Closed(_)) => return None,
        };
        if turn >= TURN {
            return Some((file, left));
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
