//! HTTPS for end-to-end tests: certificates from `portcullis cert
//! generate` and client certificates from `portcullis cert client`, the
//! Docker daemon's per-registry trust (`/etc/docker/certs.d/HOST:PORT/ca.crt`,
//! and `client.cert` / `client.key` beside it), an nginx that terminates TLS
//! in front of a registry, and curl / openssl views of what is served.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::thread;
use std::time::Duration;

use tempfile::TempDir;

use super::process::{Supervised, assert_success, run};
use super::registry::{curl_status, ready_answer};
use super::{free_port, temp_dir};

/// How long nginx may take to accept connections.
const NGINX_READY_TIMEOUT: Duration = Duration::from_secs(20);

/// The files `portcullis cert generate` writes into its `--out` directory.
#[derive(Clone, Debug)]
pub struct Certs {
    /// The directory.
    pub dir: PathBuf,
}

impl Certs {
    /// `DIR/ca.crt`.
    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }

    /// `DIR/server.crt` (leaf and CA).
    pub fn cert(&self) -> PathBuf {
        self.dir.join("server.crt")
    }

    /// `DIR/server.key`.
    pub fn key(&self) -> PathBuf {
        self.dir.join("server.key")
    }

    /// The serial number of the server certificate, as `openssl x509
    /// -serial` prints it (upper-case hex).
    pub fn serial(&self) -> String {
        let out = run(
            Command::new("openssl")
                .args(["x509", "-noout", "-serial", "-in"])
                .arg(self.cert()),
            None,
            Duration::from_secs(20),
        );
        assert_success("openssl x509 -serial", &out);
        parse_serial(&String::from_utf8_lossy(&out.stdout))
            .expect("openssl x509 -serial prints serial=HEX")
    }
}

/// `portcullis cert generate --host localhost --ip 127.0.0.1 --out OUT`,
/// with `--ca CA` when renewing under an existing CA.
pub fn generate(out: &Path, ca: Option<&Path>) -> Certs {
    generate_for(out, ca, None)
}

/// Like [`generate`], with `--ip IP` too: a certificate that is also valid
/// for a registry reached as `IP:PORT`.
pub fn generate_with_ip(out: &Path, ca: Option<&Path>, ip: IpAddr) -> Certs {
    generate_for(out, ca, Some(ip))
}

fn generate_for(out: &Path, ca: Option<&Path>, ip: Option<IpAddr>) -> Certs {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_portcullis"));
    cmd.args([
        "cert",
        "generate",
        "--host",
        "localhost",
        "--ip",
        "127.0.0.1",
    ])
    .arg("--out")
    .arg(out);
    if let Some(ip) = ip.filter(|ip| *ip != IpAddr::V4(Ipv4Addr::LOCALHOST)) {
        cmd.arg("--ip").arg(ip.to_string());
    }
    if let Some(ca) = ca {
        cmd.arg("--ca").arg(ca);
    }
    let result = run(&mut cmd, None, Duration::from_secs(30));
    assert_success("portcullis cert generate", &result);
    Certs {
        dir: out.to_path_buf(),
    }
}

/// The files `portcullis cert client` writes into its `--out` directory.
#[derive(Clone, Debug)]
pub struct ClientCert {
    /// The directory.
    pub dir: PathBuf,
}

impl ClientCert {
    /// `DIR/client.cert` (leaf and CA).
    pub fn cert(&self) -> PathBuf {
        self.dir.join("client.cert")
    }

    /// `DIR/client.key`.
    pub fn key(&self) -> PathBuf {
        self.dir.join("client.key")
    }

    /// `--cert DIR/client.cert --key DIR/client.key`, for [`curl`]'s extra
    /// arguments.
    pub fn curl_args(&self) -> [String; 4] {
        let path = |p: PathBuf| p.to_str().expect("UTF-8 path").to_owned();
        [
            "--cert".to_owned(),
            path(self.cert()),
            "--key".to_owned(),
            path(self.key()),
        ]
    }
}

/// `portcullis cert client --name NAME --ca CA --out OUT`: a client
/// certificate for `NAME` signed by the CA in `ca` (a [`Certs::dir`]).
pub fn client(ca: &Path, name: &str, out: &Path) -> ClientCert {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_portcullis"));
    cmd.args(["cert", "client", "--name", name])
        .arg("--ca")
        .arg(ca)
        .arg("--out")
        .arg(out);
    let result = run(&mut cmd, None, Duration::from_secs(30));
    assert_success("portcullis cert client", &result);
    ClientCert {
        dir: out.to_path_buf(),
    }
}

fn parse_serial(text: &str) -> Option<String> {
    text.lines()
        .find_map(|line| line.trim().strip_prefix("serial="))
        .map(|hex| hex.trim().to_ascii_uppercase())
}

/// The serial of the certificate served on `127.0.0.1:port`, as seen by
/// `openssl s_client -showcerts`.
pub fn served_serial(port: u16) -> String {
    let out = run(
        Command::new("sh").args([
            "-c",
            "openssl s_client -connect \"127.0.0.1:$1\" -servername localhost -showcerts \
             </dev/null 2>/dev/null | openssl x509 -noout -serial",
            "sh",
            &port.to_string(),
        ]),
        None,
        Duration::from_secs(30),
    );
    assert_success("openssl s_client | openssl x509 -serial", &out);
    parse_serial(&String::from_utf8_lossy(&out.stdout)).unwrap_or_else(|| {
        panic!(
            "no serial from openssl s_client on port {port}: {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// Trust for the Docker daemon: `/etc/docker/certs.d/HOST:PORT/ca.crt`,
/// which the daemon reads on each connection, and optionally a client
/// certificate beside it. The directory is removed on drop.
pub struct DockerTrust {
    dir: PathBuf,
}

impl DockerTrust {
    /// Installs `ca` as the CA of the registry `host` (`127.0.0.1:PORT`).
    pub fn install(host: &str, ca: &Path) -> Self {
        let dir = Path::new("/etc/docker/certs.d").join(host);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        // From here on, drop removes the directory, even if a copy fails.
        let trust = Self { dir };
        trust.copy(ca, "ca.crt");
        trust
    }

    /// Like [`DockerTrust::install`], plus the client certificate `cert`
    /// (as `client.cert`) and its key `key` (as `client.key`), which the
    /// daemon presents to `host`.
    ///
    /// The daemon reads this directory only for registries it verifies:
    /// not for `127.0.0.0/8`, which it treats as insecure (so run the
    /// registry on a [`super::TestHost`]).
    pub fn install_with_client(host: &str, ca: &Path, cert: &Path, key: &Path) -> Self {
        let trust = Self::install(host, ca);
        trust.copy(cert, "client.cert");
        trust.copy(key, "client.key");
        trust
    }

    /// The directory, `/etc/docker/certs.d/HOST:PORT`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn copy(&self, from: &Path, name: &str) {
        std::fs::copy(from, self.dir.join(name)).unwrap_or_else(|e| {
            panic!(
                "copy {} to {}/{name}: {e}",
                from.display(),
                self.dir.display()
            )
        });
    }
}

impl Drop for DockerTrust {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The answer to a `curl --cacert` request: status, headers (lower-case
/// names) and body.
#[derive(Debug)]
pub struct CurlReply {
    /// The HTTP status code.
    pub status: u16,
    /// `(name, value)` pairs of the final response, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The response body.
    pub body: String,
}

impl CurlReply {
    /// The first header called `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Runs curl `method url` trusting only `ca`, with `extra` arguments
/// (`-H`, `-u`...). Panics unless curl itself succeeds (any HTTP status).
pub fn curl(method: &str, url: &str, ca: &Path, extra: &[&str]) -> CurlReply {
    let dir = temp_dir();
    let headers_path = dir.path().join("headers");
    let mut cmd = Command::new("curl");
    cmd.args(["--silent", "--show-error", "--noproxy", "*"])
        .args(["--max-time", "30", "--request", method, "--cacert"])
        .arg(ca)
        .arg("--dump-header")
        .arg(&headers_path)
        .args(extra)
        .arg(url);
    let out: Output = run(&mut cmd, None, Duration::from_secs(60));
    assert_success(&format!("curl {method} {url}"), &out);
    let raw = std::fs::read_to_string(&headers_path).unwrap_or_default();
    // With redirects or 100-continue there are several blocks: keep the last.
    let block = raw
        .split("\r\n\r\n")
        .filter(|b| !b.trim().is_empty())
        .last()
        .unwrap_or_default();
    let mut lines = block.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("curl {method} {url}: no status line in {raw:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    CurlReply {
        status,
        headers,
        body: String::from_utf8_lossy(&out.stdout).into_owned(),
    }
}

/// nginx terminating TLS on `127.0.0.1:PORT` and proxying to a registry on
/// plain HTTP, from its own config, pid file and logs in a temporary
/// prefix. Stopped on drop; its error log is printed if the test fails.
pub struct Nginx {
    port: u16,
    process: Option<Supervised>,
    dir: TempDir,
}

impl Nginx {
    /// Starts nginx with `certs`'s server certificate, proxying to
    /// `127.0.0.1:upstream_port`, and waits until it serves `GET /v2/`.
    pub fn start(certs: &Certs, upstream_port: u16) -> Self {
        let mut last_log = String::new();
        for _attempt in 0..3 {
            let dir = temp_dir();
            let port = free_port();
            let conf = dir.path().join("nginx.conf");
            std::fs::write(&conf, nginx_conf(dir.path(), port, certs, upstream_port))
                .expect("write nginx.conf");
            let nginx = super::find_in_path("nginx").expect("nginx is installed");
            let mut cmd = Command::new(nginx);
            cmd.arg("-p")
                .arg(dir.path())
                .arg("-c")
                .arg(&conf)
                .args(["-g", "daemon off;"]);
            let process = Supervised::spawn_logged(&cmd, &dir.path().join("stderr.log"))
                .unwrap_or_else(|e| panic!("cannot start nginx: {e}"));
            let mut nginx = Self {
                port,
                process: Some(process),
                dir,
            };
            match nginx.wait_ready(&certs.ca()) {
                Ok(()) => return nginx,
                Err(why) => {
                    last_log = nginx.log();
                    if !last_log.contains("Address already in use") {
                        panic!("nginx did not become ready: {why}\n--- log ---\n{last_log}");
                    }
                }
            }
        }
        panic!("nginx could not bind a free port\n--- log ---\n{last_log}");
    }

    fn wait_ready(&mut self, ca: &Path) -> Result<(), String> {
        let url = self.url("/v2/");
        let process = self.process.as_mut().expect("nginx is running");
        process.wait_ready(NGINX_READY_TIMEOUT, || ready_answer(curl_status(&url, ca)))
    }

    /// The port nginx listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:PORT`, the registry host for docker through nginx.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `https://127.0.0.1:PORT` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }

    /// nginx's error log, access log and stderr so far.
    pub fn log(&self) -> String {
        let mut text = String::new();
        for name in ["stderr.log", "error.log", "access.log"] {
            let body = std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
            text.push_str(&format!("--- {name} ---\n{body}"));
        }
        text
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.stop(Duration::from_secs(10));
        }
        if thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            eprintln!("--- nginx on 127.0.0.1:{} ---", self.port);
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

/// An nginx.conf for a registry behind TLS, as distribution's docs
/// recommend: unbuffered, unlimited bodies, HTTP/1.1 upstream, and the
/// forwarded headers portcullis needs to build external URLs.
fn nginx_conf(prefix: &Path, port: u16, certs: &Certs, upstream_port: u16) -> String {
    let p = prefix.display();
    // As root, nginx's workers would run as `nobody` and could not use the
    // temporary directories in the prefix: keep them as the current user.
    let user = if super::is_root() { "user root;\n" } else { "" };
    format!(
        "{user}worker_processes 1;
pid {p}/nginx.pid;
error_log {p}/error.log info;
events {{ worker_connections 256; }}
http {{
    access_log {p}/access.log;
    client_body_temp_path {p}/client_body;
    proxy_temp_path {p}/proxy;
    fastcgi_temp_path {p}/fastcgi;
    uwsgi_temp_path {p}/uwsgi;
    scgi_temp_path {p}/scgi;
    server {{
        listen 127.0.0.1:{port} ssl;
        server_name localhost;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.2 TLSv1.3;
        client_max_body_size 0;
        chunked_transfer_encoding on;
        location / {{
            proxy_pass http://127.0.0.1:{upstream_port};
            proxy_http_version 1.1;
            proxy_request_buffering off;
            proxy_buffering off;
            proxy_read_timeout 900;
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        }}
    }}
}}
",
        cert = certs.cert().display(),
        key = certs.key().display(),
    )
}
