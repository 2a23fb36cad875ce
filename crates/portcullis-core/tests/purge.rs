//! Upload purging removes abandoned sessions and keeps fresh ones.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use portcullis_core::{CoreError, Options, Registry};
use portcullis_storage::FsDriver;
use portcullis_types::RepoName;

fn chunk(
    data: &'static [u8],
) -> futures::stream::Iter<std::vec::IntoIter<Result<Bytes, std::io::Error>>> {
    futures::stream::iter(vec![Ok(Bytes::from_static(data))])
}

#[tokio::test]
async fn purge_removes_old_sessions_only() {
    let dir = tempfile::tempdir().unwrap();
    let reg = Registry::new(Arc::new(FsDriver::new(dir.path())), Options::default());
    let name: RepoName = "team/app".parse().unwrap();
    let id = reg.start_upload(&name).await.unwrap();
    reg.append_upload(&name, &id, Some(0), chunk(b"abc"))
        .await
        .unwrap();

    // A long age keeps it; a dry run counts without deleting.
    let r = reg
        .purge_uploads(Duration::from_secs(3600), false)
        .await
        .unwrap();
    assert_eq!((r.examined, r.removed), (1, 0));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = reg
        .purge_uploads(Duration::from_secs(1), true)
        .await
        .unwrap();
    assert_eq!((r.examined, r.removed), (1, 1));
    assert_eq!(reg.upload_status(&name, &id).await.unwrap().size, 3);

    let r = reg
        .purge_uploads(Duration::from_secs(1), false)
        .await
        .unwrap();
    assert_eq!(r.removed, 1);
    assert!(matches!(
        reg.upload_status(&name, &id).await,
        Err(CoreError::UploadUnknown)
    ));
}

#[tokio::test]
async fn read_only_refuses_writes() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        read_only: true,
        ..Options::default()
    };
    let reg = Registry::new(Arc::new(FsDriver::new(dir.path())), opts);
    let name: RepoName = "a".parse().unwrap();
    assert!(matches!(
        reg.start_upload(&name).await,
        Err(CoreError::ReadOnly)
    ));
}
