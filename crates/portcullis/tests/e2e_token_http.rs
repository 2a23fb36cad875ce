//! portcullis's built-in token service (`auth.tokenserver`) over plain HTTP:
//! the `/token` endpoints and their OAuth2 errors, the registry's Bearer
//! challenges, refresh tokens that die with a password change, and the
//! generated signing key with the `portcullis keys` CLI. Upload grace and
//! hostile tokens are in `e2e_token_verify.rs`.
//!
//! Needs `htpasswd` (apache2-utils). Skipped with
//! `PORTCULLIS_TEST_REGISTRY=reference`: the token service is portcullis's.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::Instant;

use common::oci;
use common::token::{
    self, ALICE, ALICE_PASSWORD, BOB, BOB_PASSWORD, SERVICE, TokenServer, assert_refused,
    fetch_token, get_token, granted, grants, jwt_part, post_token, send,
};
use reqwest::Method;
use serde_json::Value;

fn gate() -> bool {
    common::e2e_gate("htpasswd") && token::portcullis_only()
}

/// Panics unless `reply` is an OAuth2 error `code` with status `status`.
#[track_caller]
fn assert_oauth_error(what: &str, reply: &token::Reply, status: u16, code: &str) {
    reply.expect(what, status);
    let body: Value = serde_json::from_slice(&reply.body)
        .unwrap_or_else(|e| panic!("{what}: the error body is not JSON ({e}): {reply}"));
    assert_eq!(body["error"], code, "{what}: wrong OAuth2 error in {reply}");
}

#[test]
fn token_endpoints_grant_what_was_asked_and_refresh_tokens_are_not_rotated() {
    if !gate() {
        return;
    }
    let dir = common::temp_dir();
    let registry = TokenServer::default().start(dir.path());
    let alice = Some((ALICE, ALICE_PASSWORD));

    // GET /token with Basic and two scopes.
    let reply = get_token(
        &registry,
        alice,
        &[
            ("service", SERVICE),
            ("scope", "repository:grant/one:pull,push"),
            ("scope", "repository:grant/two:pull"),
            ("account", ALICE),
        ],
    );
    reply.expect("GET /token with Basic", 200);
    let body = reply.json();
    let access = body["token"].as_str().expect("token").to_owned();
    assert_eq!(
        body["access_token"], body["token"],
        "access_token != token: {body}"
    );
    assert_eq!(body["expires_in"], 300, "default expiration is 5m: {body}");
    assert!(
        body["issued_at"].as_str().is_some_and(|s| !s.is_empty()),
        "issued_at: {body}"
    );
    assert!(
        body.get("refresh_token").is_none(),
        "refresh token without offline_token: {body}"
    );
    assert_eq!(
        granted(&access),
        grants(&[("grant/one", &["pull", "push"]), ("grant/two", &["pull"])]),
        "access claim"
    );
    let header = jwt_part(&access, 0);
    let claims = jwt_part(&access, 1);
    assert_eq!(header["alg"], "ES256", "default algorithm: {header}");
    assert!(
        header["kid"].is_string() && header["x5c"].is_array(),
        "kid and x5c: {header}"
    );
    assert_eq!(claims["iss"], SERVICE, "{claims}");
    assert_eq!(
        claims["aud"], SERVICE,
        "aud is a plain string (distribution 2.8): {claims}"
    );
    assert_eq!(claims["sub"], ALICE, "{claims}");
    let (exp, iat, nbf) = (
        claims["exp"].as_u64().expect("exp"),
        claims["iat"].as_u64().expect("iat"),
        claims["nbf"].as_u64().expect("nbf"),
    );
    assert_eq!(exp - iat, 300, "{claims}");
    assert!(nbf <= token::now_secs() && claims["jti"].as_str().is_some_and(|j| !j.is_empty()));
    assert!(
        token::jwks_kids(&registry)
            .iter()
            .any(|k| header["kid"] == k.as_str()),
        "the token's kid is not in /.well-known/jwks.json"
    );
    // The token works on the registry: push a blob to grant/one.
    token::push_blob(&registry, "grant/one", &access, b"granted blob");

    // GET with offline_token: a refresh token comes along.
    let reply = get_token(
        &registry,
        alice,
        &[
            ("service", SERVICE),
            ("offline_token", "true"),
            ("client_id", "e2e-get"),
        ],
    );
    reply.expect("GET /token?offline_token=true", 200);
    assert!(
        reply.json()["refresh_token"]
            .as_str()
            .is_some_and(|t| !t.is_empty()),
        "no refresh_token with offline_token=true: {reply}"
    );

    // POST password grant with access_type=offline.
    let reply = post_token(
        &registry,
        &[
            ("grant_type", "password"),
            ("username", ALICE),
            ("password", ALICE_PASSWORD),
            ("client_id", "e2e-post"),
            ("access_type", "offline"),
            ("service", SERVICE),
            (
                "scope",
                "repository:grant/one:pull repository:grant/three:pull,push",
            ),
        ],
    );
    reply.expect("POST /token grant_type=password", 200);
    let body = reply.json();
    let refresh = body["refresh_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no refresh_token with access_type=offline: {body}"))
        .to_owned();
    assert_eq!(body["access_token"], body["token"], "{body}");
    assert!(
        body["scope"].is_string(),
        "POST /token answers the granted scope: {body}"
    );
    assert_eq!(
        granted(body["access_token"].as_str().expect("access_token")),
        grants(&[("grant/one", &["pull"]), ("grant/three", &["pull", "push"])])
    );

    // The refresh grant, twice with the same refresh token: not rotated.
    for round in 1..=2 {
        let reply = post_token(
            &registry,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &refresh),
                ("client_id", "e2e-post"),
                ("service", SERVICE),
                ("scope", "repository:grant/three:pull,push"),
            ],
        );
        reply.expect(
            &format!("POST /token grant_type=refresh_token (round {round})"),
            200,
        );
        let body = reply.json();
        if let Some(new) = body["refresh_token"].as_str() {
            assert_eq!(new, refresh, "the refresh token was rotated: {body}");
        }
        let access = body["access_token"].as_str().expect("access_token");
        assert_eq!(jwt_part(access, 1)["sub"], ALICE);
        assert_eq!(
            granted(access),
            grants(&[("grant/three", &["pull", "push"])])
        );
        token::push_blob(
            &registry,
            "grant/three",
            access,
            format!("round {round}").as_bytes(),
        );
    }
    // It is listed, without the secret.
    let listed = token::tokens_of(&registry, ALICE);
    assert!(
        listed.iter().any(|row| row["client_id"] == "e2e-post"),
        "token list shows no refresh token of client e2e-post: {listed:?}"
    );
    let printed = token::cli_ok(&registry, &["token", "list"]);
    assert!(
        !printed.contains(&refresh),
        "token list prints the refresh token itself"
    );
}

#[test]
fn token_endpoint_errors() {
    if !gate() {
        return;
    }
    let dir = common::temp_dir();
    let registry = TokenServer::default().start(dir.path());
    let scope = "repository:errors/app:pull,push";

    let reply = post_token(
        &registry,
        &[
            ("grant_type", "password"),
            ("username", ALICE),
            ("password", ALICE_PASSWORD),
            ("service", SERVICE),
            ("scope", scope),
        ],
    );
    assert_oauth_error(
        "POST /token without client_id",
        &reply,
        400,
        "invalid_request",
    );

    let reply = post_token(
        &registry,
        &[
            ("client_id", "e2e"),
            ("service", SERVICE),
            ("username", ALICE),
            ("password", ALICE_PASSWORD),
        ],
    );
    assert_oauth_error(
        "POST /token without grant_type",
        &reply,
        400,
        "invalid_request",
    );

    let reply = post_token(
        &registry,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "e2e"),
            ("service", SERVICE),
        ],
    );
    assert_oauth_error(
        "POST /token grant_type=client_credentials",
        &reply,
        400,
        "unsupported_grant_type",
    );

    let reply = post_token(
        &registry,
        &[
            ("grant_type", "password"),
            ("client_id", "e2e"),
            ("service", SERVICE),
            ("password", ALICE_PASSWORD),
        ],
    );
    assert_oauth_error(
        "POST /token password grant without username",
        &reply,
        400,
        "invalid_request",
    );

    for bogus in ["not-a-refresh-token", "", &"A".repeat(64)] {
        let reply = post_token(
            &registry,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", bogus),
                ("client_id", "e2e"),
                ("service", SERVICE),
                ("scope", scope),
            ],
        );
        let code = if bogus.is_empty() {
            ["invalid_request", "invalid_grant"]
        } else {
            ["invalid_grant"; 2]
        };
        reply.expect(&format!("POST /token with refresh_token {bogus:?}"), 400);
        assert!(
            code.iter().any(|c| reply.json()["error"] == *c),
            "refresh_token {bogus:?}: expected {code:?}, got {reply}"
        );
    }

    for (user, password) in [
        (ALICE, "wrong-password"),
        ("nobody", ALICE_PASSWORD),
        (BOB, ALICE_PASSWORD),
    ] {
        let reply = post_token(
            &registry,
            &[
                ("grant_type", "password"),
                ("username", user),
                ("password", password),
                ("client_id", "e2e"),
                ("service", SERVICE),
                ("scope", scope),
            ],
        );
        reply.expect(
            &format!("POST /token password grant as {user}/{password}"),
            401,
        );
        let reply = get_token(
            &registry,
            Some((user, password)),
            &[("service", SERVICE), ("scope", scope)],
        );
        reply.expect(&format!("GET /token with Basic {user}/{password}"), 401);
        assert!(
            !reply.text().contains("\"token\""),
            "a refused GET /token answered a token: {reply}"
        );
    }

    // Anonymous: a token, with nothing granted.
    let anonymous = fetch_token(&registry, None, &[scope, "repository:errors/other:pull"]);
    assert!(
        granted(&anonymous).is_empty(),
        "anonymous was granted {:?}",
        granted(&anonymous)
    );
    // ... and it cannot push or pull.
    let reply = send(
        Method::POST,
        &registry.url("/v2/errors/app/blobs/uploads/"),
        Some(&anonymous),
        &[],
        None,
    );
    assert_refused(
        "anonymous token opening an upload",
        &reply,
        Some("insufficient_scope"),
    );
    let reply = send(
        Method::GET,
        &registry.url("/v2/errors/app/tags/list"),
        Some(&anonymous),
        &[],
        None,
    );
    assert_refused(
        "anonymous token listing tags",
        &reply,
        Some("insufficient_scope"),
    );
}

#[test]
fn challenges_name_realm_service_and_the_scope_needed() {
    if !gate() {
        return;
    }
    let dir = common::temp_dir();
    let registry = TokenServer::default().start(dir.path());
    let realm = registry.url("/token");
    let digest = oci::sha256(b"mounted");

    let cases: &[(&str, Method, String, Option<&str>)] = &[
        ("GET /v2/", Method::GET, "/v2/".into(), None),
        (
            "GET manifest",
            Method::GET,
            "/v2/ch/app/manifests/latest".into(),
            Some("repository:ch/app:pull"),
        ),
        (
            "HEAD blob",
            Method::HEAD,
            format!("/v2/ch/app/blobs/{digest}"),
            Some("repository:ch/app:pull"),
        ),
        (
            "GET tags",
            Method::GET,
            "/v2/ch/app/tags/list".into(),
            Some("repository:ch/app:pull"),
        ),
        (
            "POST upload",
            Method::POST,
            "/v2/ch/app/blobs/uploads/".into(),
            Some("repository:ch/app:pull,push"),
        ),
        (
            "PUT manifest",
            Method::PUT,
            "/v2/ch/app/manifests/v1".into(),
            Some("repository:ch/app:pull,push"),
        ),
        (
            "DELETE manifest",
            Method::DELETE,
            format!("/v2/ch/app/manifests/{digest}"),
            Some("repository:ch/app:delete"),
        ),
        (
            "POST mount",
            Method::POST,
            format!("/v2/ch/app/blobs/uploads/?mount={digest}&from=ch/source"),
            Some("repository:ch/app:pull,push repository:ch/source:pull"),
        ),
        (
            "GET catalog",
            Method::GET,
            "/v2/_catalog".into(),
            Some("registry:catalog:*"),
        ),
    ];
    let mut failures = Vec::new();
    for (what, method, path, scope) in cases {
        let reply = send(
            method.clone(),
            &registry.url(path),
            None,
            &[],
            Some(Vec::new()),
        );
        // HEAD has no body: only the status and the header can be checked.
        let checked = if *method == Method::HEAD {
            if reply.status == 401 && reply.challenge.is_some() {
                Ok(token::Challenge::parse(
                    reply.challenge.as_deref().unwrap_or_default(),
                ))
            } else {
                Err(format!("expected 401 with a challenge, got {reply}"))
            }
        } else {
            token::check_refused(&reply, None)
        };
        match checked {
            Err(why) => failures.push(format!("anonymous {what}: {why}")),
            Ok(challenge) => {
                if challenge.param("realm") != Some(realm.as_str())
                    || challenge.param("service") != Some(SERVICE)
                    || challenge.scopes() != token::parse_scopes(scope.unwrap_or_default())
                {
                    failures.push(format!(
                        "anonymous {what}: expected realm={realm:?} service={SERVICE:?} scope={scope:?}, got {:?}",
                        reply.challenge
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "wrong challenges:\n{}",
        failures.join("\n")
    );

    // A token without the needed action: insufficient_scope, naming what is needed.
    let pull_only = fetch_token(
        &registry,
        Some((ALICE, ALICE_PASSWORD)),
        &["repository:ch/app:pull"],
    );
    let reply = send(
        Method::POST,
        &registry.url("/v2/ch/app/blobs/uploads/"),
        Some(&pull_only),
        &[],
        None,
    );
    let challenge = assert_refused(
        "pull-only token opening an upload",
        &reply,
        Some("insufficient_scope"),
    );
    assert_eq!(
        challenge.scopes(),
        token::parse_scopes("repository:ch/app:pull,push")
    );
    let other_repo = fetch_token(
        &registry,
        Some((ALICE, ALICE_PASSWORD)),
        &["repository:ch/other:pull,push"],
    );
    let reply = send(
        Method::GET,
        &registry.url("/v2/ch/app/tags/list"),
        Some(&other_repo),
        &[],
        None,
    );
    let challenge = assert_refused(
        "token for another repository",
        &reply,
        Some("insufficient_scope"),
    );
    assert_eq!(
        challenge.scopes(),
        token::parse_scopes("repository:ch/app:pull")
    );
    // The pull token does pull (404: nothing there yet, but not 401).
    let reply = send(
        Method::GET,
        &registry.url("/v2/ch/app/tags/list"),
        Some(&pull_only),
        &[],
        None,
    );
    reply.expect("pull token listing tags of an empty repository", 404);
}

/// Without `keys`, the first start generates a key (private file 0600) in
/// the data directory and keeps it across restarts; `keys list`, `keys
/// bundle` and `keys generate` work on it.
#[test]
fn generated_key_and_keys_cli() {
    if !gate() {
        return;
    }
    let dir = common::temp_dir();
    let server = TokenServer::default();
    let registry = server.start(dir.path());
    let first = fetch_token(
        &registry,
        Some((ALICE, ALICE_PASSWORD)),
        &["repository:keys/app:pull"],
    );
    let kid = jwt_part(&first, 0)["kid"].as_str().expect("kid").to_owned();

    let key_dir = dir.path().join("data/portcullis/keys");
    let mut private = Vec::new();
    for entry in
        std::fs::read_dir(&key_dir).unwrap_or_else(|e| panic!("{}: {e}", key_dir.display()))
    {
        let path = entry.expect("dir entry").path();
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        if text.contains("PRIVATE KEY") {
            let mode = path.metadata().expect("metadata").permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{} has mode {mode:o}", path.display());
            private.push(path);
        }
    }
    assert!(
        !private.is_empty(),
        "no private key file in {}",
        key_dir.display()
    );

    let listed = token::cli_ok(&registry, &["keys", "list", "--json"]);
    assert!(
        listed.contains(&kid),
        "keys list --json does not show {kid}:\n{listed}"
    );
    let bundle = token::cli_ok(&registry, &["keys", "bundle"]);
    let keys = portcullis_auth::token::Verifier::from_bundle_pem(&bundle)
        .unwrap_or_else(|e| panic!("keys bundle printed no usable PEM ({e}):\n{bundle}"));
    assert!(
        keys.iter().any(|k| k.kid() == kid),
        "keys bundle lacks {kid}"
    );

    let out_dir = dir.path().join("generated");
    std::fs::create_dir_all(&out_dir).expect("mkdir");
    token::cli_ok(
        &registry,
        &[
            "keys",
            "generate",
            "--algorithm",
            "RS256",
            "--out",
            out_dir.to_str().expect("UTF-8"),
        ],
    );
    let written: Vec<String> = std::fs::read_dir(&out_dir)
        .expect("read --out dir")
        .map(|e| std::fs::read_to_string(e.expect("entry").path()).unwrap_or_default())
        .collect();
    assert!(
        written.iter().any(|t| t.contains("PRIVATE KEY"))
            && written.iter().any(|t| t.contains("CERTIFICATE")),
        "keys generate --out wrote no key and certificate"
    );

    // A restart keeps the key: tokens from before still work.
    registry.stop();
    let registry = server.start(dir.path());
    send(
        Method::GET,
        &registry.url("/v2/keys/app/tags/list"),
        Some(&first),
        &[],
        None,
    )
    .expect("a token from before the restart", 404);
    let second = fetch_token(
        &registry,
        Some((ALICE, ALICE_PASSWORD)),
        &["repository:keys/app:pull"],
    );
    assert_eq!(
        jwt_part(&second, 0)["kid"],
        kid.as_str(),
        "the key changed on restart"
    );
}

/// Refresh tokens die when their user's password changes or the user is
/// removed from the htpasswd file.
#[test]
fn refresh_tokens_die_with_a_password_change_or_user_removal() {
    if !gate() {
        return;
    }
    let dir = common::temp_dir();
    let server = TokenServer::default();
    let mut registry = server.start(dir.path());
    let offline = |registry: &common::Registry, user: &str, password: &str| {
        let reply = post_token(
            registry,
            &[
                ("grant_type", "password"),
                ("username", user),
                ("password", password),
                ("client_id", "e2e"),
                ("access_type", "offline"),
                ("service", SERVICE),
            ],
        );
        reply.expect(&format!("POST /token password grant for {user}"), 200);
        reply.json()["refresh_token"]
            .as_str()
            .expect("refresh_token")
            .to_owned()
    };
    let refresh = |registry: &common::Registry, token: &str| {
        post_token(
            registry,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", token),
                ("client_id", "e2e"),
                ("service", SERVICE),
            ],
        )
    };
    let alice_refresh = offline(&registry, ALICE, ALICE_PASSWORD);
    let bob_refresh = offline(&registry, BOB, BOB_PASSWORD);
    refresh(&registry, &alice_refresh).expect("alice's refresh token", 200);
    refresh(&registry, &bob_refresh).expect("bob's refresh token", 200);

    // bob gets a new password; alice is removed.
    let new_password = "bob-new-password-2";
    common::write_htpasswd(&dir.path().join("htpasswd"), &[(BOB, new_password)]);
    // The running server may re-read the file; give it a few seconds, then
    // restart it (a reload is not what this test is about).
    let deadline = Instant::now() + std::time::Duration::from_secs(5);
    while get_token(
        &registry,
        Some((BOB, BOB_PASSWORD)),
        &[("service", SERVICE)],
    )
    .status
        != 401
    {
        if Instant::now() > deadline {
            eprintln!("portcullis did not pick up the htpasswd change within 5 s: restarting it");
            registry.stop();
            registry = common::Registry::start(
                common::RegistryKind::Portcullis,
                &server.config(dir.path()),
            );
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    get_token(
        &registry,
        Some((BOB, new_password)),
        &[("service", SERVICE)],
    )
    .expect("GET /token with bob's new password", 200);
    assert_oauth_error(
        "bob's refresh token after his password changed",
        &refresh(&registry, &bob_refresh),
        400,
        "invalid_grant",
    );
    assert_oauth_error(
        "alice's refresh token after she was removed",
        &refresh(&registry, &alice_refresh),
        400,
        "invalid_grant",
    );
    // A new login gives bob a working refresh token again.
    let again = offline(&registry, BOB, new_password);
    refresh(&registry, &again).expect("bob's new refresh token", 200);
}
