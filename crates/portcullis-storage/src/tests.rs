//! The driver contract suite: every backend must pass the same checks.

use bytes::Bytes;
use tokio::io::AsyncReadExt;

use crate::{Chunks, Driver, FsDriver, MemoryDriver, RedirectMethod, WalkEntry, WalkStep};

fn batch(parts: &[&'static [u8]]) -> Chunks {
    parts
        .iter()
        .map(|p| Bytes::from_static(p))
        .collect::<Vec<_>>()
        .into()
}

async fn read_all(d: &dyn Driver, path: &str, offset: u64) -> String {
    let mut r = d.reader(path, offset).await.unwrap();
    let mut s = String::new();
    r.read_to_string(&mut s).await.unwrap();
    s
}

/// Every path a walk of `root` shows, with `/` after directories, skipping
/// the directories `skip` names and stopping after `stop`.
async fn walked(d: &dyn Driver, root: &str, skip: &str, stop: &str) -> Vec<String> {
    let mut seen = Vec::new();
    d.walk(root, &mut |e: &WalkEntry| {
        seen.push(format!(
            "{}{}",
            e.path,
            if e.info.is_dir { "/" } else { "" }
        ));
        if e.path == stop {
            WalkStep::Stop
        } else if e.path.ends_with(skip) {
            WalkStep::SkipDir
        } else {
            WalkStep::Continue
        }
    })
    .await
    .unwrap();
    seen
}

async fn suite(d: &dyn Driver) {
    // missing paths are NotFound, never another error
    assert!(d.get_content("/a/b").await.unwrap_err().is_not_found());
    assert!(d.stat("/a").await.unwrap_err().is_not_found());
    assert!(d.list("/a").await.unwrap_err().is_not_found());
    assert!(d.delete("/a").await.unwrap_err().is_not_found());
    assert!(d.move_path("/a", "/b").await.unwrap_err().is_not_found());
    assert!(d.writer("/a/w", true).await.err().unwrap().is_not_found());
    let no_walk = d.walk("/a", &mut |_: &WalkEntry| WalkStep::Continue).await;
    assert!(no_walk.unwrap_err().is_not_found());
    assert!(d.move_path("/a", "/b").await.unwrap_err().is_not_found());

    // put/get, overwrite
    d.put_content("/a/b/c", Bytes::from_static(b"one"))
        .await
        .unwrap();
    d.put_content("/a/b/c", Bytes::from_static(b"two!"))
        .await
        .unwrap();
    assert_eq!(&d.get_content("/a/b/c").await.unwrap()[..], b"two!");
    let st = d.stat("/a/b/c").await.unwrap();
    assert_eq!((st.size, st.is_dir), (4, false));
    assert!(d.stat("/a/b").await.unwrap().is_dir);

    // list is sorted and shows direct children only
    d.put_content("/a/b/a", Bytes::from_static(b"x"))
        .await
        .unwrap();
    d.put_content("/a/d/e", Bytes::from_static(b"x"))
        .await
        .unwrap();
    assert_eq!(d.list("/a").await.unwrap(), vec!["b", "d"]);
    assert_eq!(d.list("/a/b").await.unwrap(), vec!["a", "c"]);
    assert_eq!(d.list_dirs("/a").await.unwrap(), vec!["b", "d"]);

    writers(d).await;

    // move replaces the destination and creates its parents
    d.move_path("/a/b/a", "/a/b/c").await.unwrap();
    assert_eq!(&d.get_content("/a/b/c").await.unwrap()[..], b"x");
    assert!(d.stat("/a/b/a").await.unwrap_err().is_not_found());
    d.move_path("/a/b/c", "/m/n/o").await.unwrap();
    assert_eq!(&d.get_content("/m/n/o").await.unwrap()[..], b"x");
    assert!(d.stat("/a/b/c").await.unwrap_err().is_not_found());

    // walk: depth first, directories before their contents, skip, stop
    for p in ["/w/a/1", "/w/a/2", "/w/b/x/3", "/w/c", "/w/d/4"] {
        d.put_content(p, Bytes::from_static(b"w")).await.unwrap();
    }
    let all = walked(d, "/w", "-", "-").await;
    assert_eq!(
        all,
        [
            "/w/a/", "/w/a/1", "/w/a/2", "/w/b/", "/w/b/x/", "/w/b/x/3", "/w/c", "/w/d/", "/w/d/4"
        ]
    );
    let skipped = walked(d, "/w", "/b", "/w/c").await;
    assert_eq!(skipped, ["/w/a/", "/w/a/1", "/w/a/2", "/w/b/", "/w/c"]);
    let files = walked(d, "/", "-", "-").await;
    assert!(files.contains(&"/w/b/x/3".to_owned()), "{files:?}");

    // recursive delete
    d.delete("/a").await.unwrap();
    assert!(d.get_content("/a/d/e").await.unwrap_err().is_not_found());

    assert_eq!(d.redirect_url("/m/n/o", RedirectMethod::Get), None);

    // hostile paths are refused
    for bad in ["relative", "/a/../b", "/a//b", "/a/./b", "/a/"] {
        assert!(d.get_content(bad).await.is_err(), "{bad}");
        assert!(d.put_content(bad, Bytes::new()).await.is_err(), "{bad}");
        assert!(d.writer(bad, false).await.is_err(), "{bad}");
        assert!(d.move_path("/m/n/o", bad).await.is_err(), "{bad}");
    }
}

/// Writers: resumable (close, reopen to append), discard, commit, cancel.
async fn writers(d: &dyn Driver) {
    let up = "/up/1/data";
    let mut w = d.writer(up, false).await.unwrap();
    assert_eq!(w.size(), 0);
    w.write(batch(&[b"hello", b" "])).await.unwrap();
    w.write(batch(&[b"world"])).await.unwrap();
    assert_eq!(w.size(), 11);
    assert_eq!(w.close().await.unwrap(), 11);

    // reopened at its size; a discarded writer leaves it as it was
    let mut w = d.writer(up, true).await.unwrap();
    assert_eq!(w.size(), 11);
    w.write(batch(&[b"XXXX"])).await.unwrap();
    assert_eq!(w.size(), 15);
    assert_eq!(w.discard().await.unwrap(), 11);
    let mut w = d.writer(up, true).await.unwrap();
    assert_eq!(w.size(), 11);
    w.write(batch(&[b"!"])).await.unwrap();
    w.close().await.unwrap();
    // a writer that writes nothing changes nothing
    let w = d.writer(up, true).await.unwrap();
    assert_eq!(w.size(), 12);
    w.discard().await.unwrap();

    // committed: the file at its path, readable from an offset, movable
    let mut w = d.writer(up, true).await.unwrap();
    w.write(batch(&[b"!"])).await.unwrap();
    assert_eq!(w.commit().await.unwrap(), 13);
    assert_eq!(d.stat(up).await.unwrap().size, 13);
    assert_eq!(read_all(d, up, 6).await, "world!!");
    d.move_path(up, "/blobs/x/data").await.unwrap();
    assert!(d.stat(up).await.unwrap_err().is_not_found());
    assert_eq!(
        &d.get_content("/blobs/x/data").await.unwrap()[..],
        b"hello world!!"
    );

    // committing what earlier writers wrote, with nothing more
    let mut w = d.writer("/up/2/data", false).await.unwrap();
    w.write(batch(&[b"abc"])).await.unwrap();
    w.close().await.unwrap();
    let w = d.writer("/up/2/data", true).await.unwrap();
    assert_eq!(w.commit().await.unwrap(), 3);
    assert_eq!(&d.get_content("/up/2/data").await.unwrap()[..], b"abc");

    // a new writer replaces an uncommitted upload
    let mut w = d.writer("/up/3/data", false).await.unwrap();
    w.write(batch(&[b"old"])).await.unwrap();
    w.close().await.unwrap();
    let mut w = d.writer("/up/3/data", false).await.unwrap();
    assert_eq!(w.size(), 0);
    w.write(batch(&[b"new!"])).await.unwrap();
    w.close().await.unwrap();
    assert_eq!(d.writer("/up/3/data", true).await.unwrap().size(), 4);

    // cancelled: gone
    let mut w = d.writer("/up/3/data", true).await.unwrap();
    w.write(batch(&[b"more"])).await.unwrap();
    w.cancel().await.unwrap();
    assert!(
        d.writer("/up/3/data", true)
            .await
            .err()
            .unwrap()
            .is_not_found()
    );
    assert!(d.stat("/up/3/data").await.unwrap_err().is_not_found());

    // deleting a directory deletes the uncommitted uploads in it
    d.put_content("/up/4/startedat", Bytes::from_static(b"t"))
        .await
        .unwrap();
    let mut w = d.writer("/up/4/data", false).await.unwrap();
    w.write(batch(&[b"data"])).await.unwrap();
    w.close().await.unwrap();
    d.delete("/up/4").await.unwrap();
    assert!(
        d.writer("/up/4/data", true)
            .await
            .err()
            .unwrap()
            .is_not_found()
    );
    d.delete("/up").await.unwrap();
    d.delete("/blobs").await.unwrap();
}

#[tokio::test]
async fn filesystem_driver_passes_suite() {
    let dir = tempfile::tempdir().unwrap();
    suite(&FsDriver::new(dir.path())).await;
    // nothing escaped the root and no temp files remain
    assert!(!dir.path().join("a").exists());
}

#[tokio::test]
async fn memory_driver_passes_suite() {
    suite(&MemoryDriver::new()).await;
}

/// An upload larger than the flush-ahead step is written back in the
/// background while it is received, and arrives complete and in order.
#[tokio::test]
async fn filesystem_driver_writes_past_the_flush_ahead_step() {
    let dir = tempfile::tempdir().unwrap();
    let d = FsDriver::new(dir.path());
    let chunk = 1 << 20;
    let total = usize::try_from(crate::durable::FLUSH_AHEAD).unwrap() * 2 + chunk / 2;
    let data: Vec<u8> = (0..total).map(|i| (i % 253) as u8).collect();
    let mut w = d.writer("/up/big", false).await.unwrap();
    for c in data.chunks(chunk) {
        let batch: Chunks = vec![Bytes::copy_from_slice(c)].into();
        w.write(batch).await.unwrap();
    }
    assert_eq!(w.commit().await.unwrap(), total as u64);
    d.move_path("/up/big", "/blobs/big").await.unwrap();
    assert_eq!(&d.get_content("/blobs/big").await.unwrap()[..], &data[..]);
}

/// The memory driver keeps uncommitted uploads apart, like an object store.
#[tokio::test]
async fn memory_driver_hides_uncommitted_uploads() {
    let d = MemoryDriver::new();
    let mut w = d.writer("/up/data", false).await.unwrap();
    w.write(batch(&[b"abc"])).await.unwrap();
    w.close().await.unwrap();
    assert!(d.stat("/up/data").await.unwrap_err().is_not_found());
    assert!(d.get_content("/up/data").await.unwrap_err().is_not_found());
    let mut w = d.writer("/up/data", true).await.unwrap();
    w.write(batch(&[b"def"])).await.unwrap();
    drop(w); // dropped without closing: discarded
    assert_eq!(d.writer("/up/data", true).await.unwrap().size(), 3);
}

/// A reader that stalls holds no blocking thread: with a blocking pool of
/// two threads, eight stalled streams of one file still leave room for a
/// ninth to be read to the end, and every stream yields exactly its range.
#[test]
fn stalled_readers_hold_no_blocking_thread() {
    use futures::StreamExt;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let d = FsDriver::new(dir.path());
        let data: Vec<u8> = (0..(20 * crate::readahead::CHUNK + 7))
            .map(|i| (i % 251) as u8)
            .collect();
        d.put_content("/f", Bytes::from(data.clone()))
            .await
            .unwrap();
        let mut stalled = Vec::new();
        for _ in 0..8 {
            let mut s = d.read_stream("/f", 5, data.len() as u64 - 5).await.unwrap();
            let first = s.next().await.unwrap().unwrap();
            assert_eq!(&first[..], &data[5..5 + first.len()]);
            stalled.push((first, s));
        }
        let whole = tokio::time::timeout(std::time::Duration::from_secs(20), async {
            let mut s = d.read_stream("/f", 0, data.len() as u64).await.unwrap();
            let mut got = Vec::new();
            while let Some(c) = s.next().await {
                got.extend_from_slice(&c.unwrap());
            }
            got
        })
        .await
        .expect("a ninth reader must not wait for eight stalled ones");
        assert_eq!(whole, data);
        for (first, mut s) in stalled {
            let mut got = first.to_vec();
            while let Some(c) = s.next().await {
                got.extend_from_slice(&c.unwrap());
            }
            assert_eq!(got, &data[5..]);
        }
    });
}
