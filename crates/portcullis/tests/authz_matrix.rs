//! Per-repository authorization over HTTP against a running portcullis, in
//! Basic (htpasswd) mode and in token mode: a permission matrix (five
//! identities × eight repositories × pull of a manifest and of a blob, tag
//! listing, push, delete and catalog) whose expected results are written
//! out by hand from the policy, the filtered catalog's pagination, mounts
//! that need pull on their source, immutable tags, a policy file reloaded
//! when it changes (and kept when the new one is broken), the default
//! without an `access` section, and robot tokens whose rights are what they
//! were given and what their owner may do.
//!
//! Needs `htpasswd` (apache2-utils). Skipped with
//! `PORTCULLIS_TEST_REGISTRY=reference`: distribution has no policy.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::Registry;
use common::authz::{
    self, ADMIN, CAROL, Caller, Image, Mode, Who, check_denied, next_link, repo_scope,
    repositories, tag_list,
};
use common::oci;
use common::token::{self, ALICE, BOB, Reply};
use reqwest::Method;

fn gate() -> bool {
    common::e2e_gate("htpasswd") && token::portcullis_only()
}

/// The identities of the matrix, in the order of [`TABLE`]'s columns.
const IDENTITIES: [&str; 5] = ["anonymous", ALICE, BOB, CAROL, ADMIN];

/// What each identity may do in each repository under
/// [`authz::POLICY_BODY`], worked out by hand: `p` pull, `u` push, `d`
/// delete. Why, rule by rule:
/// - anonymous pulls `public/**`, and so does every authenticated identity;
/// - the devs (alice, bob) pull and push `team/**`, but bob is denied
///   pull and push on `team/secret/**` (deny wins);
/// - everyone pulls, pushes and deletes in `<own name>/**`;
/// - admin does everything everywhere; nobody else may delete outside their
///   own namespace, and nothing else is allowed.
const TABLE: [(&str, [&str; 5]); 8] = [
    // repository      anonymous alice  bob    carol  admin
    ("public/lib", ["p", "p", "p", "p", "pud"]),
    ("team/app", ["", "pu", "pu", "", "pud"]),
    ("team/secret/x", ["", "pu", "", "", "pud"]),
    ("alice/tools", ["", "pud", "", "", "pud"]),
    ("carol/tools", ["", "", "", "pud", "pud"]),
    ("bob/tools", ["", "", "pud", "", "pud"]),
    ("aaa/hidden", ["", "", "", "", "pud"]),
    ("zzz/hidden", ["", "", "", "", "pud"]),
];

/// The catalog each identity must see: the repositories of [`TABLE`] it may
/// pull, in lexical order (`None`: the catalog is refused). Anonymous
/// callers get no catalog; every authenticated one gets a filtered one.
fn expected_catalog(identity: usize) -> Option<Vec<String>> {
    if IDENTITIES[identity] == "anonymous" {
        return None;
    }
    let mut repos: Vec<String> = TABLE
        .iter()
        .filter(|(_, rights)| rights[identity].contains('p'))
        .map(|(repo, _)| (*repo).to_owned())
        .collect();
    repos.sort();
    Some(repos)
}

fn who(identity: &str) -> Who {
    if identity == "anonymous" {
        Who::Anonymous
    } else {
        Who::user(identity)
    }
}

/// Pushes, as admin, `v1` and one victim manifest per identity (for the
/// delete column) to every repository of [`TABLE`]. Returns the images:
/// `[repo][0]` is `v1`, `[repo][1 + identity]` that identity's victim.
fn seed(registry: &Registry, mode: Mode) -> Vec<Vec<Image>> {
    let admin = Caller::new(registry, mode, Who::user(ADMIN));
    TABLE
        .iter()
        .map(|(repo, _)| {
            let base = Image::random(&format!("{repo}-v1"));
            admin.push_ok(repo, "v1", &base);
            let mut images = vec![base];
            for identity in IDENTITIES {
                let victim = Image::random(&format!("{repo}-victim-{identity}"));
                admin.push_ok(repo, &format!("victim-{identity}"), &victim);
                images.push(victim);
            }
            images
        })
        .collect()
}

/// Records `result` under `label` when it is a failure.
fn record(failures: &mut Vec<String>, label: &str, result: Result<(), String>) {
    if let Err(why) = result {
        failures.push(format!("{label}: {why}"));
    }
}

/// Why `reply` is not `want`.
fn status(reply: &token::Reply, want: u16) -> Result<(), String> {
    if reply.status == want {
        Ok(())
    } else {
        Err(format!("expected {want}, got {reply}"))
    }
}

fn run_matrix(mode: Mode) {
    let dir = common::temp_dir();
    let registry = authz::start(mode, dir.path(), &authz::inline_policy());
    let images = seed(&registry, mode);
    let admin = Caller::new(&registry, mode, Who::user(ADMIN));
    let mut failures = Vec::new();
    let mut checked = 0usize;

    for (i, identity) in IDENTITIES.iter().enumerate() {
        let caller = Caller::new(&registry, mode, who(identity));
        for (r, (repo, rights)) in TABLE.iter().enumerate() {
            let rights = rights[i];
            let (pull, push, delete) = (
                rights.contains('p'),
                rights.contains('u'),
                rights.contains('d'),
            );
            let cell = |action: &str| format!("[{}] {identity} {action} {repo}", mode.name());
            let base = &images[r][0];
            let victim = &images[r][1 + i];

            // The token service grants exactly what the policy allows.
            if mode == Mode::Token {
                let scope = repo_scope(repo, "pull,push,delete");
                let got = match caller.try_token(&[scope]) {
                    Ok(t) => token::granted(&t),
                    Err(reply) => {
                        failures.push(format!("{}: GET /token: {reply}", cell("token")));
                        BTreeSet::new()
                    }
                };
                let actions: Vec<&str> = [("pull", pull), ("push", push), ("delete", delete)]
                    .iter()
                    .filter(|(_, allowed)| *allowed)
                    .map(|(a, _)| *a)
                    .collect();
                let want = if actions.is_empty() {
                    BTreeSet::new()
                } else {
                    token::grants(&[(repo, &actions)])
                };
                if got != want {
                    failures.push(format!(
                        "{}: asked for pull,push,delete, granted {got:?}, expected {want:?}",
                        cell("token")
                    ));
                }
            }

            // pull: GET the manifest of v1.
            let reply = caller.pull(repo, "v1");
            record(
                &mut failures,
                &cell("pull (GET /v2/NAME/manifests/v1)"),
                if pull {
                    status(&reply, 200).and_then(|()| {
                        if reply.digest.as_deref() == Some(base.digest.as_str()) {
                            Ok(())
                        } else {
                            Err(format!("wrong Docker-Content-Digest: {reply}"))
                        }
                    })
                } else {
                    caller.check_refused(&reply)
                },
            );

            // Blobs need pull too.
            let reply = caller.get_blob(repo, &base.layer_digest);
            record(
                &mut failures,
                &cell("pull a blob (GET /v2/NAME/blobs/DIGEST)"),
                if pull {
                    status(&reply, 200).and_then(|()| {
                        if reply.body == base.layer {
                            Ok(())
                        } else {
                            Err("the blob's content differs".to_owned())
                        }
                    })
                } else {
                    caller.check_refused(&reply)
                },
            );

            // Listing tags needs pull.
            let reply = caller.tags(repo);
            record(
                &mut failures,
                &cell("list tags (GET /v2/NAME/tags/list)"),
                if pull {
                    status(&reply, 200).and_then(|()| {
                        let tags = tag_list(&reply)?;
                        if tags.iter().any(|t| t == "v1") {
                            Ok(())
                        } else {
                            Err(format!("v1 is not listed: {reply}"))
                        }
                    })
                } else {
                    caller.check_refused(&reply)
                },
            );

            // push: POST upload, PUT blob (twice), PUT manifest.
            let tag = format!("pushed-{identity}");
            let image = Image::random(&format!("{repo}-{tag}"));
            let result = caller.push(repo, &tag, &image);
            record(
                &mut failures,
                &cell("push (POST upload + PUT blob + PUT manifest)"),
                match (push, result) {
                    (true, Ok(())) => status(&admin.pull(repo, &tag), 200)
                        .map_err(|e| format!("the pushed tag cannot be pulled by admin: {e}")),
                    (true, Err(failed)) => Err(format!("{}: {}", failed.0, failed.1)),
                    (false, Ok(())) => Err("the push succeeded".to_owned()),
                    (false, Err(failed)) => caller
                        .check_refused(&failed.1)
                        .map_err(|e| format!("{}: {e}", failed.0)),
                },
            );
            if !push {
                // The manifest PUT is guarded on its own, even when every
                // blob it references is already in the repository.
                let sneaky = format!("sneaky-{identity}");
                let reply = caller.put_manifest(repo, &sneaky, base);
                record(
                    &mut failures,
                    &cell("PUT manifest of existing blobs"),
                    caller.check_refused(&reply).and_then(|()| {
                        status(&admin.pull(repo, &sneaky), 404)
                            .map_err(|e| format!("the refused tag exists: {e}"))
                    }),
                );
            }

            // delete: DELETE the identity's victim manifest by digest.
            let reply = caller.delete_manifest(repo, &victim.digest);
            record(
                &mut failures,
                &cell("delete (DELETE /v2/NAME/manifests/DIGEST)"),
                if delete {
                    status(&reply, 202).and_then(|()| {
                        status(&admin.pull(repo, &victim.digest), 404)
                            .map_err(|e| format!("the deleted manifest is still there: {e}"))
                    })
                } else {
                    caller.check_refused(&reply).and_then(|()| {
                        status(&admin.pull(repo, &victim.digest), 200).map_err(|e| {
                            format!("the manifest is gone after a refused delete: {e}")
                        })
                    })
                },
            );
            checked += 1;
        }

        // catalog: only the repositories the identity may pull.
        let reply = caller.catalog("");
        record(
            &mut failures,
            &format!("[{}] {identity} catalog (GET /v2/_catalog)", mode.name()),
            match expected_catalog(i) {
                None => caller.check_refused(&reply),
                Some(want) => status(&reply, 200).and_then(|()| {
                    let got = repositories(&reply)?;
                    if got == want {
                        Ok(())
                    } else {
                        Err(format!("listed {got:?}, expected {want:?}"))
                    }
                }),
            },
        );
    }
    assert_eq!(checked, IDENTITIES.len() * TABLE.len());
    assert!(
        failures.is_empty(),
        "{} of the {} mode permission checks failed:\n{}",
        failures.len(),
        mode.name(),
        failures.join("\n")
    );
}

#[test]
fn permission_matrix_basic_mode() {
    if gate() {
        run_matrix(Mode::Basic);
    }
}

#[test]
fn permission_matrix_token_mode() {
    if gate() {
        run_matrix(Mode::Token);
    }
}

/// Walks the catalog from `query` following `Link` headers; returns the
/// pages. Fails when a page other than the last one has fewer than `n`
/// entries, or the walk does not end.
fn walk_catalog(caller: &Caller, query: &str, n: usize) -> Result<Vec<Vec<String>>, String> {
    let mut pages = Vec::new();
    let mut reply = caller.catalog(query);
    for _ in 0..50 {
        status(&reply, 200).map_err(|e| format!("page {}: {e}", pages.len() + 1))?;
        let page = repositories(&reply)?;
        if page.len() > n {
            return Err(format!(
                "a page holds {} entries, more than n={n}: {reply}",
                page.len()
            ));
        }
        let next = next_link(caller.registry, &reply);
        if next.is_some() && page.len() < n {
            return Err(format!(
                "page {} holds {page:?}, fewer than n={n}, yet has a Link to more",
                pages.len() + 1
            ));
        }
        pages.push(page);
        match next {
            None => return Ok(pages),
            Some(url) => {
                reply = caller.send_url(
                    Method::GET,
                    &url,
                    &[authz::CATALOG_SCOPE.to_owned()],
                    &[],
                    None,
                );
            }
        }
    }
    Err("the catalog did not end after 50 pages".to_owned())
}

fn run_catalog_pagination(mode: Mode) {
    let dir = common::temp_dir();
    let registry = authz::start(mode, dir.path(), &authz::inline_policy());
    let admin = Caller::new(&registry, mode, Who::user(ADMIN));
    // Push in an order unrelated to the lexical one.
    for (repo, _) in TABLE.iter().rev() {
        admin.push_ok(repo, "v1", &Image::random(repo));
    }
    let mut failures = Vec::new();
    for (i, identity) in IDENTITIES.iter().enumerate().skip(1) {
        let caller = Caller::new(&registry, mode, who(identity));
        let want = expected_catalog(i).expect("authenticated identities see a catalog");
        for n in [1, 2, 3] {
            let label = format!("[{}] {identity} catalog n={n}", mode.name());
            match walk_catalog(&caller, &format!("?n={n}"), n) {
                Err(why) => failures.push(format!("{label}: {why}")),
                Ok(pages) => {
                    let all: Vec<String> = pages.iter().flatten().cloned().collect();
                    if all != want {
                        failures.push(format!(
                            "{label}: walking the Link headers listed {pages:?}, expected {want:?}"
                        ));
                    }
                }
            }
        }
    }
    // `last` may name a repository the caller cannot see.
    let alice = Caller::new(&registry, mode, Who::user(ALICE));
    match walk_catalog(&alice, "?n=2&last=carol/tools", 2) {
        Err(why) => failures.push(format!("alice catalog after carol/tools: {why}")),
        Ok(pages) => {
            let want = vec![
                vec!["public/lib".to_owned(), "team/app".to_owned()],
                vec!["team/secret/x".to_owned()],
            ];
            if pages != want {
                failures.push(format!(
                    "[{}] alice catalog ?n=2&last=carol/tools: pages {pages:?}, expected {want:?}",
                    mode.name()
                ));
            }
        }
    }
    // A page larger than the visible set: all of it, no Link.
    let carol = Caller::new(&registry, mode, Who::user(CAROL));
    let reply = carol.catalog("?n=100");
    record(
        &mut failures,
        &format!("[{}] carol catalog ?n=100", mode.name()),
        status(&reply, 200).and_then(|()| {
            let got = repositories(&reply)?;
            if got != ["carol/tools", "public/lib"] {
                return Err(format!("listed {got:?}"));
            }
            if reply.link.is_some() {
                return Err(format!(
                    "a Link header after the last page: {:?}",
                    reply.link
                ));
            }
            Ok(())
        }),
    );
    assert!(
        failures.is_empty(),
        "catalog pagination under filtering:\n{}",
        failures.join("\n")
    );
}

#[test]
fn filtered_catalog_pagination_basic_mode() {
    if gate() {
        run_catalog_pagination(Mode::Basic);
    }
}

#[test]
fn filtered_catalog_pagination_token_mode() {
    if gate() {
        run_catalog_pagination(Mode::Token);
    }
}

fn run_mount(mode: Mode) {
    let dir = common::temp_dir();
    let registry = authz::start(mode, dir.path(), &authz::inline_policy());
    let admin = Caller::new(&registry, mode, Who::user(ADMIN));
    let carols = Image::random("carol");
    let teams = Image::random("team");
    let secret = Image::random("secret");
    admin.push_ok("carol/tools", "v1", &carols);
    admin.push_ok("team/app", "v1", &teams);
    admin.push_ok("team/secret/x", "v1", &secret);
    let mut failures = Vec::new();
    let m = mode.name();

    // alice may pull team/app: the mount happens.
    let alice = Caller::new(&registry, mode, Who::user(ALICE));
    let reply = alice.mount("alice/tools", &teams.layer_digest, "team/app");
    record(
        &mut failures,
        &format!("[{m}] alice mounts a layer from team/app into alice/tools"),
        status(&reply, 201).and_then(|()| {
            status(&admin.head_blob("alice/tools", &teams.layer_digest), 200)
                .map_err(|e| format!("the mounted blob is not in alice/tools: {e}"))
        }),
    );

    // Without pull on the source, the mount is refused and nothing is linked.
    for (caller, target, from, image) in [
        (&alice, "alice/tools", "carol/tools", &carols),
        (
            &Caller::new(&registry, mode, Who::user(BOB)),
            "bob/tools",
            "team/secret/x",
            &secret,
        ),
        (
            &Caller::new(&registry, mode, Who::user(CAROL)),
            "carol/tools",
            "team/app",
            &teams,
        ),
    ] {
        let reply = caller.mount(target, &image.layer_digest, from);
        record(
            &mut failures,
            &format!(
                "[{m}] {} mounts a layer from {from} into {target} (POST /v2/{target}/blobs/uploads/?mount=..&from={from})",
                caller.who.name()
            ),
            caller.check_refused(&reply).and_then(|()| {
                status(&admin.head_blob(target, &image.layer_digest), 404)
                    .map_err(|e| format!("the blob reached {target} anyway: {e}"))
            }),
        );
    }
    assert!(failures.is_empty(), "mounts:\n{}", failures.join("\n"));
}

#[test]
fn mount_needs_pull_on_the_source_basic_mode() {
    if gate() {
        run_mount(Mode::Basic);
    }
}

#[test]
fn mount_needs_pull_on_the_source_token_mode() {
    if gate() {
        run_mount(Mode::Token);
    }
}

fn run_immutable(mode: Mode) {
    let dir = common::temp_dir();
    let registry = authz::start(mode, dir.path(), &authz::inline_policy());
    let admin = Caller::new(&registry, mode, Who::user(ADMIN));
    let m = mode.name();
    let first = Image::random("release-first");
    let second = Image::random("release-second");
    admin.push_ok("release/x", "1.0", &first);
    for data in [&second.config, &second.layer] {
        admin
            .push_blob("release/x", data)
            .unwrap_or_else(|reply| panic!("[{m}] push a blob to release/x: {reply}"));
    }
    let mut failures = Vec::new();

    // The same digest again: nothing moves, so it is allowed.
    let reply = admin.put_manifest("release/x", "1.0", &first);
    record(
        &mut failures,
        &format!("[{m}] re-push of the same manifest to release/x:1.0"),
        status(&reply, 201),
    );
    // Another digest: the tag would move.
    let reply = admin.put_manifest("release/x", "1.0", &second);
    record(
        &mut failures,
        &format!("[{m}] PUT release/x:1.0 with another digest (even as admin)"),
        check_denied(&reply),
    );
    // A new tag is fine.
    let reply = admin.put_manifest("release/x", "1.1", &second);
    record(
        &mut failures,
        &format!("[{m}] PUT of a new tag release/x:1.1"),
        status(&reply, 201),
    );
    // Deleting the tag, or the manifest it points to, would remove it.
    let reply = admin.delete_manifest("release/x", "1.0");
    record(
        &mut failures,
        &format!("[{m}] DELETE release/x/manifests/1.0 (a tag)"),
        check_denied(&reply),
    );
    let reply = admin.delete_manifest("release/x", &first.digest);
    record(
        &mut failures,
        &format!("[{m}] DELETE release/x/manifests/<digest of 1.0>"),
        check_denied(&reply),
    );
    let reply = admin.pull("release/x", "1.0");
    record(
        &mut failures,
        &format!("[{m}] release/x:1.0 after the refusals"),
        status(&reply, 200).and_then(|()| {
            if reply.digest.as_deref() == Some(first.digest.as_str()) {
                Ok(())
            } else {
                Err(format!("1.0 moved: {reply}"))
            }
        }),
    );
    // A layer a tag's manifest needs cannot be deleted (the release must
    // keep pulling); a blob no tag needs can.
    let delete_blob = |digest: &str| {
        admin.send(
            Method::DELETE,
            &format!("/v2/release/x/blobs/{digest}"),
            &[repo_scope("release/x", "delete")],
            &[],
            None,
        )
    };
    let reply = delete_blob(&first.layer_digest);
    record(
        &mut failures,
        &format!("[{m}] DELETE of a layer of release/x:1.0"),
        check_denied(&reply),
    );
    let loose = b"a blob no manifest of release/x needs".to_vec();
    admin
        .push_blob("release/x", &loose)
        .unwrap_or_else(|reply| panic!("[{m}] push a loose blob: {reply}"));
    let reply = delete_blob(&oci::sha256(&loose));
    record(
        &mut failures,
        &format!("[{m}] DELETE of a blob no tag needs"),
        status(&reply, 202),
    );
    // Two clients create the same tag with different manifests at once:
    // exactly one wins, every round.
    for round in 0..20 {
        let tag = format!("race-{round}");
        let replies: Vec<Reply> = std::thread::scope(|s| {
            let a = s.spawn(|| admin.put_manifest("release/x", &tag, &first));
            let b = s.spawn(|| admin.put_manifest("release/x", &tag, &second));
            vec![a.join().expect("put"), b.join().expect("put")]
        });
        let created = replies.iter().filter(|r| r.status == 201).count();
        let refused = replies.iter().filter(|r| check_denied(r).is_ok()).count();
        if created != 1 || refused != 1 {
            failures.push(format!(
                "[{m}] round {round}: concurrent creations of release/x:{tag}: {} and {}",
                replies[0], replies[1]
            ));
        }
    }
    // Outside release/**, tags move as usual.
    admin.push_ok("team/app", "1.0", &first);
    admin.push_ok("team/app", "1.0", &second);
    let reply = admin.pull("team/app", "1.0");
    record(
        &mut failures,
        &format!("[{m}] team/app:1.0 moved to the second image"),
        status(&reply, 200).and_then(|()| {
            if reply.digest.as_deref() == Some(second.digest.as_str()) {
                Ok(())
            } else {
                Err(format!("1.0 did not move: {reply}"))
            }
        }),
    );
    assert!(
        failures.is_empty(),
        "immutable tags:\n{}",
        failures.join("\n")
    );
}

#[test]
fn immutable_tags_basic_mode() {
    if gate() {
        run_immutable(Mode::Basic);
    }
}

#[test]
fn immutable_tags_token_mode() {
    if gate() {
        run_immutable(Mode::Token);
    }
}

/// Only admin may do anything.
const RELOAD_ADMIN_ONLY: &str = "\
rules:
  - { subjects: [\"user:admin\"], repositories: [\"**\"], actions: [\"*\"] }
";
/// Admin, and carol may pull `team/**`.
const RELOAD_CAROL_PULLS: &str = "\
rules:
  - { subjects: [\"user:admin\"], repositories: [\"**\"], actions: [\"*\"] }
  - { subjects: [\"user:carol\"], repositories: [\"team/**\"], actions: [pull] }
";
/// Broken (an unknown action); applied in part, it would cut carol off.
const RELOAD_BROKEN: &str = "\
rules:
  - { subjects: [\"user:admin\"], repositories: [\"**\"], actions: [\"*\"] }
  - { subjects: [\"user:carol\"], repositories: [\"team/**\"], actions: [flyover] }
";

/// How long a changed policy file may take to apply.
const RELOAD_WITHIN: Duration = Duration::from_millis(2500);

/// Polls `check` until it holds or [`RELOAD_WITHIN`] passes; the time it
/// took, or the last failure.
fn within_reload(mut check: impl FnMut() -> Result<(), String>) -> Result<Duration, String> {
    let start = Instant::now();
    loop {
        match check() {
            Ok(()) => return Ok(start.elapsed()),
            Err(why) if start.elapsed() > RELOAD_WITHIN => {
                return Err(format!("not after {RELOAD_WITHIN:?}: {why}"));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// Replaces `path` by writing a new file and renaming it over the old one
/// (what many editors and config managers do).
fn replace_file(path: &std::path::Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).expect("write new policy");
    std::fs::rename(&tmp, path).expect("rename new policy into place");
}

fn run_reload(mode: Mode) {
    let dir = common::temp_dir();
    let policy = dir.path().join("policy.yml");
    std::fs::write(&policy, RELOAD_ADMIN_ONLY).expect("write policy");
    let registry = authz::start(mode, dir.path(), &authz::access_path(&policy));
    let m = mode.name();
    let admin = Caller::new(&registry, mode, Who::user(ADMIN));
    admin.push_ok("team/app", "v1", &Image::random("reload"));
    let carol = Caller::new(&registry, mode, Who::user(CAROL));
    carol
        .check_refused(&carol.pull("team/app", "v1"))
        .unwrap_or_else(|e| panic!("[{m}] carol pulls team/app before the change: {e}"));

    // Grant carol pull: rewritten in place.
    std::thread::sleep(Duration::from_millis(1100));
    std::fs::write(&policy, RELOAD_CAROL_PULLS).expect("rewrite policy");
    let took = within_reload(|| status(&carol.pull("team/app", "v1"), 200))
        .unwrap_or_else(|e| panic!("[{m}] carol's new pull right (file rewritten in place): {e}"));
    eprintln!("[{m}] the policy applied {took:?} after the file changed");
    carol
        .check_refused(&carol.open_upload("team/app"))
        .unwrap_or_else(|e| panic!("[{m}] carol may pull but not push team/app: {e}"));

    // A broken policy: the old one stays active, and the log says why.
    std::thread::sleep(Duration::from_millis(1100));
    replace_file(&policy, RELOAD_BROKEN);
    let deadline = Instant::now() + RELOAD_WITHIN + Duration::from_secs(1);
    while Instant::now() < deadline {
        status(&carol.pull("team/app", "v1"), 200).unwrap_or_else(|e| {
            panic!("[{m}] carol after a broken policy file replaced the good one: {e}")
        });
        std::thread::sleep(Duration::from_millis(200));
    }
    let log = registry.log();
    assert!(
        log.contains("flyover"),
        "[{m}] the log does not say why the new policy was refused (no `flyover`):\n{log}"
    );

    // A good policy again (replaced by rename): carol is cut off.
    std::thread::sleep(Duration::from_millis(1100));
    replace_file(&policy, RELOAD_ADMIN_ONLY);
    within_reload(|| carol.check_refused(&carol.pull("team/app", "v1"))).unwrap_or_else(|e| {
        panic!("[{m}] carol after her right was removed (file replaced by rename): {e}")
    });
    status(&admin.pull("team/app", "v1"), 200)
        .unwrap_or_else(|e| panic!("[{m}] admin after the reloads: {e}"));
}

#[test]
fn policy_file_reload_basic_mode() {
    if gate() {
        run_reload(Mode::Basic);
    }
}

#[test]
fn policy_file_reload_token_mode() {
    if gate() {
        run_reload(Mode::Token);
    }
}

/// Without an `access` section: every authenticated user may do
/// everything, anonymous nothing.
fn run_default(mode: Mode) {
    let dir = common::temp_dir();
    let registry = authz::start(mode, dir.path(), "");
    let m = mode.name();
    let carol = Caller::new(&registry, mode, Who::user(CAROL));
    let image = Image::random("default");
    carol.push_ok("anything/x", "v1", &image);
    status(&carol.pull("anything/x", "v1"), 200)
        .unwrap_or_else(|e| panic!("[{m}] carol pulls anything/x: {e}"));
    let reply = carol.catalog("");
    status(&reply, 200).unwrap_or_else(|e| panic!("[{m}] carol's catalog: {e}"));
    assert_eq!(
        repositories(&reply).unwrap_or_else(|e| panic!("[{m}] {e}")),
        ["anything/x"],
        "[{m}] carol's catalog"
    );
    let anonymous = Caller::new(&registry, mode, Who::Anonymous);
    anonymous
        .check_refused(&anonymous.pull("anything/x", "v1"))
        .unwrap_or_else(|e| panic!("[{m}] anonymous pull without a policy: {e}"));
    status(&carol.delete_manifest("anything/x", &image.digest), 202)
        .unwrap_or_else(|e| panic!("[{m}] carol deletes in anything/x: {e}"));
}

#[test]
fn without_a_policy_users_may_do_everything_basic_mode() {
    if gate() {
        run_default(Mode::Basic);
    }
}

#[test]
fn without_a_policy_users_may_do_everything_token_mode() {
    if gate() {
        run_default(Mode::Token);
    }
}

fn run_robots(mode: Mode) {
    let dir = common::temp_dir();
    let registry = authz::start(mode, dir.path(), &authz::inline_policy());
    let m = mode.name();
    let admin = Caller::new(&registry, mode, Who::user(ADMIN));
    for repo in ["public/lib", "team/app", "team/secret/x", "alice/tools"] {
        admin.push_ok(repo, "v1", &Image::random(repo));
    }
    let alice_ci = authz::create_robot(&registry, ALICE, "ci", "team/**", "pull,push");
    let bob_ci = authz::create_robot(&registry, BOB, "ci", "team/**", "pull,push");
    assert!(
        alice_ci.secret.starts_with("pcrt_") && alice_ci.secret.contains(&alice_ci.id),
        "unexpected robot secret shape (id {})",
        alice_ci.id
    );

    // (robot, repository, may pull, may push): what it was given
    // (team/** pull,push) and what its owner may do. public/lib: whatever
    // anonymous may do, every authenticated identity may do.
    let table = [
        (&alice_ci, "team/app", true, true),
        (&alice_ci, "team/secret/x", true, true),
        (&alice_ci, "alice/tools", false, false),
        (&alice_ci, "public/lib", true, false),
        (&bob_ci, "team/app", true, true),
        (&bob_ci, "team/secret/x", false, false),
        (&bob_ci, "alice/tools", false, false),
    ];
    let mut failures = Vec::new();
    for (robot, repo, pull, push) in table {
        let caller = Caller::new(&registry, mode, robot.who());
        let cell = |what: &str| format!("[{m}] {} {what} {repo}", robot.login);
        let reply = caller.pull(repo, "v1");
        record(
            &mut failures,
            &cell("pull"),
            if pull {
                status(&reply, 200)
            } else {
                caller.check_refused(&reply)
            },
        );
        let result = caller.push(repo, "robot", &Image::random("robot"));
        record(
            &mut failures,
            &cell("push"),
            match (push, result) {
                (true, Ok(())) => Ok(()),
                (true, Err(failed)) => Err(format!("{}: {}", failed.0, failed.1)),
                (false, Ok(())) => Err("the push succeeded".to_owned()),
                (false, Err(failed)) => caller
                    .check_refused(&failed.1)
                    .map_err(|e| format!("{}: {e}", failed.0)),
            },
        );
    }
    // The catalog shows a robot what it may pull: its scope ∩ its owner's
    // rights, plus what anonymous may pull (in token mode the token's
    // subject `alice+ci` must be the robot, not a user of that name).
    for (robot, want) in [
        (&alice_ci, vec!["public/lib", "team/app", "team/secret/x"]),
        (&bob_ci, vec!["public/lib", "team/app"]),
    ] {
        let caller = Caller::new(&registry, mode, robot.who());
        let reply = caller.catalog("");
        let cell = format!("[{m}] {} catalog", robot.login);
        match status(&reply, 200).and_then(|()| repositories(&reply)) {
            Err(e) => failures.push(format!("{cell}: {e}")),
            Ok(got) if got != want => {
                failures.push(format!("{cell}: got {got:?}, expected {want:?}"));
            }
            Ok(_) => {}
        }
    }
    // Never more than it was given: no delete, even where alice may.
    let caller = Caller::new(&registry, mode, alice_ci.who());
    let reply = caller.delete_manifest("alice/tools", "v1");
    record(
        &mut failures,
        &format!("[{m}] alice+ci delete in alice/tools"),
        caller.check_refused(&reply),
    );

    // The secret works only under its own login name.
    for name in ["carol+ci", "alice", "alice+other", "bob+ci"] {
        let caller = Caller::new(&registry, mode, Who::login(name, &alice_ci.secret));
        let reply = caller.pull("team/app", "v1");
        record(
            &mut failures,
            &format!("[{m}] alice+ci's secret as {name}"),
            if reply.status == 401 {
                Ok(())
            } else {
                Err(format!("expected 401, got {reply}"))
            },
        );
    }

    // Revoked: refused from then on.
    token::cli_ok(&registry, &["token", "revoke", "--id", &alice_ci.id]);
    let caller = Caller::new(&registry, mode, alice_ci.who());
    record(
        &mut failures,
        &format!("[{m}] alice+ci after `token revoke --id`"),
        within_reload(|| {
            let reply = caller.pull("team/app", "v1");
            if reply.status == 401 {
                Ok(())
            } else {
                Err(format!("expected 401, got {reply}"))
            }
        })
        .map(drop),
    );
    // bob's robot is untouched.
    let caller = Caller::new(&registry, mode, bob_ci.who());
    record(
        &mut failures,
        &format!("[{m}] bob+ci after alice+ci was revoked"),
        status(&caller.pull("team/app", "v1"), 200),
    );
    assert!(
        failures.is_empty(),
        "robot tokens:\n{}",
        failures.join("\n")
    );
}

#[test]
fn robot_rights_are_its_scope_and_its_owners_basic_mode() {
    if gate() {
        run_robots(Mode::Basic);
    }
}

#[test]
fn robot_rights_are_its_scope_and_its_owners_token_mode() {
    if gate() {
        run_robots(Mode::Token);
    }
}
