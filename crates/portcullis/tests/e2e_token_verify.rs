//! Bearer verification on portcullis's registry side with its built-in
//! token service (`auth.tokenserver`): upload sessions that outlive their
//! access token (moby/moby#33558), only for their owner and only for
//! `uploadgrace`, and hostile tokens.
//!
//! Needs `htpasswd` (apache2-utils). Skipped with
//! `PORTCULLIS_TEST_REGISTRY=reference`: the token service is portcullis's.

mod common;

use std::time::Instant;

use common::oci;
use common::token::{
    self, ALICE, ALICE_PASSWORD, BOB, BOB_PASSWORD, SERVICE, TestKey, TokenServer, assert_refused,
    fetch_token, jwt_part, open_upload, send, with_query,
};
use reqwest::Method;

fn gate() -> bool {
    common::e2e_gate("htpasswd") && token::portcullis_only()
}

/// moby/moby#33558: a push must not fail because the access token expired
/// in the middle of an upload. The session stays usable by its owner, and
/// only by its owner.
#[test]
fn upload_session_outlives_its_access_token() {
    if !gate() {
        return;
    }
    let dir = common::temp_dir();
    let registry = TokenServer {
        expiration: Some("2s"),
        leeway: Some("0s"),
        ..TokenServer::default()
    }
    .start(dir.path());
    let repo = "grace/app";
    let scope = format!("repository:{repo}:pull,push");
    let alice = fetch_token(&registry, Some((ALICE, ALICE_PASSWORD)), &[&scope]);
    let claims = jwt_part(&alice, 1);
    let exp = claims["exp"].as_u64().expect("exp");
    let iat = claims["iat"].as_u64().expect("iat");
    assert!(exp - iat <= 2, "expiration: 2s not applied: {claims}");

    let data = common::random_bytes(300 << 10);
    let digest = oci::sha256(&data);
    let (first, second) = data.split_at(100 << 10);
    // Three sessions: alice completes the first; others try the second
    // (PATCH) and the third (PUT).
    let bob_early = fetch_token(&registry, Some((BOB, BOB_PASSWORD)), &[&scope]);
    let upload = open_upload(&registry, repo, &alice);
    let target = open_upload(&registry, repo, &alice);
    let target_put = open_upload(&registry, repo, &alice);
    let opened = Instant::now();
    token::sleep_until(exp + 2);
    eprintln!(
        "upload sessions opened {:?} ago; the token expired at {exp}",
        opened.elapsed()
    );

    // The token has expired: outside its sessions it is refused.
    let reply = send(
        Method::GET,
        &registry.url(&format!("/v2/{repo}/tags/list")),
        Some(&alice),
        &[],
        None,
    );
    assert_refused("expired token listing tags", &reply, Some("invalid_token"));
    let reply = send(
        Method::POST,
        &registry.url(&format!("/v2/{repo}/blobs/uploads/")),
        Some(&alice),
        &[],
        None,
    );
    assert_refused(
        "expired token opening a new upload session",
        &reply,
        Some("invalid_token"),
    );

    // Nobody else may use alice's sessions: not bob with a valid push token
    // for the same repository, not anonymous, not alice's token in another
    // repository. Collected, so that one run reports them all.
    let mut hijacks = Vec::new();
    let bob = fetch_token(&registry, Some((BOB, BOB_PASSWORD)), &[&scope]);
    let range = format!("0-{}", first.len() - 1);
    let headers = [
        ("Content-Type", "application/octet-stream"),
        ("Content-Range", range.as_str()),
    ];
    let octets = [("Content-Type", "application/octet-stream")];
    let reply = send(
        Method::PATCH,
        &target,
        Some(&bob),
        &headers,
        Some(first.to_vec()),
    );
    if !matches!(reply.status, 401 | 403) {
        hijacks.push(format!(
            "bob (valid push token) PATCH {target}: expected 401 or 403, got {reply}"
        ));
    }
    let reply = send(
        Method::PATCH,
        &target,
        Some(&bob_early),
        &headers,
        Some(first.to_vec()),
    );
    if reply.status != 401 {
        hijacks.push(format!(
            "bob's expired token PATCH {target}: expected 401, got {reply}"
        ));
    }
    let reply = send(Method::PATCH, &target, None, &headers, Some(first.to_vec()));
    if reply.status != 401 {
        hijacks.push(format!(
            "anonymous PATCH {target}: expected 401, got {reply}"
        ));
    }
    let moved = target.replacen(&format!("/v2/{repo}/"), "/v2/grace/other/", 1);
    assert_ne!(
        moved, target,
        "upload URL {target} does not name the repository"
    );
    let reply = send(
        Method::PATCH,
        &moved,
        Some(&alice),
        &headers,
        Some(first.to_vec()),
    );
    if !matches!(reply.status, 401 | 403 | 404) {
        hijacks.push(format!(
            "alice's expired token, session moved to another repository, PATCH {moved}: \
             expected 401, 403 or 404, got {reply}"
        ));
    }
    let put_first = with_query(&target_put, "digest", &oci::sha256(first));
    let reply = send(
        Method::PUT,
        &put_first,
        Some(&bob),
        &octets,
        Some(first.to_vec()),
    );
    if !matches!(reply.status, 401 | 403) {
        hijacks.push(format!(
            "bob (valid push token) PUT {put_first}: expected 401 or 403, got {reply}"
        ));
    }

    // Alice, with her expired token, finishes her upload.
    let reply = send(
        Method::PATCH,
        &upload,
        Some(&alice),
        &headers,
        Some(first.to_vec()),
    );
    reply.expect("PATCH with the expired token in the session it opened", 202);
    let next = token::absolute(
        &registry,
        reply.location.as_deref().expect("PATCH answers a Location"),
    );
    let put_url = with_query(&next, "digest", &digest);
    let reply = send(
        Method::PUT,
        &put_url,
        Some(&alice),
        &octets,
        Some(second.to_vec()),
    );
    reply.expect("PUT with the expired token in the session it opened", 201);
    assert_eq!(
        reply.digest.as_deref(),
        Some(digest.as_str()),
        "Docker-Content-Digest"
    );

    let fresh = fetch_token(
        &registry,
        Some((BOB, BOB_PASSWORD)),
        &[&format!("repository:{repo}:pull")],
    );
    let reply = send(
        Method::GET,
        &registry.url(&format!("/v2/{repo}/blobs/{digest}")),
        Some(&fresh),
        &[],
        None,
    );
    reply.expect("GET the uploaded blob", 200);
    assert!(
        reply.body == data,
        "the blob's content differs from what was uploaded"
    );

    assert!(
        hijacks.is_empty(),
        "alice's upload sessions were usable by others:\n{}",
        hijacks.join("\n")
    );
}

/// The grace period ends: `uploadgrace: 4s`, and a session used after it
/// (however it is counted: from the token's expiry or from the session's
/// start) is refused.
#[test]
fn upload_grace_has_a_limit() {
    if !gate() {
        return;
    }
    let dir = common::temp_dir();
    let registry = TokenServer {
        expiration: Some("2s"),
        leeway: Some("0s"),
        uploadgrace: Some("4s"),
        ..TokenServer::default()
    }
    .start(dir.path());
    let repo = "grace/limit";
    let alice = fetch_token(
        &registry,
        Some((ALICE, ALICE_PASSWORD)),
        &[&format!("repository:{repo}:pull,push")],
    );
    let exp = jwt_part(&alice, 1)["exp"].as_u64().expect("exp");
    let opened_at = token::now_secs();
    let upload = open_upload(&registry, repo, &alice);
    let chunk = common::random_bytes(4096);
    let range = format!("0-{}", chunk.len() - 1);
    let headers = [
        ("Content-Type", "application/octet-stream"),
        ("Content-Range", range.as_str()),
    ];

    // Within the grace period (the token has expired): accepted.
    token::sleep_until(exp + 1);
    let reply = send(
        Method::PATCH,
        &upload,
        Some(&alice),
        &headers,
        Some(chunk.clone()),
    );
    reply.expect("PATCH after the token expired, within uploadgrace", 202);
    let next = token::absolute(&registry, reply.location.as_deref().expect("Location"));

    // After it: refused.
    token::sleep_until(exp.max(opened_at) + 4 + 2);
    let put = with_query(&next, "digest", &oci::sha256(&chunk));
    let reply = send(
        Method::PUT,
        &put,
        Some(&alice),
        &[("Content-Type", "application/octet-stream")],
        Some(Vec::new()),
    );
    assert_refused(
        "PUT after uploadgrace ran out",
        &reply,
        Some("invalid_token"),
    );
}

#[test]
fn hostile_tokens_are_refused_by_the_token_service() {
    if !gate() {
        return;
    }
    let trusted = TestKey::generate("portcullis-e2e-signing");
    let untrusted = TestKey::generate("mallory");
    let dir = common::temp_dir();
    let registry = TokenServer {
        signing: Some((trusted.key_path.clone(), trusted.cert_path.clone())),
        ..TokenServer::default()
    }
    .start(dir.path());
    // The configured key signs: its kid is published and in issued tokens.
    let issued = fetch_token(
        &registry,
        Some((ALICE, ALICE_PASSWORD)),
        &["repository:hostile/app:pull"],
    );
    assert_eq!(
        jwt_part(&issued, 0)["kid"],
        trusted.kid(),
        "keys.signing is not the signing key"
    );
    assert!(
        token::jwks_kids(&registry)
            .iter()
            .any(|k| k == trusted.kid())
    );

    // HS256 keyed with what the server publishes.
    let published = [
        ("JWKS document", token::jwks(&registry).to_string()),
        (
            "keys bundle PEM",
            token::cli_ok(&registry, &["keys", "bundle"]),
        ),
    ];
    let mut extra = Vec::new();
    for (what, secret) in published {
        let header = serde_json::json!({"alg": "HS256", "typ": "JWT", "kid": trusted.kid()});
        let claims = token::claims(
            SERVICE,
            SERVICE,
            "mallory",
            vec![token::repository("hostile/app", &["pull", "push"])],
            300,
        );
        let claims = serde_json::to_value(&claims).expect("claims JSON");
        extra.push((
            format!("HS256 keyed with the {what}"),
            token::sign_hs256(&header, &claims, secret.as_bytes()),
        ));
    }
    common::hostile::check_hostile_tokens(
        &registry,
        &trusted,
        &untrusted,
        SERVICE,
        SERVICE,
        "hostile/app",
        extra,
    );
    // Nothing above crashed or wedged the server.
    send(Method::GET, &registry.url("/v2/"), Some(&issued), &[], None)
        .expect("GET /v2/ afterwards", 200);
}
