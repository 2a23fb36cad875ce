//! Checks that need the filesystem or more than one key: files that must be
//! readable, one auth method, one storage driver, addresses that parse.
//!
//! Loading already checked each key on its own (names, types, allowed words).
//! Validation runs on the typed [`Config`], so it also works for one built in
//! code; for one loaded from a file, each error names the line (or the
//! environment variable) that set the key.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::addr::parse_listen_addr;
use crate::crypto::{Named, SigningAlgorithm};
use crate::error::{ConfigError, ConfigErrors};
use crate::model::{
    Config, DebugConfig, HtpasswdConfig, StorageDriver, TokenConfig, TokenServerConfig,
};
use crate::schema;

/// Docker (and containerd) treat a token as valid for at least 60 s
/// whatever its `expires_in`, so a shorter lifetime makes requests fail.
const MIN_TOKEN_LIFETIME: Duration = Duration::from_secs(60);

/// Runs every check, resolving relative paths against `base` (an empty `base`
/// leaves them relative to the working directory).
pub(crate) fn run(config: &Config, base: &Path) -> Result<(), ConfigErrors> {
    let mut v = Validator {
        config,
        base,
        errors: Vec::new(),
    };
    v.version();
    v.storage();
    v.auth();
    v.http();
    v.limits();
    ConfigErrors(v.errors).into_result()
}

struct Validator<'a> {
    config: &'a Config,
    base: &'a Path,
    errors: Vec<ConfigError>,
}

mod abuse;
mod cors;
mod tls;

/// An I/O error's text without Rust's " (os error N)" suffix.
fn io_text(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

impl Validator<'_> {
    fn err(&mut self, key: &str, message: impl Into<String>, fix: impl Into<String>) {
        self.errors.push(self.config.error_at(key, message, fix));
    }

    fn resolve(&self, path: &Path) -> PathBuf {
        self.base.join(path)
    }

    /// Checks that a file exists and can be read.
    fn readable(&mut self, key: &str, path: &Path, fix: &str) -> bool {
        let full = self.resolve(path);
        match fs::read(&full) {
            Ok(_) => true,
            Err(e) => {
                self.err(
                    key,
                    format!("cannot read {}: {}", full.display(), io_text(&e)),
                    fix,
                );
                false
            }
        }
    }

    fn version(&mut self) {
        if self.config.version != "0.1" {
            self.err(
                "version",
                format!(
                    "unsupported version `{}`; the only configuration version is 0.1",
                    self.config.version
                ),
                "set `version: 0.1`",
            );
        }
    }

    fn storage(&mut self) {
        let storage = &self.config.storage;
        match storage.driver() {
            Some(StorageDriver::Filesystem(fs)) => self.rootdirectory(&fs.rootdirectory),
            Some(StorageDriver::InMemory) => {}
            Some(StorageDriver::Other(other)) => {
                let key = format!("storage.{}", other.name);
                self.err(
                    &key,
                    format!(
                        "portcullis does not implement the `{}` storage driver",
                        other.name
                    ),
                    "use storage.filesystem with rootdirectory on a local or mounted volume",
                );
            }
            None => {
                let names = storage.driver_names();
                if names.is_empty() {
                    self.err(
                        "storage",
                        "no storage driver is configured",
                        "set `storage.filesystem.rootdirectory`, for example to /var/lib/registry",
                    );
                } else {
                    self.err(
                        "storage",
                        format!(
                            "more than one storage driver is configured: {}",
                            names.join(", ")
                        ),
                        "keep exactly one storage driver",
                    );
                }
            }
        }
        let purging = &storage.maintenance.uploadpurging;
        if purging.enabled {
            if purging.interval == Duration::ZERO {
                self.err(
                    "storage.maintenance.uploadpurging.interval",
                    "must be more than 0",
                    "set it to a duration such as `24h`, or set uploadpurging.enabled to false",
                );
            }
            if purging.age == Duration::ZERO {
                self.err(
                    "storage.maintenance.uploadpurging.age",
                    "must be more than 0, or uploads still in progress would be deleted",
                    "set it to a duration such as `168h`, or set uploadpurging.enabled to false",
                );
            }
        }
    }

    fn rootdirectory(&mut self, root: &Path) {
        let key = "storage.filesystem.rootdirectory";
        if root.as_os_str().is_empty() {
            self.err(
                key,
                "is empty",
                "set it to a directory, such as /var/lib/registry",
            );
            return;
        }
        let full = self.resolve(root);
        // The directory is created on first use, so it need not exist, but the
        // closest existing ancestor must be a directory.
        let mut probe = full.as_path();
        loop {
            match fs::metadata(probe) {
                Ok(meta) if meta.is_dir() => {
                    if probe == full
                        && let Err(e) = fs::read_dir(probe)
                    {
                        self.err(
                            key,
                            format!("cannot read directory {}: {}", full.display(), io_text(&e)),
                            "give the user portcullis runs as access to it, or choose another directory",
                        );
                    }
                    return;
                }
                Ok(_) => {
                    self.err(
                        key,
                        format!("{} is not a directory", probe.display()),
                        "point rootdirectory at a directory (it is created if it does not exist)",
                    );
                    return;
                }
                Err(_) => match probe.parent() {
                    Some(parent) if !parent.as_os_str().is_empty() => probe = parent,
                    _ => return,
                },
            }
        }
    }

    fn auth(&mut self) {
        let auth = &self.config.auth;
        // With the token service, htpasswd is its user database, not a
        // competing method on the registry.
        let methods: Vec<&str> = auth
            .methods()
            .into_iter()
            .filter(|m| !(auth.tokenserver.is_some() && *m == "htpasswd"))
            .collect();
        if let Some(ts) = &auth.tokenserver {
            self.tokenserver(ts, auth.htpasswd.is_some());
        }
        if methods.len() > 1 {
            self.err(
                "auth",
                format!(
                    "more than one authentication method is configured: {}",
                    methods.join(", ")
                ),
                "keep exactly one of auth.htpasswd, auth.token and auth.silly",
            );
        }
        if let Some(htpasswd) = &auth.htpasswd {
            self.htpasswd(htpasswd);
        }
        if let Some(token) = &auth.token {
            self.token(token);
        }
        if let Some(silly) = &auth.silly {
            for (name, value) in [("realm", &silly.realm), ("service", &silly.service)] {
                if value.is_empty() {
                    self.err(
                        &format!("auth.silly.{name}"),
                        "is missing",
                        format!("set auth.silly.{name}"),
                    );
                }
            }
        }
    }

    fn htpasswd(&mut self, htpasswd: &HtpasswdConfig) {
        if htpasswd.realm.is_empty() {
            self.err(
                "auth.htpasswd.realm",
                "is missing",
                "set it to the name clients show when asking for a password, such as `Registry Realm`",
            );
        }
        if htpasswd.path.as_os_str().is_empty() {
            self.err(
                "auth.htpasswd.path",
                "is missing",
                "set it to an htpasswd file, such as /etc/docker/registry/htpasswd",
            );
            return;
        }
        let shown = self.resolve(&htpasswd.path);
        let shown = shown.display();
        let fix = format!(
            "create it with `portcullis user add NAME --htpasswd {shown}` or `htpasswd -B -c {shown} NAME`"
        );
        self.readable("auth.htpasswd.path", &htpasswd.path, &fix);
    }

    fn tokenserver(&mut self, ts: &TokenServerConfig, has_users: bool) {
        if !has_users {
            self.err(
                "auth.tokenserver",
                "the token service has no users",
                "set auth.htpasswd.path (its users log in to the token service)",
            );
        }
        if ts.expiration < MIN_TOKEN_LIFETIME && !ts.allowshortexpiration {
            let shown = crate::format_duration(ts.expiration);
            self.err(
                "auth.tokenserver.expiration",
                format!(
                    "`{shown}` is shorter than 60s: Docker treats every token as valid for at least 60 s and \
                     keeps using it, so pushes and pulls would fail with expired tokens \
                     (a bare number such as `5` is read as nanoseconds, as in distribution)"
                ),
                "write a duration of at least 60s with its unit, such as `5m` (the default) or `15m` \
                 (only a test of token expiry should set auth.tokenserver.allowshortexpiration: true instead)",
            );
        }
        if ts.refresh.expiration.is_zero() {
            self.err(
                "auth.tokenserver.refresh.expiration",
                "must be longer than zero",
                "set a duration such as 2160h",
            );
        }
        if let Some(signing) = &ts.keys.signing {
            self.readable(
                "auth.tokenserver.keys.signing.key",
                &signing.key,
                "point it at a PEM private key (create one with `portcullis keys generate`)",
            );
            self.readable(
                "auth.tokenserver.keys.signing.certificate",
                &signing.certificate,
                "point it at the PEM certificate of the signing key",
            );
        }
        for v in &ts.keys.verify {
            self.readable(
                "auth.tokenserver.keys.verify",
                v,
                "point it at the PEM certificate of a verify-only key",
            );
        }
        if let Some(realm) = &ts.realm
            && !(realm.starts_with("http://") || realm.starts_with("https://"))
        {
            self.err(
                "auth.tokenserver.realm",
                format!("`{realm}` is not an absolute URL"),
                "write the token endpoint URL clients use, such as https://registry.example.com/token",
            );
        }
    }

    fn token(&mut self, token: &TokenConfig) {
        for (name, value, example) in [
            ("realm", &token.realm, "https://auth.example.com/token"),
            ("service", &token.service, "registry.example.com"),
            (
                "issuer",
                &token.issuer,
                "the `iss` your token server writes",
            ),
        ] {
            if value.is_empty() {
                self.err(
                    &format!("auth.token.{name}"),
                    "is missing",
                    format!("set it, for example to {example}"),
                );
            }
        }
        if token.rootcertbundle.is_none() && token.jwks.is_none() {
            self.err(
                "auth.token",
                "neither rootcertbundle nor jwks is set, so no token could be verified",
                "set auth.token.rootcertbundle to the token server's certificates, or auth.token.jwks to its JWKS file",
            );
        }
        if let Some(bundle) = &token.rootcertbundle {
            self.readable(
                "auth.token.rootcertbundle",
                bundle,
                "point it at the PEM certificates of the token server's signing keys",
            );
        }
        if let Some(jwks) = &token.jwks {
            self.readable(
                "auth.token.jwks",
                jwks,
                "point it at the token server's JWKS file",
            );
        }
        for (i, alg) in token.signingalgorithms.iter().enumerate() {
            if let Named::Unknown(alg) = alg {
                let hint = schema::nearest(alg, SigningAlgorithm::names())
                    .map(|n| format!("; did you mean `{n}`"))
                    .unwrap_or_default();
                self.err(
                    &format!("auth.token.signingalgorithms[{i}]"),
                    format!("unknown signing algorithm `{alg}`{hint}"),
                    format!(
                        "use some of: {}",
                        SigningAlgorithm::names().collect::<Vec<_>>().join(", ")
                    ),
                );
            }
        }
    }

    fn http(&mut self) {
        let http = &self.config.http;
        match parse_listen_addr(&http.net, &http.addr) {
            Ok(crate::ListenAddr::Unix(path)) => {
                let full = self.resolve(&path);
                if let Some(parent) = full.parent()
                    && !parent.as_os_str().is_empty()
                    && !parent.is_dir()
                {
                    self.err(
                        "http.addr",
                        format!("the socket's directory {} does not exist", parent.display()),
                        "create the directory, or choose another socket path",
                    );
                }
            }
            Ok(crate::ListenAddr::Tcp { .. }) => {}
            Err(message) => self.err(
                "http.addr",
                message,
                "fix the address (see http.net for the network)",
            ),
        }
        if let Some(host) = &http.host
            && !(host.starts_with("http://") || host.starts_with("https://"))
        {
            self.err(
                "http.host",
                format!("`{host}` is not an absolute URL"),
                "write the URL clients use, with its scheme, such as https://registry.example.com",
            );
        }
        for (name, values) in &http.headers {
            let key = format!("http.headers.{name}");
            let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
            if name.is_empty() || !name.bytes().all(token) {
                self.err(
                    &key,
                    "is not a valid HTTP header name",
                    "use letters, digits and `-`, such as X-Frame-Options",
                );
            }
            if values
                .iter()
                .any(|v| v.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0))
            {
                self.err(
                    &key,
                    "a header value contains a line break",
                    "write each value on one line",
                );
            }
        }
        if let Some((cors, source)) = self.config.cors() {
            self.cors(&cors, source);
        }
        self.abuse();
        for (i, cidr) in http.trustedproxies.iter().enumerate() {
            if !is_cidr(cidr) {
                self.err(
                    &format!("http.trustedproxies[{i}]"),
                    format!("`{cidr}` is not an IP address or CIDR"),
                    "write the proxy's address or network, such as 10.0.0.5, 10.0.0.0/8 or fd00::/8",
                );
            }
        }
        if let Some(tls) = &http.tls {
            self.tls(tls);
        }
        if let Some(debug) = &http.debug {
            self.debug(debug);
        }
        self.plaintext_credentials();
    }

    /// `http.debug`: the debug listener's address and the metrics path.
    fn debug(&mut self, debug: &DebugConfig) {
        // An empty address means no debug listener, as in distribution.
        if !debug.addr.is_empty()
            && let Err(message) = parse_listen_addr("tcp", &debug.addr)
        {
            self.err(
                "http.debug.addr",
                message,
                "write a TCP address such as `localhost:5001`; keep it off public interfaces, since it serves metrics without authentication",
            );
        }
        let path = &debug.prometheus.path;
        // Empty means the default, /metrics.
        if !path.is_empty()
            && (!path.starts_with('/')
                || path
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || c == '?' || c == '#'))
        {
            self.err(
                "http.debug.prometheus.path",
                format!("`{path}` is not a URL path"),
                "write a path starting with `/`, such as `/metrics`",
            );
        }
    }

    /// The HTTPS-by-default guardrail: credentials (any `auth` method) are
    /// not accepted over plain HTTP on an address other hosts can reach.
    fn plaintext_credentials(&mut self) {
        let config = self.config;
        let http = &config.http;
        let auth = &config.auth;
        let credentials = auth.htpasswd.is_some()
            || auth.token.is_some()
            || auth.silly.is_some()
            || auth.tokenserver.is_some();
        let https_in_front = http
            .host
            .as_deref()
            .and_then(|h| h.get(..8))
            .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"));
        if !credentials || http.tls.is_some() || https_in_front || http.insecureplaintextcredentials
        {
            return;
        }
        let reachable = match parse_listen_addr(&http.net, &http.addr) {
            Ok(crate::ListenAddr::Tcp { host, .. }) => !host.as_deref().is_some_and(is_loopback),
            // Unix sockets, and addresses already reported as wrong.
            Ok(crate::ListenAddr::Unix(_)) | Err(_) => false,
        };
        if reachable {
            let addr = &http.addr;
            self.err(
                "http.addr",
                format!(
                    "`{addr}` is reachable from other hosts over plain HTTP, and `auth` makes clients send passwords and tokens to it in clear text"
                ),
                "serve HTTPS by setting http.tls.certificate and http.tls.key (`portcullis cert generate` makes them), \
                 or, when a proxy in front terminates TLS, set http.host to its https:// URL; \
                 or listen on a loopback address such as 127.0.0.1:5000. \
                 Only on a network you trust completely, set http.insecureplaintextcredentials: true",
            );
        }
    }

    fn limits(&mut self) {
        if self.config.portcullis.manifestmaxbytes == 0 {
            self.err(
                "portcullis.manifestmaxbytes",
                "must be more than 0",
                "set it to the largest manifest to accept, such as 4194304 (4 MiB)",
            );
        }
        let timeout = self.config.portcullis.headertimeout;
        if timeout < std::time::Duration::from_secs(1) {
            self.err(
                "portcullis.headertimeout",
                format!(
                    "{timeout:?} is too short for a client to send its request headers (a bare number is read as nanoseconds)"
                ),
                "give it a unit, such as 30s (the default)",
            );
        }
        if self.config.portcullis.socket_mode().is_none() {
            self.err(
                "portcullis.socketmode",
                format!(
                    "{:?} is not an octal permission mode",
                    self.config.portcullis.socketmode
                ),
                "write it as an octal number such as \"0660\" (owner and group) or \"0666\" (everyone, the default)",
            );
        }
    }
}

/// `127.0.0.0/8`, `::1` and `localhost`.
pub(crate) fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// An IP address, or an address and a prefix length (`10.0.0.0/8`, `fd00::/8`).
pub(super) fn is_cidr(text: &str) -> bool {
    let (ip, len) = match text.split_once('/') {
        Some((ip, len)) => (ip, Some(len)),
        None => (text, None),
    };
    let Ok(ip) = ip.parse::<std::net::IpAddr>() else {
        return false;
    };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    len.is_none_or(|l| l.parse::<u8>().is_ok_and(|l| l <= max))
}
