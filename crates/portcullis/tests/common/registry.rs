//! A registry process for tests: portcullis or the reference registry
//! (`docker-registry`, Debian's distribution 2.8), started from a
//! distribution-format `config.yml` on a free port of `127.0.0.1` (or, with
//! [`RegistryConfig::on`], inside a [`TestHost`] on its address), ready
//! when `GET /v2/` answers, and stopped on drop.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::Duration;

use portcullis_testkit::{Attempt, TestHost};
use tempfile::TempDir;

use super::process::{Supervised, run};
use super::{free_port, http, temp_dir};

/// How long a registry may take to answer `GET /v2/`.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// Which implementation serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegistryKind {
    /// The binary under test, `portcullis serve --config PATH`.
    Portcullis,
    /// The reference registry, `docker-registry serve PATH`.
    Reference,
}

impl RegistryKind {
    /// The registry the e2e scenarios exercise: portcullis, unless
    /// `PORTCULLIS_TEST_REGISTRY=reference` asks for the reference registry
    /// (to check the tests themselves against distribution).
    pub fn under_test() -> Self {
        match std::env::var("PORTCULLIS_TEST_REGISTRY").as_deref() {
            Err(_) | Ok("" | "portcullis") => Self::Portcullis,
            Ok("reference" | "docker-registry" | "distribution") => Self::Reference,
            Ok(other) => {
                panic!("PORTCULLIS_TEST_REGISTRY={other:?}: expected `portcullis` or `reference`")
            }
        }
    }

    /// A short name for messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Portcullis => "portcullis",
            Self::Reference => "docker-registry",
        }
    }

    fn command(self, config: &Path) -> Command {
        let mut cmd = match self {
            Self::Portcullis => {
                let mut cmd = Command::new(env!("CARGO_BIN_EXE_portcullis"));
                cmd.args(["serve", "--config"]).arg(config);
                cmd
            }
            Self::Reference => {
                let mut cmd = Command::new("docker-registry");
                cmd.arg("serve").arg(config);
                cmd
            }
        };
        // Both read REGISTRY_* overrides; the test's config must be all
        // there is.
        super::without_registry_env(&mut cmd);
        cmd
    }
}

/// The settings a test registry gets; written out as `config.yml`.
#[derive(Clone, Debug)]
pub struct RegistryConfig {
    /// `storage.filesystem.rootdirectory`.
    pub root: PathBuf,
    /// `auth.htpasswd.path`; no auth section when `None`.
    pub htpasswd: Option<PathBuf>,
    /// `storage.delete.enabled`.
    pub delete: bool,
    /// The body of the `auth:` section, written verbatim (every line already
    /// indented by two spaces). Replaces the section `htpasswd` would write.
    pub auth_yaml: Option<String>,
    /// Writes `http.host: http://IP:PORT` (what portcullis puts in the
    /// realm of its token challenges).
    pub http_host: bool,
    /// Writes `http.host: https://IP:PORT` instead (a registry that serves
    /// TLS itself).
    pub https_host: bool,
    /// The test host it runs on ([`RegistryConfig::on`]); this machine's
    /// `127.0.0.1` when `None`.
    pub host: Option<TestHost>,
    /// Top-level sections appended verbatim (an `access:` policy, say).
    pub extra_yaml: Option<String>,
    /// Lines added verbatim under `http:` (each indented by two spaces):
    /// `tls:`, `trustedproxies:`...
    pub http_yaml: Option<String>,
}

impl RegistryConfig {
    /// Filesystem storage at `root`, no auth, deletes disabled.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            htpasswd: None,
            delete: false,
            auth_yaml: None,
            http_host: false,
            https_host: false,
            host: None,
            extra_yaml: None,
            http_yaml: None,
        }
    }

    /// Requires Basic auth against the htpasswd file at `path`.
    #[must_use]
    pub fn htpasswd(mut self, path: impl Into<PathBuf>) -> Self {
        self.htpasswd = Some(path.into());
        self
    }

    /// Sets `storage.delete.enabled`.
    #[must_use]
    pub fn delete_enabled(mut self, enabled: bool) -> Self {
        self.delete = enabled;
        self
    }

    /// Uses `body` (lines indented by two spaces) as the `auth:` section.
    #[must_use]
    pub fn auth_yaml(mut self, body: impl Into<String>) -> Self {
        self.auth_yaml = Some(body.into());
        self
    }

    /// Sets `http.host` to the registry's own `http://IP:PORT`.
    #[must_use]
    pub fn http_host(mut self, enabled: bool) -> Self {
        self.http_host = enabled;
        self
    }

    /// Sets `http.host` to the registry's own `https://IP:PORT`.
    #[must_use]
    pub fn https_host(mut self, enabled: bool) -> Self {
        self.https_host = enabled;
        self
    }

    /// Runs the registry inside the test host `host` (`ip netns exec`),
    /// listening on its address instead of `127.0.0.1`; [`Registry::host`]
    /// and [`Registry::url`] then use that address too. The registry keeps
    /// the test host alive as long as it runs.
    #[must_use]
    pub fn on(mut self, host: &TestHost) -> Self {
        self.host = Some(host.clone());
        self
    }

    /// The address it listens on: the test host's, or `127.0.0.1`.
    pub fn listen_ip(&self) -> IpAddr {
        self.host
            .as_ref()
            .map_or(IpAddr::V4(Ipv4Addr::LOCALHOST), TestHost::ip)
    }

    /// Adds `yaml` (lines indented by two spaces) to the `http:` section.
    #[must_use]
    pub fn http_yaml(mut self, yaml: impl Into<String>) -> Self {
        let mut yaml = yaml.into();
        if !yaml.ends_with('\n') {
            yaml.push('\n');
        }
        self.http_yaml = Some(yaml);
        self
    }

    /// Appends `yaml` (top-level sections, unindented) to the config.
    #[must_use]
    pub fn extra_yaml(mut self, yaml: impl Into<String>) -> Self {
        self.extra_yaml = Some(yaml.into());
        self
    }

    /// The `config.yml` text, listening on `IP:port` (`127.0.0.1`, or the
    /// test host's address).
    pub fn to_yaml(&self, port: u16) -> String {
        let addr = SocketAddr::new(self.listen_ip(), port);
        let mut host = if self.https_host {
            format!("  host: https://{addr}\n")
        } else if self.http_host {
            format!("  host: http://{addr}\n")
        } else {
            String::new()
        };
        if let Some(extra) = &self.http_yaml {
            host.push_str(extra);
        }
        let mut yaml = format!(
            "version: 0.1\n\
             http:\n  addr: {addr}\n{host}\
             storage:\n  filesystem:\n    rootdirectory: {root}\n  delete:\n    enabled: {delete}\n",
            root = yaml_str(&self.root),
            delete = self.delete,
        );
        if let Some(body) = &self.auth_yaml {
            yaml.push_str("auth:\n");
            yaml.push_str(body);
            if !body.ends_with('\n') {
                yaml.push('\n');
            }
        } else if let Some(path) = &self.htpasswd {
            yaml.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: portcullis-test\n    path: {}\n",
                yaml_str(path)
            ));
        }
        if let Some(extra) = &self.extra_yaml {
            yaml.push_str(extra);
            if !extra.ends_with('\n') {
                yaml.push('\n');
            }
        }
        yaml
    }
}

/// A double-quoted YAML scalar holding `path`.
pub fn yaml_str(path: &Path) -> String {
    let text = path.to_str().expect("test paths are UTF-8");
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A running registry; killed (SIGTERM, then SIGKILL) on drop. If the test
/// is failing, the registry's log is printed then.
pub struct Registry {
    kind: RegistryKind,
    /// The address it listens on ([`RegistryConfig::listen_ip`]).
    ip: IpAddr,
    /// The test host it runs on, kept until the process has stopped.
    _host: Option<TestHost>,
    port: u16,
    process: Option<Supervised>,
    /// The CA that signed its certificate, when it serves HTTPS
    /// ([`Registry::start_tls`]).
    ca: Option<PathBuf>,
    /// Holds `config.yml` and the process's output, `registry.log`.
    dir: TempDir,
}

impl Registry {
    /// Starts `kind` with `config` and waits until it answers `GET /v2/`
    /// (200 or 401). Panics, showing the log, if it does not.
    pub fn start(kind: RegistryKind, config: &RegistryConfig) -> Self {
        Self::start_with(kind, config, None)
    }

    /// Like [`Registry::start`] for a registry that serves HTTPS (its
    /// config has `http.tls`) with a certificate signed by the CA in the
    /// PEM file `ca`: ready when `curl --cacert CA https://IP:PORT/v2/`
    /// answers 200 or 401 (so the certificate must name the IP).
    /// [`Registry::url`] then gives `https://` URLs.
    pub fn start_tls(kind: RegistryKind, config: &RegistryConfig, ca: &Path) -> Self {
        Self::start_with(kind, config, Some(ca))
    }

    fn start_with(kind: RegistryKind, config: &RegistryConfig, ca: Option<&Path>) -> Self {
        let mut dir = temp_dir();
        let mut last_log = String::new();
        // A port that was free can be taken before the registry binds it:
        // then try another one.
        for _attempt in 0..3 {
            // Nothing else listens inside a test host: any port number is
            // free there.
            let port = free_port();
            let config_path = dir.path().join("config.yml");
            std::fs::write(&config_path, config.to_yaml(port)).expect("write config.yml");
            let log_path = dir.path().join("registry.log");
            let mut cmd = kind.command(&config_path);
            cmd.current_dir(dir.path());
            if let Some(host) = &config.host {
                cmd = host.command(&cmd);
            }
            let process = Supervised::spawn_logged(&cmd, &log_path)
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", kind.name()));
            let mut registry = Self {
                kind,
                ip: config.listen_ip(),
                _host: config.host.clone(),
                port,
                process: Some(process),
                ca: ca.map(Path::to_path_buf),
                dir,
            };
            match registry.wait_ready() {
                Ok(()) => return registry,
                Err(why) => {
                    last_log = registry.log();
                    registry.kill();
                    dir = std::mem::replace(&mut registry.dir, temp_dir());
                    drop(registry);
                    let retry = last_log.contains("address already in use")
                        || last_log.contains("Address already in use");
                    if !retry {
                        panic!(
                            "{} did not become ready: {why}\n--- config.yml ---\n{}--- log ---\n{last_log}",
                            kind.name(),
                            config.to_yaml(port)
                        );
                    }
                }
            }
        }
        panic!(
            "{} could not bind a free port\n--- log ---\n{last_log}",
            kind.name()
        );
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let url = self.url("/v2/");
        let ca = self.ca.clone();
        let client = http();
        let process = self.process.as_mut().expect("registry is running");
        process.wait_ready(READY_TIMEOUT, || {
            // Over HTTPS, curl trusting only the CA checks the certificate.
            let answer = match &ca {
                Some(ca) => curl_status(&url, ca).map_err(|e| format!("curl --cacert: {e}")),
                None => client
                    .get(&url)
                    .timeout(Duration::from_secs(2))
                    .send()
                    .map(|resp| resp.status().as_str().to_owned())
                    .map_err(|e| e.to_string()),
            };
            ready_answer(answer)
        })
    }

    /// The CA file its certificate chains to, when it serves HTTPS.
    pub fn ca(&self) -> Option<&Path> {
        self.ca.as_deref()
    }

    /// The implementation that serves.
    pub fn kind(&self) -> RegistryKind {
        self.kind
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The address it listens on, `127.0.0.1` unless
    /// [`RegistryConfig::listen_ip`] chose another.
    pub fn ip(&self) -> IpAddr {
        self.ip
    }

    /// `IP:PORT` (`127.0.0.1:PORT` by default), the registry host part of
    /// image references.
    pub fn host(&self) -> String {
        SocketAddr::new(self.ip, self.port).to_string()
    }

    /// `http://IP:PORT` (`https://` when it serves TLS) followed by `path`.
    pub fn url(&self, path: &str) -> String {
        let scheme = if self.ca.is_some() { "https" } else { "http" };
        format!("{scheme}://{}{path}", self.host())
    }

    /// The `config.yml` it was started with (for the `portcullis` CLI's
    /// `--config`).
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("config.yml")
    }

    /// Everything the process has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// Stops the process and waits for it: SIGTERM, then SIGKILL after 10 s.
    pub fn stop(mut self) {
        self.kill();
    }

    fn kill(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.stop(Duration::from_secs(10));
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.kill();
        if thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(80).collect();
            eprintln!(
                "--- {} log on {} (last {} lines) ---",
                self.kind.name(),
                self.host(),
                tail.len()
            );
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

/// Whether an answer to `GET /v2/` (its status code, or the error) says the
/// server is ready: any 200 or 401.
pub fn ready_answer(answer: Result<String, String>) -> Attempt {
    match answer {
        Ok(code) if matches!(code.as_str(), "200" | "401") => Attempt::Done,
        Ok(code) => Attempt::Retry(format!("GET /v2/ answered {code}")),
        Err(e) => Attempt::Retry(format!("GET /v2/: {e}")),
    }
}

/// The HTTP status `curl`, trusting only `ca`, gets for `url`, or what
/// curl said when it got none.
pub fn curl_status(url: &str, ca: &Path) -> Result<String, String> {
    let out = run(
        Command::new("curl")
            .args(["--silent", "--show-error", "--noproxy", "*"])
            .args(["--max-time", "2", "--output", "/dev/null"])
            .args(["--write-out", "%{http_code}", "--cacert"])
            .arg(ca)
            .arg(url),
        None,
        Duration::from_secs(10),
    );
    let code = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if code.is_empty() || code == "000" {
        return Err(format!(
            "{code} {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(code)
}
