//! Tests of [`Htpasswd`] against real files: loading, caching, reloading,
//! and interoperability with Apache's `htpasswd` tool.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use secrecy::SecretString;

use super::*;

/// Low cost so the tests are fast.
pub(super) const COST: u32 = 4;

/// A directory removed on drop (we avoid a tempfile dependency).
pub(super) struct TempDir(PathBuf);

impl TempDir {
    pub(super) fn new() -> Self {
        let dir = std::env::temp_dir().join(format!(
            "portcullis-auth-test-{}-{:016x}",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::create_dir(&dir).unwrap();
        Self(dir)
    }

    pub(super) fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(super) fn secret(s: &str) -> SecretString {
    SecretString::from(s.to_owned())
}

fn name(s: &str) -> UserName {
    UserName::new(s).unwrap()
}

pub(super) fn line(user: &str, password: &str) -> String {
    format!("{user}:{}\n", bcrypt::hash(password, COST).unwrap())
}

pub(super) fn auth(h: &Htpasswd, user: &str, password: &str) -> Result<String, AuthError> {
    h.authenticate(user, &secret(password))
        .map(|u| u.as_str().to_owned())
}

/// Path to Apache's `htpasswd`, or `None` (with a note) if it is not
/// installed. With `PORTCULLIS_E2E=required` a missing tool fails the test.
fn htpasswd_tool() -> Option<&'static Path> {
    tool("/usr/bin/htpasswd", "apache2-utils")
}

/// `path` if it exists; otherwise `None` with a note, or a failure when
/// `PORTCULLIS_E2E=required`.
pub(super) fn tool(path: &'static str, package: &str) -> Option<&'static Path> {
    let tool = Path::new(path);
    if tool.exists() {
        return Some(tool);
    }
    assert!(
        std::env::var("PORTCULLIS_E2E").as_deref() != Ok("required"),
        "PORTCULLIS_E2E=required but {} is missing (install {package})",
        tool.display()
    );
    eprintln!(
        "note: {} not found; skipping the interoperability check",
        tool.display()
    );
    None
}

pub(super) fn run(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{cmd:?} failed: {out:?}");
    out
}

#[test]
fn htpasswd_is_send_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Htpasswd>();
    assert_send_sync::<Arc<Htpasswd>>();
}

#[test]
fn reads_files_written_by_apache_htpasswd() {
    let Some(tool) = htpasswd_tool() else { return };
    let dir = TempDir::new();
    let path = dir.file("htpasswd");
    let cost = COST.to_string();
    run(Command::new(tool)
        .args(["-cbB", "-C", &cost])
        .arg(&path)
        .args(["alice", "secret"]));
    run(Command::new(tool)
        .args(["-bB", "-C", &cost])
        .arg(&path)
        .args(["bob", "hunter2"]));
    // `-n` prints the entry instead of writing a file.
    let printed = run(Command::new(tool).args(["-nbB", "-C", &cost, "carol", "s3cret"])).stdout;
    let printed = String::from_utf8(printed).unwrap();
    assert!(printed.starts_with("carol:$2y$04$"), "{printed}");
    let mut contents = std::fs::read_to_string(&path).unwrap();
    contents.push_str(&printed);
    std::fs::write(&path, contents).unwrap();

    let h = Htpasswd::load(&path).unwrap();
    assert_eq!(h.user_count(), 3);
    assert_eq!(auth(&h, "alice", "secret").unwrap(), "alice");
    assert_eq!(auth(&h, "bob", "hunter2").unwrap(), "bob");
    assert_eq!(auth(&h, "carol", "s3cret").unwrap(), "carol");
    assert_eq!(
        auth(&h, "alice", "hunter2"),
        Err(AuthError::InvalidCredentials)
    );
}

#[test]
fn apache_htpasswd_verifies_what_add_user_writes() {
    let Some(tool) = htpasswd_tool() else { return };
    let dir = TempDir::new();
    let path = dir.file("htpasswd");
    add_user(&path, &name("alice"), &secret("pässwörd"), COST).unwrap();
    assert!(
        std::fs::read_to_string(&path)
            .unwrap()
            .starts_with("alice:$2y$04$")
    );
    run(Command::new(tool)
        .arg("-vb")
        .arg(&path)
        .args(["alice", "pässwörd"]));
    let wrong = Command::new(tool)
        .arg("-vb")
        .arg(&path)
        .args(["alice", "nope"])
        .output()
        .unwrap();
    assert!(!wrong.status.success());
}

#[test]
fn accepts_2a_2b_and_2y_prefixes() {
    let dir = TempDir::new();
    let path = dir.file("htpasswd");
    let parts = bcrypt::hash_with_result("pw", COST).unwrap();
    let mut contents = String::new();
    for (user, version) in [
        ("a", bcrypt::Version::TwoA),
        ("b", bcrypt::Version::TwoB),
        ("y", bcrypt::Version::TwoY),
    ] {
        let hash = parts.format_for_version(version);
        contents.extend([user, ":", &hash, "\n"]);
    }
    std::fs::write(&path, contents).unwrap();
    let h = Htpasswd::load(&path).unwrap();
    for user in ["a", "b", "y"] {
        assert_eq!(auth(&h, user, "pw").unwrap(), user);
    }
}

#[test]
fn right_wrong_and_unknown() {
    let dir = TempDir::new();
    let path = dir.file("htpasswd");
    std::fs::write(&path, line("alice", "secret")).unwrap();
    let h = Htpasswd::load(&path).unwrap();
    assert_eq!(h.path(), path);

    assert_eq!(auth(&h, "alice", "secret").unwrap(), "alice");
    assert_eq!(
        auth(&h, "alice", "wrong"),
        Err(AuthError::InvalidCredentials)
    );
    assert_eq!(auth(&h, "alice", ""), Err(AuthError::InvalidCredentials));
    assert_eq!(
        auth(&h, "Alice", "secret"),
        Err(AuthError::InvalidCredentials)
    );
    assert_eq!(
        auth(&h, "mallory", "secret"),
        Err(AuthError::InvalidCredentials)
    );
    assert_eq!(
        auth(&h, "a:b", "secret"),
        Err(AuthError::InvalidCredentials)
    );
    // Unknown users still cost a bcrypt verification (timing).
    assert_eq!(h.stats().bcrypt_verifications, 6);
}

#[test]
fn successes_are_cached_and_failures_are_not() {
    let dir = TempDir::new();
    let path = dir.file("htpasswd");
    std::fs::write(&path, line("alice", "secret") + &line("bob", "pw")).unwrap();
    let h = Htpasswd::load(&path).unwrap();

    assert_eq!(auth(&h, "alice", "secret").unwrap(), "alice");
    assert_eq!(auth(&h, "alice", "secret").unwrap(), "alice");
    assert_eq!(auth(&h, "alice", "secret").unwrap(), "alice");
    let stats = h.stats();
    assert_eq!((stats.bcrypt_verifications, stats.cache_hits), (1, 2));

    // The cache is keyed by user *and* password.
    assert!(auth(&h, "alice", "secreT").is_err());
    assert!(auth(&h, "alice", "secreT").is_err());
    assert!(auth(&h, "bob", "secret").is_err());
    assert_eq!(auth(&h, "bob", "pw").unwrap(), "bob");
    let stats = h.stats();
    assert_eq!((stats.bcrypt_verifications, stats.cache_hits), (5, 2));
}

#[test]
fn cached_credentials_expire() {
    let dir = TempDir::new();
    let path = dir.file("htpasswd");
    std::fs::write(&path, line("alice", "secret")).unwrap();
    let now = Arc::new(Mutex::new(Instant::now()));
    let clock = Arc::clone(&now);
    let h = Htpasswd::load(&path)
        .unwrap()
        .with_cache_ttl(Duration::from_mins(1))
        .with_clock(move || *clock.lock());

    auth(&h, "alice", "secret").unwrap();
    *now.lock() += Duration::from_secs(59);
    auth(&h, "alice", "secret").unwrap();
    assert_eq!(h.stats().bcrypt_verifications, 1);
    *now.lock() += Duration::from_secs(2);
    auth(&h, "alice", "secret").unwrap();
    assert_eq!(h.stats().bcrypt_verifications, 2);
}

#[test]
fn cache_can_be_disabled_and_is_bounded() {
    let dir = TempDir::new();
    let path = dir.file("htpasswd");
    std::fs::write(&path, line("a", "1") + &line("b", "2") + &line("c", "3")).unwrap();

    let h = Htpasswd::load(&path)
        .unwrap()
        .with_cache_ttl(Duration::ZERO);
    auth(&h, "a", "1").unwrap();
    auth(&h, "a", "1").unwrap();
    assert_eq!(h.stats().bcrypt_verifications, 2);

    let h = Htpasswd::load(&path).unwrap().with_cache_capacity(2);
    for (user, pw) in [("a", "1"), ("b", "2"), ("c", "3")] {
        auth(&h, user, pw).unwrap();
    }
    // Inserting "c" into a full cache cleared it; "c" is the only entry.
    assert!(h.state.read().cache.len() <= 2);
    auth(&h, "c", "3").unwrap();
    assert_eq!(h.stats().cache_hits, 1);
    auth(&h, "a", "1").unwrap();
    assert_eq!(h.stats().bcrypt_verifications, 4);
}

#[test]
fn reloads_when_the_file_is_replaced() {
    let dir = TempDir::new();
    let path = dir.file("htpasswd");
    std::fs::write(&path, line("alice", "old") + &line("bob", "pw")).unwrap();
    let h = Htpasswd::load(&path).unwrap();
    auth(&h, "alice", "old").unwrap();
    auth(&h, "bob", "pw").unwrap();

    // Atomic replacement (new inode), as `portcullis user add` does.
    add_user(&path, &name("alice"), &secret("new"), COST).unwrap();
    add_user(&path, &name("carol"), &secret("c"), COST).unwrap();

    assert_eq!(auth(&h, "alice", "old"), Err(AuthError::InvalidCredentials));
    assert_eq!(h.stats().reloads, 1);
    assert_eq!(auth(&h, "alice", "new").unwrap(), "alice");
    assert_eq!(auth(&h, "carol", "c").unwrap(), "carol");
    // bob is unchanged, but the cache was dropped: verified again.
    let before = h.stats().bcrypt_verifications;
    auth(&h, "bob", "pw").unwrap();
    assert_eq!(h.stats().bcrypt_verifications, before + 1);
    assert_eq!(h.stats().reloads, 1);
}

#[test]
fn reloads_when_the_file_is_rewritten_in_place() {
    let dir = TempDir::new();
    let path = dir.file("htpasswd");
    std::fs::write(&path, line("alice", "old")).unwrap();
    let h = Htpasswd::load(&path).unwrap();
    auth(&h, "alice", "old").unwrap();

    // `htpasswd` itself and editors may truncate and rewrite the same inode.
    std::fs::write(&path, line("alice", "new") + "# now with a comment\n").unwrap();
    assert_eq!(auth(&h, "alice", "old"), Err(AuthError::InvalidCredentials));
    assert_eq!(auth(&h, "alice", "new").unwrap(), "alice");
    assert_eq!(h.stats().reloads, 1);
}

#[test]
fn a_broken_file_keeps_the_old_users() {
    let dir = TempDir::new();
    let path = dir.file("htpasswd");
    std::fs::write(&path, line("alice", "secret")).unwrap();
    let h = Htpasswd::load(&path).unwrap();
    auth(&h, "alice", "secret").unwrap();

    // A half-written file: the hash is cut off.
    let full = line("alice", "changed") + &line("bob", "pw");
    std::fs::write(&path, &full[..full.len() - 20]).unwrap();
    assert_eq!(auth(&h, "alice", "secret").unwrap(), "alice");
    assert_eq!(auth(&h, "alice", "secret").unwrap(), "alice");
    assert_eq!(auth(&h, "bob", "pw"), Err(AuthError::InvalidCredentials));
    let stats = h.stats();
    // Tried once for this change (one warning), and the cache was dropped.
    assert_eq!((stats.failed_reloads, stats.reloads), (1, 0));
    assert_eq!(stats.bcrypt_verifications, 3);
    assert_eq!(stats.cache_hits, 1);

    // Once the write completes, the new file is picked up.
    std::fs::write(&path, &full).unwrap();
    assert_eq!(auth(&h, "bob", "pw").unwrap(), "bob");
    assert_eq!(
        auth(&h, "alice", "secret"),
        Err(AuthError::InvalidCredentials)
    );
    assert_eq!(h.stats().reloads, 1);

    // A deleted file is also a failed reload, not an empty user list.
    std::fs::remove_file(&path).unwrap();
    assert_eq!(auth(&h, "bob", "pw").unwrap(), "bob");
    assert_eq!(h.stats().failed_reloads, 2);
}

#[test]
fn load_errors_name_the_file_and_line() {
    let dir = TempDir::new();
    let path = dir.file("htpasswd");

    let err = Htpasswd::load(&path).unwrap_err();
    assert!(matches!(err, HtpasswdError::Read { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
}

#[test]
fn unusable_lines_disable_only_their_user_and_say_why() {
    let dir = TempDir::new();
    let path = dir.file("htpasswd");
    std::fs::write(
        &path,
        line("alice", "pw") + "bob\nbob:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n" + &line("carol", "pw"),
    )
    .unwrap();
    let h = Htpasswd::load(&path).unwrap();
    assert_eq!(h.user_count(), 2);
    assert_eq!(auth(&h, "alice", "pw").unwrap(), "alice");
    assert_eq!(auth(&h, "carol", "pw").unwrap(), "carol");
    // bob can never log in; the server can learn why, the client cannot.
    assert_eq!(
        auth(&h, "bob", "password"),
        Err(AuthError::InvalidCredentials)
    );
    let why = h.disabled("bob").unwrap().to_string();
    assert!(why.contains("line 3") && why.contains("SHA-1"), "{why}");
    assert!(
        why.contains(&format!("htpasswd -B {} bob", path.display())),
        "{why}"
    );
    assert!(h.disabled("alice").is_none() && h.disabled("nobody").is_none());
    assert!(h.password_fingerprint("bob").is_none());
    let warnings = h.warnings();
    assert_eq!(warnings.iter().map(|w| w.line).collect::<Vec<_>>(), [2, 3]);
    assert!(warnings[1].disables_user() && !warnings[0].disables_user());
    // A disabled user costs a verification, like an unknown one.
    assert_eq!(h.stats().bcrypt_verifications, 3);
    assert_eq!(check_file(&path).unwrap(), warnings);

    // Added at runtime, such a line disables that user alone too.
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("carol:$1$salt$abcdefghijklmnopqrstuv\n");
    std::fs::write(&path, text).unwrap();
    assert_eq!(auth(&h, "carol", "pw"), Err(AuthError::InvalidCredentials));
    assert_eq!(auth(&h, "alice", "pw").unwrap(), "alice");
    assert!(
        h.disabled("carol")
            .unwrap()
            .to_string()
            .contains("MD5 crypt")
    );
    assert_eq!(h.stats().reloads, 1);
}

#[test]
fn debug_does_not_show_hashes() {
    let dir = TempDir::new();
    let path = dir.file("htpasswd");
    let entry = line("alice", "pw");
    std::fs::write(&path, &entry).unwrap();
    let h = Htpasswd::load(&path).unwrap();
    auth(&h, "alice", "pw").unwrap();
    let debug = format!("{h:?}");
    assert!(debug.contains("users: 1"), "{debug}");
    assert!(!debug.contains("$2"), "{debug}");
    assert!(!debug.contains("pw\""), "{debug}");
}

#[test]
fn add_user_creates_a_private_file_and_replaces_entries() {
    let dir = TempDir::new();
    let path = dir.file("htpasswd");
    add_user(&path, &name("alice"), &secret("one"), COST).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    let mut contents = std::fs::read_to_string(&path).unwrap();
    contents.insert_str(0, "# managed by hand\n");
    contents.push_str("\nbob:$2y$04$abcdefghijklmnopqrstuuJ3dg5JtZBcNfWTUxMNfSqkOy30LdfGy\n");
    std::fs::write(&path, &contents).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();

    add_user(&path, &name("alice"), &secret("two"), COST).unwrap();
    add_user(&path, &name("carol"), &secret("three"), COST).unwrap();
    let after = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = after.lines().collect();
    assert_eq!(lines.len(), 5, "{after}");
    assert_eq!(lines[0], "# managed by hand");
    assert!(lines[1].starts_with("alice:$2y$04$"), "{after}");
    assert_eq!(lines[2], "");
    assert_eq!(lines[3], contents.lines().nth(3).unwrap());
    assert!(lines[4].starts_with("carol:$2y$04$"), "{after}");
    // An existing file keeps its mode.
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640);
    // No temporary files are left behind.
    assert_eq!(std::fs::read_dir(&dir.0).unwrap().count(), 1);

    let h = Htpasswd::load(&path).unwrap();
    assert!(auth(&h, "alice", "one").is_err());
    assert_eq!(auth(&h, "alice", "two").unwrap(), "alice");
    assert_eq!(auth(&h, "carol", "three").unwrap(), "carol");
}

#[test]
fn add_user_follows_symlinks_and_checks_its_inputs() {
    let dir = TempDir::new();
    let real = dir.file("real");
    let link = dir.file("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    add_user(&link, &name("alice"), &secret("pw"), COST).unwrap();
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(
        std::fs::read_to_string(&real)
            .unwrap()
            .starts_with("alice:")
    );

    let err = add_user(&real, &name("alice"), &secret("pw"), 3).unwrap_err();
    assert!(matches!(err, HtpasswdError::InvalidCost(3)), "{err:?}");
    let err = add_user(&real, &name("#alice"), &secret("pw"), COST).unwrap_err();
    assert!(
        matches!(err, HtpasswdError::UnrepresentableUserName { .. }),
        "{err:?}"
    );
    let err = add_user(
        &dir.file("missing/dir/file"),
        &name("a"),
        &secret("pw"),
        COST,
    );
    assert!(matches!(err, Err(HtpasswdError::Write { .. })), "{err:?}");
}

#[test]
fn concurrent_authentication_during_reload() {
    let dir = TempDir::new();
    let path = dir.file("htpasswd");
    std::fs::write(&path, line("alice", "pw") + &line("bob", "pw")).unwrap();
    let h = Htpasswd::load(&path).unwrap();
    std::thread::scope(|s| {
        for user in ["alice", "bob", "alice", "bob"] {
            let h = &h;
            s.spawn(move || {
                for _ in 0..20 {
                    assert_eq!(auth(h, user, "pw").unwrap(), user);
                }
            });
        }
        add_user(&path, &name("carol"), &secret("pw"), COST).unwrap();
    });
    assert_eq!(auth(&h, "carol", "pw").unwrap(), "carol");
    assert!(h.stats().reloads <= 1);
}
