//! The robot store's tests, each run over a memory and a directory state
//! store, and the import of store files from before the state store.

use std::fs;

use portcullis_state::{DirStore, MemoryStore, system_clock};

use super::*;
use crate::records::testing::{Backend, for_each_store};
use portcullis_types::pattern::RepoPattern;

pub(super) fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| (*x).to_owned()).collect()
}

pub(super) fn acts(v: &[&str]) -> Vec<ScopeAction> {
    v.iter().map(|x| x.parse().unwrap()).collect()
}

fn store(b: &Backend) -> RobotStore {
    RobotStore::open_in(b.state(), None).unwrap()
}

fn ci(store: &RobotStore, now: SystemTime, ttl: Option<Duration>) -> (Robot, SecretString) {
    store
        .create(
            "alice",
            "ci",
            s(&["team/**"]),
            acts(&["pull", "push"]),
            ttl,
            now,
        )
        .unwrap()
}

#[test]
fn create_authenticate_and_file() {
    for_each_store(create_authenticate_and_file_in);
}

fn create_authenticate_and_file_in(b: &Backend) {
    let store = store(b);
    let now = SystemTime::now();
    let (robot, secret) = ci(&store, now, Some(Duration::from_secs(60)));
    assert_eq!(robot.login(), "alice+ci");
    let text = secret.expose_secret();
    assert!(RobotStore::looks_like_secret(text), "{text}");
    assert_eq!(text.len(), SECRET_TOTAL_LEN);
    assert!(text.starts_with(&format!("pcrt_{}_", robot.id)));
    let got = store.authenticate("alice+ci", &secret, now).unwrap();
    assert_eq!(got.id, robot.id);
    assert_eq!(got.last_used, secs(now));
    // only a hash is stored, in a file with mode 0600
    let stored = b.state().get(STATE_KEY).unwrap().unwrap().value;
    let file = String::from_utf8(stored).unwrap();
    // the secret part may itself contain `_`: cut at the fixed offset
    let part = &text[SECRET_PREFIX.len() + ID_LEN + 1..];
    assert!(part.len() == SECRET_LEN && !file.contains(part));
    assert!(file.contains(&robot.hash));
    if let Some(path) = b.file(STATE_KEY) {
        assert_eq!(store.path(), path);
        assert_eq!(fs::read_to_string(&path).unwrap(), file);
        assert_eq!(
            std::os::unix::fs::MetadataExt::mode(&fs::metadata(&path).unwrap()) & 0o777,
            0o600
        );
    }
}

#[test]
fn wrong_login_and_tampered_secret_are_refused() {
    for_each_store(wrong_login_and_tampered_secret_are_refused_in);
}

fn wrong_login_and_tampered_secret_are_refused_in(b: &Backend) {
    let store = store(b);
    let now = SystemTime::now();
    let (_, secret) = ci(&store, now, None);
    for login in [
        "alice",
        "bob+ci",
        "alice+cd",
        "ALICE+ci",
        "",
        "robot$alice+ci",
    ] {
        assert!(
            matches!(
                store.authenticate(login, &secret, now),
                Err(RobotError::Unknown)
            ),
            "{login}"
        );
    }
    let text = secret.expose_secret();
    let last = if text.ends_with('A') { 'B' } else { 'A' };
    let tampered = format!("{}{last}", &text[..text.len() - 1]);
    assert!(matches!(
        store.authenticate("alice+ci", &SecretString::from(tampered), now),
        Err(RobotError::Unknown)
    ));
    let other_id = format!(
        "pcrt_{}{}",
        "0".repeat(ID_LEN),
        &text[SECRET_PREFIX.len() + ID_LEN..]
    );
    assert!(matches!(
        store.authenticate("alice+ci", &SecretString::from(other_id), now),
        Err(RobotError::Unknown)
    ));
    for bad in [
        "".to_owned(),
        "hunter2".to_owned(),
        format!("{text}x"),
        text.replacen("pcrt_", "pcrx_", 1),
        text[..text.len() - 1].to_owned() + "é",
    ] {
        assert!(!RobotStore::looks_like_secret(&bad), "{bad}");
        assert!(matches!(
            store.authenticate("alice+ci", &SecretString::from(bad), now),
            Err(RobotError::Malformed)
        ));
    }
}

#[test]
fn expiry_is_enforced() {
    for_each_store(expiry_is_enforced_in);
}

fn expiry_is_enforced_in(b: &Backend) {
    let store = store(b);
    let now = SystemTime::now();
    let (_, secret) = ci(&store, now, Some(Duration::from_secs(60)));
    let almost = now + Duration::from_secs(59);
    store.authenticate("alice+ci", &secret, almost).unwrap();
    assert!(matches!(
        store.authenticate("alice+ci", &secret, now + Duration::from_secs(61)),
        Err(RobotError::Expired)
    ));
    // never expires
    let (_, forever) = store
        .create("bob", "ci", s(&["**"]), acts(&["*"]), None, now)
        .unwrap();
    store
        .authenticate(
            "bob+ci",
            &forever,
            now + Duration::from_secs(10 * 365 * 86_400),
        )
        .unwrap();
}

#[test]
fn create_validates_its_input() {
    for_each_store(create_validates_its_input_in);
}

fn create_validates_its_input_in(b: &Backend) {
    let store = store(b);
    let now = SystemTime::now();
    let mk = |owner: &str, name: &str, repos: &[&str], actions: &[&str]| {
        store.create(owner, name, s(repos), acts(actions), None, now)
    };
    assert!(matches!(
        mk("alice", "CI", &["a/**"], &["pull"]),
        Err(RobotError::InvalidName(_))
    ));
    assert!(matches!(
        mk("alice", "c+i", &["a/**"], &["pull"]),
        Err(RobotError::InvalidName(_))
    ));
    assert!(matches!(
        mk("alice", &"x".repeat(65), &["a"], &["pull"]),
        Err(RobotError::InvalidName(_))
    ));
    assert!(matches!(
        mk("", "ci", &["a"], &["pull"]),
        Err(RobotError::InvalidOwner { .. })
    ));
    assert!(matches!(
        mk("a:b", "ci", &["a"], &["pull"]),
        Err(RobotError::InvalidOwner { .. })
    ));
    // The policy's compiler checks the patterns, and its error (naming the
    // pattern, what is wrong and the fix) is the robot's.
    for bad in [
        "",
        "a//b",
        "/a",
        "a/",
        "Team/**",
        "a/b**",
        "a/***",
        "${User}/**",
        "$user/**",
        "a b",
        "a/../b",
    ] {
        let Err(RobotError::InvalidPattern(e)) = mk("alice", "ci", &[bad], &["pull"]) else {
            panic!("{bad} was accepted");
        };
        assert_eq!(
            Err(e.clone()),
            RepoPattern::compile(bad).map(|_| ()),
            "{bad}"
        );
        assert!(e.message.contains(bad), "{bad}: {e}");
        assert!(!e.fix.is_empty(), "{bad}");
    }
    let too_long = "a".repeat(256);
    assert!(matches!(
        mk("alice", "ci", &[too_long.as_str()], &["pull"]),
        Err(RobotError::InvalidPattern(e)) if e.message.contains(&too_long)
    ));
    let Err(RobotError::InvalidPattern(e)) = mk("alice", "ci", &["Team/**"], &["pull"]) else {
        panic!("upper case was accepted");
    };
    assert_eq!(
        e.to_string(),
        "repository pattern `Team/**` has upper-case letters, but repository names are lower-case. Fix: write `team/**`"
    );
    // `catalog` is no robot action: it does not even parse.
    assert!("catalog".parse::<ScopeAction>().is_err());
    assert!(matches!(
        mk("alice", "ci", &[], &["pull"]),
        Err(RobotError::EmptyScope)
    ));
    assert!(matches!(
        mk("alice", "ci", &["a"], &[]),
        Err(RobotError::EmptyScope)
    ));
    assert!(matches!(
        store.create(
            "alice",
            "ci",
            s(&["a"]),
            acts(&["pull"]),
            Some(Duration::MAX),
            now
        ),
        Err(RobotError::TtlTooLong)
    ));
    assert!(store.list().unwrap().is_empty(), "nothing was stored");
    // names are unique per owner, not globally
    let (r, _) = mk("alice", "ci", &["a", "a"], &["pull", "pull"]).unwrap();
    assert_eq!((r.repositories.len(), r.actions.len()), (1, 1));
    assert!(
        matches!(mk("alice", "ci", &["b"], &["push"]), Err(RobotError::Exists(l)) if l == "alice+ci")
    );
    mk("bob", "ci", &["b"], &["push"]).unwrap();
    assert_eq!(store.list().unwrap().len(), 2);
}

#[test]
fn revoke_by_id_login_and_owner() {
    for_each_store(revoke_by_id_login_and_owner_in);
}

fn revoke_by_id_login_and_owner_in(b: &Backend) {
    let store = store(b);
    let now = SystemTime::now();
    let (a, sa) = ci(&store, now, None);
    let (_, sb) = store
        .create("alice", "deploy", s(&["x/*"]), acts(&["pull"]), None, now)
        .unwrap();
    let (_, sc) = store
        .create("bob", "ci", s(&["x/*"]), acts(&["pull"]), None, now)
        .unwrap();
    assert_eq!(store.revoke("nope", now).unwrap(), 0);
    assert_eq!(store.revoke(&a.id, now).unwrap(), 1);
    assert!(matches!(
        store.authenticate("alice+ci", &sa, now),
        Err(RobotError::Unknown)
    ));
    assert_eq!(store.revoke("alice+deploy", now).unwrap(), 1);
    assert!(store.authenticate("alice+deploy", &sb, now).is_err());
    store.authenticate("bob+ci", &sc, now).unwrap();
    assert_eq!(store.revoke_owner("bob", now).unwrap(), 1);
    assert!(store.authenticate("bob+ci", &sc, now).is_err());
    assert!(store.list().unwrap().is_empty());
    // the name can be reused once revoked, with a new secret
    let (_, again) = ci(&store, now, None);
    assert!(store.authenticate("alice+ci", &sa, now).is_err());
    store.authenticate("alice+ci", &again, now).unwrap();
}

#[test]
fn another_process_revokes_and_sees_creations() {
    for_each_store(another_process_revokes_and_sees_creations_in);
}

fn another_process_revokes_and_sees_creations_in(b: &Backend) {
    let server = store(b);
    let now = SystemTime::now();
    let (_, secret) = ci(&server, now, None);
    server.authenticate("alice+ci", &secret, now).unwrap();
    let cli = store(b);
    assert_eq!(cli.list().unwrap().len(), 1);
    assert_eq!(cli.list().unwrap()[0].last_used, secs(now));
    let (_, other) = cli
        .create("bob", "ci", s(&["b/**"]), acts(&["pull"]), None, now)
        .unwrap();
    server.authenticate("bob+ci", &other, now).unwrap();
    assert_eq!(cli.revoke("alice+ci", now).unwrap(), 1);
    assert!(matches!(
        server.authenticate("alice+ci", &secret, now),
        Err(RobotError::Unknown)
    ));
}

#[test]
fn last_use_is_written_at_most_once_a_minute() {
    for_each_store(last_use_is_written_at_most_once_a_minute_in);
}

fn last_use_is_written_at_most_once_a_minute_in(b: &Backend) {
    let store = store(b);
    let now = SystemTime::now();
    let (_, secret) = ci(&store, now, None);
    let on_disk = || {
        RobotStore::open_in(b.state(), None)
            .unwrap()
            .list()
            .unwrap()[0]
            .last_used
    };
    assert_eq!(on_disk(), 0, "never used");
    // the first use is written at once, the next one not within a minute
    store.authenticate("alice+ci", &secret, now).unwrap();
    assert_eq!(on_disk(), secs(now));
    let soonish = now + Duration::from_secs(30);
    store.authenticate("alice+ci", &secret, soonish).unwrap();
    assert_eq!(on_disk(), secs(now));
    let later = now + crate::records::LAST_USE_FLUSH;
    store.authenticate("alice+ci", &secret, later).unwrap();
    assert_eq!(on_disk(), secs(later));
    let soon = later + Duration::from_secs(1);
    store.authenticate("alice+ci", &secret, soon).unwrap();
    assert_eq!(on_disk(), secs(later));
    store.flush(soon).unwrap();
    assert_eq!(on_disk(), secs(soon));
}

#[test]
fn corrupt_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("robots.json");
    fs::write(&path, "{not json").unwrap();
    assert!(matches!(
        RobotStore::open(&path),
        Err(RobotError::Corrupt { .. })
    ));
    for_each_store(|b| {
        b.state().put(STATE_KEY, b"{not json", None).unwrap();
        let e = RobotStore::open_in(b.state(), None).unwrap_err();
        assert!(matches!(e, RobotError::Corrupt { .. }), "{}: {e}", b.name);
    });
}

/// Two processes creating robots at once: every creation is kept.
#[test]
fn concurrent_writers_lose_nothing() {
    for_each_store(|b| {
        let stores = [store(b), store(b)];
        let now = SystemTime::now();
        std::thread::scope(|scope| {
            for (i, st) in stores.iter().enumerate() {
                scope.spawn(move || {
                    for n in 0..10 {
                        st.create(
                            "alice",
                            &format!("r{i}-{n}"),
                            s(&["a"]),
                            acts(&["pull"]),
                            None,
                            now,
                        )
                        .unwrap();
                    }
                });
            }
        });
        assert_eq!(store(b).list().unwrap().len(), 20, "{}", b.name);
        assert_eq!(stores[0].list().unwrap().len(), 20, "{}", b.name);
        assert!(matches!(
            stores[1].create("alice", "r0-3", s(&["a"]), acts(&["pull"]), None, now),
            Err(RobotError::Exists(_))
        ));
    });
}

/// A `robots.json` as the store wrote it before the state store, holding
/// robot `alice+ci`, and that robot's secret.
fn old_file(dir: &Path) -> (PathBuf, SecretString) {
    let id = "0123456789abcdef";
    let part = "Abcdefghijklmnopqrstuvwxyz-_0123456789ABCDE";
    assert_eq!(part.len(), SECRET_LEN);
    let text = format!(
        r#"{{
  "robots": [
    {{
      "id": "{id}",
      "name": "ci",
      "owner": "alice",
      "repositories": [
        "team/**"
      ],
      "actions": [
        "pull"
      ],
      "created": 1700000000,
      "last_used": 0,
      "expires": null,
      "hash": "{}"
    }}
  ]
}}"#,
        hash_hex(part)
    );
    fs::create_dir_all(dir).unwrap();
    let path = dir.join("robots.json");
    fs::write(&path, text).unwrap();
    (
        path,
        SecretString::from(format!("{SECRET_PREFIX}{id}_{part}")),
    )
}

/// The server's way, a directory store over the state directory: the old
/// file is the store's entry, so it is neither copied nor renamed, and what
/// is written stays in the old format (a downgrade reads it).
#[test]
fn an_old_file_in_the_state_directory_still_authenticates() {
    let dir = tempfile::tempdir().unwrap();
    let state_dir = dir.path().join("portcullis");
    let (path, secret) = old_file(&state_dir);
    let state = Arc::new(DirStore::new(&state_dir, system_clock()));
    let store = RobotStore::open_in(state, Some(&path)).unwrap();
    let now = SystemTime::now();
    let robot = store.authenticate("alice+ci", &secret, now).unwrap();
    assert_eq!(robot.repositories.join(" "), "team/**");
    assert!(path.exists() && !state_dir.join("robots.json.migrated").exists());
    store
        .create("bob", "ci", s(&["b"]), acts(&["pull"]), None, now)
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    let logins: Vec<&str> = doc["robots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["owner"].as_str().unwrap())
        .collect();
    assert_eq!(logins, ["alice", "bob"]);
    assert_eq!(doc["robots"][0]["last_used"], secs(now));
}

/// A state store that lacks the key (memory, or a directory elsewhere):
/// the old file is imported once and kept as `robots.json.migrated`.
#[test]
fn an_old_file_is_imported_into_another_state_store() {
    let dir = tempfile::tempdir().unwrap();
    let stores: [Arc<dyn StateStore>; 2] = [
        Arc::new(MemoryStore::default()),
        Arc::new(DirStore::new(dir.path().join("elsewhere"), system_clock())),
    ];
    for state in stores {
        let kind = state.kind();
        let (path, secret) = old_file(&dir.path().join("portcullis"));
        let before = fs::read(&path).unwrap();
        let store = RobotStore::open_in(state.clone(), Some(&path)).unwrap();
        assert_eq!(state.get(STATE_KEY).unwrap().unwrap().value, before);
        store
            .authenticate("alice+ci", &secret, SystemTime::now())
            .unwrap();
        assert!(!path.exists(), "{kind}");
        let kept = path.with_file_name("robots.json.migrated");
        assert_eq!(fs::read(&kept).unwrap(), before, "{kind}");
        // Another process opening later finds the key and no file.
        let later = RobotStore::open_in(state, Some(&path)).unwrap();
        later
            .authenticate("alice+ci", &secret, SystemTime::now())
            .unwrap();
        fs::remove_file(kept).unwrap();
    }
    // A file that does not parse is an error and stays for the operator.
    let path = dir.path().join("bad/robots.json");
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, "{not json").unwrap();
    let state = Arc::new(MemoryStore::default());
    assert!(matches!(
        RobotStore::open_in(state.clone(), Some(&path)),
        Err(RobotError::Corrupt { .. })
    ));
    assert!(path.exists());
    assert_eq!(state.get(STATE_KEY).unwrap(), None);
}

/// Reading, listing and revoking nothing write nothing: no store appears.
#[test]
fn an_empty_store_is_not_written() {
    for_each_store(|b| {
        let store = store(b);
        let now = SystemTime::now();
        assert!(store.list().unwrap().is_empty());
        assert_eq!(store.revoke("alice+ci", now).unwrap(), 0);
        assert_eq!(store.revoke_owner("alice", now).unwrap(), 0);
        store.flush(now).unwrap();
        assert_eq!(b.state().get(STATE_KEY).unwrap(), None, "{}", b.name);
    });
}
