//! Listings: `/v2/_catalog`, `/v2/<name>/tags/list` (both paginated with
//! `n`/`last` and a `Link` header), and `/v2/<name>/referrers/<digest>`.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use portcullis_auth::access;
use portcullis_auth::policy::Action;
use portcullis_core::Page;
use portcullis_types::{Digest, MediaType, RepoName};

use super::{Ctx, hv};
use crate::error::{ApiError, Code};

fn page_params(ctx: &Ctx) -> Result<(Option<usize>, Option<String>), ApiError> {
    let n = match ctx.param("n") {
        None => None,
        Some(s) => Some(s.parse::<usize>().map_err(|_| {
            ApiError::msg(
                Code::PaginationNumberInvalid,
                format!(
                    "n must be a non-negative integer, got `{}`",
                    s.chars().take(40).collect::<String>()
                ),
            )
        })?),
    };
    Ok((n, ctx.param("last").map(str::to_owned)))
}

fn link(ctx: &Ctx, path: &str, n: Option<usize>, page: &Page<String>) -> Option<String> {
    if !page.more {
        return None;
    }
    let last = page.items.last()?;
    let mut q = form_urlencoded::Serializer::new(String::new());
    if let Some(n) = n {
        q.append_pair("n", &n.to_string());
    }
    q.append_pair("last", last);
    Some(format!("<{}?{}>; rel=\"next\"", ctx.url(path), q.finish()))
}

fn json_page(body: serde_json::Value, link: Option<String>) -> Response {
    let mut resp = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response();
    if let Some(l) = link {
        resp.headers_mut().insert(header::LINK, hv(&l));
    }
    resp
}

pub(crate) async fn catalog(ctx: &Ctx) -> Result<Response, ApiError> {
    let (n, last) = page_params(ctx)?;
    let max = ctx.state.catalog_max;
    let n = n.unwrap_or(max).min(max);
    let page = if ctx.state.enforce_policy {
        // Only what the caller may pull, read from the index ranges under the
        // policy's prefixes for this caller when it can name them.
        let policy = ctx.state.access.policy.current();
        let identity = &crate::auth::policy_identity(&ctx.state, &ctx.caller).await;
        let prefixes = policy.pull_prefixes(&access::principal(identity));
        let visible = |repo: &str| access::allows(&policy, identity, repo, Action::Pull);
        ctx.state
            .registry
            .catalog(n, last.as_deref(), prefixes.as_deref(), visible)
            .await?
    } else {
        ctx.state
            .registry
            .catalog(n, last.as_deref(), None, |_| true)
            .await?
    };
    let link = link(ctx, "/v2/_catalog", Some(n), &page);
    Ok(json_page(
        serde_json::json!({ "repositories": page.items }),
        link,
    ))
}

pub(crate) async fn tags(ctx: &Ctx, name: &RepoName) -> Result<Response, ApiError> {
    let (n, last) = page_params(ctx)?;
    let page = ctx
        .state
        .registry
        .list_tags(name, n, last.as_deref())
        .await?;
    let link = link(ctx, &format!("/v2/{name}/tags/list"), n, &page);
    Ok(json_page(
        serde_json::json!({ "name": name.as_str(), "tags": page.items }),
        link,
    ))
}

pub(crate) async fn referrers(
    ctx: &Ctx,
    name: &RepoName,
    subject: &Digest,
) -> Result<Response, ApiError> {
    let artifact_type = ctx.param("artifactType");
    let r = ctx
        .state
        .registry
        .referrers(name, subject, artifact_type)
        .await?;
    let body = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MediaType::OCI_INDEX,
        "manifests": r.manifests,
    });
    let mut resp = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, MediaType::OCI_INDEX)],
        body.to_string(),
    )
        .into_response();
    if r.filtered_by_artifact_type {
        resp.headers_mut()
            .insert("oci-filters-applied", hv("artifactType"));
    }
    Ok(resp)
}
