//! The core's error type. The server maps each variant to an OCI error code.

use portcullis_storage::StorageError;
use portcullis_types::Digest;

#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error("blob unknown to registry")]
    BlobUnknown,
    #[error("blob upload unknown to registry")]
    UploadUnknown,
    #[error("{0}")]
    DigestInvalid(String),
    #[error("requested range {start}- does not continue the upload, which has {have} bytes")]
    RangeInvalid { start: u64, have: u64 },
    #[error("manifest unknown")]
    ManifestUnknown(String),
    #[error(
        "manifest {reference} is a {media_type}, which the client's Accept header does not allow"
    )]
    NotAcceptable {
        reference: String,
        media_type: String,
    },
    #[error("{0}")]
    ManifestInvalid(String),
    #[error("manifest references unknown blob {0}")]
    ManifestBlobUnknown(Digest),
    #[error("manifest is {size} bytes; the limit is {limit}")]
    ManifestTooLarge { size: u64, limit: u64 },
    #[error("repository name not known to registry")]
    NameUnknown,
    #[error("the registry is in read-only mode (storage.maintenance.readonly.enabled)")]
    ReadOnly,
    #[error("deletion is disabled (set storage.delete.enabled: true to allow it)")]
    DeleteDisabled,
    #[error("tag {tag} already exists (it names {digest}) and may not be overwritten")]
    TagExists { tag: String, digest: Digest },
    #[error("blob {digest} is referenced by tag {tag}, whose manifest needs it")]
    BlobInUse { digest: Digest, tag: String },
    #[error(
        "another registry process has been writing this upload session for over 35 s; retry the upload"
    )]
    UploadBusy,
    #[error("client body error: {0}")]
    Body(std::io::Error),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl CoreError {
    pub(crate) fn not_found_as(e: StorageError, alt: CoreError) -> CoreError {
        if e.is_not_found() {
            alt
        } else {
            CoreError::Storage(e)
        }
    }
}
