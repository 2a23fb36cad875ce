//! A full disk (ENOSPC from the driver) reaches the caller as a distinct
//! storage error, and leaves nothing partial visible: no tag listed with only
//! its index entry, no partly received upload data.

mod common;

use std::sync::Arc;

use bytes::Bytes;
use portcullis_core::{CoreError, Options, Registry, digest_of};
use portcullis_storage::StorageError;
use portcullis_types::{Algorithm, Reference, RepoName};

use common::{HookedDriver, OCI_MANIFEST, body, config_and_layer, image};

fn is_full(e: &CoreError) -> bool {
    matches!(e, CoreError::Storage(StorageError::Full { .. }))
}

#[tokio::test]
async fn a_new_tag_whose_current_link_does_not_fit_is_not_listed() {
    let driver = Arc::new(HookedDriver::default());
    let reg = Registry::new(driver.clone(), Options::default());
    let name: RepoName = "full/app".parse().unwrap();
    let (config, layer) = config_and_layer(&reg, &name, "full").await;
    let tag: Reference = "v1".parse().unwrap();
    *driver.full.lock().unwrap() = Some(|p: &str| p.ends_with("/current/link"));
    let err = reg
        .put_manifest(
            &name,
            &tag,
            Some(OCI_MANIFEST),
            image(&config, std::slice::from_ref(&layer), "a"),
        )
        .await
        .unwrap_err();
    assert!(is_full(&err), "{err:?}");
    assert!(err.to_string().contains("storage is full"), "{err}");
    assert!(
        reg.list_tags(&name, None, None)
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(matches!(
        reg.get_manifest(&name, &tag).await,
        Err(CoreError::ManifestUnknown(_))
    ));

    // Space again: the same push succeeds.
    *driver.full.lock().unwrap() = None;
    reg.put_manifest(
        &name,
        &tag,
        Some(OCI_MANIFEST),
        image(&config, &[layer], "a"),
    )
    .await
    .unwrap();
    assert_eq!(
        reg.list_tags(&name, None, None).await.unwrap().items,
        ["v1"]
    );
}

#[tokio::test]
async fn an_upload_that_does_not_fit_keeps_no_bytes_and_can_be_retried() {
    let driver = Arc::new(HookedDriver::default());
    let reg = Registry::new(driver.clone(), Options::default());
    let name: RepoName = "full/app".parse().unwrap();
    let data = Bytes::from_static(b"some layer bytes");
    let digest = digest_of(Algorithm::Sha256, &data);
    let id = reg.start_upload(&name).await.unwrap();
    *driver.full.lock().unwrap() = Some(|p: &str| p.ends_with("/data"));
    let err = reg
        .complete_upload(&name, &id, &digest, None, body(data.clone()))
        .await
        .unwrap_err();
    assert!(is_full(&err), "{err:?}");
    assert_eq!(reg.upload_status(&name, &id).await.unwrap().size, 0);
    assert!(matches!(
        reg.stat_blob(&name, &digest).await,
        Err(CoreError::BlobUnknown)
    ));

    *driver.full.lock().unwrap() = None;
    reg.complete_upload(&name, &id, &digest, Some(0), body(data))
        .await
        .unwrap();
    assert_eq!(reg.stat_blob(&name, &digest).await.unwrap(), 16);
}
