//! The Docker CLI against portcullis with a per-repository policy, in
//! Basic (htpasswd) mode and in token mode: an anonymous `docker pull` of a
//! public repository works without `docker login`, a read-only user's
//! `docker push` fails with "denied", and a robot token used with
//! `docker login` pushes only where it was scoped.
//!
//! Needs root, `dockerd`, `docker` and `htpasswd`; see `common::e2e_gate`.
//! Skipped with `PORTCULLIS_TEST_REGISTRY=reference`: distribution has no
//! policy.

mod common;

use common::authz::{self, ADMIN, ADMIN_PASSWORD, CAROL, CAROL_PASSWORD, Mode};
use common::token::{self, ALICE};
use common::{Docker, Registry, TestImage};

const NEEDS: &str = "root dockerd docker htpasswd";

fn gate() -> bool {
    common::e2e_gate(NEEDS) && token::portcullis_only()
}

/// Words by which the Docker CLI reports a missing login or a refusal.
const REFUSALS: [&str; 6] = [
    "denied",
    "unauthorized",
    "authentication required",
    "no basic auth credentials",
    "insufficient_scope",
    "401",
];

fn assert_refused(what: &str, output: &str) {
    let lower = output.to_lowercase();
    assert!(
        REFUSALS.iter().any(|e| lower.contains(e)),
        "{what}: expected a refusal, got:\n{output}"
    );
}

/// How Docker reports a push the registry refused to a logged-in user: in
/// both modes it must show the policy's reason, naming push and the
/// repository (Basic mode: the 403 `DENIED` message; token mode: the
/// challenge's `error_description`), not only "requested access to the
/// resource is denied".
fn assert_push_denied(mode: Mode, what: &str, output: &str, reason: &str) {
    let lower = output.to_lowercase();
    assert!(
        lower.contains("denied") && lower.contains(reason),
        "[{}] {what}: expected Docker to report \"denied\" with the reason ({reason}), got:\n{output}",
        mode.name()
    );
}

/// `docker login` as `user`, which must succeed.
fn login(docker: &Docker, registry: &Registry, user: &str, password: &str) {
    let out = docker.login(&registry.host(), user, password);
    common::assert_success(&format!("docker login {} as {user}", registry.host()), &out);
}

/// Tags the local `image` as `HOST/REPO:TAG`; returns that reference.
fn tag(docker: &Docker, image: &TestImage, registry: &Registry, repo: &str, tag: &str) -> String {
    let remote = format!("{}/{repo}:{tag}", registry.host());
    docker.docker_ok(&["tag", &image.tag, &remote]);
    remote
}

/// Removes every reference in `names` and checks that the image is gone.
fn forget_all(docker: &Docker, image: &TestImage, names: &[&str]) {
    for name in names.iter().copied().chain([image.tag.as_str()]) {
        if docker.has_image(name) {
            docker.docker_ok(&["rmi", name]);
        }
    }
    assert!(
        !docker.has_image(&image.id),
        "image {} is still present after docker rmi",
        image.id
    );
}

fn run_public_pull_and_read_only_push(mode: Mode) {
    let dir = common::temp_dir();
    let registry = authz::start(mode, dir.path(), &authz::inline_policy());
    let m = mode.name();
    let admin = Docker::new();
    let image = admin.build_test_image(&format!("authz public {m}"));
    login(&admin, &registry, ADMIN, ADMIN_PASSWORD);
    let public = tag(&admin, &image, &registry, "public/lib", "v1");
    let private = tag(&admin, &image, &registry, "team/app", "v1");
    admin.docker_ok(&["push", &public]);
    admin.docker_ok(&["push", &private]);

    // carol may pull public/lib, but not push to it.
    let carol = admin.anonymous();
    login(&carol, &registry, CAROL, CAROL_PASSWORD);
    let carols = tag(&carol, &image, &registry, "public/lib", "carol");
    let out = carol.docker(["push", &carols]);
    common::process::assert_failure(&format!("[{m}] docker push {carols} as carol"), &out);
    assert_push_denied(
        mode,
        &format!("[{m}] carol's docker push to public/lib (read-only)"),
        &common::combined_output(&out),
        "push on public/lib",
    );
    // Nor to a repository she may not even pull.
    let elsewhere = tag(&carol, &image, &registry, "team/app", "carol");
    let out = carol.docker(["push", &elsewhere]);
    common::process::assert_failure(&format!("[{m}] docker push {elsewhere} as carol"), &out);
    assert_push_denied(
        mode,
        &format!("[{m}] carol's docker push to team/app"),
        &common::combined_output(&out),
        "push on team/app",
    );
    // Logged in, carol pulls the public repository.
    forget_all(&carol, &image, &[&public, &private, &carols, &elsewhere]);
    carol.pull_and_compare(&image, &public);
    forget_all(&carol, &image, &[&public]);

    // Anonymous: no `docker login` at all. The Docker client gives up on a
    // Basic challenge when it has no credentials ("no basic auth
    // credentials"), before it asks for the manifest, whatever the policy
    // allows; anonymous docker pulls need the token service (the default).
    // In Basic mode anonymous pulls over plain HTTP are checked by
    // `authz_matrix`.
    if matches!(mode, Mode::Basic) {
        return;
    }
    let anonymous = admin.anonymous();
    let out = anonymous.docker(["pull", &public]);
    common::assert_success(
        &format!("[{m}] anonymous docker pull {public} (a public repository)"),
        &out,
    );
    assert_eq!(
        anonymous.image_id(&public),
        image.id,
        "[{m}] the image pulled anonymously differs from the one pushed"
    );
    let printed = anonymous.pull_fails(&private);
    assert_refused(
        &format!("[{m}] anonymous docker pull {private} (not public)"),
        &printed,
    );
    assert!(
        !registry.log().contains(CAROL_PASSWORD),
        "[{m}] the registry logged carol's password"
    );
}

#[test]
fn anonymous_pull_of_public_repository_and_read_only_push_basic_mode() {
    if gate() {
        run_public_pull_and_read_only_push(Mode::Basic);
    }
}

#[test]
fn anonymous_pull_of_public_repository_and_read_only_push_token_mode() {
    if gate() {
        run_public_pull_and_read_only_push(Mode::Token);
    }
}

fn run_robot_push(mode: Mode) {
    let dir = common::temp_dir();
    let registry = authz::start(mode, dir.path(), &authz::inline_policy());
    let m = mode.name();
    let robot = authz::create_robot(&registry, ALICE, "ci", "team/**", "pull,push");
    let docker = Docker::new();
    let image = docker.build_test_image(&format!("authz robot {m}"));
    let out = docker.login(&registry.host(), &robot.login, &robot.secret);
    common::assert_success(
        &format!("[{m}] docker login -u {} --password-stdin", robot.login),
        &out,
    );

    let scoped = tag(&docker, &image, &registry, "team/app", "robot");
    docker.docker_ok(&["push", &scoped]);
    let outside = tag(&docker, &image, &registry, "public/other", "robot");
    let out = docker.docker(["push", &outside]);
    common::process::assert_failure(
        &format!("[{m}] docker push {outside} with a robot scoped to team/**"),
        &out,
    );
    assert_push_denied(
        mode,
        &format!("[{m}] the robot's push outside its scope"),
        &common::combined_output(&out),
        "public/other",
    );
    // What it pushed is there, for alice herself.
    forget_all(&docker, &image, &[&scoped, &outside]);
    let alice = docker.anonymous();
    login(&alice, &registry, ALICE, token::ALICE_PASSWORD);
    alice.pull_and_compare(&image, &scoped);
    let log = registry.log();
    assert!(
        !log.contains(&robot.secret),
        "[{m}] the registry logged the robot's secret"
    );
}

#[test]
fn robot_token_pushes_only_where_scoped_basic_mode() {
    if gate() {
        run_robot_push(Mode::Basic);
    }
}

#[test]
fn robot_token_pushes_only_where_scoped_token_mode() {
    if gate() {
        run_robot_push(Mode::Token);
    }
}
