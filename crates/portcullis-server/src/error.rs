//! The one table of OCI error codes (distribution's `errcode`): each code has
//! its HTTP status and default message here, and every error response is built
//! from it. Internal error text never reaches a client; it is logged instead.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use portcullis_core::CoreError;
use portcullis_storage::StorageError;
use portcullis_types::{DigestError, NameError, ReferenceError};
use serde::Serialize;

/// An OCI (or distribution) error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    BlobUnknown,
    BlobUploadInvalid,
    BlobUploadUnknown,
    DigestInvalid,
    ManifestBlobUnknown,
    ManifestInvalid,
    ManifestUnknown,
    NameInvalid,
    NameUnknown,
    SizeInvalid,
    TagInvalid,
    Unauthorized,
    Denied,
    Unsupported,
    TooManyRequests,
    PaginationNumberInvalid,
    RangeInvalid,
    ManifestTooLarge,
    MethodNotAllowed,
    NotFound,
    ReadOnly,
    /// The storage has no space left. distribution has no code for it: this
    /// sends its registered `UNAVAILABLE` (known to Go clients built on its
    /// errcode table, and not mistaken for an auth problem as `DENIED`
    /// would be) with 507, whose reason phrase already says it.
    StorageFull,
    /// Another process holds the upload session: `UNAVAILABLE` with 503
    /// and `Retry-After`, which Go clients retry.
    Busy,
    Unknown,
}

impl Code {
    /// The code string, HTTP status and default message.
    #[must_use]
    pub fn spec(self) -> (&'static str, StatusCode, &'static str) {
        use StatusCode as S;
        match self {
            Code::BlobUnknown => ("BLOB_UNKNOWN", S::NOT_FOUND, "blob unknown to registry"),
            Code::BlobUploadInvalid => {
                ("BLOB_UPLOAD_INVALID", S::BAD_REQUEST, "blob upload invalid")
            }
            Code::BlobUploadUnknown => (
                "BLOB_UPLOAD_UNKNOWN",
                S::NOT_FOUND,
                "blob upload unknown to registry",
            ),
            Code::DigestInvalid => (
                "DIGEST_INVALID",
                S::BAD_REQUEST,
                "provided digest did not match uploaded content",
            ),
            Code::ManifestBlobUnknown => (
                "MANIFEST_BLOB_UNKNOWN",
                S::BAD_REQUEST,
                "manifest references a manifest or blob unknown to registry",
            ),
            Code::ManifestInvalid => ("MANIFEST_INVALID", S::BAD_REQUEST, "manifest invalid"),
            Code::ManifestUnknown => (
                "MANIFEST_UNKNOWN",
                S::NOT_FOUND,
                "manifest unknown to registry",
            ),
            Code::NameInvalid => ("NAME_INVALID", S::BAD_REQUEST, "invalid repository name"),
            Code::NameUnknown => (
                "NAME_UNKNOWN",
                S::NOT_FOUND,
                "repository name not known to registry",
            ),
            Code::SizeInvalid => (
                "SIZE_INVALID",
                S::BAD_REQUEST,
                "provided length did not match content length",
            ),
            Code::TagInvalid => (
                "TAG_INVALID",
                S::BAD_REQUEST,
                "manifest tag did not match URI",
            ),
            Code::Unauthorized => ("UNAUTHORIZED", S::UNAUTHORIZED, "authentication required"),
            Code::Denied => (
                "DENIED",
                S::FORBIDDEN,
                "requested access to the resource is denied",
            ),
            Code::Unsupported => (
                "UNSUPPORTED",
                S::BAD_REQUEST,
                "the operation is unsupported",
            ),
            Code::TooManyRequests => ("TOOMANYREQUESTS", S::TOO_MANY_REQUESTS, "too many requests"),
            Code::PaginationNumberInvalid => (
                "PAGINATION_NUMBER_INVALID",
                S::BAD_REQUEST,
                "invalid number of results requested",
            ),
            Code::RangeInvalid => (
                "RANGE_INVALID",
                S::RANGE_NOT_SATISFIABLE,
                "invalid content range",
            ),
            Code::ManifestTooLarge => (
                "SIZE_INVALID",
                S::PAYLOAD_TOO_LARGE,
                "manifest is too large",
            ),
            Code::MethodNotAllowed => (
                "UNSUPPORTED",
                S::METHOD_NOT_ALLOWED,
                "the method is not allowed on this endpoint",
            ),
            Code::NotFound => ("NOT_FOUND", S::NOT_FOUND, "no such endpoint"),
            Code::ReadOnly => (
                "UNSUPPORTED",
                S::METHOD_NOT_ALLOWED,
                "the registry is in read-only mode",
            ),
            Code::StorageFull => (
                "UNAVAILABLE",
                S::INSUFFICIENT_STORAGE,
                "storage is full: the registry's storage has no free space left",
            ),
            Code::Busy => (
                "UNAVAILABLE",
                S::SERVICE_UNAVAILABLE,
                "the upload session is busy in another registry process",
            ),
            Code::Unknown => ("UNKNOWN", S::INTERNAL_SERVER_ERROR, "unknown error"),
        }
    }
}

/// An error response: a code, a message for people, and optional detail.
#[derive(Debug)]
pub struct ApiError {
    pub code: Code,
    pub message: String,
    pub detail: Option<serde_json::Value>,
    pub headers: Vec<(header::HeaderName, HeaderValue)>,
}

#[derive(Serialize)]
struct Body<'a> {
    errors: [Entry<'a>; 1],
}

#[derive(Serialize)]
struct Entry<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<&'a serde_json::Value>,
}

impl ApiError {
    #[must_use]
    pub fn new(code: Code) -> Self {
        Self {
            code,
            message: code.spec().2.to_owned(),
            detail: None,
            headers: Vec::new(),
        }
    }

    #[must_use]
    pub fn msg(code: Code, message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            ..Self::new(code)
        }
    }

    #[must_use]
    pub fn detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = Some(detail);
        self
    }

    #[must_use]
    pub fn header(mut self, name: header::HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (code, status, _) = self.code.spec();
        let body = Body {
            errors: [Entry {
                code,
                message: &self.message,
                detail: self.detail.as_ref(),
            }],
        };
        let json = serde_json::to_vec(&body).unwrap_or_default();
        let mut resp = (status, [(header::CONTENT_TYPE, "application/json")], json).into_response();
        for (k, v) in self.headers {
            resp.headers_mut().append(k, v);
        }
        resp
    }
}

impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> Self {
        match e {
            CoreError::BlobUnknown => ApiError::new(Code::BlobUnknown),
            CoreError::UploadUnknown => ApiError::new(Code::BlobUploadUnknown),
            CoreError::DigestInvalid(m) => ApiError::msg(Code::DigestInvalid, m),
            CoreError::RangeInvalid { have, .. } => {
                ApiError::msg(Code::RangeInvalid, e.to_string()).header(
                    header::RANGE,
                    HeaderValue::from_str(&format!("0-{}", have.saturating_sub(1)))
                        .unwrap_or(HeaderValue::from_static("0-0")),
                )
            }
            CoreError::ManifestUnknown(r) => {
                ApiError::new(Code::ManifestUnknown).detail(serde_json::json!({ "reference": r }))
            }
            CoreError::NotAcceptable { .. } => ApiError::msg(Code::ManifestUnknown, e.to_string()),
            CoreError::ManifestInvalid(m) => ApiError::msg(Code::ManifestInvalid, m),
            CoreError::ManifestBlobUnknown(d) => ApiError::msg(
                Code::ManifestBlobUnknown,
                format!("manifest references unknown blob or manifest {d}"),
            )
            .detail(serde_json::json!({ "digest": d.to_string() })),
            CoreError::ManifestTooLarge { .. } => {
                ApiError::msg(Code::ManifestTooLarge, e.to_string())
            }
            CoreError::NameUnknown => ApiError::new(Code::NameUnknown),
            CoreError::ReadOnly => ApiError::msg(Code::ReadOnly, e.to_string()),
            CoreError::UploadBusy => {
                let mut busy = ApiError::msg(Code::Busy, e.to_string());
                busy.headers.push((
                    axum::http::header::RETRY_AFTER,
                    axum::http::HeaderValue::from_static("5"),
                ));
                busy
            }
            CoreError::DeleteDisabled => ApiError::msg(Code::MethodNotAllowed, e.to_string()),
            CoreError::TagExists { .. } | CoreError::BlobInUse { .. } => {
                ApiError::msg(Code::Denied, e.to_string())
            }
            CoreError::Storage(StorageError::Full {
                path,
                available,
                source,
            }) => {
                tracing::error!(
                    path = %path,
                    free_bytes = available,
                    error = %source,
                    "storage is full; nothing was stored, free space on the storage to accept writes again"
                );
                ApiError::msg(Code::StorageFull, full_message(available))
            }
            CoreError::Body(err) => {
                tracing::info!(error = %err, "client body failed");
                ApiError::msg(
                    Code::BlobUploadInvalid,
                    "the request body could not be read completely",
                )
            }
            CoreError::Storage(err) => {
                tracing::error!(error = %err, "storage failure");
                ApiError::new(Code::Unknown)
            }
        }
    }
}

/// What a client is told when the storage is full: the cause, that nothing
/// partial was kept, and the fix.
fn full_message(available: Option<u64>) -> String {
    let free = available.map_or_else(String::new, |n| format!(" ({n} bytes free)"));
    format!(
        "storage is full: the registry's storage has no free space left{free}, so nothing was \
         stored; free space on the registry's storage (or raise its quota) and retry"
    )
}

impl From<NameError> for ApiError {
    fn from(e: NameError) -> Self {
        ApiError::msg(Code::NameInvalid, e.to_string())
    }
}

impl From<DigestError> for ApiError {
    fn from(e: DigestError) -> Self {
        ApiError::msg(Code::DigestInvalid, e.to_string())
    }
}

impl From<ReferenceError> for ApiError {
    fn from(e: ReferenceError) -> Self {
        match e {
            ReferenceError::InvalidTag(_) => ApiError::msg(Code::TagInvalid, e.to_string()),
            ReferenceError::Digest(d) => d.into(),
        }
    }
}
