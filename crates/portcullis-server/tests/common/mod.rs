//! Shared helpers for the in-process conformance suite: build the app over a
//! memory or filesystem driver, send requests with `oneshot`, and push blobs
//! and manifests the way a client would.

#![allow(
    dead_code,
    unused_imports,
    reason = "each test binary uses a different subset of the helpers"
)]

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode};
use bytes::Bytes;
use http_body_util::BodyExt;
use portcullis_core::{Options, Registry};
use portcullis_server::{AppState, AuthMode, UrlPolicy, app};
use portcullis_storage::{Driver, FsDriver, MemoryDriver};
pub use portcullis_testkit::oci::{
    DOCKER_MANIFEST, OCI_CONFIG, OCI_INDEX, OCI_LAYER, OCI_MANIFEST, sha256 as digest,
};
use tower::ServiceExt;

pub const EMPTY_DIGEST: &str =
    "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// A well-formed digest of content that nobody pushed.
pub fn absent_digest(seed: &str) -> String {
    digest(format!("never pushed: {seed}").as_bytes())
}

/// Options with deletion enabled.
pub fn delete_enabled() -> Options {
    Options {
        delete_enabled: true,
        ..Options::default()
    }
}

/// A response with its body read completely.
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Resp {
    /// A header as text; panics when it is missing.
    #[track_caller]
    pub fn header(&self, name: &str) -> &str {
        match self.headers.get(name) {
            Some(v) => v.to_str().expect("header is text"),
            None => panic!("response has no `{name}` header: {self:?}"),
        }
    }

    pub fn opt_header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// Asserts the status.
    #[track_caller]
    pub fn expect(&self, status: u16) -> &Self {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            String::from_utf8_lossy(&self.body)
        );
        self
    }

    /// Asserts an OCI error response: the status, a JSON content type, and a
    /// body `{"errors":[{"code":<code>,"message":<non-empty>}]}`.
    #[track_caller]
    pub fn expect_error(&self, status: u16, code: &str) -> &Self {
        self.expect(status);
        let ct = self.opt_header("content-type").unwrap_or_default();
        assert!(
            ct.starts_with("application/json"),
            "error content-type is `{ct}`"
        );
        let v = self.json();
        let errors = v["errors"]
            .as_array()
            .unwrap_or_else(|| panic!("no errors array: {v}"));
        assert!(!errors.is_empty(), "empty errors array: {v}");
        assert_eq!(errors[0]["code"], code, "wrong error code: {v}");
        let msg = errors[0]["message"]
            .as_str()
            .unwrap_or_else(|| panic!("no message: {v}"));
        assert!(!msg.is_empty(), "empty message: {v}");
        self
    }

    /// The first error's message.
    #[track_caller]
    pub fn error_message(&self) -> String {
        self.json()["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// `Location` reduced to path and query, so it can be requested in-process.
    #[track_caller]
    pub fn location(&self) -> String {
        path_of(self.header("location"))
    }
}

/// Strips `scheme://host` from an absolute URL.
pub fn path_of(url: &str) -> String {
    match url.split_once("://") {
        Some((_, rest)) => rest
            .find('/')
            .map_or_else(|| "/".to_owned(), |i| rest[i..].to_owned()),
        None => url.to_owned(),
    }
}

/// Appends a query parameter to a URL that may already have a query.
pub fn with_query(url: &str, kv: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{kv}")
}

/// A test registry: the router plus whatever keeps its storage alive.
#[derive(Clone)]
pub struct Reg {
    pub app: Router,
    pub driver: Arc<dyn Driver>,
    pub dir: Option<Arc<tempfile::TempDir>>,
}

/// Builds an app over `driver` without authentication.
pub fn app_over(driver: Arc<dyn Driver>, opts: Options) -> Router {
    state_app(driver, opts, AuthMode::None, HeaderMap::new())
}

/// distribution's default `catalog.maxentries`.
pub const CATALOG_MAX: usize = 1000;

pub fn state_app(
    driver: Arc<dyn Driver>,
    opts: Options,
    auth: AuthMode,
    headers: HeaderMap,
) -> Router {
    state_app_with_users(driver, opts, auth, None, headers)
}

/// [`state_app`] with htpasswd users (for `AuthMode::Basic`); the policy is
/// the default one (authenticated users may do everything).
pub fn state_app_with_users(
    driver: Arc<dyn Driver>,
    opts: Options,
    auth: AuthMode,
    users: Option<Arc<portcullis_auth::htpasswd::Htpasswd>>,
    headers: HeaderMap,
) -> Router {
    let enforce_policy = !matches!(auth, AuthMode::None);
    app(AppState {
        registry: Registry::new(driver, opts),
        auth,
        urls: UrlPolicy::default(),
        headers,
        access_log: false,
        metrics: None,
        catalog_max: CATALOG_MAX,
        token_service: None,
        access: open_access(users),
        enforce_policy,
        uploads: uploads(),
        events: portcullis_server::default_sinks(),
        cors: None,
        audit: None,
        notifier: None,
        abuse: Default::default(),
    })
}

fn uploads() -> portcullis_auth::upload::UploadStates {
    portcullis_auth::upload::UploadStates::new(b"test secret", std::time::Duration::from_secs(3600))
}

fn open_access(
    users: Option<Arc<portcullis_auth::htpasswd::Htpasswd>>,
) -> Arc<portcullis_auth::access::AccessControl> {
    use portcullis_auth::policy::{Policy, PolicyStore};
    Arc::new(portcullis_auth::access::AccessControl::new(
        Arc::new(PolicyStore::fixed(Policy::allow_all())),
        users,
        None,
    ))
}

/// An app without authentication, with a URL policy and a catalog page limit.
pub fn policy_app(driver: Arc<dyn Driver>, urls: UrlPolicy, catalog_max: usize) -> Router {
    app(AppState {
        registry: Registry::new(driver, Options::default()),
        auth: AuthMode::None,
        urls,
        headers: HeaderMap::new(),
        access_log: false,
        metrics: None,
        catalog_max,
        token_service: None,
        access: open_access(None),
        enforce_policy: false,
        events: portcullis_server::default_sinks(),
        uploads: uploads(),
        cors: None,
        audit: None,
        notifier: None,
        abuse: Default::default(),
    })
}

impl Reg {
    /// A registry in memory with default options (delete disabled).
    pub fn memory() -> Self {
        Self::memory_with(Options::default())
    }

    pub fn memory_with(opts: Options) -> Self {
        let driver: Arc<dyn Driver> = Arc::new(MemoryDriver::new());
        Self {
            app: app_over(driver.clone(), opts),
            driver,
            dir: None,
        }
    }

    /// A registry on the filesystem in a fresh temporary directory.
    pub fn fs_with(opts: Options) -> Self {
        let dir = Arc::new(tempfile::tempdir().expect("tempdir"));
        let driver: Arc<dyn Driver> = Arc::new(FsDriver::new(dir.path()));
        Self {
            app: app_over(driver.clone(), opts),
            driver,
            dir: Some(dir),
        }
    }

    /// Another app over the same storage (a restart, or different options).
    pub fn reopen(&self, opts: Options) -> Self {
        Self {
            app: app_over(self.driver.clone(), opts),
            driver: self.driver.clone(),
            dir: self.dir.clone(),
        }
    }

    /// A restart: a new driver and a new registry over the same directory
    /// (or the same memory driver), so no in-process state survives.
    pub fn restart(&self, opts: Options) -> Self {
        let driver: Arc<dyn Driver> = match &self.dir {
            Some(dir) => Arc::new(FsDriver::new(dir.path())),
            None => self.driver.clone(),
        };
        Self {
            app: app_over(driver.clone(), opts),
            driver,
            dir: self.dir.clone(),
        }
    }

    pub async fn send(&self, req: Request<Body>) -> Resp {
        send(&self.app, req).await
    }

    /// A request with headers and a body.
    pub async fn call(
        &self,
        method: Method,
        uri: &str,
        headers: &[(&str, &str)],
        body: impl Into<Body>,
    ) -> Resp {
        self.send(request(method, uri, headers, body)).await
    }

    pub async fn get(&self, uri: &str) -> Resp {
        self.call(Method::GET, uri, &[], Body::empty()).await
    }

    pub async fn head(&self, uri: &str) -> Resp {
        self.call(Method::HEAD, uri, &[], Body::empty()).await
    }

    pub async fn delete(&self, uri: &str) -> Resp {
        self.call(Method::DELETE, uri, &[], Body::empty()).await
    }

    pub async fn post(&self, uri: &str) -> Resp {
        self.call(Method::POST, uri, &[("content-length", "0")], Body::empty())
            .await
    }

    /// Opens an upload session and returns its Location path.
    pub async fn start_upload(&self, repo: &str) -> String {
        let r = self.post(&format!("/v2/{repo}/blobs/uploads/")).await;
        r.expect(202);
        r.location()
    }

    /// PATCH a chunk with `Content-Range: start-end`.
    pub async fn patch_chunk(&self, location: &str, start: usize, chunk: &[u8]) -> Resp {
        let range = format!("{start}-{}", start + chunk.len() - 1);
        let len = chunk.len().to_string();
        self.call(
            Method::PATCH,
            location,
            &[
                ("content-type", "application/octet-stream"),
                ("content-range", &range),
                ("content-length", &len),
            ],
            Bytes::copy_from_slice(chunk),
        )
        .await
    }

    /// Pushes a blob monolithically (POST then PUT) and returns its digest.
    pub async fn push_blob(&self, repo: &str, data: &[u8]) -> String {
        let d = digest(data);
        let loc = self.start_upload(repo).await;
        let len = data.len().to_string();
        let r = self
            .call(
                Method::PUT,
                &with_query(&loc, &format!("digest={d}")),
                &[
                    ("content-type", "application/octet-stream"),
                    ("content-length", &len),
                ],
                Bytes::copy_from_slice(data),
            )
            .await;
        r.expect(201);
        d
    }

    /// PUT a manifest.
    pub async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Resp {
        let len = bytes.len().to_string();
        self.call(
            Method::PUT,
            &format!("/v2/{repo}/manifests/{reference}"),
            &[("content-type", media_type), ("content-length", &len)],
            Bytes::copy_from_slice(bytes),
        )
        .await
    }

    /// Pushes a config and one layer, then an OCI manifest under `tag`.
    /// Returns the manifest's digest and bytes.
    pub async fn push_image(&self, repo: &str, tag: &str, seed: &str) -> (String, Vec<u8>) {
        let config = format!("{{\"architecture\":\"amd64\",\"os\":\"linux\",\"seed\":\"{seed}\"}}");
        let layer = format!("layer data for {seed}").repeat(10);
        let c = self.push_blob(repo, config.as_bytes()).await;
        let l = self.push_blob(repo, layer.as_bytes()).await;
        let m = image_manifest((&c, config.len()), &[(&l, layer.len())], "");
        let r = self.put_manifest(repo, tag, OCI_MANIFEST, &m).await;
        r.expect(201);
        let d = digest(&m);
        assert_eq!(r.header("docker-content-digest"), d);
        (d, m)
    }
}

pub async fn send(app: &Router, req: Request<Body>) -> Resp {
    let resp = app
        .clone()
        .oneshot(req)
        .await
        .expect("the router is infallible");
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.expect("response body").to_bytes();
    Resp {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

pub fn request(
    method: Method,
    uri: &str,
    headers: &[(&str, &str)],
    body: impl Into<Body>,
) -> Request<Body> {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .body(body.into())
        .expect("valid request");
    for (k, v) in headers {
        req.headers_mut().append(
            HeaderName::from_bytes(k.as_bytes()).expect("header name"),
            HeaderValue::from_str(v).expect("header value"),
        );
    }
    req
}

/// An OCI image manifest as compact JSON, with `extra` spliced in before the
/// closing brace (e.g. `,"subject":{...}`).
pub fn image_manifest(config: (&str, usize), layers: &[(&str, usize)], extra: &str) -> Vec<u8> {
    image_manifest_typed(OCI_CONFIG, config, layers, extra)
}

pub fn image_manifest_typed(
    config_type: &str,
    config: (&str, usize),
    layers: &[(&str, usize)],
    extra: &str,
) -> Vec<u8> {
    let layers: Vec<String> = layers
        .iter()
        .map(|(d, s)| format!("{{\"mediaType\":\"{OCI_LAYER}\",\"digest\":\"{d}\",\"size\":{s}}}"))
        .collect();
    format!(
        "{{\"schemaVersion\":2,\"mediaType\":\"{OCI_MANIFEST}\",\"config\":{{\"mediaType\":\"{config_type}\",\"digest\":\"{}\",\"size\":{}}},\"layers\":[{}]{extra}}}",
        config.0,
        config.1,
        layers.join(",")
    )
    .into_bytes()
}

/// An OCI index listing child manifests (digest, size).
pub fn index_manifest(children: &[(&str, usize)], extra: &str) -> Vec<u8> {
    let entries: Vec<String> = children
        .iter()
        .map(|(d, s)| {
            format!(
                "{{\"mediaType\":\"{OCI_MANIFEST}\",\"digest\":\"{d}\",\"size\":{s},\"platform\":{{\"architecture\":\"amd64\",\"os\":\"linux\"}}}}"
            )
        })
        .collect();
    format!(
        "{{\"schemaVersion\":2,\"mediaType\":\"{OCI_INDEX}\",\"manifests\":[{}]{extra}}}",
        entries.join(",")
    )
    .into_bytes()
}

/// `,"subject":{...}` for a manifest of `size` bytes.
pub fn subject_field(d: &str, size: usize) -> String {
    format!(",\"subject\":{{\"mediaType\":\"{OCI_MANIFEST}\",\"digest\":\"{d}\",\"size\":{size}}}")
}
