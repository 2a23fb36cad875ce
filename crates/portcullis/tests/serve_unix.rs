//! Serving on a unix socket (`http.net: unix`): the socket gets the mode of
//! `portcullis.socketmode` (default 0666, so an nginx worker that is not
//! root can connect), and answers HTTP on it.

mod common;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn serve_on_socket(dir: &Path, extra: &str) -> (std::process::Child, std::path::PathBuf) {
    let socket = dir.join("registry.sock");
    let config = dir.join("config.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  net: unix\n  addr: {}\n{extra}",
            dir.join("data").display(),
            socket.display()
        ),
    )
    .expect("write config");
    let child = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["serve", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start portcullis");
    let started = Instant::now();
    while UnixStream::connect(&socket).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the socket never accepted"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (child, socket)
}

fn get_base(socket: &Path) -> String {
    let mut conn = UnixStream::connect(socket).expect("connect");
    conn.write_all(b"GET /v2/ HTTP/1.1\r\nHost: registry\r\nConnection: close\r\n\r\n")
        .expect("write");
    let mut out = String::new();
    conn.read_to_string(&mut out).expect("read");
    out
}

fn mode_of(socket: &Path) -> u32 {
    std::fs::metadata(socket)
        .expect("socket")
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn the_socket_is_reachable_by_others_by_default_and_restricted_on_request() {
    let dir = common::temp_dir();
    let (mut child, socket) = serve_on_socket(dir.path(), "");
    let result = std::panic::catch_unwind(|| {
        assert_eq!(mode_of(&socket), 0o666);
        let resp = get_base(&socket);
        assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    });
    let _ = child.kill();
    let _ = child.wait();
    result.unwrap();

    let dir = common::temp_dir();
    let (mut child, socket) = serve_on_socket(dir.path(), "portcullis:\n  socketmode: \"0660\"\n");
    let result = std::panic::catch_unwind(|| assert_eq!(mode_of(&socket), 0o660));
    let _ = child.kill();
    let _ = child.wait();
    result.unwrap();
}
