//! `HEAD`, `GET` (with `Range`) and `DELETE` on `/v2/<name>/blobs/<digest>`.

use axum::body::Body;
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use portcullis_types::{Digest, RepoName};

use super::{Ctx, hv};
use crate::error::{ApiError, Code};

/// A byte range `[start, end]` (inclusive) inside a blob of `size` bytes.
fn parse_range(value: &str, size: u64) -> Result<(u64, u64), ()> {
    let spec = value.trim().strip_prefix("bytes=").ok_or(())?;
    if spec.contains(',') {
        return Err(());
    }
    let (a, b) = spec.split_once('-').ok_or(())?;
    let num = |s: &str| -> Result<u64, ()> {
        if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
            return Err(());
        }
        s.parse().map_err(|_| ())
    };
    let (start, end) = if a.is_empty() {
        let suffix = num(b)?;
        if suffix == 0 {
            return Err(());
        }
        (size.saturating_sub(suffix), size.saturating_sub(1))
    } else {
        let start = num(a)?;
        let end = if b.is_empty() {
            size.saturating_sub(1)
        } else {
            num(b)?.min(size.saturating_sub(1))
        };
        (start, end)
    };
    if start >= size || end < start {
        return Err(());
    }
    Ok((start, end))
}

pub(crate) async fn handle(
    ctx: &Ctx,
    name: &RepoName,
    digest: &Digest,
) -> Result<Response, ApiError> {
    let reg = &ctx.state.registry;
    if ctx.method == Method::DELETE {
        if ctx.immutable {
            // A release must keep pulling: a blob one of its tags needs stays.
            reg.delete_blob_unless_tagged(name, digest, |_| true)
                .await
                .map_err(|e| match e {
                    portcullis_core::CoreError::BlobInUse { digest, tag } => {
                        super::manifests::immutable_denied(
                            name,
                            &format!(
                                "blob {digest} is needed by tag {tag}, so it cannot be deleted"
                            ),
                        )
                    }
                    other => ApiError::from(other),
                })?;
        } else {
            reg.delete_blob(name, digest).await?;
        }
        return Ok((StatusCode::ACCEPTED, [(header::CONTENT_LENGTH, "0")]).into_response());
    }
    let size = reg.stat_blob(name, digest).await?;
    let range = match ctx.headers.get(header::RANGE) {
        Some(v) => {
            let parsed = v
                .to_str()
                .map_err(|_| ())
                .and_then(|s| parse_range(s, size));
            match parsed {
                Ok(r) => Some(r),
                Err(()) => {
                    return Err(ApiError::msg(
                        Code::RangeInvalid,
                        format!("the Range header is malformed or outside the blob's {size} bytes"),
                    )
                    .header(header::CONTENT_RANGE, hv(&format!("bytes */{size}"))));
                }
            }
        }
        None => None,
    };
    let (status, start, len) = match range {
        Some((s, e)) => (StatusCode::PARTIAL_CONTENT, s, e - s + 1),
        None => (StatusCode::OK, 0, size),
    };
    let mut builder = Response::builder()
        .status(status)
        .header(header::CONTENT_LENGTH, len)
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header("docker-content-digest", hv(&digest.to_string()))
        .header(header::ETAG, hv(&format!("\"{digest}\"")))
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CACHE_CONTROL, "max-age=31536000");
    if range.is_some() {
        builder = builder.header(
            header::CONTENT_RANGE,
            hv(&format!("bytes {start}-{}/{size}", start + len - 1)),
        );
    }
    let body = if ctx.method == Method::HEAD {
        Body::empty()
    } else {
        Body::from_stream(reg.blob_stream(name, digest, start, len).await?)
    };
    builder.body(body).map_err(|_| ApiError::new(Code::Unknown))
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Ok((0, 9)));
        assert_eq!(parse_range("bytes=90-", 100), Ok((90, 99)));
        assert_eq!(parse_range("bytes=-10", 100), Ok((90, 99)));
        assert_eq!(parse_range("bytes=50-500", 100), Ok((50, 99)));
        for bad in [
            "bytes=100-",
            "bytes=9-0",
            "0-9",
            "bytes=a-b",
            "bytes=0-1,3-4",
            "bytes=-0",
            "bytes=-",
        ] {
            assert!(parse_range(bad, 100).is_err(), "{bad}");
        }
    }
}
