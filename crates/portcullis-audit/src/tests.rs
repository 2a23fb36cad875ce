use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, SystemTime};

use portcullis_types::event::{ChangeKind, Event, EventSink, What, sink_contract};

use crate::chain::{Fault, Head};
use crate::output::{FileOutput, Output, SyslogOutput, rotated_files};
use crate::read::{Filter, show, verify};
use crate::{AuditSink, Pulls, Record, Settings};

const WAIT: Duration = Duration::from_secs(10);

fn push(actor: &str, repo: &str, tag: &str) -> Event {
    Event {
        client: Some("127.0.0.1".into()),
        request_id: Some(format!("req-{tag}")),
        ..Event::new(
            actor,
            What::Change {
                kind: ChangeKind::ManifestPushed,
                repository: repo.into(),
                reference: Some(tag.into()),
                digest: Some(format!("sha256:{}", "a".repeat(64))),
                media_type: None,
                size: None,
                previous: None,
                status: 201,
            },
        )
    }
}

fn file_sink(path: &Path, max_bytes: u64, settings: &Settings) -> AuditSink {
    let out = FileOutput::open(path, max_bytes, 100).expect("open");
    let head = out.head().expect("head");
    AuditSink::start(vec![Box::new(out)], head, settings).expect("start")
}

fn all_files(path: &Path) -> Vec<PathBuf> {
    let mut files = rotated_files(path).expect("rotated");
    files.push(path.to_owned());
    files
}

fn records(files: &[PathBuf]) -> Vec<Record> {
    let mut out = Vec::new();
    show(files, &Filter::default(), |r, _| out.push(r.clone())).expect("show");
    out
}

#[test]
fn the_sink_keeps_the_contract_and_its_file_verifies() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("audit.log");
    let sink = file_sink(&path, 1 << 20, &Settings::default());
    sink_contract(&sink);
    assert!(sink.flush(WAIT));
    let files = all_files(&path);
    let ok = verify(&files, true).expect("read").expect("intact");
    assert_eq!(ok.first_seq, Some(1));
    assert!(ok.anchored);
    let events: Vec<String> = records(&files).into_iter().map(|r| r.event).collect();
    // The contract sends one event of each kind; its decision is a denial.
    assert_eq!(
        events,
        [
            "auth.failure",
            "token.issued",
            "access.denied",
            "manifest.push",
            "blob.pull",
            "auth.lockout",
            "ratelimit.refused",
            "admin"
        ]
    );
}

#[test]
fn rotation_keeps_one_chain_across_files_and_a_restart_continues_it() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("audit.log");
    let sink = file_sink(&path, 4096, &Settings::default());
    for i in 0..60 {
        sink.emit(&push("alice", "team/app", &format!("v{i}")));
        if i % 10 == 9 {
            assert!(sink.flush(WAIT));
        }
    }
    drop(sink);
    let sink = file_sink(&path, 4096, &Settings::default());
    sink.emit(&push("bob", "team/app", "after-restart"));
    assert!(sink.flush(WAIT));
    let files = all_files(&path);
    assert!(files.len() > 2, "rotated into several files: {files:?}");
    let ok = verify(&files, true).expect("read").expect("intact");
    assert_eq!(ok.lines, 61);
    let recs = records(&files);
    assert_eq!(recs.last().map(|r| r.seq), Some(61));
    assert_eq!(recs[0].reference.as_deref(), Some("v0"));
}

#[test]
fn one_byte_edited_in_a_middle_file_is_named_with_its_file_and_line() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("audit.log");
    let sink = file_sink(&path, 4096, &Settings::default());
    for i in 0..40 {
        sink.emit(&push("alice", "team/app", &format!("v{i}")));
        assert!(sink.flush(WAIT));
    }
    drop(sink);
    let files = all_files(&path);
    let victim = &files[1];
    let text = std::fs::read_to_string(victim).expect("read");
    let third = text.lines().nth(2).expect("three lines").to_owned();
    let edited = third.replacen("alice", "alicf", 1);
    std::fs::write(victim, text.replacen(&third, &edited, 1)).expect("write");
    let broken = verify(&files, true).expect("read").expect_err("caught");
    assert_eq!(&broken.file, victim);
    assert_eq!(broken.line, 3);
    assert_eq!(broken.fault, Fault::Edited);
    assert!(broken.to_string().contains(":3: edited"), "{broken}");
}

#[test]
fn a_deleted_last_line_is_caught_by_the_anchor() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("audit.log");
    let sink = file_sink(&path, 1 << 20, &Settings::default());
    for i in 0..5 {
        sink.emit(&push("alice", "a", &format!("v{i}")));
    }
    assert!(sink.flush(WAIT));
    drop(sink);
    let text = std::fs::read_to_string(&path).expect("read");
    let kept: Vec<&str> = text.lines().take(4).collect();
    std::fs::write(&path, kept.join("\n") + "\n").expect("write");
    let broken = verify(std::slice::from_ref(&path), true)
        .expect("read")
        .expect_err("caught");
    assert_eq!(
        broken.fault,
        Fault::Truncated {
            head_seq: 5,
            last_seq: 4
        }
    );
}

#[test]
fn a_damaged_last_line_refuses_to_continue_the_chain() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("audit.log");
    std::fs::write(&path, "{\"seq\":1,\"cut short\n").expect("write");
    let out = FileOutput::open(&path, 1 << 20, 3).expect("open");
    let err = out.head().expect_err("refused");
    assert!(err.to_string().contains("portcullis audit verify"), "{err}");
}

#[test]
fn aggregated_pulls_become_one_line_per_identity_and_repository() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("audit.log");
    let settings = Settings {
        pulls: Pulls::Aggregate,
        ..Settings::default()
    };
    let sink = file_sink(&path, 1 << 20, &settings);
    let pull = |who: &str, repo: &str| Record {
        time: crate::record::rfc3339(SystemTime::now()),
        event: "manifest.pull".into(),
        identity: Some(who.into()),
        repository: Some(repo.into()),
        ..Record::default()
    };
    for _ in 0..500 {
        sink.record(pull("ci", "team/app"));
    }
    for _ in 0..7 {
        sink.record(pull("bob", "team/app"));
    }
    assert!(sink.flush(WAIT));
    let recs = records(&all_files(&path));
    let got: Vec<(String, Option<String>, Option<u64>)> = recs
        .into_iter()
        .map(|r| (r.event, r.identity, r.count))
        .collect();
    assert_eq!(
        got,
        [
            ("pull.aggregate".into(), Some("bob".into()), Some(7)),
            ("pull.aggregate".into(), Some("ci".into()), Some(500)),
        ]
    );
}

/// Blocks its first write until told to go on.
struct Gate(Option<mpsc::Receiver<()>>);

impl Output for Gate {
    fn name(&self) -> &'static str {
        "gate"
    }
    fn write(&mut self, _lines: &str, _head: &Head) -> std::io::Result<()> {
        if let Some(rx) = self.0.take() {
            let _ = rx.recv_timeout(WAIT);
        }
        Ok(())
    }
}

#[test]
fn a_full_queue_never_blocks_emit_and_the_drop_is_written() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("audit.log");
    let (go, gate) = mpsc::channel();
    let file = FileOutput::open(&path, 1 << 20, 3).expect("open");
    let settings = Settings {
        queue: 4,
        ..Settings::default()
    };
    let sink = AuditSink::start(
        vec![Box::new(Gate(Some(gate))), Box::new(file)],
        Head::default(),
        &settings,
    )
    .expect("start");
    sink.emit(&push("a", "r", "first"));
    // The writer now blocks in the gate; the queue holds 4, the rest drop.
    std::thread::sleep(Duration::from_millis(200));
    let started = std::time::Instant::now();
    for i in 0..100 {
        sink.emit(&push("a", "r", &format!("x{i}")));
    }
    assert!(started.elapsed() < WAIT, "emit never waits for the writer");
    let dropped = sink
        .counters()
        .dropped
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(dropped >= 90, "dropped {dropped}");
    go.send(()).expect("open the gate");
    assert!(sink.flush(WAIT));
    let recs = records(std::slice::from_ref(&path));
    let noted: u64 = recs
        .iter()
        .filter(|r| r.event == "audit.dropped")
        .filter_map(|r| r.count)
        .sum();
    assert_eq!(noted, dropped);
    assert!(verify(&[path], true).expect("read").is_ok());
}

#[test]
fn syslog_gets_each_line_as_one_auth_datagram() {
    let dir = tempfile::tempdir().expect("dir");
    let sock = dir.path().join("log.sock");
    let server = std::os::unix::net::UnixDatagram::bind(&sock).expect("bind");
    server.set_read_timeout(Some(WAIT)).expect("timeout");
    let out = SyslogOutput::connect(&sock).expect("connect");
    let sink = AuditSink::start(vec![Box::new(out)], Head::default(), &Settings::default())
        .expect("start");
    sink.emit(&push("alice", "team/app", "v1"));
    assert!(sink.flush(WAIT));
    let mut buf = vec![0u8; 8192];
    let n = server.recv(&mut buf).expect("datagram");
    let msg = String::from_utf8_lossy(&buf[..n]);
    assert!(msg.starts_with("<38>portcullis["), "{msg}");
    assert!(msg.contains(r#""event":"manifest.push""#), "{msg}");
}

#[test]
fn show_filters_by_user_repository_and_time() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("audit.log");
    let sink = file_sink(&path, 1 << 20, &Settings::default());
    sink.emit(&push("alice", "team/app", "v1"));
    sink.emit(&push("bob", "team/app", "v2"));
    sink.emit(&push("alice", "other", "v3"));
    assert!(sink.flush(WAIT));
    let pick = |f: Filter| {
        let mut refs = Vec::new();
        show(std::slice::from_ref(&path), &f, |r, _| {
            refs.push(r.reference.clone().unwrap_or_default());
        })
        .expect("show");
        refs
    };
    let alice = Filter {
        user: Some("alice".into()),
        ..Filter::default()
    };
    assert_eq!(pick(alice), ["v1", "v3"]);
    let app = Filter {
        repo: Some("team/app".into()),
        ..Filter::default()
    };
    assert_eq!(pick(app), ["v1", "v2"]);
    let future = Filter {
        since: Some("2999-01-01T00:00:00.000Z".into()),
        ..Filter::default()
    };
    assert!(pick(future).is_empty());
}

#[test]
fn admin_actions_posted_by_another_process_join_the_chain_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store =
        portcullis_state::DirStore::new(dir.path().join("state"), portcullis_state::system_clock());
    crate::outbox::post(&store, "root", "user add", "alice").expect("post");
    crate::outbox::post(&store, "root", "lockout clear", "--user alice").expect("post");
    let path = dir.path().join("audit.log");
    let sink = file_sink(&path, 1 << 20, &Settings::default());
    assert_eq!(crate::outbox::drain(&store, &sink).expect("drain"), 2);
    assert_eq!(
        crate::outbox::drain(&store, &sink).expect("drain"),
        0,
        "moved, not copied"
    );
    assert!(sink.flush(WAIT));
    let files = all_files(&path);
    verify(&files, true).expect("read").expect("intact");
    let got: Vec<(String, Option<String>)> = records(&files)
        .into_iter()
        .map(|r| (r.event, r.command))
        .collect();
    assert_eq!(
        got,
        [
            ("admin".to_owned(), Some("user add".to_owned())),
            ("admin".to_owned(), Some("lockout clear".to_owned()))
        ]
    );
}
