//! Per-repository authorization in tests: the policy of issue 4, a registry
//! that enforces it in Basic (htpasswd) or token mode, callers that talk to
//! it over HTTP the way each mode wants (Basic credentials, or a token asked
//! for the request's scope first), small random images pushed by hand, what
//! a refusal must look like in each mode; robot tokens made with
//! `portcullis token create` are in [`super::robots`], re-exported here.

use std::fmt::Write as _;
use std::path::Path;

use reqwest::Method;
use serde_json::{Value, json};

use super::oci::{self, CONFIG_TYPE, LAYER_TYPE, MANIFEST_TYPE};
use super::registry::{Registry, RegistryConfig, RegistryKind, yaml_str};
use super::token::{self, ALICE, ALICE_PASSWORD, BOB, BOB_PASSWORD, Reply, TokenServer};
use super::{http, random_bytes, write_htpasswd};

pub use super::robots::{Robot, create_robot};

/// A user with no group.
pub const CAROL: &str = "carol";
/// [`CAROL`]'s password.
pub const CAROL_PASSWORD: &str = "carol-Wp2m-tabletop-lamp";
/// The user the policy gives everything.
pub const ADMIN: &str = "admin";
/// [`ADMIN`]'s password.
pub const ADMIN_PASSWORD: &str = "admin-Ke9d-orbit-velvet";

/// Every htpasswd user of the policy registries.
pub const USERS: [(&str, &str); 4] = [
    (ALICE, ALICE_PASSWORD),
    (BOB, BOB_PASSWORD),
    (CAROL, CAROL_PASSWORD),
    (ADMIN, ADMIN_PASSWORD),
];

/// The policy of issue 4 (plus immutable `release/**` tags), as the keys
/// under `access:`. `alice` and `bob` are devs; `bob` is denied
/// `team/secret/**`; everyone owns `${user}/**`; `admin` may do anything.
pub const POLICY_BODY: &str = "\
groups:
  devs: [alice, bob]
immutable: [\"release/**\"]
rules:
  - subjects: [anonymous]
    repositories: [\"public/**\"]
    actions: [pull]
  - subjects: [\"group:devs\"]
    repositories: [\"team/**\"]
    actions: [pull, push]
  - subjects: [authenticated]
    repositories: [\"${user}/**\"]
    actions: [pull, push, delete]
  - subjects: [\"user:admin\"]
    repositories: [\"**\"]
    actions: [\"*\"]
  - subjects: [\"user:bob\"]
    repositories: [\"team/secret/**\"]
    actions: [pull, push]
    effect: deny
";

/// `access:` with [`POLICY_BODY`] inline, ready to append to a config.
pub fn inline_policy() -> String {
    inline_access(POLICY_BODY)
}

/// `access:` with `body` (unindented policy keys) indented under it.
pub fn inline_access(body: &str) -> String {
    let mut out = String::from("access:\n");
    for line in body.lines() {
        if line.is_empty() {
            out.push('\n');
        } else {
            writeln!(out, "  {line}").expect("write to String");
        }
    }
    out
}

/// `access: {path: FILE}`: a policy kept in its own file.
pub fn access_path(file: &Path) -> String {
    format!("access:\n  path: {}\n", yaml_str(file))
}

/// How the registry authenticates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `auth.htpasswd` alone: Basic credentials on every request.
    Basic,
    /// `auth.htpasswd` plus `auth.tokenserver`: bearer tokens from `/token`.
    Token,
}

impl Mode {
    /// Both modes, for tests that must hold in each.
    pub const BOTH: [Self; 2] = [Self::Basic, Self::Token];

    /// The body of the `auth:` section for users in `htpasswd`.
    pub fn auth_yaml(self, htpasswd: &Path) -> String {
        match self {
            Self::Basic => format!(
                "  htpasswd:\n    realm: portcullis-test\n    path: {}\n",
                yaml_str(htpasswd)
            ),
            Self::Token => TokenServer::default().auth_yaml(htpasswd),
        }
    }

    /// `basic` or `token`, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Basic => "basic",
            Self::Token => "token",
        }
    }
}

/// The configuration of a policy registry: data in `dir/data`, users
/// [`USERS`] in `dir/htpasswd` (written by [`start`]), deletes enabled,
/// `extra` (an `access:` section, or nothing) appended.
pub fn config(mode: Mode, dir: &Path, extra: &str) -> RegistryConfig {
    let config = RegistryConfig::new(dir.join("data"))
        .delete_enabled(true)
        .http_host(true)
        .auth_yaml(mode.auth_yaml(&dir.join("htpasswd")));
    if extra.is_empty() {
        config
    } else {
        config.extra_yaml(extra)
    }
}

/// Starts portcullis in `mode` with [`USERS`] and `extra` (see [`config`]).
pub fn start(mode: Mode, dir: &Path, extra: &str) -> Registry {
    write_htpasswd(&dir.join("htpasswd"), &USERS);
    Registry::start(RegistryKind::Portcullis, &config(mode, dir, extra))
}

/// Who makes a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Who {
    /// No credentials at all.
    Anonymous,
    /// A login name and its password (a user's, or a robot's secret).
    Login { name: String, password: String },
}

impl Who {
    /// `name` with `password`.
    pub fn login(name: &str, password: &str) -> Self {
        Self::Login {
            name: name.to_owned(),
            password: password.to_owned(),
        }
    }

    /// The htpasswd user `name` of [`USERS`].
    pub fn user(name: &str) -> Self {
        let password = USERS
            .iter()
            .find(|(user, _)| *user == name)
            .unwrap_or_else(|| panic!("{name} is not one of the test users"))
            .1;
        Self::login(name, password)
    }

    /// Its login name, or `anonymous`.
    pub fn name(&self) -> &str {
        match self {
            Self::Anonymous => "anonymous",
            Self::Login { name, .. } => name,
        }
    }

    /// Basic credentials, if any.
    pub fn creds(&self) -> Option<(&str, &str)> {
        match self {
            Self::Anonymous => None,
            Self::Login { name, password } => Some((name, password)),
        }
    }
}

/// `repository:REPO:ACTIONS`.
pub fn repo_scope(repo: &str, actions: &str) -> String {
    format!("repository:{repo}:{actions}")
}

/// The scope of `GET /v2/_catalog`.
pub const CATALOG_SCOPE: &str = "registry:catalog:*";

/// A small image made by hand: one random layer, a config, a manifest.
#[derive(Clone, Debug)]
pub struct Image {
    pub config: Vec<u8>,
    pub config_digest: String,
    pub layer: Vec<u8>,
    pub layer_digest: String,
    pub manifest: Vec<u8>,
    /// The manifest's digest.
    pub digest: String,
}

impl Image {
    /// A new image whose every blob differs from any other image's.
    pub fn random(label: &str) -> Self {
        let config = json!({
            "architecture": "amd64",
            "os": "linux",
            "config": {"Env": [format!("PORTCULLIS_TEST={label}-{}", hex::encode(random_bytes(8)))]},
            "rootfs": {"type": "layers", "diff_ids": [oci::sha256(b"not a real tar")]},
        })
        .to_string()
        .into_bytes();
        let layer = random_bytes(2048);
        let config_digest = oci::sha256(&config);
        let layer_digest = oci::sha256(&layer);
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "config": {"mediaType": CONFIG_TYPE, "digest": config_digest, "size": config.len()},
            "layers": [{"mediaType": LAYER_TYPE, "digest": layer_digest, "size": layer.len()}],
        })
        .to_string()
        .into_bytes();
        let digest = oci::sha256(&manifest);
        Self {
            config,
            config_digest,
            layer,
            layer_digest,
            manifest,
            digest,
        }
    }
}

/// A caller of one registry: who, and in which mode the registry runs.
pub struct Caller<'a> {
    pub registry: &'a Registry,
    pub mode: Mode,
    pub who: Who,
}

impl<'a> Caller<'a> {
    /// `who` calling `registry`, which runs in `mode`.
    pub fn new(registry: &'a Registry, mode: Mode, who: Who) -> Self {
        Self {
            registry,
            mode,
            who,
        }
    }

    /// A token for `scopes` from `GET /token` (with the caller's Basic
    /// credentials, none for anonymous), or the refusal.
    pub fn try_token(&self, scopes: &[String]) -> Result<String, Box<Reply>> {
        let mut query = vec![("service", token::SERVICE)];
        query.extend(scopes.iter().map(|s| ("scope", s.as_str())));
        let reply = token::get_token(self.registry, self.who.creds(), &query);
        if reply.status != 200 {
            return Err(Box::new(reply));
        }
        let body = reply.json();
        match body["token"].as_str() {
            Some(t) if !t.is_empty() => Ok(t.to_owned()),
            _ => Err(Box::new(reply)),
        }
    }

    /// [`Caller::try_token`], panicking on a refusal.
    pub fn token(&self, scopes: &[String]) -> String {
        self.try_token(scopes).unwrap_or_else(|reply| {
            panic!("GET /token as {} for {scopes:?}: {reply}", self.who.name())
        })
    }

    /// What a token for `scopes` grants (`(name, actions)` entries).
    pub fn granted(
        &self,
        scopes: &[String],
    ) -> std::collections::BTreeSet<(String, std::collections::BTreeSet<String>)> {
        token::granted(&self.token(scopes))
    }

    /// Sends `method url`: in Basic mode with the caller's credentials; in
    /// token mode with a token asked for `scopes` first (a refused token
    /// request is returned as the reply).
    pub fn send_url(
        &self,
        method: Method,
        url: &str,
        scopes: &[String],
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Reply {
        let mut req = http().request(method.clone(), url);
        match self.mode {
            Mode::Basic => {
                if let Some((name, password)) = self.who.creds() {
                    req = req.basic_auth(name, Some(password));
                }
            }
            Mode::Token => match self.try_token(scopes) {
                Ok(t) => req = req.bearer_auth(t),
                Err(reply) => return *reply,
            },
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        if let Some(body) = body {
            req = req.body(body);
        }
        Reply::read(req.send().unwrap_or_else(|e| panic!("{method} {url}: {e}")))
    }

    /// [`Caller::send_url`] on the registry's `path`.
    pub fn send(
        &self,
        method: Method,
        path: &str,
        scopes: &[String],
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Reply {
        self.send_url(method, &self.registry.url(path), scopes, headers, body)
    }

    /// `GET /v2/REPO/manifests/REFERENCE` (pull).
    pub fn pull(&self, repo: &str, reference: &str) -> Reply {
        self.send(
            Method::GET,
            &format!("/v2/{repo}/manifests/{reference}"),
            &[repo_scope(repo, "pull")],
            &[("Accept", MANIFEST_TYPE)],
            None,
        )
    }

    /// `HEAD /v2/REPO/blobs/DIGEST` (pull).
    pub fn head_blob(&self, repo: &str, digest: &str) -> Reply {
        self.send(
            Method::HEAD,
            &format!("/v2/{repo}/blobs/{digest}"),
            &[repo_scope(repo, "pull")],
            &[],
            None,
        )
    }

    /// `GET /v2/REPO/blobs/DIGEST` (pull).
    pub fn get_blob(&self, repo: &str, digest: &str) -> Reply {
        self.send(
            Method::GET,
            &format!("/v2/{repo}/blobs/{digest}"),
            &[repo_scope(repo, "pull")],
            &[],
            None,
        )
    }

    /// `GET /v2/REPO/tags/list` (pull).
    pub fn tags(&self, repo: &str) -> Reply {
        self.send(
            Method::GET,
            &format!("/v2/{repo}/tags/list"),
            &[repo_scope(repo, "pull")],
            &[],
            None,
        )
    }

    /// `DELETE /v2/REPO/manifests/REFERENCE` (delete).
    pub fn delete_manifest(&self, repo: &str, reference: &str) -> Reply {
        self.send(
            Method::DELETE,
            &format!("/v2/{repo}/manifests/{reference}"),
            &[repo_scope(repo, "delete")],
            &[],
            None,
        )
    }

    /// `GET /v2/_catalog` with `query` (such as `?n=1`, or empty).
    pub fn catalog(&self, query: &str) -> Reply {
        self.send(
            Method::GET,
            &format!("/v2/_catalog{query}"),
            &[CATALOG_SCOPE.to_owned()],
            &[],
            None,
        )
    }

    /// `POST /v2/REPO/blobs/uploads/` (pull and push).
    pub fn open_upload(&self, repo: &str) -> Reply {
        self.send(
            Method::POST,
            &format!("/v2/{repo}/blobs/uploads/"),
            &[repo_scope(repo, "pull,push")],
            &[],
            None,
        )
    }

    /// `POST /v2/REPO/blobs/uploads/?mount=DIGEST&from=FROM` (pull and push
    /// on `repo`, pull on `from`).
    pub fn mount(&self, repo: &str, digest: &str, from: &str) -> Reply {
        self.send(
            Method::POST,
            &format!("/v2/{repo}/blobs/uploads/?mount={digest}&from={from}"),
            &[repo_scope(repo, "pull,push"), repo_scope(from, "pull")],
            &[],
            None,
        )
    }

    /// Uploads `data` into `repo`: POST, then PUT with the whole body.
    /// Returns the first reply that was not what a successful upload
    /// answers.
    pub fn push_blob(&self, repo: &str, data: &[u8]) -> Result<(), Box<Reply>> {
        let opened = self.open_upload(repo);
        if opened.status != 202 {
            return Err(Box::new(opened));
        }
        let Some(location) = opened.location.as_deref() else {
            return Err(Box::new(opened));
        };
        let url = token::with_query(
            &token::absolute(self.registry, location),
            "digest",
            &oci::sha256(data),
        );
        let put = self.send_url(
            Method::PUT,
            &url,
            &[repo_scope(repo, "pull,push")],
            &[("Content-Type", "application/octet-stream")],
            Some(data.to_vec()),
        );
        if put.status != 201 {
            return Err(Box::new(put));
        }
        Ok(())
    }

    /// `PUT /v2/REPO/manifests/REFERENCE` with `image`'s manifest.
    pub fn put_manifest(&self, repo: &str, reference: &str, image: &Image) -> Reply {
        self.send(
            Method::PUT,
            &format!("/v2/{repo}/manifests/{reference}"),
            &[repo_scope(repo, "pull,push")],
            &[("Content-Type", MANIFEST_TYPE)],
            Some(image.manifest.clone()),
        )
    }

    /// Pushes `image` to `repo:tag` (its two blobs, then its manifest).
    /// On failure, names the step and shows its reply.
    pub fn push(&self, repo: &str, tag: &str, image: &Image) -> Result<(), Box<(String, Reply)>> {
        for (what, data) in [("config blob", &image.config), ("layer blob", &image.layer)] {
            self.push_blob(repo, data)
                .map_err(|reply| Box::new((format!("upload of the {what}"), *reply)))?;
        }
        let reply = self.put_manifest(repo, tag, image);
        if reply.status != 201 {
            return Err(Box::new((format!("PUT manifest {repo}:{tag}"), reply)));
        }
        Ok(())
    }

    /// [`Caller::push`], panicking on failure.
    #[track_caller]
    pub fn push_ok(&self, repo: &str, tag: &str, image: &Image) {
        if let Err(failed) = self.push(repo, tag, image) {
            let (step, reply) = *failed;
            panic!(
                "{} push of {repo}:{tag} as {}: {step}: {reply}",
                self.mode.name(),
                self.who.name()
            );
        }
    }

    /// Why `reply` is not how this caller's mode refuses this caller:
    /// Basic mode answers anonymous 401 with a Basic challenge and a user
    /// 403 `DENIED`; token mode answers 401 with a Bearer challenge,
    /// `error="insufficient_scope"` (the token service left the action out).
    pub fn check_refused(&self, reply: &Reply) -> Result<(), String> {
        match (self.mode, &self.who) {
            (Mode::Basic, Who::Anonymous) => check_basic_challenge(reply),
            (Mode::Basic, Who::Login { .. }) => check_denied(reply),
            (Mode::Token, _) => token::check_refused(reply, Some("insufficient_scope")).map(drop),
        }
    }
}

/// Why `reply` is not a 401 with a `Basic` challenge.
pub fn check_basic_challenge(reply: &Reply) -> Result<(), String> {
    if reply.status != 401 {
        return Err(format!("expected 401 with a Basic challenge, got {reply}"));
    }
    match reply.challenge.as_deref() {
        Some(c) if c.trim_start().to_ascii_lowercase().starts_with("basic") => Ok(()),
        other => Err(format!(
            "expected `WWW-Authenticate: Basic ...`, got {other:?}: {reply}"
        )),
    }
}

/// Why `reply` is not a 403 whose first error code is `DENIED`.
pub fn check_denied(reply: &Reply) -> Result<(), String> {
    if reply.status != 403 {
        return Err(format!("expected 403 DENIED, got {reply}"));
    }
    let body: Value = serde_json::from_slice(&reply.body)
        .map_err(|e| format!("the 403 body is not JSON ({e}): {reply}"))?;
    if body["errors"][0]["code"] != "DENIED" {
        return Err(format!("expected error code DENIED, got {reply}"));
    }
    Ok(())
}

/// The `next` URL of a `Link: <URL>; rel="next"` header, made absolute.
pub fn next_link(registry: &Registry, reply: &Reply) -> Option<String> {
    let link = reply.link.as_deref()?;
    let start = link.find('<')? + 1;
    let end = start + link[start..].find('>')?;
    Some(token::absolute(registry, &link[start..end]))
}

/// The `repositories` of a catalog page.
pub fn repositories(reply: &Reply) -> Result<Vec<String>, String> {
    let body: Value = serde_json::from_slice(&reply.body)
        .map_err(|e| format!("the catalog is not JSON ({e}): {reply}"))?;
    let list = body["repositories"]
        .as_array()
        .ok_or_else(|| format!("the catalog has no `repositories` list: {reply}"))?;
    list.iter()
        .map(|r| {
            r.as_str()
                .map(str::to_owned)
                .ok_or_else(|| format!("a repository name is not a string: {reply}"))
        })
        .collect()
}

/// The `tags` of a tag list.
pub fn tag_list(reply: &Reply) -> Result<Vec<String>, String> {
    let body: Value = serde_json::from_slice(&reply.body)
        .map_err(|e| format!("the tag list is not JSON ({e}): {reply}"))?;
    Ok(body["tags"]
        .as_array()
        .map(|tags| {
            tags.iter()
                .filter_map(|t| t.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default())
}
