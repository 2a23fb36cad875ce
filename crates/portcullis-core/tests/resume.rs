//! Resuming uploads. The hash state is saved through the driver after each
//! chunk, so another registry over the same storage (another replica, or
//! this one after a restart) resumes without rereading the data; without a
//! matching state it falls back to hashing the committed data. A chunk
//! whose request went away is discarded, so the client resumes where it was.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use portcullis_core::{CoreError, Options, Registry, digest_of};
use portcullis_storage::{Driver, FsDriver, MemoryDriver, paths};
use portcullis_types::{Algorithm, RepoName};

use common::{HookedDriver, body};

fn data() -> Vec<u8> {
    (0..300_000u32).map(|i| (i * 31 % 251) as u8).collect()
}

/// Sends the first 100,001 bytes through one registry and the rest through
/// a fresh one over the same driver; `between` runs in between.
async fn resume_across_registries(driver: Arc<HookedDriver>, between: impl AsyncFnOnce(&str)) {
    let name: RepoName = "resume/app".parse().unwrap();
    let all = data();
    let digest = digest_of(Algorithm::Sha256, &all);
    let first = Registry::new(driver.clone(), Options::default());
    let id = first.start_upload(&name).await.unwrap();
    let st = first
        .append_upload(
            &name,
            &id,
            Some(0),
            body(Bytes::copy_from_slice(&all[..100_001])),
        )
        .await
        .unwrap();
    assert_eq!(st.size, 100_001);
    between(&id).await;

    let second = Registry::new(driver.clone(), Options::default());
    assert_eq!(
        second.upload_status(&name, &id).await.unwrap().size,
        100_001
    );
    second
        .append_upload(
            &name,
            &id,
            Some(100_001),
            body(Bytes::copy_from_slice(&all[100_001..200_000])),
        )
        .await
        .unwrap();
    let third = Registry::new(driver.clone(), Options::default());
    third
        .complete_upload(
            &name,
            &id,
            &digest,
            Some(200_000),
            body(Bytes::copy_from_slice(&all[200_000..])),
        )
        .await
        .unwrap();
    assert_eq!(third.stat_blob(&name, &digest).await.unwrap(), 300_000);
}

fn state_path(id: &str, offset: u64) -> String {
    let name: RepoName = "resume/app".parse().unwrap();
    paths::upload_hash_state(&name, id, Algorithm::Sha256, offset)
}

#[tokio::test]
async fn another_registry_resumes_from_the_saved_state_without_rereading() {
    let dir = tempfile::tempdir().unwrap();
    for driver in [
        HookedDriver::default(),
        HookedDriver::over(FsDriver::new(dir.path())),
    ] {
        let driver = Arc::new(driver);
        let d = driver.clone();
        resume_across_registries(driver.clone(), async move |id: &str| {
            let saved = d.get_content(&state_path(id, 100_001)).await.unwrap();
            assert_eq!(saved.len(), 108, "Go's sha256 state size");
            assert_eq!(&saved[..4], b"sha\x03");
        })
        .await;
        assert_eq!(driver.reads.load(Ordering::SeqCst), 0, "no data was reread");
    }
}

#[tokio::test]
async fn only_the_latest_state_is_kept() {
    let driver = Arc::new(HookedDriver::default());
    let reg = Registry::new(driver.clone(), Options::default());
    let name: RepoName = "resume/app".parse().unwrap();
    let id = reg.start_upload(&name).await.unwrap();
    for (i, chunk) in data().chunks(100_000).enumerate() {
        reg.append_upload(&name, &id, None, body(Bytes::copy_from_slice(chunk)))
            .await
            .unwrap();
        let dir = paths::upload_hash_states(&name, &id, Algorithm::Sha256);
        let offset = ((i + 1) * 100_000).to_string();
        assert_eq!(driver.list(&dir).await.unwrap(), [offset]);
    }
}

#[tokio::test]
async fn without_a_matching_state_the_committed_data_is_rehashed() {
    let driver = Arc::new(HookedDriver::default());
    let d = driver.clone();
    resume_across_registries(driver.clone(), async move |id: &str| {
        d.delete(&state_path(id, 100_001)).await.unwrap();
    })
    .await;
    assert_eq!(
        driver.reads.load(Ordering::SeqCst),
        1,
        "hashed once, at the end"
    );

    // A state that is not one is ignored too, and a wrong digest still fails.
    let mem = MemoryDriver::new();
    let reg = Registry::new(Arc::new(mem.clone()), Options::default());
    let name: RepoName = "resume/app".parse().unwrap();
    let id = reg.start_upload(&name).await.unwrap();
    reg.append_upload(&name, &id, None, body(Bytes::from_static(b"abc")))
        .await
        .unwrap();
    mem.put_content(&state_path(&id, 3), Bytes::from_static(b"garbage"))
        .await
        .unwrap();
    let fresh = Registry::new(Arc::new(mem.clone()), Options::default());
    let wrong = digest_of(Algorithm::Sha256, b"abd");
    let err = fresh
        .complete_upload(&name, &id, &wrong, None, body(Bytes::new()))
        .await
        .unwrap_err();
    assert!(matches!(err, CoreError::DigestInvalid(_)), "{err:?}");
}

/// A request that goes away mid-chunk (its future dropped) leaves the upload
/// as it was: the chunk is discarded before the session's lock is free, so
/// the client resumes at the old offset.
#[tokio::test]
async fn a_chunk_whose_request_went_away_is_discarded() {
    use futures::StreamExt;
    let dir = tempfile::tempdir().unwrap();
    let drivers: [Arc<dyn Driver>; 2] = [
        Arc::new(MemoryDriver::new()),
        Arc::new(FsDriver::new(dir.path())),
    ];
    for driver in drivers {
        let reg = Registry::new(driver, Options::default());
        let name: RepoName = "resume/app".parse().unwrap();
        let all = data();
        let id = reg.start_upload(&name).await.unwrap();
        reg.append_upload(
            &name,
            &id,
            Some(0),
            body(Bytes::copy_from_slice(&all[..1000])),
        )
        .await
        .unwrap();
        // More than one batch arrives, then the client stalls and is dropped.
        let big: Result<Bytes, std::io::Error> = Ok(Bytes::from(vec![7u8; 700_000]));
        let stalled = futures::stream::iter(vec![big]).chain(futures::stream::pending());
        let gone = tokio::time::timeout(
            std::time::Duration::from_millis(300),
            reg.append_upload(&name, &id, Some(1000), stalled),
        )
        .await;
        assert!(gone.is_err(), "the stalled request was still running");
        reg.complete_upload(
            &name,
            &id,
            &digest_of(Algorithm::Sha256, &all),
            Some(1000),
            body(Bytes::copy_from_slice(&all[1000..])),
        )
        .await
        .unwrap();
    }
}
