//! Core support for immutable releases: a tag created only if absent (one
//! winner among concurrent creations), and which blobs a tagged manifest
//! needs, with a blob delete that refuses them.

mod common;

use std::sync::Arc;

use portcullis_core::{CoreError, Options, Registry, TagCondition, digest_of};
use portcullis_storage::{FsDriver, MemoryDriver};
use portcullis_types::{Algorithm, Reference, RepoName, Tag};

use common::{OCI_INDEX, OCI_MANIFEST, config_and_layer, image, index, push_blob};

fn registry() -> Registry {
    let opts = Options {
        delete_enabled: true,
        ..Options::default()
    };
    Registry::new(Arc::new(MemoryDriver::new()), opts)
}

/// On the filesystem driver, whose writes really interleave (blocking
/// threads), as in the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_concurrent_creations_of_one_tag_exactly_one_wins() {
    let dir = tempfile::tempdir().unwrap();
    let reg = Registry::new(Arc::new(FsDriver::new(dir.path())), Options::default());
    let name: RepoName = "rel/app".parse().unwrap();
    let (config, layer) = config_and_layer(&reg, &name, "race").await;
    for round in 0..30 {
        let tag: Reference = format!("v{round}").parse().unwrap();
        let tasks: Vec<_> = (0..4)
            .map(|i| {
                let (r, n, t) = (reg.clone(), name.clone(), tag.clone());
                let m = image(
                    &config,
                    std::slice::from_ref(&layer),
                    &format!("{round}-{i}"),
                );
                tokio::spawn(async move {
                    r.put_manifest_if(&n, &t, Some(OCI_MANIFEST), m, TagCondition::Absent)
                        .await
                })
            })
            .collect();
        let mut winners = Vec::new();
        for t in tasks {
            match t.await.unwrap() {
                Ok(out) => winners.push(out.digest),
                Err(CoreError::TagExists { tag: t, digest }) => {
                    assert_eq!(t, format!("v{round}"));
                    assert!(!digest.hex().is_empty());
                }
                Err(e) => panic!("unexpected error: {e}"),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: {winners:?}");
        assert_eq!(reg.resolve(&name, &tag).await.unwrap(), winners[0]);
    }
}

#[tokio::test]
async fn a_refused_creation_stores_nothing_and_absent_or_same_allows_a_retry() {
    let reg = registry();
    let name: RepoName = "rel/app".parse().unwrap();
    let tag: Reference = "v1".parse().unwrap();
    let (config, layer) = config_and_layer(&reg, &name, "retry").await;
    let first = image(&config, std::slice::from_ref(&layer), "first");
    let other = image(&config, &[layer], "other");
    let put = |m: bytes::Bytes, c| {
        let (reg, name, tag) = (reg.clone(), name.clone(), tag.clone());
        async move {
            reg.put_manifest_if(&name, &tag, Some(OCI_MANIFEST), m, c)
                .await
        }
    };
    let won = put(first.clone(), TagCondition::Absent).await.unwrap();

    // The same manifest again: refused by Absent, accepted by AbsentOrSame.
    assert!(matches!(
        put(first.clone(), TagCondition::Absent).await,
        Err(CoreError::TagExists { ref digest, .. }) if *digest == won.digest
    ));
    assert_eq!(
        put(first, TagCondition::AbsentOrSame).await.unwrap().digest,
        won.digest
    );

    // A different manifest is refused, and is not even stored by digest.
    let err = put(other.clone(), TagCondition::AbsentOrSame)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("already exists"), "message: {err}");
    let other_digest = Reference::Digest(digest_of(Algorithm::Sha256, &other));
    assert!(matches!(
        reg.get_manifest(&name, &other_digest).await,
        Err(CoreError::ManifestUnknown(_))
    ));
    assert_eq!(reg.resolve(&name, &tag).await.unwrap(), won.digest);

    // A plain put still moves a tag (mutable repositories are unchanged).
    let moved = put(other, TagCondition::Any).await.unwrap();
    assert_eq!(reg.resolve(&name, &tag).await.unwrap(), moved.digest);
}

#[tokio::test]
async fn blobs_of_tagged_manifests_are_found_through_indexes_and_kept() {
    let reg = registry();
    let name: RepoName = "rel/app".parse().unwrap();
    let (config, layer) = config_and_layer(&reg, &name, "amd64").await;
    let (arm_config, arm_layer) = config_and_layer(&reg, &name, "arm64").await;
    let loose = push_blob(&reg, &name, b"a layer nothing tags").await;
    let (untagged_config, untagged_layer) = config_and_layer(&reg, &name, "untagged").await;

    // v1 is an index of two images; the arm image is pushed by digest only.
    let amd = image(&config, std::slice::from_ref(&layer), "amd64");
    let arm = image(&arm_config, std::slice::from_ref(&arm_layer), "arm64");
    let by_digest = |b: &bytes::Bytes| Reference::Digest(digest_of(Algorithm::Sha256, b));
    for m in [&amd, &arm] {
        reg.put_manifest(&name, &by_digest(m), Some(OCI_MANIFEST), m.clone())
            .await
            .unwrap();
    }
    let idx = index(&[
        (digest_of(Algorithm::Sha256, &amd), amd.len()),
        (digest_of(Algorithm::Sha256, &arm), arm.len()),
    ]);
    let v1: Reference = "v1".parse().unwrap();
    reg.put_manifest(&name, &v1, Some(OCI_INDEX), idx.clone())
        .await
        .unwrap();
    // An untagged image references other blobs.
    let untagged = image(
        &untagged_config,
        std::slice::from_ref(&untagged_layer),
        "untagged",
    );
    reg.put_manifest(&name, &by_digest(&untagged), Some(OCI_MANIFEST), untagged)
        .await
        .unwrap();

    let all = |_: &Tag| true;
    let v1_tag: Tag = "v1".parse().unwrap();
    for (what, d) in [
        ("index", digest_of(Algorithm::Sha256, &idx)),
        ("child manifest", digest_of(Algorithm::Sha256, &arm)),
        ("child config", arm_config.0.clone()),
        ("child layer", arm_layer.0.clone()),
        ("layer", layer.0.clone()),
    ] {
        assert_eq!(
            reg.blob_referenced_by_tag(&name, &d, all).await.unwrap(),
            Some(v1_tag.clone()),
            "{what}"
        );
    }
    for (what, d) in [
        ("loose blob", loose.clone()),
        ("untagged layer", untagged_layer.0.clone()),
        ("untagged config", untagged_config.0.clone()),
    ] {
        assert_eq!(
            reg.blob_referenced_by_tag(&name, &d, all).await.unwrap(),
            None,
            "{what}"
        );
    }
    // Only the selected tags count.
    let none_selected = |t: &Tag| t.as_str().starts_with("release-");
    assert_eq!(
        reg.blob_referenced_by_tag(&name, &layer.0, none_selected)
            .await
            .unwrap(),
        None
    );

    // The guarded delete refuses a needed layer and removes a loose one.
    match reg
        .delete_blob_unless_tagged(&name, &arm_layer.0, all)
        .await
    {
        Err(CoreError::BlobInUse { digest, tag }) => {
            assert_eq!((digest, tag.as_str()), (arm_layer.0.clone(), "v1"));
        }
        other => panic!("expected BlobInUse, got {other:?}"),
    }
    assert!(reg.stat_blob(&name, &arm_layer.0).await.is_ok());
    reg.delete_blob_unless_tagged(&name, &loose, all)
        .await
        .unwrap();
    assert!(matches!(
        reg.stat_blob(&name, &loose).await,
        Err(CoreError::BlobUnknown)
    ));
    assert!(matches!(
        reg.delete_blob_unless_tagged(&name, &loose, all).await,
        Err(CoreError::BlobUnknown)
    ));
}

/// A guarded delete of a layer racing a push of a tag that needs it: either
/// the push wins and the delete is refused, or the delete wins and the push
/// is refused for the missing blob; never a tag whose layer is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_guarded_delete_never_removes_a_layer_that_a_concurrent_push_tags() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        delete_enabled: true,
        ..Options::default()
    };
    let reg = Registry::new(Arc::new(FsDriver::new(dir.path())), opts);
    let name: RepoName = "rel/app".parse().unwrap();
    let (mut pushes_won, mut deletes_won) = (0, 0);
    for round in 0..20 {
        let (config, layer) = config_and_layer(&reg, &name, &format!("race-{round}")).await;
        let tag: Reference = format!("v{round}").parse().unwrap();
        let m = image(&config, std::slice::from_ref(&layer), "race");
        let (r1, n1, t1) = (reg.clone(), name.clone(), tag.clone());
        let push = tokio::spawn(async move {
            r1.put_manifest_if(&n1, &t1, Some(OCI_MANIFEST), m, TagCondition::Absent)
                .await
        });
        let (r2, n2, l2) = (reg.clone(), name.clone(), layer.0.clone());
        let delete =
            tokio::spawn(async move { r2.delete_blob_unless_tagged(&n2, &l2, |_| true).await });
        match (push.await.unwrap(), delete.await.unwrap()) {
            (Ok(_), Err(CoreError::BlobInUse { .. })) => pushes_won += 1,
            (Err(CoreError::ManifestBlobUnknown(d)), Ok(())) if d == layer.0 => deletes_won += 1,
            (p, d) => panic!("round {round}: push {p:?}, delete {d:?}"),
        }
        if reg.resolve(&name, &tag).await.is_ok() {
            assert!(
                reg.stat_blob(&name, &layer.0).await.is_ok(),
                "round {round}"
            );
        }
    }
    assert_eq!(pushes_won + deletes_won, 20);
}
