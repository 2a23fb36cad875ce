//! Token authentication in tests: configs for portcullis's built-in token
//! service (`auth.tokenserver`) and for distribution's `auth.token`, the
//! `portcullis` CLI, token requests, `WWW-Authenticate` challenges, and
//! blob and manifest uploads with a bearer token. JWTs made by hand live in
//! [`super::jwt`] and are re-exported here.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Output;

use reqwest::blocking::Response;
use serde_json::Value;

use super::oci::{self, OciImage, OciLayout};
use super::process::assert_success;
use super::registry::{Registry, RegistryConfig, RegistryKind, yaml_str};
use super::{http, write_htpasswd};

pub use super::jwt::{
    TestKey, b64url, claims, jwt_part, now_secs, repository, sign_hs256, sleep_until,
};

/// A user of the token service.
pub const ALICE: &str = "alice";
/// [`ALICE`]'s password; unusual enough to search for in files.
pub const ALICE_PASSWORD: &str = "alice-Xq7v-correct-horse";
/// A second user.
pub const BOB: &str = "bob";
/// [`BOB`]'s password.
pub const BOB_PASSWORD: &str = "bob-Zr4k-battery-staple";
/// portcullis's default `service` (the tokens' `aud`) and `issuer`.
pub const SERVICE: &str = "portcullis";

/// `auth.tokenserver` settings; each `None` keeps portcullis's default.
#[derive(Clone, Debug, Default)]
pub struct TokenServer {
    /// `expiration`, a Go duration such as `2s`.
    pub expiration: Option<&'static str>,
    /// `leeway`.
    pub leeway: Option<&'static str>,
    /// `uploadgrace`.
    pub uploadgrace: Option<&'static str>,
    /// `algorithm` of a generated key.
    pub algorithm: Option<&'static str>,
    /// `keys.signing`: the key and certificate PEM files.
    pub signing: Option<(PathBuf, PathBuf)>,
}

impl TokenServer {
    /// The body of the `auth:` section: users from `htpasswd`, and the
    /// token service.
    pub fn auth_yaml(&self, htpasswd: &Path) -> String {
        let mut yaml = format!(
            "  htpasswd:\n    realm: portcullis\n    path: {}\n  tokenserver:\n",
            yaml_str(htpasswd)
        );
        let mut any = false;
        for (key, value) in [
            ("expiration", self.expiration),
            ("leeway", self.leeway),
            ("uploadgrace", self.uploadgrace),
            ("algorithm", self.algorithm),
        ] {
            if let Some(value) = value {
                writeln!(yaml, "    {key}: {value}").expect("write to String");
                any = true;
            }
        }
        if self.expiration.is_some() {
            // Tests of expiry use lifetimes Docker could not work with.
            yaml.push_str("    allowshortexpiration: true\n");
            any = true;
        }
        if let Some((key, cert)) = &self.signing {
            write!(
                yaml,
                "    keys:\n      signing:\n        key: {}\n        certificate: {}\n",
                yaml_str(key),
                yaml_str(cert)
            )
            .expect("write to String");
            any = true;
        }
        if !any {
            yaml.push_str("    issuer: portcullis\n");
        }
        yaml
    }

    /// Starts portcullis with this token service, users [`ALICE`] and
    /// [`BOB`], deletes enabled, `http.host` set, and its data under `dir`.
    pub fn start(&self, dir: &Path) -> Registry {
        write_htpasswd(
            &dir.join("htpasswd"),
            &[(ALICE, ALICE_PASSWORD), (BOB, BOB_PASSWORD)],
        );
        Registry::start(RegistryKind::Portcullis, &self.config(dir))
    }

    /// The configuration [`TokenServer::start`] uses: data in `dir/data`,
    /// users in `dir/htpasswd` (which this does not write).
    pub fn config(&self, dir: &Path) -> RegistryConfig {
        RegistryConfig::new(dir.join("data"))
            .delete_enabled(true)
            .http_host(true)
            .auth_yaml(self.auth_yaml(&dir.join("htpasswd")))
    }
}

/// The body of an `auth:` section with distribution's `auth.token`: trust
/// tokens from `issuer` for `service`, signed by a key of `bundle`
/// (`rootcertbundle`) or of `jwks`.
pub fn external_auth_yaml(
    realm: &str,
    service: &str,
    issuer: &str,
    bundle: Option<&Path>,
    jwks: Option<&Path>,
) -> String {
    let mut yaml =
        format!("  token:\n    realm: {realm}\n    service: {service}\n    issuer: {issuer}\n");
    if let Some(bundle) = bundle {
        writeln!(yaml, "    rootcertbundle: {}", yaml_str(bundle)).expect("write to String");
    }
    if let Some(jwks) = jwks {
        writeln!(yaml, "    jwks: {}", yaml_str(jwks)).expect("write to String");
    }
    yaml
}

/// Skips (with a message) when the e2e scenarios are pointed at the
/// reference registry: the built-in token service is portcullis's own.
pub fn portcullis_only() -> bool {
    if RegistryKind::under_test() == RegistryKind::Reference {
        eprintln!(
            "skipping: needs portcullis's token service (PORTCULLIS_TEST_REGISTRY=reference)"
        );
        return false;
    }
    true
}

/// Runs `portcullis ARGS... --config <registry's config.yml>`.
pub fn cli(registry: &Registry, args: &[&str]) -> Output {
    super::portcullis_cli(args, &registry.config_path())
}

/// [`cli`], panicking unless it succeeds; returns its stdout.
pub fn cli_ok(registry: &Registry, args: &[&str]) -> String {
    let out = cli(registry, args);
    assert_success(&format!("portcullis {}", args.join(" ")), &out);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The rows of `portcullis token list --json`: a JSON array, or the first
/// array found in a JSON object.
pub fn token_list(registry: &Registry) -> Vec<Value> {
    let printed = cli_ok(registry, &["token", "list", "--json"]);
    let value: Value = serde_json::from_str(&printed)
        .unwrap_or_else(|e| panic!("token list --json printed no JSON ({e}):\n{printed}"));
    match value {
        Value::Array(rows) => rows,
        Value::Object(map) => map
            .into_iter()
            .find_map(|(_, v)| match v {
                Value::Array(rows) => Some(rows),
                _ => None,
            })
            .unwrap_or_else(|| panic!("token list --json has no list:\n{printed}")),
        other => panic!("token list --json printed {other}"),
    }
}

/// The rows of [`token_list`] that belong to `user`.
pub fn tokens_of(registry: &Registry, user: &str) -> Vec<Value> {
    token_list(registry)
        .into_iter()
        .filter(|row| row["user"] == user)
        .collect()
}

/// What an HTTP response said, read once so that it can be shown in
/// assertion messages.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    /// `WWW-Authenticate`.
    pub challenge: Option<String>,
    pub content_type: Option<String>,
    pub location: Option<String>,
    pub digest: Option<String>,
    /// `Link` (pagination).
    pub link: Option<String>,
    pub body: Vec<u8>,
}

impl Reply {
    /// Reads `resp` to the end.
    pub fn read(resp: Response) -> Self {
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        };
        let status = resp.status().as_u16();
        let challenge = header("www-authenticate");
        let content_type = header("content-type");
        let location = header("location");
        let digest = header("docker-content-digest");
        let link = header("link");
        let body = resp.bytes().map(|b| b.to_vec()).unwrap_or_default();
        Self {
            status,
            challenge,
            content_type,
            location,
            digest,
            link,
            body,
        }
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics with the reply when it is not.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("response body is not JSON ({e}): {self}"))
    }

    /// Panics unless the status is `want`.
    #[track_caller]
    pub fn expect(&self, what: &str, want: u16) -> &Self {
        assert_eq!(self.status, want, "{what}: expected {want}, got {self}");
        self
    }
}

impl std::fmt::Display for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut body = self.text();
        if body.len() > 600 {
            body.truncate(600);
            body.push_str("...");
        }
        write!(
            f,
            "HTTP {} (WWW-Authenticate: {:?}, Content-Type: {:?}) {body}",
            self.status, self.challenge, self.content_type
        )
    }
}

/// `GET /token` with `query`, and Basic `creds` when given.
pub fn get_token(
    registry: &Registry,
    creds: Option<(&str, &str)>,
    query: &[(&str, &str)],
) -> Reply {
    let mut req = http().get(registry.url("/token")).query(query);
    if let Some((user, password)) = creds {
        req = req.basic_auth(user, Some(password));
    }
    Reply::read(req.send().expect("GET /token"))
}

/// `POST /token` with the form `form`.
pub fn post_token(registry: &Registry, form: &[(&str, &str)]) -> Reply {
    Reply::read(
        http()
            .post(registry.url("/token"))
            .form(form)
            .send()
            .expect("POST /token"),
    )
}

/// A token for `scopes` (`repository:NAME:ACTIONS`) from `GET /token`,
/// service [`SERVICE`]; panics unless that answers 200 with a token.
pub fn fetch_token(registry: &Registry, creds: Option<(&str, &str)>, scopes: &[&str]) -> String {
    let mut query = vec![("service", SERVICE)];
    query.extend(scopes.iter().map(|s| ("scope", *s)));
    let reply = get_token(registry, creds, &query);
    reply.expect(&format!("GET /token for {scopes:?}"), 200);
    let body = reply.json();
    let token = body["token"]
        .as_str()
        .unwrap_or_else(|| panic!("GET /token answered no `token`: {body}"))
        .to_owned();
    assert!(!token.is_empty(), "GET /token answered an empty token");
    token
}

/// `Bearer TOKEN`.
pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// Sends `method url` with `Authorization: Bearer token` (when given).
pub fn send(
    method: reqwest::Method,
    url: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: Option<Vec<u8>>,
) -> Reply {
    let mut req = http().request(method.clone(), url);
    if let Some(token) = token {
        req = req.header("Authorization", bearer(token));
    }
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    if let Some(body) = body {
        req = req.body(body);
    }
    Reply::read(req.send().unwrap_or_else(|e| panic!("{method} {url}: {e}")))
}

/// `location` (an upload URL from a `Location` header) made absolute.
pub fn absolute(registry: &Registry, location: &str) -> String {
    if location.starts_with("http://") || location.starts_with("https://") {
        location.to_owned()
    } else {
        registry.url(location)
    }
}

/// `url` with `key=value` added to its query.
pub fn with_query(url: &str, key: &str, value: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{key}={value}")
}

/// Opens an upload session in `repo`; returns the absolute upload URL.
pub fn open_upload(registry: &Registry, repo: &str, token: &str) -> String {
    let reply = send(
        reqwest::Method::POST,
        &registry.url(&format!("/v2/{repo}/blobs/uploads/")),
        Some(token),
        &[],
        None,
    );
    reply.expect(&format!("POST /v2/{repo}/blobs/uploads/"), 202);
    let location = reply
        .location
        .as_deref()
        .unwrap_or_else(|| panic!("upload POST answered no Location: {reply}"));
    absolute(registry, location)
}

/// Uploads `data` as a blob of `repo` (POST, then PUT with the whole body).
/// Returns its digest.
pub fn push_blob(registry: &Registry, repo: &str, token: &str, data: &[u8]) -> String {
    let digest = oci::sha256(data);
    let upload = open_upload(registry, repo, token);
    send(
        reqwest::Method::PUT,
        &with_query(&upload, "digest", &digest),
        Some(token),
        &[("Content-Type", "application/octet-stream")],
        Some(data.to_vec()),
    )
    .expect(&format!("PUT blob {digest} into {repo}"), 201);
    digest
}

/// Pushes `image` of `layout` (its layers, config and manifest) to
/// `repo:tag` over HTTP with `token`.
pub fn push_image(
    registry: &Registry,
    repo: &str,
    tag: &str,
    token: &str,
    layout: &OciLayout,
    image: &OciImage,
) {
    for digest in image.layers.iter().chain([&image.config_digest]) {
        let pushed = push_blob(registry, repo, token, &layout.blob(digest));
        assert_eq!(&pushed, digest);
    }
    let manifest = layout.blob(&image.manifest_digest);
    let reply = send(
        reqwest::Method::PUT,
        &registry.url(&format!("/v2/{repo}/manifests/{tag}")),
        Some(token),
        &[("Content-Type", oci::MANIFEST_TYPE)],
        Some(manifest),
    );
    reply.expect(&format!("PUT manifest {repo}:{tag}"), 201);
}

/// A parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone)]
pub struct Challenge {
    /// `Bearer`, `Basic`, ...
    pub scheme: String,
    pub params: BTreeMap<String, String>,
}

impl Challenge {
    /// Parses `Scheme k="v",k2="v2"` (quoted values may hold commas).
    pub fn parse(header: &str) -> Self {
        let header = header.trim();
        let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
        let mut params = BTreeMap::new();
        let mut chars = rest.chars().peekable();
        loop {
            while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
                chars.next();
            }
            let key: String = chars
                .by_ref()
                .take_while(|c| *c != '=')
                .collect::<String>()
                .trim()
                .to_ascii_lowercase();
            if key.is_empty() {
                break;
            }
            let mut value = String::new();
            if chars.peek() == Some(&'"') {
                chars.next();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => value.extend(chars.next()),
                        '"' => break,
                        c => value.push(c),
                    }
                }
            } else {
                value = chars.by_ref().take_while(|c| *c != ',').collect();
            }
            params.insert(key, value.trim().to_owned());
        }
        Self {
            scheme: scheme.to_owned(),
            params,
        }
    }

    /// The value of `name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }

    /// The `scope` parameter as `(type, name, actions)` entries.
    pub fn scopes(&self) -> BTreeSet<(String, String, BTreeSet<String>)> {
        parse_scopes(self.param("scope").unwrap_or_default())
    }
}

/// `repository:a:pull,push repository:b:pull` as a set of
/// `(type, name, actions)`; the order of entries and actions is ignored.
pub fn parse_scopes(scopes: &str) -> BTreeSet<(String, String, BTreeSet<String>)> {
    scopes
        .split_whitespace()
        .map(|scope| {
            let (rest, actions) = scope
                .rsplit_once(':')
                .unwrap_or_else(|| panic!("scope {scope:?} has no actions"));
            let (kind, name) = rest
                .split_once(':')
                .unwrap_or_else(|| panic!("scope {scope:?} has no type"));
            (
                kind.to_owned(),
                name.to_owned(),
                actions.split(',').map(str::to_owned).collect(),
            )
        })
        .collect()
}

/// Why `reply` is not a 401 with a JSON error body and a Bearer challenge
/// whose `error` is `error` (`invalid_token`, `insufficient_scope`) or
/// absent (`None`); the parsed challenge when it is. `insufficient_scope`
/// may also be RFC 6750's 403: portcullis answers so when a new token with
/// the challenge's scope would be granted.
pub fn check_refused(reply: &Reply, error: Option<&str>) -> Result<Challenge, String> {
    let forbidden_ok = error == Some("insufficient_scope") && reply.status == 403;
    if reply.status != 401 && !forbidden_ok {
        return Err(format!("expected 401, got {reply}"));
    }
    let Some(header) = reply.challenge.as_deref() else {
        return Err(format!("401 without WWW-Authenticate: {reply}"));
    };
    let challenge = Challenge::parse(header);
    if !challenge.scheme.eq_ignore_ascii_case("bearer") {
        return Err(format!("expected a Bearer challenge, got {header:?}"));
    }
    if challenge.param("realm").is_none_or(str::is_empty) || challenge.param("service").is_none() {
        return Err(format!("the challenge lacks realm or service: {header:?}"));
    }
    if challenge.param("error") != error {
        return Err(format!(
            "expected error={error:?} in the challenge, got {header:?}"
        ));
    }
    let body: Value = serde_json::from_slice(&reply.body)
        .map_err(|e| format!("the 401 body is not JSON ({e}): {reply}"))?;
    let code = body["errors"][0]["code"].as_str().unwrap_or_default();
    let codes: &[&str] = if error == Some("insufficient_scope") {
        &["UNAUTHORIZED", "DENIED"]
    } else {
        &["UNAUTHORIZED"]
    };
    if !codes.contains(&code) {
        return Err(format!("expected an error code in {codes:?}, got {reply}"));
    }
    Ok(challenge)
}

/// Panics unless [`check_refused`] is happy; returns the challenge.
#[track_caller]
pub fn assert_refused(what: &str, reply: &Reply, error: Option<&str>) -> Challenge {
    check_refused(reply, error).unwrap_or_else(|why| panic!("{what}: {why}"))
}

/// `{"type":"repository",...}` entries granted by a token, as a set of
/// `(name, actions)`.
pub fn granted(token: &str) -> BTreeSet<(String, BTreeSet<String>)> {
    let claims = jwt_part(token, 1);
    match &claims["access"] {
        Value::Null => BTreeSet::new(),
        Value::Array(entries) => entries
            .iter()
            .filter(|e| !e["actions"].as_array().is_none_or(Vec::is_empty))
            .map(|e| {
                assert_eq!(e["type"], "repository", "unexpected access entry {e}");
                (
                    e["name"].as_str().expect("access name").to_owned(),
                    e["actions"]
                        .as_array()
                        .expect("actions")
                        .iter()
                        .map(|a| a.as_str().expect("action").to_owned())
                        .collect(),
                )
            })
            .collect(),
        other => panic!("`access` is neither a list nor null: {other}"),
    }
}

/// `{name: actions}` as [`granted`] returns it.
pub fn grants(entries: &[(&str, &[&str])]) -> BTreeSet<(String, BTreeSet<String>)> {
    entries
        .iter()
        .map(|(name, actions)| {
            (
                (*name).to_owned(),
                actions.iter().map(|a| (*a).to_owned()).collect(),
            )
        })
        .collect()
}

/// The content of `GET /.well-known/jwks.json`.
pub fn jwks(registry: &Registry) -> Value {
    let reply = send(
        reqwest::Method::GET,
        &registry.url("/.well-known/jwks.json"),
        None,
        &[],
        None,
    );
    reply.expect("GET /.well-known/jwks.json", 200);
    reply.json()
}

/// The `kid`s of [`jwks`].
pub fn jwks_kids(registry: &Registry) -> Vec<String> {
    jwks(registry)["keys"]
        .as_array()
        .expect("JWKS has keys")
        .iter()
        .map(|k| k["kid"].as_str().expect("JWKS key has a kid").to_owned())
        .collect()
}
