//! Running external programs from tests: with a deadline (a hung client or
//! server fails the test instead of hanging CI), with readable failure
//! messages, and with signals sent without `unsafe`.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::wait::{Attempt, wait_for};

/// Runs `cmd` to completion, feeding it `stdin`, and kills it after
/// `timeout`. Panics if it cannot be started or times out.
pub fn run(cmd: &mut Command, stdin: Option<&str>, timeout: Duration) -> Output {
    let shown = format!("{cmd:?}");
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {shown}: {e}"));
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin is piped");
        // A child that exits without reading its input (broken pipe) is
        // reported through its exit status and output, like any other.
        let _ = pipe.write_all(input.as_bytes());
        // Dropping the pipe closes it, so the child sees end of input.
    }
    // Read both pipes on threads: a child that fills one pipe while we wait
    // would otherwise block forever.
    let stdout = reader(child.stdout.take().expect("stdout is piped"));
    let stderr = reader(child.stderr.take().expect("stderr is piped"));
    let status = wait_deadline(&mut child, timeout);
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    let Some(status) = status else {
        panic!(
            "{shown} did not finish within {timeout:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            String::from_utf8_lossy(&stdout),
            String::from_utf8_lossy(&stderr)
        )
    };
    Output {
        status,
        stdout,
        stderr,
    }
}

fn reader(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        buf
    })
}

/// The lines `pipe` (a child's stderr, say) prints, as they come: read on
/// a thread, so a test can wait for one with a deadline ([`lines_until`]).
pub fn lines_of(pipe: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Lines from `rx` until one contains `until` (included), the pipe closes,
/// or `timeout` passes.
pub fn lines_until(rx: &mpsc::Receiver<String>, until: &str, timeout: Duration) -> Vec<String> {
    let deadline = Instant::now() + timeout;
    let mut seen = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left.min(Duration::from_millis(200))) {
            Ok(line) => {
                let done = line.contains(until);
                seen.push(line);
                if done {
                    break;
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    seen
}

/// Waits for `child` until `timeout`; `None` if it is still running then.
pub fn wait_deadline(child: &mut Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() >= deadline => return None,
            Ok(None) => thread::sleep(Duration::from_millis(50)),
            Err(e) => panic!("wait for child {}: {e}", child.id()),
        }
    }
}

/// Sends `signal` (a name such as `TERM` or `KILL`) to `target`, a pid or,
/// negative, a process group. Uses the shell's `kill` builtin, which every
/// machine has, so the tests need no `unsafe` and no libc binding.
pub fn signal(target: i64, signal: &str) {
    let _ = Command::new("sh")
        .args(["-c", &format!("kill -s {signal} -- {target} 2>/dev/null")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Pids of the processes whose command line contains `needle` (used to find
/// the helpers a daemon started in its own private directory).
pub fn pids_with_cmdline(needle: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let own = std::process::id();
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != own)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|raw| {
                String::from_utf8_lossy(&raw)
                    .replace('\0', " ")
                    .contains(needle)
            })
        })
        .collect()
}

/// Stdout and stderr of `out` as one string, for matching messages that a
/// tool may print on either.
pub fn combined_output(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Panics with the exit status, stdout and stderr unless `out` succeeded.
pub fn assert_success(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what} failed with {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Panics unless `out` failed, showing what it printed.
pub fn assert_failure(what: &str, out: &Output) {
    assert!(
        !out.status.success(),
        "{what} unexpectedly succeeded\n--- stdout ---\n{}\n--- stderr ---\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `"$@"` and stops it with SIGTERM as soon as the shell's stdin, a
/// pipe from the test process, closes: when [`Supervised`] drops, but also
/// when the test process dies without running destructors (SIGKILL, a
/// timeout, an abort). Exits with the program's status.
const WATCHDOG: &str = r#"exec 3<&0
"$@" </dev/null &
pid=$!
{ read -r _ <&3; kill -s TERM "$pid" 2>/dev/null; } &
wait "$pid"
"#;

/// A long-running program (a daemon, a registry) that cannot outlive the
/// test process: it runs under a watchdog shell, in its own process group,
/// and is stopped on drop.
pub struct Supervised {
    /// The watchdog shell; the program is its child.
    child: Child,
    /// The watchdog's stdin: closing it stops the program.
    lifeline: Option<ChildStdin>,
}

impl Supervised {
    /// Starts `cmd` (its program, arguments, environment and directory)
    /// under the watchdog, with its output going to `stdout` and `stderr`.
    pub fn spawn(cmd: &Command, stdout: Stdio, stderr: Stdio) -> std::io::Result<Self> {
        let mut wrapped = wrap(cmd, "sh", &["-c", WATCHDOG, "watchdog"]);
        wrapped.stdin(Stdio::piped()).stdout(stdout).stderr(stderr);
        // Its own process group: a teardown that must use SIGKILL reaches
        // every process, and a Ctrl-C reaches it only through the watchdog.
        std::os::unix::process::CommandExt::process_group(&mut wrapped, 0);
        let mut child = wrapped.spawn()?;
        let lifeline = child.stdin.take();
        Ok(Self { child, lifeline })
    }

    /// Like [`Supervised::spawn`], with stdout and stderr both written to
    /// the file `log` (created, or emptied).
    pub fn spawn_logged(cmd: &Command, log: &Path) -> std::io::Result<Self> {
        let file = File::create(log)?;
        Self::spawn(cmd, file.try_clone()?.into(), file.into())
    }

    /// The exit status, if the program has exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Waits until `probe` says the program is ready, for at most
    /// `timeout` (see [`crate::wait_for`]); fails at once if the program
    /// exits first.
    pub fn wait_ready(
        &mut self,
        timeout: Duration,
        mut probe: impl FnMut() -> Attempt,
    ) -> Result<(), String> {
        wait_for(timeout, || match self.try_wait() {
            Some(status) => Attempt::Fail(format!("it exited with {status}")),
            None => probe(),
        })
    }

    /// Asks the program to stop (SIGTERM), waits up to `grace`, then kills
    /// its process group. Returns at once if it has already stopped.
    pub fn stop(&mut self, grace: Duration) {
        drop(self.lifeline.take());
        if wait_deadline(&mut self.child, grace).is_none() {
            signal(-i64::from(self.child.id()), "KILL");
            let _ = self.child.wait();
        }
    }
}

/// A command that runs `program LEADING... PROGRAM ARGS...`, where
/// `PROGRAM ARGS...` is `cmd`, with `cmd`'s environment and directory: for
/// wrappers such as a watchdog shell or `ip netns exec`.
pub fn wrap(cmd: &Command, program: impl AsRef<OsStr>, leading: &[&str]) -> Command {
    let mut wrapped = Command::new(program);
    wrapped
        .args(leading)
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (key, value) in cmd.get_envs() {
        match value {
            Some(value) => wrapped.env(key, value),
            None => wrapped.env_remove(key),
        };
    }
    if let Some(dir) = cmd.get_current_dir() {
        wrapped.current_dir(dir);
    }
    wrapped
}

impl Drop for Supervised {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(10));
    }
}
