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
            check_immutable(ctx, name, reference, None).await?;
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
    check_immutable(ctx, name, reference, Some(&bytes)).await?;
    let content_type = ctx
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let out = ctx
        .state
        .registry
        .put_manifest(name, reference, content_type, bytes)
        .await?;
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

/// `access.immutable`: in these repositories an existing tag cannot be moved
/// to another manifest, and manifests cannot be deleted. Pushing the same
/// manifest to the same tag again is allowed (clients retry).
async fn check_immutable(
    ctx: &Ctx,
    name: &RepoName,
    reference: &Reference,
    new: Option<&[u8]>,
) -> Result<(), ApiError> {
    if !ctx.state.enforce_policy
        || !ctx
            .state
            .access
            .policy
            .current()
            .is_immutable(name.as_str())
    {
        return Ok(());
    }
    let denied = |what: &str| {
        ApiError::msg(
            Code::Denied,
            format!("{name} is immutable (access.immutable): {what}"),
        )
    };
    match (reference, new) {
        (_, None) => Err(denied("its manifests and tags cannot be deleted")),
        (Reference::Digest(_), Some(_)) => Ok(()),
        (Reference::Tag(tag), Some(bytes)) => {
            match ctx.state.registry.resolve(name, reference).await {
                Ok(existing) => {
                    let incoming = portcullis_core::digest_of(existing.algorithm(), bytes);
                    if existing == incoming {
                        Ok(())
                    } else {
                        Err(denied(&format!("tag {tag} already exists; push a new tag")))
                    }
                }
                Err(_) => Ok(()),
            }
        }
    }
}
