//! Blob uploads: `POST /blobs/uploads/` (session, monolithic with `?digest=`,
//! or cross-repository mount), and `GET`/`PATCH`/`PUT`/`DELETE` on a session.

use axum::body::Body;
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use portcullis_types::{Digest, RepoName};

use super::{Ctx, body_stream, hv};
use crate::error::{ApiError, Code};

fn session_response(
    ctx: &Ctx,
    name: &RepoName,
    id: &str,
    size: u64,
    status: StatusCode,
) -> Response {
    let mut location = ctx.url(&format!("/v2/{name}/blobs/uploads/{id}"));
    if let Some(state) = ctx.upload_state(name, id) {
        let q: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("_state", &state)
            .finish();
        location = format!("{location}?{q}");
    }
    (
        status,
        [
            (header::LOCATION, hv(&location)),
            (header::RANGE, hv(&format!("0-{}", size.saturating_sub(1)))),
            (
                header::HeaderName::from_static("docker-upload-uuid"),
                hv(id),
            ),
            (header::CONTENT_LENGTH, hv("0")),
        ],
    )
        .into_response()
}

fn created(ctx: &Ctx, name: &RepoName, digest: &Digest) -> Response {
    let location = ctx.url(&format!("/v2/{name}/blobs/{digest}"));
    (
        StatusCode::CREATED,
        [
            (header::LOCATION, hv(&location)),
            (
                header::HeaderName::from_static("docker-content-digest"),
                hv(&digest.to_string()),
            ),
            (header::CONTENT_LENGTH, hv("0")),
        ],
    )
        .into_response()
}

fn digest_param(ctx: &Ctx) -> Result<Option<Digest>, ApiError> {
    ctx.param("digest")
        .map(|d| d.parse::<Digest>().map_err(ApiError::from))
        .transpose()
}

/// `Content-Range: <start>-<end>` of a chunk, checked against `Content-Length`.
fn content_range(ctx: &Ctx) -> Result<Option<u64>, ApiError> {
    let Some(v) = ctx.headers.get(header::CONTENT_RANGE) else {
        return Ok(None);
    };
    let bad = || {
        ApiError::msg(
            Code::RangeInvalid,
            "Content-Range must be `<start>-<end>` in bytes, continuing the upload",
        )
    };
    let s = v.to_str().map_err(|_| bad())?;
    let s = s.strip_prefix("bytes ").unwrap_or(s);
    let (a, b) = s.split_once('-').ok_or_else(bad)?;
    let num = |x: &str| -> Result<u64, ApiError> {
        if x.is_empty() || !x.bytes().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        x.parse().map_err(|_| bad())
    };
    let (start, end) = (num(a)?, num(b.split('/').next().unwrap_or(""))?);
    if end < start {
        return Err(bad());
    }
    if let Some(len) = content_length(ctx)?
        && len != end - start + 1
    {
        return Err(ApiError::msg(
            Code::RangeInvalid,
            "Content-Range does not match Content-Length",
        ));
    }
    Ok(Some(start))
}

fn content_length(ctx: &Ctx) -> Result<Option<u64>, ApiError> {
    ctx.headers
        .get(header::CONTENT_LENGTH)
        .map(|v| {
            v.to_str()
                .ok()
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or_else(|| ApiError::msg(Code::SizeInvalid, "Content-Length is not a number"))
        })
        .transpose()
}

pub(crate) async fn start(ctx: &Ctx, name: &RepoName, body: Body) -> Result<Response, ApiError> {
    let reg = &ctx.state.registry;
    if let Some(mount) = ctx.param("mount") {
        let digest: Digest = mount.parse()?;
        let from = match ctx.param("from") {
            Some(f) => Some(f.parse::<RepoName>()?),
            None => None,
        };
        if reg.mount_blob(name, &digest, from.as_ref()).await? {
            return Ok(created(ctx, name, &digest));
        }
    }
    if let Some(digest) = digest_param(ctx)? {
        let id = reg.start_upload(name).await?;
        let done = reg
            .complete_upload(name, &id, &digest, None, body_stream(body))
            .await;
        if let Err(e) = done {
            // A monolithic upload has no session the client could resume.
            let _ = reg.cancel_upload(name, &id).await;
            return Err(e.into());
        }
        return Ok(created(ctx, name, &digest));
    }
    let id = reg.start_upload(name).await?;
    Ok(session_response(ctx, name, &id, 0, StatusCode::ACCEPTED))
}

pub(crate) async fn handle(
    ctx: &Ctx,
    name: &RepoName,
    id: &str,
    body: Body,
) -> Result<Response, ApiError> {
    let reg = &ctx.state.registry;
    match ctx.method {
        Method::GET | Method::HEAD => {
            let st = reg.upload_status(name, id).await?;
            Ok(session_response(
                ctx,
                name,
                id,
                st.size,
                StatusCode::NO_CONTENT,
            ))
        }
        Method::PATCH => {
            let start = content_range(ctx)?;
            let st = reg
                .append_upload(name, id, start, body_stream(body))
                .await?;
            Ok(session_response(
                ctx,
                name,
                id,
                st.size,
                StatusCode::ACCEPTED,
            ))
        }
        Method::PUT => {
            let digest = digest_param(ctx)?.ok_or_else(|| {
                ApiError::msg(
                    Code::DigestInvalid,
                    "completing an upload needs ?digest=<algorithm:hex>",
                )
            })?;
            let start = content_range(ctx)?;
            reg.complete_upload(name, id, &digest, start, body_stream(body))
                .await?;
            Ok(created(ctx, name, &digest))
        }
        Method::DELETE => {
            reg.cancel_upload(name, id).await?;
            Ok((StatusCode::NO_CONTENT, [(header::CONTENT_LENGTH, "0")]).into_response())
        }
        _ => Err(ApiError::new(Code::MethodNotAllowed)),
    }
}
