//! The manifest cache never serves a manifest older than the last write that
//! this process acknowledged: a reader that read storage before a tag moved
//! must not put the old manifest back into the cache after the move.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use portcullis_core::{Options, Registry};
use portcullis_storage::MemoryDriver;
use portcullis_types::{Reference, RepoName};
use tokio::sync::oneshot;

use common::{HookedDriver, OCI_MANIFEST, config_and_layer, image};

#[tokio::test]
async fn a_read_that_began_before_a_tag_move_cannot_refill_the_cache_with_the_old_manifest() {
    let driver = Arc::new(HookedDriver::default());
    let reg = Registry::new(driver.clone(), Options::default());
    let name: RepoName = "team/app".parse().unwrap();
    let tag: Reference = "latest".parse().unwrap();
    let (config, layer) = config_and_layer(&reg, &name, "gate").await;
    let old = reg
        .put_manifest(
            &name,
            &tag,
            Some(OCI_MANIFEST),
            image(&config, std::slice::from_ref(&layer), "old"),
        )
        .await
        .unwrap();

    // A reader misses the cache, reads the tag (old digest), and is held there.
    let (read_done_tx, read_done) = oneshot::channel();
    let (release, release_rx) = oneshot::channel();
    *driver.gate.lock().unwrap() = Some((read_done_tx, release_rx));
    let r = reg.clone();
    let (n, t) = (name.clone(), tag.clone());
    let reader = tokio::spawn(async move { r.get_manifest(&n, &t).await.unwrap().digest });
    read_done.await.unwrap();

    // The writer moves the tag and is acknowledged; then the reader finishes.
    let new = reg
        .put_manifest(
            &name,
            &tag,
            Some(OCI_MANIFEST),
            image(&config, &[layer], "new"),
        )
        .await
        .unwrap();
    release.send(()).unwrap();
    assert_eq!(
        reader.await.unwrap(),
        old.digest,
        "the held reader saw the old tag"
    );

    // Everyone, the writer included, now gets the new manifest.
    assert_eq!(
        reg.get_manifest(&name, &tag).await.unwrap().digest,
        new.digest
    );
}

/// Many tag moves with 8 concurrent readers: after each move is acknowledged,
/// the writer's own GET must return the new manifest. Bounded in moves and time.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tag_moves_under_concurrent_readers_are_never_read_back_stale() {
    const MOVES: usize = 3_000;
    const READERS: usize = 8;
    let reg = Registry::new(Arc::new(MemoryDriver::new()), Options::default());
    let name: RepoName = "team/race".parse().unwrap();
    let tag: Reference = "latest".parse().unwrap();
    let (config, layer) = config_and_layer(&reg, &name, "race").await;
    let manifests: Vec<Bytes> = (0..MOVES)
        .map(|i| image(&config, std::slice::from_ref(&layer), &i.to_string()))
        .collect();
    reg.put_manifest(&name, &tag, Some(OCI_MANIFEST), manifests[0].clone())
        .await
        .unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..READERS)
        .map(|_| {
            let (r, n, t, stop) = (reg.clone(), name.clone(), tag.clone(), stop.clone());
            tokio::spawn(async move {
                let mut reads = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    r.get_manifest(&n, &t).await.unwrap();
                    reads += 1;
                    tokio::task::yield_now().await;
                }
                reads
            })
        })
        .collect();

    let deadline = Instant::now() + Duration::from_secs(20);
    let mut stale = Vec::new();
    let mut moves = 0;
    for (i, m) in manifests.iter().enumerate().skip(1) {
        if Instant::now() > deadline {
            break;
        }
        let put = reg
            .put_manifest(&name, &tag, Some(OCI_MANIFEST), m.clone())
            .await
            .unwrap();
        moves += 1;
        let got = reg.get_manifest(&name, &tag).await.unwrap();
        if got.digest != put.digest {
            stale.push(i);
        }
    }
    stop.store(true, Ordering::Relaxed);
    let mut reads = 0;
    for r in readers {
        reads += r.await.unwrap();
    }
    assert!(
        moves >= 100 && reads > 0,
        "too little ran: {moves} moves, {reads} reads"
    );
    assert!(
        stale.is_empty(),
        "{} of {moves} moves were read back stale (moves {:?}...), with {reads} concurrent reads",
        stale.len(),
        &stale[..stale.len().min(10)]
    );
}
