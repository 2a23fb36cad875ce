//! An acknowledged push survives a power cut: traced with strace, every file
//! that a push publishes (the blob data, every link, the tag, the manifest)
//! is flushed before the rename that publishes it, its directory is flushed
//! after the rename (and the parent of every directory created for it), and
//! all of that happens before the 201. strace attaches to this test process,
//! which serves the push in-process over the filesystem driver.
//!
//! Needs `strace` and permission to trace: without them the test says why it
//! skips, and fails instead under `PORTCULLIS_E2E=required`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use portcullis_core::Options;

use common::Reg;
use portcullis_testkit::process::{signal, wait_deadline};
use portcullis_testkit::{find_in_path, run, skip_or_fail};

/// How long strace may take to start, attach or detach.
const STRACE_TIMEOUT: Duration = Duration::from_secs(30);

/// A syscall from the trace: its name and the paths it names (for fsyncs,
/// the path of the descriptor, which `strace -y` prints).
#[derive(Debug)]
struct Call {
    name: String,
    paths: Vec<String>,
}

fn quoted(s: &str) -> Vec<String> {
    s.split('"').skip(1).step_by(2).map(str::to_owned).collect()
}

/// Parses `strace -f -y -o` lines (`PID name(args) = result`, or the start
/// of an `<unfinished ...>` call; `resumed` lines carry no arguments).
fn parse(trace: &str) -> Vec<Call> {
    let mut calls = Vec::new();
    for line in trace.lines() {
        let rest = line.split_once(' ').map_or(line, |(_, r)| r).trim_start();
        if rest.starts_with("<...") || rest.starts_with("+++") || rest.starts_with("---") {
            continue;
        }
        let Some((name, args)) = rest.split_once('(') else {
            continue;
        };
        let failed = rest.contains(") = -1 ");
        if failed && !name.starts_with("rename") {
            continue;
        }
        let paths = if name.starts_with("fsync") || name.starts_with("fdatasync") {
            args.split_once('<')
                .and_then(|(_, p)| p.split_once('>'))
                .map(|(p, _)| vec![p.to_owned()])
                .unwrap_or_default()
        } else {
            quoted(args)
        };
        calls.push(Call {
            name: name.to_owned(),
            paths,
        });
    }
    calls
}

fn is_sync(c: &Call) -> bool {
    c.name == "fsync" || c.name == "fdatasync"
}

fn synced(calls: &[Call], path: &str) -> Option<usize> {
    calls
        .iter()
        .position(|c| is_sync(c) && c.paths.first().is_some_and(|p| p == path))
}

/// Starts strace on this process and waits until it traces this thread.
fn attach(log: &Path, marker: &Path) -> Result<Child, String> {
    let mut child = Command::new("strace")
        .args(["-f", "-qq", "-y", "-o"])
        .arg(log)
        .args([
            "-e",
            "trace=fsync,fdatasync,rename,renameat,renameat2,mkdir,mkdirat",
            "-p",
            &std::process::id().to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("strace cannot be started: {e}"))?;
    let started = Instant::now();
    let probe = marker.with_extension("attached");
    loop {
        let _ = std::fs::rename(&probe, marker);
        let seen = std::fs::read_to_string(log).unwrap_or_default();
        if seen.contains(probe.to_str().unwrap()) {
            return Ok(child);
        }
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            return Err(format!(
                "strace cannot trace this process ({status}): {err}"
            ));
        }
        if started.elapsed() > STRACE_TIMEOUT {
            let _ = child.kill();
            return Err("strace did not attach within 30 s".to_owned());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Detaches strace (SIGINT makes it flush and let go) and returns the trace.
fn detach(mut child: Child, log: &Path) -> String {
    signal(i64::from(child.id()), "INT");
    if wait_deadline(&mut child, STRACE_TIMEOUT).is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    std::fs::read_to_string(log).expect("strace log")
}

/// Checks one published file: flushed before its rename, which precedes
/// `ack`, and its directory flushed after the rename and before `ack`.
#[track_caller]
fn assert_published(calls: &[Call], final_path: &str, source: Option<&str>, ack: usize) -> usize {
    let dir = Path::new(final_path).parent().unwrap().to_str().unwrap();
    let rename = calls
        .iter()
        .position(|c| {
            c.name.starts_with("rename") && c.paths.last().is_some_and(|p| p == final_path)
        })
        .unwrap_or_else(|| panic!("no rename publishes {final_path}"));
    let src = source.map_or_else(|| calls[rename].paths[0].clone(), str::to_owned);
    assert_eq!(
        calls[rename].paths[0], src,
        "{final_path} published from elsewhere"
    );
    let data_sync = synced(&calls[..rename], &src);
    assert!(
        data_sync.is_some(),
        "{src} was not flushed before the rename that publishes {final_path}"
    );
    let dir_sync = calls[rename..]
        .iter()
        .position(|c| is_sync(c) && c.paths.first().is_some_and(|p| p == dir))
        .map(|i| i + rename);
    assert!(
        dir_sync.is_some_and(|i| i < ack),
        "the directory {dir} was not flushed after publishing {final_path} and before the 201"
    );
    assert!(rename < ack, "{final_path} was published after the 201");
    rename
}

/// Every directory created under `root` had its parent flushed before `ack`.
#[track_caller]
fn assert_new_dirs_flushed(calls: &[Call], root: &str, ack: usize) {
    for (i, c) in calls.iter().enumerate().take(ack) {
        if !c.name.starts_with("mkdir") {
            continue;
        }
        let Some(dir) = c.paths.last().filter(|p| p.starts_with(root)) else {
            continue;
        };
        if dir.contains("/_uploads/") {
            continue; // working files, never published by name
        }
        let parent = Path::new(dir).parent().unwrap().to_str().unwrap();
        assert!(
            calls[i..ack]
                .iter()
                .any(|s| is_sync(s) && s.paths.first().is_some_and(|p| p == parent)),
            "{parent} was not flushed after {dir} was created in it"
        );
    }
}

/// The renames whose (source, destination) pass `keep`.
fn renames(calls: &[Call], keep: impl Fn(&str, &str) -> bool) -> Vec<&Call> {
    calls
        .iter()
        .filter(|c| {
            c.name.starts_with("rename")
                && c.paths.len() >= 2
                && keep(&c.paths[0], c.paths.last().unwrap())
        })
        .collect()
}

fn under(root: &Path, rel: &str) -> String {
    root.join(rel).to_str().unwrap().to_owned()
}

fn blob_path(root: &Path, digest: &str) -> String {
    let hex = digest.trim_start_matches("sha256:");
    under(
        root,
        &format!("docker/registry/v2/blobs/sha256/{}/{hex}/data", &hex[..2]),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_is_flushed_before_it_is_published_and_acknowledged() {
    let installed = find_in_path("strace").is_some_and(|strace| {
        run(Command::new(strace).arg("-V"), None, STRACE_TIMEOUT)
            .status
            .success()
    });
    if !installed {
        skip_or_fail("strace is not installed (apt-get install strace)");
        return;
    }
    let reg = Reg::fs_with(Options::default());
    let root: PathBuf = reg.dir.as_ref().unwrap().path().canonicalize().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let log = scratch.path().join("trace");
    let marker = scratch.path().join("acknowledged");
    let child = match attach(&log, &marker) {
        Ok(c) => c,
        Err(reason) => {
            skip_or_fail(&reason);
            return;
        }
    };

    let (manifest, _) = reg.push_image("dur/app", "v1", "durable").await;
    // Everything traced before this marker happened before the 201s arrived.
    let ack_probe = marker.with_extension("after-201");
    let _ = std::fs::rename(&ack_probe, &marker);
    let trace = detach(child, &log);
    let calls = parse(&trace);
    let ack = calls
        .iter()
        .position(|c| {
            c.paths
                .first()
                .is_some_and(|p| p == ack_probe.to_str().unwrap())
        })
        .expect("the 201 marker is in the trace");

    // Blobs: the upload's data is flushed once and renamed into blobs/.
    let blobs = renames(&calls[..ack], |from, _| {
        from.contains("/_uploads/") && from.ends_with("/data")
    });
    assert_eq!(blobs.len(), 2, "config and layer uploads: {blobs:?}");
    for b in &blobs {
        let (src, dst) = (b.paths[0].clone(), b.paths.last().unwrap().clone());
        assert!(
            dst.ends_with("/data") && dst.contains("/blobs/sha256/"),
            "{dst}"
        );
        assert_published(&calls, &dst, Some(&src), ack);
        let syncs = calls
            .iter()
            .filter(|c| is_sync(c) && c.paths.first() == Some(&src));
        // Blobs this small get no background flush ahead (storage's
        // FLUSH_AHEAD is 8 MiB): the one flush is the commit's.
        assert_eq!(
            syncs.count(),
            1,
            "{src} must be flushed exactly once, at commit"
        );
    }

    // Links, the manifest's content, the tag; the tag's current link last.
    let repo = "docker/registry/v2/repositories/dur/app";
    let hex = manifest.trim_start_matches("sha256:");
    let data = assert_published(&calls, &blob_path(&root, &manifest), None, ack);
    let revision = format!("{repo}/_manifests/revisions/sha256/{hex}/link");
    assert_published(&calls, &under(&root, &revision), None, ack);
    let index = format!("{repo}/_manifests/tags/v1/index/sha256/{hex}/link");
    assert_published(&calls, &under(&root, &index), None, ack);
    let current = format!("{repo}/_manifests/tags/v1/current/link");
    let tag = assert_published(&calls, &under(&root, &current), None, ack);
    assert!(
        data < tag,
        "the tag was published before the manifest's content"
    );
    let layers = renames(&calls[..ack], |_, to| {
        to.contains("/_layers/") && to.ends_with("/link")
    });
    assert_eq!(layers.len(), 2, "a layer link per blob: {layers:?}");
    for l in layers {
        assert_published(&calls, l.paths.last().unwrap(), None, ack);
    }
    assert_new_dirs_flushed(&calls, root.to_str().unwrap(), ack);
}
