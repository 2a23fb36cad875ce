//! A private Docker daemon for tests, and a Docker CLI client per test.
//!
//! One `dockerd` serves all the tests of a test binary that overlap in time
//! ([`Dockerd::shared`] hands out an `Arc`; the last holder's drop stops it).
//! It runs as DESIGN.md describes: vfs storage, no bridge, no iptables, its
//! data root, exec root and socket in its own temporary directory, so it
//! never touches the machine's own Docker. Each [`Docker`] client has its
//! own `DOCKER_CONFIG`, so logins never leak between tests.
//!
//! No image can be pulled from the internet: [`Docker::build_test_image`]
//! imports a small random rootfs and builds a few `COPY` layers on it.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use portcullis_testkit::Attempt;
use tempfile::TempDir;

use super::process::{Supervised, assert_failure, assert_success, pids_with_cmdline, run, signal};
use super::{random_bytes, slug, temp_dir};

/// How long one docker CLI command may take (push and pull included).
const DOCKER_TIMEOUT: Duration = Duration::from_secs(180);
/// How long the daemon may take to answer `docker info`.
const DAEMON_START_TIMEOUT: Duration = Duration::from_secs(60);

static SHARED: Mutex<Weak<Dockerd>> = Mutex::new(Weak::new());

/// A running `dockerd` (and the `containerd` it starts), stopped on drop.
pub struct Dockerd {
    process: Supervised,
    /// Length of the log when the daemon became ready: what comes after is
    /// what the tests made it do.
    ready_log_len: usize,
    /// data root, exec root, socket, pid file and log, all inside.
    dir: TempDir,
}

impl Dockerd {
    /// The daemon of this test binary, started if no test holds it now.
    pub fn shared() -> Arc<Self> {
        let mut slot = SHARED.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(daemon) = slot.upgrade() {
            return daemon;
        }
        let daemon = Arc::new(Self::start());
        *slot = Arc::downgrade(&daemon);
        daemon
    }

    /// Starts a new daemon and waits until `docker info` works.
    pub fn start() -> Self {
        // Unix socket paths are limited to 108 bytes: stay short, in /tmp.
        let dir = tempfile::Builder::new()
            .prefix("pcd-")
            .tempdir_in("/tmp")
            .expect("create dockerd directory");
        let d = dir.path();
        // An empty daemon.json, so that the machine's /etc/docker/daemon.json
        // (hosts, mirrors, storage driver...) cannot interfere.
        std::fs::write(d.join("daemon.json"), "{}\n").expect("write daemon.json");
        let namespace = d
            .file_name()
            .and_then(|n| n.to_str())
            .expect("temp dir name")
            .to_ascii_lowercase();
        let dockerd = super::find_in_path("dockerd").expect("dockerd is installed");
        let mut cmd = Command::new(dockerd);
        cmd.arg(format!("--config-file={}", d.join("daemon.json").display()))
            .args([
                "--iptables=false",
                "--ip6tables=false",
                "--bridge=none",
                "--storage-driver=vfs",
            ])
            .arg(format!("--data-root={}", d.join("data").display()))
            .arg(format!("--exec-root={}", d.join("exec").display()))
            .arg(format!("--pidfile={}", d.join("docker.pid").display()))
            .arg(format!("--host=unix://{}", d.join("docker.sock").display()))
            // If the machine runs a system containerd, dockerd uses it:
            // keep this daemon's objects apart from any other's.
            .arg(format!("--containerd-namespace={namespace}"))
            .arg(format!(
                "--containerd-plugins-namespace={namespace}-plugins"
            ))
            .env_remove("DOCKER_HOST")
            .env("PATH", super::path_with_sbin());
        let process = Supervised::spawn_logged(&cmd, &d.join("dockerd.log"))
            .unwrap_or_else(|e| panic!("cannot start dockerd: {e}"));
        let mut daemon = Self {
            process,
            ready_log_len: 0,
            dir,
        };
        daemon.wait_ready();
        daemon
    }

    fn wait_ready(&mut self) {
        let mut info = self.command(None);
        info.args(["info", "--format", "{{.ServerVersion}}"]);
        let ready = self.process.wait_ready(DAEMON_START_TIMEOUT, || {
            let out = run(&mut info, None, Duration::from_secs(20));
            if out.status.success() {
                Attempt::Done
            } else {
                Attempt::Retry(String::from_utf8_lossy(&out.stderr).into_owned())
            }
        });
        if let Err(why) = ready {
            panic!("dockerd: {why}\n--- log ---\n{}", self.log());
        }
        self.ready_log_len = self.log().len();
    }

    /// `unix://.../docker.sock`, the value for `DOCKER_HOST`.
    pub fn host(&self) -> String {
        format!("unix://{}", self.dir.path().join("docker.sock").display())
    }

    /// The daemon's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dockerd.log")).unwrap_or_default()
    }

    /// A `docker` command talking to this daemon, with `config` as its
    /// `DOCKER_CONFIG` (when given) and nothing from the caller's Docker
    /// environment.
    pub fn command(&self, config: Option<&Path>) -> Command {
        let mut cmd = Command::new("docker");
        for var in ["DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"] {
            cmd.env_remove(var);
        }
        cmd.env("DOCKER_HOST", self.host())
            .env("DOCKER_CLI_HINTS", "false")
            .env("DOCKER_BUILDKIT", "0");
        match config {
            Some(dir) => cmd.env("DOCKER_CONFIG", dir),
            None => cmd.env("DOCKER_CONFIG", self.dir.path().join("client-config")),
        };
        cmd
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        // SIGTERM lets dockerd stop containerd and unmount what it mounted.
        self.process.stop(Duration::from_secs(20));
        // Helpers that escaped the group (containerd runs in its own
        // session): every process mentioning our private directory is ours.
        let marker = self.dir.path().to_string_lossy().into_owned();
        for helper in pids_with_cmdline(&marker) {
            signal(i64::from(helper), "KILL");
        }
        if std::thread::panicking() {
            let log = self.log();
            // Start-up and gRPC chatter say nothing about a failed push/pull.
            let tail: Vec<&str> = log
                .get(self.ready_log_len..)
                .unwrap_or_default()
                .lines()
                .rev()
                .filter(|line| !line.contains("module=grpc"))
                .take(40)
                .collect();
            eprintln!(
                "--- dockerd log since start-up (last {} lines) ---",
                tail.len()
            );
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
        // The TempDir removes the vfs layers (root-owned files: fine as root).
    }
}

/// A Docker CLI client for one test: the shared daemon, a private
/// `DOCKER_CONFIG`.
pub struct Docker {
    daemon: Arc<Dockerd>,
    config: TempDir,
}

impl Docker {
    /// A client of this test binary's daemon, starting it if needed.
    pub fn new() -> Self {
        Self {
            daemon: Dockerd::shared(),
            config: temp_dir(),
        }
    }

    /// Another client of the same daemon with an empty `DOCKER_CONFIG`:
    /// no stored logins.
    pub fn anonymous(&self) -> Self {
        Self {
            daemon: Arc::clone(&self.daemon),
            config: temp_dir(),
        }
    }

    /// This client's `DOCKER_CONFIG` directory.
    pub fn config_dir(&self) -> &Path {
        self.config.path()
    }

    /// The daemon behind this client.
    pub fn daemon(&self) -> &Dockerd {
        &self.daemon
    }

    /// A `docker` command for this client (not yet run).
    pub fn command(&self) -> Command {
        self.daemon.command(Some(self.config.path()))
    }

    /// Runs `docker ARGS...`, whatever its exit status.
    pub fn docker<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        run(self.command().args(args), None, DOCKER_TIMEOUT)
    }

    /// Runs `docker ARGS...` with `stdin` as its standard input.
    pub fn docker_stdin<I, S>(&self, args: I, stdin: &str) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        run(self.command().args(args), Some(stdin), DOCKER_TIMEOUT)
    }

    /// Runs `docker ARGS...`, panics unless it succeeds, returns its stdout.
    pub fn docker_ok(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert_success(&format!("docker {}", args.join(" ")), &out);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `docker login HOST -u USER --password-stdin`, whatever its outcome.
    pub fn login(&self, host: &str, user: &str, password: &str) -> Output {
        self.docker_stdin(
            ["login", host, "--username", user, "--password-stdin"],
            &format!("{password}\n"),
        )
    }

    /// The image ID (config digest) of a local image.
    pub fn image_id(&self, reference: &str) -> String {
        self.docker_ok(&["image", "inspect", "--format", "{{.Id}}", reference])
            .trim()
            .to_owned()
    }

    /// Whether the daemon has `reference` (a name or an image ID) locally.
    pub fn has_image(&self, reference: &str) -> bool {
        self.docker(["image", "inspect", reference])
            .status
            .success()
    }

    /// Builds a multi-layer test image named after `name`: an imported
    /// random rootfs (about 1 MiB) plus three `COPY` layers (256 KiB each),
    /// so every call makes an image with its own layers and ID.
    pub fn build_test_image(&self, name: &str) -> TestImage {
        self.build_test_image_sized(name, 1 << 20, &[256 << 10; 3])
    }

    /// Like [`Docker::build_test_image`], with a rootfs of `base_size`
    /// random bytes and one `COPY` layer per entry of `layer_sizes` (at
    /// least three, so the image has at least four layers).
    pub fn build_test_image_sized(
        &self,
        name: &str,
        base_size: usize,
        layer_sizes: &[usize],
    ) -> TestImage {
        assert!(
            layer_sizes.len() >= 3,
            "a test image has at least three COPY layers"
        );
        let repo = format!("pctest-{}", slug(name));
        let work = temp_dir();
        let w = work.path();

        let rootfs = w.join("rootfs");
        std::fs::create_dir_all(rootfs.join("etc")).expect("mkdir rootfs/etc");
        std::fs::create_dir_all(rootfs.join("data")).expect("mkdir rootfs/data");
        std::fs::write(rootfs.join("etc/portcullis-test"), format!("{name}\n"))
            .expect("write rootfs file");
        std::fs::write(rootfs.join("data/base.bin"), random_bytes(base_size))
            .expect("write rootfs file");
        let out = run(
            Command::new("tar")
                .arg("-C")
                .arg(&rootfs)
                .arg("-cf")
                .arg(w.join("base.tar"))
                .arg("."),
            None,
            Duration::from_secs(60),
        );
        assert_success("tar the test rootfs", &out);
        let base = format!("{repo}-base:latest");
        let base_tar = w.join("base.tar");
        self.docker_ok(&["import", base_tar.to_str().expect("UTF-8 path"), &base]);

        let context = w.join("context");
        std::fs::create_dir_all(&context).expect("mkdir build context");
        let mut dockerfile = format!("FROM {base}\n");
        for (layer, size) in (1..).zip(layer_sizes) {
            std::fs::write(
                context.join(format!("layer{layer}.bin")),
                random_bytes(*size),
            )
            .expect("write layer file");
            dockerfile.push_str(&format!("COPY layer{layer}.bin /layers/{layer}.bin\n"));
        }
        std::fs::write(context.join("Dockerfile"), dockerfile).expect("write Dockerfile");
        let tag = format!("{repo}:v1");
        self.docker_ok(&[
            "build",
            "--quiet",
            "--tag",
            &tag,
            context.to_str().expect("UTF-8 path"),
        ]);
        // Untag the base: removing the built image later then removes every
        // layer, so a pull has to fetch them all.
        self.docker_ok(&["rmi", &base]);

        let id = self.image_id(&tag);
        let layers = self
            .docker_ok(&[
                "image",
                "inspect",
                "--format",
                "{{len .RootFS.Layers}}",
                &tag,
            ])
            .trim()
            .parse::<usize>()
            .expect("layer count");
        assert!(layers >= 4, "test image {tag} has only {layers} layers");
        TestImage {
            tag,
            repo,
            id,
            layers,
        }
    }

    /// Tags `image` as `HOST/REPO:v1` and pushes it; returns that reference.
    pub fn push(&self, image: &TestImage, host: &str) -> String {
        let remote = image.remote(host);
        self.docker_ok(&["tag", &image.tag, &remote]);
        self.docker_ok(&["push", &remote]);
        remote
    }

    /// Removes `image` and the `remote` tag from the daemon, and checks that
    /// no image with its ID is left.
    pub fn forget(&self, image: &TestImage, remote: &str) {
        for name in [remote, image.tag.as_str()] {
            if self.has_image(name) {
                self.docker_ok(&["rmi", name]);
            }
        }
        assert!(
            !self.has_image(&image.id),
            "image {} is still present after docker rmi",
            image.id
        );
    }

    /// Pulls `remote` and checks that the image has `image`'s ID. After
    /// [`Docker::forget`], every layer must come from the registry.
    pub fn pull_and_compare(&self, image: &TestImage, remote: &str) {
        let printed = self.docker_ok(&["pull", remote]);
        assert!(
            !printed.contains("Already exists"),
            "docker pull {remote} reused local layers, so it proves less:\n{printed}"
        );
        assert_eq!(
            self.image_id(remote),
            image.id,
            "image pulled from {remote} differs from the one pushed"
        );
    }

    /// `docker pull REMOTE` must fail; returns what it printed.
    pub fn pull_fails(&self, remote: &str) -> String {
        let out = self.docker(["pull", remote]);
        assert_failure(&format!("docker pull {remote}"), &out);
        super::combined_output(&out)
    }
}

impl Default for Docker {
    fn default() -> Self {
        Self::new()
    }
}

/// A locally built test image.
#[derive(Clone, Debug)]
pub struct TestImage {
    /// The local name, `pctest-<name>:v1`.
    pub tag: String,
    /// The repository name used when pushing, `pctest-<name>`.
    pub repo: String,
    /// Its image ID (the config digest).
    pub id: String,
    /// How many layers it has.
    pub layers: usize,
}

impl TestImage {
    /// `HOST/REPO:v1`.
    pub fn remote(&self, host: &str) -> String {
        format!("{host}/{}:v1", self.repo)
    }
}
