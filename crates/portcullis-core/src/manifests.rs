//! Storing, reading and deleting manifests by tag or digest, with the checks
//! that keep the repository consistent: every referenced blob or child
//! manifest must exist before a manifest is accepted.

use bytes::Bytes;
use portcullis_storage::paths;
use portcullis_types::{Algorithm, Digest, MediaType, Reference, RepoName, Tag};
use sha2::{Digest as _, Sha256, Sha512};

use crate::manifest::{self, ParsedManifest};
use crate::{CoreError, Registry};

/// A manifest read from storage.
#[derive(Debug, Clone)]
pub struct ManifestRead {
    pub digest: Digest,
    pub media_type: String,
    pub bytes: Bytes,
}

/// When a manifest PUT by tag may write the tag. The check and the write
/// happen under one per-(repository, tag) lock, so of two concurrent
/// creations of the same tag exactly one can succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TagCondition {
    /// Always: the tag moves to the new manifest (a plain push).
    #[default]
    Any,
    /// Only when the tag does not exist yet; otherwise `CoreError::TagExists`.
    Absent,
    /// When the tag does not exist, or already names exactly this manifest
    /// (so a client's retry of the same push succeeds); otherwise
    /// `CoreError::TagExists`.
    AbsentOrSame,
}

/// What a successful PUT produced.
#[derive(Debug, Clone)]
pub struct PutOutcome {
    pub digest: Digest,
    pub subject: Option<Digest>,
}

/// Whether a tag that now names `current` may be written with `digest`.
fn check_tag_condition(
    tag: &Tag,
    current: Option<&Digest>,
    digest: &Digest,
    condition: TagCondition,
) -> Result<(), CoreError> {
    match (condition, current) {
        (TagCondition::Any, _) | (_, None) => Ok(()),
        (TagCondition::AbsentOrSame, Some(c)) if c == digest => Ok(()),
        (_, Some(c)) => Err(CoreError::TagExists {
            tag: tag.as_str().to_owned(),
            digest: c.clone(),
        }),
    }
}

/// Digest of bytes with the given algorithm.
#[must_use]
pub fn digest_of(alg: Algorithm, bytes: &[u8]) -> Digest {
    let hex = match alg {
        Algorithm::Sha256 => hex::encode(Sha256::digest(bytes)),
        Algorithm::Sha512 => hex::encode(Sha512::digest(bytes)),
    };
    Digest::new(alg, &hex).expect("hash output is valid hex")
}

fn parse_link(raw: &[u8]) -> Option<Digest> {
    std::str::from_utf8(raw).ok()?.trim().parse().ok()
}

impl Registry {
    /// Stores a manifest under a tag or a digest. The digest is computed over the
    /// exact bytes received.
    ///
    /// # Errors
    /// `ManifestTooLarge`, `ManifestInvalid`, `DigestInvalid` (digest reference
    /// mismatch), `ManifestBlobUnknown`, `ReadOnly`.
    pub async fn put_manifest(
        &self,
        name: &RepoName,
        reference: &Reference,
        content_type: Option<&str>,
        bytes: Bytes,
    ) -> Result<PutOutcome, CoreError> {
        self.put_manifest_if(name, reference, content_type, bytes, TagCondition::Any)
            .await
    }

    /// [`Registry::put_manifest`] that writes a tag only when `condition`
    /// holds, checked and written under the tag's lock. A digest reference
    /// ignores the condition (a digest always names the same content).
    /// Nothing is stored when the condition fails.
    ///
    /// # Errors
    /// As `put_manifest`, and `TagExists` when the condition fails.
    pub async fn put_manifest_if(
        &self,
        name: &RepoName,
        reference: &Reference,
        content_type: Option<&str>,
        bytes: Bytes,
        condition: TagCondition,
    ) -> Result<PutOutcome, CoreError> {
        self.check_writable()?;
        let limit = self.opts.manifest_max_bytes;
        if bytes.len() as u64 > limit {
            return Err(CoreError::ManifestTooLarge {
                size: bytes.len() as u64,
                limit,
            });
        }
        let alg = match reference {
            Reference::Digest(d) => d.algorithm(),
            Reference::Tag(_) => Algorithm::Sha256,
        };
        let digest = digest_of(alg, &bytes);
        if let Reference::Digest(d) = reference
            && *d != digest
        {
            return Err(CoreError::DigestInvalid(format!(
                "the manifest's digest is {digest}, not {d} as the URL says"
            )));
        }
        let parsed = manifest::parse(&bytes, content_type)?;
        // Shared: a guarded blob delete (`releases.rs`) excludes manifest writes.
        let _repo = self.locks.repos.shared(name.clone()).await;
        let (_tag, tag_existed) = match reference {
            Reference::Tag(tag) => {
                let guard = self.locks.tags.exclusive((name.clone(), tag.clone())).await;
                let current = self.tag_target(name, tag).await?;
                check_tag_condition(tag, current.as_ref(), &digest, condition)?;
                (Some(guard), current.is_some())
            }
            Reference::Digest(_) => (None, true),
        };
        self.check_references(name, &parsed).await?;
        let subject = parsed.subject.as_ref().map(|s| s.digest.clone());
        let stored = self
            .store_manifest(
                name,
                reference,
                &digest,
                bytes,
                subject.as_ref(),
                tag_existed,
            )
            .await;
        // Even a failed store may have written some links.
        self.manifests.invalidate(name);
        stored?;
        self.note_repository(name);
        Ok(PutOutcome { digest, subject })
    }

    /// Writes a checked manifest: its content first, then every link to it
    /// (each flushed, in parallel), then the tag's current link, which
    /// publishes it.
    async fn store_manifest(
        &self,
        name: &RepoName,
        reference: &Reference,
        digest: &Digest,
        bytes: Bytes,
        subject: Option<&Digest>,
        tag_existed: bool,
    ) -> Result<(), CoreError> {
        if self.blob_size(digest).await?.is_none() {
            self.driver
                .put_content(&paths::blob_data(digest), bytes)
                .await?;
        }
        let link = Bytes::from(digest.to_string());
        let mut links = vec![paths::revision_link(name, digest)];
        links.extend(subject.map(|s| paths::referrer_link(name, s, digest)));
        if let Reference::Tag(tag) = reference {
            links.push(paths::tag_index_link(name, tag, digest));
        }
        futures::future::try_join_all(
            links
                .iter()
                .map(|p| self.driver.put_content(p, link.clone())),
        )
        .await?;
        if let Reference::Tag(tag) = reference
            && let Err(e) = self
                .driver
                .put_content(&paths::tag_current_link(name, tag), link)
                .await
        {
            // A new tag whose current link could not be written (a full
            // disk) must not be listed with only its index entry.
            if !tag_existed {
                let _ = self.driver.delete(&paths::tag_dir(name, tag)).await;
            }
            return Err(e.into());
        }
        Ok(())
    }

    /// The current digest of a tag, or `None` when the tag does not exist.
    pub(crate) async fn tag_target(
        &self,
        name: &RepoName,
        tag: &Tag,
    ) -> Result<Option<Digest>, CoreError> {
        match self
            .driver
            .get_content(&paths::tag_current_link(name, tag))
            .await
        {
            Ok(raw) => Ok(parse_link(&raw)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn check_references(&self, name: &RepoName, m: &ParsedManifest) -> Result<(), CoreError> {
        for d in m.config.iter().chain(&m.references) {
            // Foreign (non-distributable) layers live elsewhere and are not checked.
            if !d.urls.is_empty() {
                continue;
            }
            let present = if m.media_type.is_index() {
                self.driver
                    .stat(&paths::revision_link(name, &d.digest))
                    .await
                    .is_ok()
            } else {
                self.is_linked(name, &d.digest).await? && self.blob_size(&d.digest).await?.is_some()
            };
            if !present {
                return Err(CoreError::ManifestBlobUnknown(d.digest.clone()));
            }
        }
        Ok(())
    }

    /// Resolves a reference to the digest of a manifest stored in `name`.
    ///
    /// # Errors
    /// `ManifestUnknown`.
    pub async fn resolve(
        &self,
        name: &RepoName,
        reference: &Reference,
    ) -> Result<Digest, CoreError> {
        let unknown = || CoreError::ManifestUnknown(reference.to_string());
        let digest = match reference {
            Reference::Digest(d) => d.clone(),
            Reference::Tag(t) => {
                let raw = self
                    .driver
                    .get_content(&paths::tag_current_link(name, t))
                    .await
                    .map_err(|e| CoreError::not_found_as(e, unknown()))?;
                parse_link(&raw).ok_or_else(unknown)?
            }
        };
        match self.driver.stat(&paths::revision_link(name, &digest)).await {
            Ok(_) => Ok(digest),
            Err(e) => Err(CoreError::not_found_as(e, unknown())),
        }
    }

    /// Reads a manifest by tag or digest.
    ///
    /// # Errors
    /// `ManifestUnknown`.
    pub async fn get_manifest(
        &self,
        name: &RepoName,
        reference: &Reference,
    ) -> Result<ManifestRead, CoreError> {
        if let Some(m) = self.manifests.get(name, reference) {
            return Ok(m);
        }
        let ticket = self.manifests.ticket(name);
        let digest = self.resolve(name, reference).await?;
        let m = self.read_manifest(&digest).await.map_err(|e| match e {
            CoreError::BlobUnknown => CoreError::ManifestUnknown(reference.to_string()),
            other => other,
        })?;
        self.manifests.put(name, reference, &m, ticket);
        Ok(m)
    }

    /// Reads a manifest in a form the client accepts (`accepted`: the media
    /// types of its `Accept` header). Clients that accept anything, or send no
    /// `Accept`, get the stored manifest. A client that cannot read an index
    /// but can read image manifests gets the linux/amd64 entry, as
    /// distribution does.
    ///
    /// # Errors
    /// `ManifestUnknown`, or `NotAcceptable` when no form fits.
    pub async fn get_manifest_for(
        &self,
        name: &RepoName,
        reference: &Reference,
        accepted: &[String],
    ) -> Result<ManifestRead, CoreError> {
        let m = self.get_manifest(name, reference).await?;
        let ok = |t: &str| accepted.is_empty() || accepted.iter().any(|a| a == t || a == "*/*");
        if ok(&m.media_type) {
            return Ok(m);
        }
        if MediaType::parse(&m.media_type).is_some_and(MediaType::is_index)
            && let Some(d) = linux_amd64_entry(&m.bytes)
        {
            let child = self.get_manifest(name, &Reference::Digest(d)).await?;
            if ok(&child.media_type) {
                return Ok(child);
            }
        }
        Err(CoreError::NotAcceptable {
            reference: reference.to_string(),
            media_type: m.media_type,
        })
    }

    pub(crate) async fn read_manifest(&self, digest: &Digest) -> Result<ManifestRead, CoreError> {
        let bytes = self
            .driver
            .get_content(&paths::blob_data(digest))
            .await
            .map_err(|e| CoreError::not_found_as(e, CoreError::BlobUnknown))?;
        let media_type = sniff_media_type(&bytes);
        Ok(ManifestRead {
            digest: digest.clone(),
            media_type,
            bytes,
        })
    }

    /// Deletes a manifest by digest (with every tag that points to it) or a
    /// single tag.
    ///
    /// # Errors
    /// `DeleteDisabled`, `ReadOnly`, `ManifestUnknown`.
    pub async fn delete_manifest(
        &self,
        name: &RepoName,
        reference: &Reference,
    ) -> Result<(), CoreError> {
        self.check_delete()?;
        let _repo = self.locks.repos.shared(name.clone()).await;
        let _tag = match reference {
            Reference::Tag(t) => Some(self.locks.tags.exclusive((name.clone(), t.clone())).await),
            Reference::Digest(_) => None,
        };
        let result = self.delete_manifest_links(name, reference).await;
        self.manifests.invalidate(name);
        result
    }

    async fn delete_manifest_links(
        &self,
        name: &RepoName,
        reference: &Reference,
    ) -> Result<(), CoreError> {
        let unknown = || CoreError::ManifestUnknown(reference.to_string());
        match reference {
            Reference::Tag(t) => self
                .driver
                .delete(&paths::tag_dir(name, t))
                .await
                .map_err(|e| CoreError::not_found_as(e, unknown())),
            Reference::Digest(d) => {
                self.resolve(name, reference).await?;
                if let Ok(m) = self.read_manifest(d).await
                    && let Ok(parsed) = manifest::parse(&m.bytes, None)
                    && let Some(s) = parsed.subject
                {
                    let _ = self
                        .driver
                        .delete(&paths::referrer_dir(name, &s.digest, d))
                        .await;
                }
                for tag in self.list_all_tags(name).await? {
                    if let Ok(raw) = self
                        .driver
                        .get_content(&paths::tag_current_link(name, &tag))
                        .await
                        && parse_link(&raw).as_ref() == Some(d)
                    {
                        let _ = self.driver.delete(&paths::tag_dir(name, &tag)).await;
                    }
                }
                self.driver
                    .delete(&paths::revision_dir(name, d))
                    .await
                    .map_err(|e| CoreError::not_found_as(e, unknown()))
            }
        }
    }
}

/// The digest of an index's linux/amd64 entry.
fn linux_amd64_entry(index: &[u8]) -> Option<Digest> {
    let v: serde_json::Value = serde_json::from_slice(index).ok()?;
    let entry = v.get("manifests")?.as_array()?.iter().find(|e| {
        let p = e.get("platform");
        p.and_then(|p| p.get("os")).and_then(|o| o.as_str()) == Some("linux")
            && p.and_then(|p| p.get("architecture"))
                .and_then(|a| a.as_str())
                == Some("amd64")
    })?;
    entry.get("digest")?.as_str()?.parse().ok()
}

/// The media type to serve for stored manifest bytes.
#[must_use]
pub fn sniff_media_type(bytes: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Probe {
        media_type: Option<String>,
        manifests: Option<serde_json::Value>,
        schema_version: Option<i64>,
    }
    match serde_json::from_slice::<Probe>(bytes) {
        Ok(Probe {
            media_type: Some(t),
            ..
        }) => t,
        Ok(Probe {
            schema_version: Some(1),
            ..
        }) => MediaType::SCHEMA1_SIGNED.to_owned(),
        Ok(Probe {
            manifests: Some(_), ..
        }) => MediaType::OCI_INDEX.to_owned(),
        _ => MediaType::OCI_MANIFEST.to_owned(),
    }
}
