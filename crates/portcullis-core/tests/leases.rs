//! Upload-session leases: registries over one storage root that share a
//! state directory never write one session at once. A request waits while
//! another process holds the session and goes on once it is released;
//! a lease released by its holder leaves the session free.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use portcullis_core::{Options, Registry};
use portcullis_state::{DirStore, StateStore};
use portcullis_storage::FsDriver;
use portcullis_types::RepoName;

use common::body;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_another_process_holds_waits_for_its_release() {
    let dir = tempfile::tempdir().unwrap();
    let driver = Arc::new(FsDriver::new(dir.path().join("data")));
    let state: Arc<dyn StateStore> = Arc::new(DirStore::new(
        dir.path().join("state"),
        portcullis_state::system_clock(),
    ));
    let name: RepoName = "lease/app".parse().unwrap();
    let reg = Registry::new(driver.clone(), Options::default()).with_leases(state.clone());
    let id = reg.start_upload(&name).await.unwrap();

    // Another replica holds the session.
    let other = state
        .acquire(
            &format!("uploads/{id}"),
            "another-replica",
            Duration::from_secs(30),
        )
        .unwrap()
        .expect("the lease is free");
    let append = {
        let (reg, name, id) = (reg.clone(), name.clone(), id.clone());
        tokio::spawn(async move {
            reg.append_upload(&name, &id, Some(0), body(Bytes::from_static(b"hello")))
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        !append.is_finished(),
        "the append waits while the session is held"
    );
    state.release(&other).unwrap();
    let status = tokio::time::timeout(Duration::from_secs(10), append)
        .await
        .expect("the append goes on once the lease is released")
        .unwrap()
        .unwrap();
    assert_eq!(status.size, 5);
    // The append released its own lease: another replica may take it.
    let again = state
        .acquire(
            &format!("uploads/{id}"),
            "another-replica",
            Duration::from_secs(30),
        )
        .unwrap();
    assert!(
        again.is_some(),
        "the registry released its lease after the append"
    );
}
