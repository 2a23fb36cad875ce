//! `GET`, `HEAD`, `PUT` and `DELETE` on `/v2/<name>/manifests/<reference>`,
//! with content negotiation from `Accept`.

use axum::body::Body;
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, Limited};
use portcullis_types::{Reference, RepoName};

use super::{Ctx, hv};
use crate::error::{ApiError, Code};

pub(crate) async fn handle(
    ctx: &Ctx,
    name: &RepoName,
    reference: &Reference,
    body: Body,
) -> Result<Response, ApiError> {
    match ctx.method {
        Method::GET | Method::HEAD => get(ctx, name, reference).await,
        Method::PUT => put(ctx, name, reference, body).await,
        Method::DELETE => {
            // An immutable repository's manifest deletes were refused by
            // the authorization step.
            ctx.state.registry.delete_manifest(name, reference).await?;
            Ok((StatusCode::ACCEPTED, [(header::CONTENT_LENGTH, "0")]).into_response())
        }
        _ => Err(ApiError::new(Code::MethodNotAllowed)),
    }
}

/// The media types the client listed in `Accept` (all of them, across headers).
fn accepted(ctx: &Ctx) -> Vec<String> {
    ctx.headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.split(';').next().unwrap_or("").trim().to_owned())
        .filter(|t| !t.is_empty())
        .collect()
}

async fn get(ctx: &Ctx, name: &RepoName, reference: &Reference) -> Result<Response, ApiError> {
    let m = ctx
        .state
        .registry
        .get_manifest_for(name, reference, &accepted(ctx))
        .await?;
    let headers = [
        (header::CONTENT_TYPE, hv(&m.media_type)),
        (header::CONTENT_LENGTH, hv(&m.bytes.len().to_string())),
        (
            header::HeaderName::from_static("docker-content-digest"),
            hv(&m.digest.to_string()),
        ),
        (header::ETAG, hv(&format!("\"{}\"", m.digest))),
    ];
    if ctx.method == Method::HEAD {
        return Ok((StatusCode::OK, headers).into_response());
    }
    Ok((StatusCode::OK, headers, m.bytes).into_response())
}

async fn put(
    ctx: &Ctx,
    name: &RepoName,
    reference: &Reference,
    body: Body,
) -> Result<Response, ApiError> {
    let limit = ctx.state.registry.options().manifest_max_bytes;
    let too_large = || {
        ApiError::msg(
            Code::ManifestTooLarge,
            format!("manifest is larger than the {limit}-byte limit (portcullis.manifestmaxbytes)"),
        )
    };
    if let Some(len) = ctx
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
        && len > limit
    {
        return Err(too_large());
    }
    let cap = usize::try_from(limit).unwrap_or(usize::MAX);
    let bytes = match Limited::new(body, cap).collect().await {
        Ok(c) => c.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => return Err(too_large()),
        Err(_) => {
            return Err(ApiError::msg(
                Code::ManifestInvalid,
                "the manifest body could not be read",
            ));
        }
    };
    let content_type = ctx
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    // In an immutable repository a tag is created once: the check and the
    // write happen under one lock in core, so of two concurrent creations
    // exactly one wins. Pushing the same manifest again is a retry, allowed.
    let condition = if ctx.immutable {
        portcullis_core::TagCondition::AbsentOrSame
    } else {
        portcullis_core::TagCondition::Any
    };
    let out = ctx
        .state
        .registry
        .put_manifest_if(name, reference, content_type, bytes, condition)
        .await
        .map_err(|e| match e {
            portcullis_core::CoreError::TagExists { tag, digest } => immutable_denied(
                name,
                &format!("tag {tag} already exists (it names {digest}); push a new tag"),
            ),
            other => ApiError::from(other),
        })?;
    let location = ctx.url(&format!("/v2/{name}/manifests/{}", out.digest));
    let mut resp = (
        StatusCode::CREATED,
        [
            (header::LOCATION, hv(&location)),
            (
                header::HeaderName::from_static("docker-content-digest"),
                hv(&out.digest.to_string()),
            ),
            (header::CONTENT_LENGTH, hv("0")),
        ],
    )
        .into_response();
    if let Some(subject) = out.subject {
        resp.headers_mut()
            .insert("oci-subject", hv(&subject.to_string()));
    }
    Ok(resp)
}

/// A write that `access.immutable` refused in core (a tag that exists, a
/// blob a tag needs).
pub(crate) fn immutable_denied(name: &RepoName, what: &str) -> ApiError {
    ApiError::msg(Code::Denied, crate::access::immutable_denied(name, what))
}
