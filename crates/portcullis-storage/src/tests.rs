//! The driver test suite: every backend must pass the same checks.

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{Driver, FsDriver, MemoryDriver};

async fn suite(d: &dyn Driver) {
    // missing paths are NotFound, never another error
    assert!(d.get_content("/a/b").await.unwrap_err().is_not_found());
    assert!(d.stat("/a").await.unwrap_err().is_not_found());
    assert!(d.list("/a").await.unwrap_err().is_not_found());
    assert!(d.delete("/a").await.unwrap_err().is_not_found());

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

    // append, truncate, ranged read
    let mut w = d.appender("/up/data").await.unwrap();
    w.write_all(b"hello ").await.unwrap();
    w.write_all(b"world").await.unwrap();
    w.shutdown().await.unwrap();
    drop(w);
    let mut w = d.appender("/up/data").await.unwrap();
    w.write_all(b"!!").await.unwrap();
    w.shutdown().await.unwrap();
    drop(w);
    assert_eq!(d.stat("/up/data").await.unwrap().size, 13);
    d.truncate("/up/data", 11).await.unwrap();
    let mut r = d.reader("/up/data", 6).await.unwrap();
    let mut s = String::new();
    r.read_to_string(&mut s).await.unwrap();
    assert_eq!(s, "world");

    // rename replaces and creates parents
    d.rename("/up/data", "/blobs/x/data").await.unwrap();
    assert!(d.stat("/up/data").await.unwrap_err().is_not_found());
    assert_eq!(
        &d.get_content("/blobs/x/data").await.unwrap()[..],
        b"hello world"
    );

    // recursive delete
    d.delete("/a").await.unwrap();
    assert!(d.get_content("/a/d/e").await.unwrap_err().is_not_found());

    // hostile paths are refused
    for bad in ["relative", "/a/../b", "/a//b", "/a/./b", "/a/"] {
        assert!(d.get_content(bad).await.is_err(), "{bad}");
        assert!(d.put_content(bad, Bytes::new()).await.is_err(), "{bad}");
    }
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
async fn filesystem_driver_appends_past_the_flush_ahead_step() {
    let dir = tempfile::tempdir().unwrap();
    let d = FsDriver::new(dir.path());
    let (tx, rx) = tokio::sync::mpsc::channel::<crate::Chunks>(2);
    let chunk = 1 << 20;
    let total = usize::try_from(crate::durable::FLUSH_AHEAD).unwrap() * 2 + chunk / 2;
    let data: Vec<u8> = (0..total).map(|i| (i % 253) as u8).collect();
    let send = {
        let data = data.clone();
        tokio::spawn(async move {
            for c in data.chunks(chunk) {
                let batch: crate::Chunks = vec![Bytes::copy_from_slice(c)].into();
                tx.send(batch).await.unwrap();
            }
        })
    };
    let n = d.append_chunks("/up/big", rx).await.unwrap();
    send.await.unwrap();
    assert_eq!(n, total as u64);
    d.rename("/up/big", "/blobs/big").await.unwrap();
    assert_eq!(&d.get_content("/blobs/big").await.unwrap()[..], &data[..]);
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
