//! The typed configuration that the rest of portcullis reads.
//!
//! Field names are distribution's key names, so `config.http.addr` is the
//! `http.addr` key. Every struct is `Default` with distribution's defaults
//! (`http.addr` is `:5000`, upload purging runs every 24h for uploads older than
//! 168h, ...). Only keys portcullis acts on are modelled; the ones it ignores are
//! checked and warned about by the loader, then dropped. A storage driver that
//! portcullis does not implement is kept, with its parameters, in
//! [`StorageConfig::other_driver`], so that `validate()` can say so.
//!
//! `Serialize` is for showing a configuration back to an operator (`config
//! check --json`): `http.secret` is written as `<redacted>`, and durations in
//! Go's notation.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::crypto::{
    CipherSuite, ClientAuthMode, ClientIdentityMode, Named, SigningAlgorithm, TlsVersion,
};
use crate::duration::go;
use crate::secret::Secret;

mod storage;

use portcullis_yaml::Loc;
pub use storage::{
    DeleteConfig, FilesystemConfig, MaintenanceConfig, OtherStorageDriver, ReadOnly,
    RedirectConfig, StorageConfig, StorageDriver, UploadPurging,
};

/// A whole configuration. See `docs/CONFIG.md` for every key.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Always `0.1`, distribution's only configuration version.
    pub version: String,
    pub log: LogConfig,
    pub http: HttpConfig,
    pub auth: AuthConfig,
    pub storage: StorageConfig,
    pub catalog: CatalogConfig,
    /// portcullis's own keys.
    pub portcullis: PortcullisConfig,
    /// `notifications`: distribution's webhook endpoints.
    pub notifications: NotificationsConfig,
    /// `audit` (portcullis's own): the audit log.
    pub audit: crate::abuse::AuditConfig,
    /// `ratelimit` (portcullis's own).
    pub ratelimit: crate::abuse::RateLimitConfig,
    /// `lockout` (portcullis's own).
    pub lockout: crate::abuse::LockoutConfig,
    /// `access`: the per-repository policy (see [`crate::AccessSection`]).
    #[serde(skip)]
    pub access: Option<crate::access::AccessSection>,
    /// Where each key came from, for messages from `validate()`.
    #[serde(skip)]
    pub(crate) meta: Meta,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            version: "0.1".to_owned(),
            log: LogConfig::default(),
            http: HttpConfig::default(),
            auth: AuthConfig::default(),
            storage: StorageConfig::default(),
            catalog: CatalogConfig::default(),
            portcullis: PortcullisConfig::default(),
            notifications: NotificationsConfig::default(),
            audit: crate::abuse::AuditConfig::default(),
            ratelimit: crate::abuse::RateLimitConfig::default(),
            lockout: crate::abuse::LockoutConfig::default(),
            access: None,
            meta: Meta::default(),
        }
    }
}

/// The file a configuration was loaded from and where each of its keys was set.
#[derive(Clone, Debug, Default)]
pub(crate) struct Meta {
    pub source: String,
    /// Dotted key path to where it was set.
    pub origins: BTreeMap<String, Loc>,
}

/// Metadata is not part of a configuration's value.
impl PartialEq for Meta {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// `log`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LogConfig {
    /// `log.level`, default `info`. The deprecated top-level `loglevel` is used
    /// when `log.level` is not set.
    pub level: LogLevel,
    /// `log.formatter`, default `text`.
    pub formatter: LogFormatter,
    /// `log.fields`: extra fields added to every log line.
    pub fields: BTreeMap<String, serde_json::Value>,
    /// `log.accesslog`.
    pub accesslog: AccessLogConfig,
}

/// `log.level`. logrus's `panic` and `fatal` mean [`LogLevel::Error`] here;
/// `warning` means [`LogLevel::Warn`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    #[serde(alias = "panic", alias = "fatal")]
    Error,
    #[serde(alias = "warning")]
    Warn,
    #[default]
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    /// The level's name as `tracing` filters spell it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Warn => "warn",
            Self::Info => "info",
            Self::Debug => "debug",
            Self::Trace => "trace",
        }
    }
}

/// `log.formatter`. `logstash` is JSON with logstash's field names.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormatter {
    #[default]
    Text,
    Json,
    Logstash,
}

/// `log.accesslog`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AccessLogConfig {
    pub disabled: bool,
}

/// `http`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HttpConfig {
    /// `http.addr`, default `:5000`. With `net: unix`, a socket path.
    pub addr: String,
    /// `http.net`: `tcp` (default), `tcp4`, `tcp6` or `unix`.
    pub net: String,
    /// `http.prefix`: URL path prefix the registry is served under.
    pub prefix: String,
    /// `http.host`: external URL, used to build absolute `Location` headers.
    pub host: Option<String>,
    /// `http.secret`: signs upload state. Never logged or serialized.
    pub secret: Option<Secret>,
    /// `http.relativeurls`: send relative `Location` headers.
    pub relativeurls: bool,
    /// `http.headers`: added to every response.
    pub headers: BTreeMap<String, Vec<String>>,
    /// `http.cors` (portcullis's own): browser origins allowed to call the
    /// registry; see [`crate::CorsConfig`].
    pub cors: Option<crate::cors::CorsConfig>,
    /// `http.tls`.
    pub tls: Option<TlsConfig>,
    /// `http.draintimeout`: how long to wait for requests on shutdown.
    #[serde(with = "go::opt")]
    pub draintimeout: Option<Duration>,
    /// `http.debug`: a second listener for debug and metrics endpoints.
    pub debug: Option<DebugConfig>,
    /// `http.http2`.
    pub http2: Http2Config,
    /// `http.h2c`.
    pub h2c: H2cConfig,
    /// `http.trustedproxies` (portcullis's own): CIDRs of reverse proxies
    /// whose `X-Forwarded-*` and `Forwarded` headers are believed.
    pub trustedproxies: Vec<String>,
    /// `http.insecureplaintextcredentials` (portcullis's own): accept
    /// credentials over plain HTTP on a non-loopback address.
    pub insecureplaintextcredentials: bool,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            addr: ":5000".to_owned(),
            net: "tcp".to_owned(),
            prefix: String::new(),
            host: None,
            secret: None,
            relativeurls: false,
            headers: BTreeMap::new(),
            cors: None,
            tls: None,
            draintimeout: None,
            debug: None,
            http2: Http2Config::default(),
            h2c: H2cConfig::default(),
            trustedproxies: Vec::new(),
            insecureplaintextcredentials: false,
        }
    }
}

/// `http.tls`. `letsencrypt` is accepted and ignored with a warning.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TlsConfig {
    /// PEM certificate chain.
    pub certificate: String,
    /// PEM private key.
    pub key: String,
    /// CA bundles; when set, clients must present a certificate they signed.
    pub clientcas: Vec<String>,
    /// `tls1.0` ... `tls1.3`; distribution's default is `tls1.2`.
    pub minimumtls: Option<Named<TlsVersion>>,
    /// Go cipher suite names, such as `TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256`.
    pub ciphersuites: Vec<Named<CipherSuite>>,
    /// portcullis: `none`, `optional` or `required`; `required` when
    /// `clientcas` is set (as in distribution), otherwise `none`.
    pub clientauth: Option<Named<ClientAuthMode>>,
    /// portcullis: which name of a verified client certificate identifies
    /// the caller for the policy: `none` (default), `cn`, `san-dns`,
    /// `san-email` or `san-uri`. A name `owner+robot` is a robot account.
    pub clientidentity: Option<Named<ClientIdentityMode>>,
    /// portcullis: how often the certificate, key and client CA files are
    /// checked for changes; default 2s, `0s` turns polling off (SIGHUP still
    /// reloads).
    #[serde(with = "go::opt")]
    pub reloadinterval: Option<Duration>,
    /// portcullis: warn when the certificate expires within this; default 720h.
    #[serde(with = "go::opt")]
    pub expirywarning: Option<Duration>,
}

/// `http.debug`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DebugConfig {
    pub addr: String,
    pub prometheus: PrometheusConfig,
}

/// `http.debug.prometheus`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PrometheusConfig {
    pub enabled: bool,
    /// Default `/metrics`.
    pub path: String,
}

impl Default for PrometheusConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            path: "/metrics".to_owned(),
        }
    }
}

/// `http.http2`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Http2Config {
    pub disabled: bool,
}

/// `http.h2c`: HTTP/2 without TLS.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct H2cConfig {
    pub enabled: bool,
}

/// `auth`. At most one method may be set; none means no authentication.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthConfig {
    pub htpasswd: Option<HtpasswdConfig>,
    pub token: Option<TokenConfig>,
    /// distribution's test-only method: any `Authorization` header is accepted.
    pub silly: Option<SillyConfig>,
    /// portcullis's built-in token service; users come from `auth.htpasswd`.
    pub tokenserver: Option<TokenServerConfig>,
}

impl AuthConfig {
    /// The names of the methods that are set, such as `["htpasswd"]`.
    #[must_use]
    pub fn methods(&self) -> Vec<&'static str> {
        let mut methods = Vec::new();
        if self.htpasswd.is_some() {
            methods.push("htpasswd");
        }
        if self.token.is_some() {
            methods.push("token");
        }
        if self.silly.is_some() {
            methods.push("silly");
        }
        methods
    }
}

/// `auth.htpasswd`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HtpasswdConfig {
    pub realm: String,
    /// An htpasswd file with bcrypt (`htpasswd -B`) entries. A relative path is
    /// relative to the working directory.
    pub path: PathBuf,
}

/// `auth.token`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TokenConfig {
    pub realm: String,
    pub service: String,
    pub issuer: String,
    /// PEM certificates whose keys may sign tokens.
    pub rootcertbundle: Option<PathBuf>,
    /// A JWKS file whose keys may sign tokens.
    pub jwks: Option<PathBuf>,
    /// Accepted JWS algorithms; empty means the defaults.
    pub signingalgorithms: Vec<Named<SigningAlgorithm>>,
    /// Redirect a browser without a token to the realm.
    pub autoredirect: bool,
    /// Path of the token endpoint for `autoredirect`; distribution's default
    /// is `/auth/token`.
    pub autoredirectpath: Option<String>,
}

/// `auth.tokenserver`: the built-in Docker token service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TokenServerConfig {
    /// The token endpoint URL sent in challenges; default `<http.host>/token`,
    /// or the request's own host when `http.host` is not set.
    pub realm: Option<String>,
    /// The audience (`aud`) of issued tokens; default `portcullis`.
    pub service: String,
    /// The issuer (`iss`) of issued tokens; default `portcullis`.
    pub issuer: String,
    /// Lifetime of access tokens; default `5m`.
    #[serde(with = "go")]
    pub expiration: Duration,
    /// Accept an `expiration` under 60 s, which Docker cannot use (it treats
    /// every token as valid for 60 s); only for tests of token expiry.
    pub allowshortexpiration: bool,
    /// Clock-skew allowance when verifying; default `60s`.
    #[serde(with = "go")]
    pub leeway: Duration,
    /// How long an upload session opened with a valid token stays usable
    /// after that token expires; default `6h`.
    #[serde(with = "go")]
    pub uploadgrace: Duration,
    /// Algorithm of a generated signing key; default `ES256`.
    pub algorithm: SigningAlgorithm,
    pub keys: TokenKeysConfig,
    pub refresh: RefreshConfig,
}

impl Default for TokenServerConfig {
    fn default() -> Self {
        Self {
            realm: None,
            service: "portcullis".to_owned(),
            issuer: "portcullis".to_owned(),
            expiration: Duration::from_secs(300),
            allowshortexpiration: false,
            leeway: Duration::from_secs(60),
            uploadgrace: Duration::from_secs(6 * 3600),
            algorithm: SigningAlgorithm::Es256,
            keys: TokenKeysConfig::default(),
            refresh: RefreshConfig::default(),
        }
    }
}

/// `auth.tokenserver.keys`. Without `signing`, a key is generated on first
/// start into the data directory.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TokenKeysConfig {
    pub signing: Option<SigningKeyConfig>,
    /// PEM certificates of verify-only keys (e.g. the previous signing key).
    pub verify: Vec<PathBuf>,
}

/// `auth.tokenserver.keys.signing`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SigningKeyConfig {
    pub key: PathBuf,
    pub certificate: PathBuf,
}

/// `auth.tokenserver.refresh`: refresh (identity) tokens for `docker login`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RefreshConfig {
    /// Default `true`.
    pub enabled: bool,
    /// Default `2160h` (90 days).
    #[serde(with = "go")]
    pub expiration: Duration,
}

impl Default for RefreshConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            expiration: Duration::from_secs(90 * 24 * 3600),
        }
    }
}

/// `auth.silly`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SillyConfig {
    pub realm: String,
    pub service: String,
}

/// `catalog`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CatalogConfig {
    /// Most repositories one `/v2/_catalog` response lists; default 1000
    /// (0 also means 1000, as in distribution).
    pub maxentries: u32,
}

impl Default for CatalogConfig {
    fn default() -> Self {
        Self { maxentries: 1000 }
    }
}

/// `notifications`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NotificationsConfig {
    /// Each endpoint as written (name, url, headers, timeout, threshold,
    /// backoff, ignoredmediatypes, ignore), read by `portcullis-notify`.
    pub endpoints: Vec<serde_json::Value>,
}

/// portcullis's own keys, under the top-level `portcullis:` section.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PortcullisConfig {
    /// Mount a blob from another repository the caller can read even without
    /// `?from=`. Default `false`.
    pub automount: bool,
    /// Largest manifest accepted, in bytes. Default 4 MiB.
    pub manifestmaxbytes: u64,
    /// How long a client has to send a request's headers, counted from the
    /// moment the connection is ready for a request (so it also closes idle
    /// keep-alive connections). Default 30 s.
    #[serde(with = "go")]
    pub headertimeout: Duration,
    /// Permission bits of the unix socket when `http.net` is `unix`, as an
    /// octal string. Default `0666`, which is what a loopback TCP port
    /// allows; set `0660` and the socket's group to restrict it.
    pub socketmode: String,
}

impl Default for PortcullisConfig {
    fn default() -> Self {
        Self {
            automount: false,
            manifestmaxbytes: 4 * 1024 * 1024,
            headertimeout: Duration::from_secs(30),
            socketmode: "0666".to_owned(),
        }
    }
}

impl PortcullisConfig {
    /// `socketmode` as permission bits, when it is an octal number up to 0777.
    #[must_use]
    pub fn socket_mode(&self) -> Option<u32> {
        u32::from_str_radix(self.socketmode.trim_start_matches("0o"), 8)
            .ok()
            .filter(|m| *m <= 0o777)
    }
}
