//! The table of every configuration key: distribution's and portcullis's own.
//!
//! Each key has a [`Shape`] (what its value must look like) and an [`Act`]:
//! whether portcullis acts on it, or accepts it for compatibility with
//! distribution and ignores it with a warning. The loader walks the parsed YAML
//! against this table, so this file is the one place that decides which keys
//! exist. `docs/CONFIG.md` documents the same table for people.
//!
//! Inside a section portcullis ignores, free-form parts (driver parameters,
//! middleware options, notification endpoints, redis options, ...) are
//! [`Shape::Any`]: distribution passes them on unchecked, so they are not
//! checked here either.

/// What a key's value must look like.
#[derive(Debug)]
pub(crate) enum Shape {
    /// A scalar, kept as text.
    Str,
    /// `true`/`false` (also `yes`/`no`/`on`/`off`, as Go's YAML v2 decoder allows).
    Bool,
    /// A non-negative integer no larger than the given maximum.
    Uint(u64),
    /// A Go duration string such as `10s`, or an integer number of nanoseconds.
    Duration,
    /// One of these words (compared case-insensitively).
    Enum(&'static [&'static str]),
    /// A list of scalars.
    StrList,
    /// A section with these keys.
    Map(&'static [Field]),
    /// A map with free-form keys whose values all have this shape.
    MapOf(&'static Shape),
    /// Anything; not checked.
    Any,
    /// A key whose presence is what counts (`storage.inmemory:`); any value.
    Flag,
}

/// What portcullis does with a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Act {
    /// portcullis acts on the key.
    Used,
    /// Accepted for compatibility with distribution but ignored, with a
    /// warning that gives this reason.
    Ignored(&'static str),
    /// Accepted and acted on, with a warning to use this key instead.
    Deprecated(&'static str),
}

/// One key of a section.
#[derive(Debug)]
pub(crate) struct Field {
    pub name: &'static str,
    pub shape: Shape,
    pub act: Act,
}

const fn used(name: &'static str, shape: Shape) -> Field {
    Field {
        name,
        shape,
        act: Act::Used,
    }
}

const fn ignored(name: &'static str, shape: Shape, why: &'static str) -> Field {
    Field {
        name,
        shape,
        act: Act::Ignored(why),
    }
}

/// A key inside an ignored section: its name is checked, its value is not.
const fn key(name: &'static str) -> Field {
    used(name, Shape::Any)
}

/// Storage keys that name the storage driver; exactly one must be present.
pub(crate) const STORAGE_DRIVERS: &[&str] = &[
    "filesystem",
    "inmemory",
    "s3",
    "azure",
    "gcs",
    "swift",
    "oss",
];

pub(crate) const LOG_LEVELS: &[&str] = &[
    "panic", "fatal", "error", "warn", "warning", "info", "debug", "trace",
];
pub(crate) const LOG_FORMATTERS: &[&str] = &["text", "json", "logstash"];

const UNSUPPORTED_DRIVER: &str = "portcullis does not implement this storage driver";

/// The whole configuration file.
pub(crate) const ROOT_SHAPE: Shape = Shape::Map(ROOT);

pub(crate) const ROOT: &[Field] = &[
    used("version", Shape::Str),
    used("log", Shape::Map(LOG)),
    Field {
        name: "loglevel",
        shape: Shape::Enum(LOG_LEVELS),
        act: Act::Deprecated("log.level"),
    },
    used("storage", Shape::Map(STORAGE)),
    used("auth", Shape::Map(AUTH)),
    ignored(
        "middleware",
        Shape::Any,
        "portcullis has no middleware plug-ins",
    ),
    ignored(
        "reporting",
        Shape::Map(REPORTING),
        "portcullis does not report to bugsnag or New Relic",
    ),
    used("http", Shape::Map(HTTP)),
    used("notifications", Shape::Map(NOTIFICATIONS)),
    ignored("redis", Shape::Any, "portcullis does not use redis"),
    ignored(
        "health",
        Shape::Map(HEALTH),
        "portcullis does not run distribution's health checks",
    ),
    ignored(
        "proxy",
        Shape::Map(PROXY),
        "portcullis is not a pull-through cache; it serves its own storage",
    ),
    ignored(
        "compatibility",
        Shape::Map(COMPATIBILITY),
        "portcullis does not serve schema1 manifests",
    ),
    ignored(
        "validation",
        Shape::Map(VALIDATION),
        "portcullis applies its own manifest validation",
    ),
    used("catalog", Shape::Map(CATALOG)),
    used("portcullis", Shape::Map(PORTCULLIS)),
    // portcullis's own: the audit log, rate limits and lockout.
    used("audit", Shape::Map(AUDIT)),
    used("ratelimit", Shape::Map(RATELIMIT)),
    used("lockout", Shape::Map(LOCKOUT)),
    // The policy: checked by portcullis-auth's parser, which knows its keys.
    used("access", Shape::Any),
];

const LOG: &[Field] = &[
    used("level", Shape::Enum(LOG_LEVELS)),
    used("formatter", Shape::Enum(LOG_FORMATTERS)),
    ignored(
        "fields",
        Shape::MapOf(&Shape::Any),
        "portcullis does not add custom fields to log lines yet",
    ),
    used("accesslog", Shape::Map(&[used("disabled", Shape::Bool)])),
    ignored(
        "hooks",
        Shape::Any,
        "portcullis does not send log hooks (such as mail)",
    ),
];

const STORAGE: &[Field] = &[
    used(
        "filesystem",
        Shape::Map(&[
            used("rootdirectory", Shape::Str),
            used("maxthreads", Shape::Uint(u32::MAX as u64)),
        ]),
    ),
    used("inmemory", Shape::Flag),
    ignored("s3", Shape::Any, UNSUPPORTED_DRIVER),
    ignored("azure", Shape::Any, UNSUPPORTED_DRIVER),
    ignored("gcs", Shape::Any, UNSUPPORTED_DRIVER),
    ignored("swift", Shape::Any, UNSUPPORTED_DRIVER),
    ignored("oss", Shape::Any, UNSUPPORTED_DRIVER),
    used("delete", Shape::Map(&[used("enabled", Shape::Bool)])),
    used("redirect", Shape::Map(&[used("disable", Shape::Bool)])),
    ignored(
        "cache",
        Shape::Map(&[key("blobdescriptor"), key("blobdescriptorsize")]),
        "portcullis does not use a blob descriptor cache",
    ),
    used("maintenance", Shape::Map(MAINTENANCE)),
    ignored(
        "tag",
        Shape::Map(&[key("concurrencylimit")]),
        "portcullis looks tags up its own way",
    ),
];

const MAINTENANCE: &[Field] = &[
    used(
        "uploadpurging",
        Shape::Map(&[
            used("enabled", Shape::Bool),
            used("age", Shape::Duration),
            used("interval", Shape::Duration),
            used("dryrun", Shape::Bool),
        ]),
    ),
    used("readonly", Shape::Map(&[used("enabled", Shape::Bool)])),
];

const AUTH: &[Field] = &[
    used(
        "silly",
        Shape::Map(&[used("realm", Shape::Str), used("service", Shape::Str)]),
    ),
    used(
        "token",
        Shape::Map(&[
            used("realm", Shape::Str),
            used("service", Shape::Str),
            used("issuer", Shape::Str),
            used("rootcertbundle", Shape::Str),
            used("jwks", Shape::Str),
            used("signingalgorithms", Shape::StrList),
            used("autoredirect", Shape::Bool),
            used("autoredirectpath", Shape::Str),
        ]),
    ),
    used(
        "htpasswd",
        Shape::Map(&[used("realm", Shape::Str), used("path", Shape::Str)]),
    ),
    used("tokenserver", Shape::Map(TOKENSERVER)),
];

/// portcullis's own token service (`auth.tokenserver`).
const TOKENSERVER: &[Field] = &[
    used("realm", Shape::Str),
    used("service", Shape::Str),
    used("issuer", Shape::Str),
    used("expiration", Shape::Duration),
    used("allowshortexpiration", Shape::Bool),
    used("leeway", Shape::Duration),
    used("uploadgrace", Shape::Duration),
    used(
        "algorithm",
        Shape::Enum(crate::crypto::SigningAlgorithm::PORTCULLIS_NAMES),
    ),
    used(
        "keys",
        Shape::Map(&[
            used(
                "signing",
                Shape::Map(&[used("key", Shape::Str), used("certificate", Shape::Str)]),
            ),
            used("verify", Shape::StrList),
        ]),
    ),
    used(
        "refresh",
        Shape::Map(&[
            used("enabled", Shape::Bool),
            used("expiration", Shape::Duration),
        ]),
    ),
];

const REPORTING: &[Field] = &[
    used(
        "bugsnag",
        Shape::Map(&[key("apikey"), key("releasestage"), key("endpoint")]),
    ),
    used(
        "newrelic",
        Shape::Map(&[key("licensekey"), key("name"), key("verbose")]),
    ),
];

const HTTP: &[Field] = &[
    used("addr", Shape::Str),
    used("net", Shape::Enum(&["tcp", "tcp4", "tcp6", "unix"])),
    used("prefix", Shape::Str),
    used("host", Shape::Str),
    used("secret", Shape::Str),
    used("relativeurls", Shape::Bool),
    ignored(
        "draintimeout",
        Shape::Duration,
        "portcullis stops accepting on SIGINT and lets open requests finish",
    ),
    used("tls", Shape::Map(TLS)),
    // The debug listener: Prometheus metrics and /debug/health. distribution
    // also serves pprof and expvar there, with no keys of their own.
    used(
        "debug",
        Shape::Map(&[
            used("addr", Shape::Str),
            used(
                "prometheus",
                Shape::Map(&[used("enabled", Shape::Bool), used("path", Shape::Str)]),
            ),
        ]),
    ),
    used("headers", Shape::MapOf(&Shape::StrList)),
    // portcullis's own: browser origins (CORS), answered before auth.
    used(
        "cors",
        Shape::Map(&[
            used("allowedorigins", Shape::StrList),
            used("allowedmethods", Shape::StrList),
            used("allowedheaders", Shape::StrList),
            used("exposedheaders", Shape::StrList),
            used("allowcredentials", Shape::Bool),
            used("maxage", Shape::Duration),
        ]),
    ),
    // portcullis's own: peers whose forwarded headers are believed.
    used("trustedproxies", Shape::StrList),
    // portcullis's own: the opt-out of the HTTPS-by-default guardrail.
    used("insecureplaintextcredentials", Shape::Bool),
    ignored(
        "http2",
        Shape::Map(&[used("disabled", Shape::Bool)]),
        "portcullis always offers HTTP/1.1 and HTTP/2",
    ),
    ignored(
        "h2c",
        Shape::Map(&[used("enabled", Shape::Bool)]),
        "portcullis always accepts HTTP/2 with prior knowledge on plain TCP",
    ),
];

const TLS: &[Field] = &[
    used("certificate", Shape::Str),
    used("key", Shape::Str),
    used("clientcas", Shape::StrList),
    used("minimumtls", Shape::Str),
    used("ciphersuites", Shape::StrList),
    used(
        "clientauth",
        Shape::Enum(crate::crypto::ClientAuthMode::NAMES),
    ),
    used(
        "clientidentity",
        Shape::Enum(crate::crypto::ClientIdentityMode::NAMES),
    ),
    used("reloadinterval", Shape::Duration),
    used("expirywarning", Shape::Duration),
    ignored(
        "letsencrypt",
        Shape::Map(&[
            key("cachefile"),
            key("email"),
            key("hosts"),
            key("directoryurl"),
        ]),
        "portcullis does not fetch certificates from Let's Encrypt; set http.tls.certificate and http.tls.key",
    ),
];

const NOTIFICATIONS: &[Field] = &[
    ignored(
        "events",
        Shape::Any,
        "portcullis's envelopes never include references",
    ),
    // A list of endpoints; read by portcullis-notify, which names a bad one.
    used("endpoints", Shape::Any),
];

const HEALTH: &[Field] = &[
    used(
        "storagedriver",
        Shape::Map(&[key("enabled"), key("interval"), key("threshold")]),
    ),
    key("file"),
    key("http"),
    key("tcp"),
];

const PROXY: &[Field] = &[
    key("remoteurl"),
    key("username"),
    key("password"),
    key("ttl"),
    key("exec"),
];

const COMPATIBILITY: &[Field] = &[used(
    "schema1",
    Shape::Map(&[key("signingkeyfile"), key("enabled")]),
)];

const VALIDATION: &[Field] = &[key("enabled"), key("disabled"), key("manifests")];

const CATALOG: &[Field] = &[used("maxentries", Shape::Uint(u32::MAX as u64))];

const AUDIT: &[Field] = &[
    used(
        "file",
        Shape::Map(&[
            used("path", Shape::Str),
            used("maxbytes", Shape::Uint(u64::MAX)),
            used("keep", Shape::Uint(100_000)),
        ]),
    ),
    used("stdout", Shape::Bool),
    used("syslog", Shape::Map(&[used("socket", Shape::Str)])),
    used("pulls", Shape::Str),
    used("queue", Shape::Uint(10_000_000)),
];

const RATE: Shape = Shape::Map(&[
    used("limit", Shape::Uint(u32::MAX as u64)),
    used("window", Shape::Duration),
]);

const RATELIMIT: &[Field] = &[
    used("pull", RATE),
    used("push", RATE),
    used("token", RATE),
    used("authfailure", RATE),
    // A list of maps; its keys are checked when it is read.
    used("overrides", Shape::Any),
];

const LOCKOUT: &[Field] = &[
    used("disabled", Shape::Bool),
    used("free", Shape::Uint(1_000_000)),
    used("delay", Shape::Duration),
    used("maxdelay", Shape::Duration),
    used("lockafter", Shape::Uint(1_000_000)),
    used("duration", Shape::Duration),
    used("forget", Shape::Duration),
];

const PORTCULLIS: &[Field] = &[
    used("automount", Shape::Bool),
    used("manifestmaxbytes", Shape::Uint(u64::MAX)),
    used("headertimeout", Shape::Duration),
    used("socketmode", Shape::Str),
];

/// The field called `name` among `fields`.
pub(crate) fn field<'a>(fields: &'a [Field], name: &str) -> Option<&'a Field> {
    fields.iter().find(|f| f.name == name)
}

/// The candidate closest to `word`, if it is close enough to be a likely typo.
pub(crate) fn nearest<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let word = word.to_lowercase();
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(&word, &c.to_lowercase()), c))
        .filter(|(score, _)| *score >= 0.7)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// Every environment variable that maps to a key of the schema, such as
/// `REGISTRY_HTTP_ADDR`. Free-form maps contribute only their own name.
pub(crate) fn env_names() -> Vec<String> {
    fn walk(fields: &[Field], prefix: &str, out: &mut Vec<String>) {
        for f in fields {
            let name = format!("{prefix}_{}", f.name.to_uppercase());
            out.push(name.clone());
            if let Shape::Map(children) = f.shape {
                walk(children, &name, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(ROOT, "REGISTRY", &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_finds_typos() {
        let http: Vec<&str> = HTTP.iter().map(|f| f.name).collect();
        assert_eq!(nearest("adr", http.iter().copied()), Some("addr"));
        assert_eq!(nearest("Addr", http.iter().copied()), Some("addr"));
        assert_eq!(nearest("header", http.iter().copied()), Some("headers"));
        assert_eq!(nearest("zzzzzz", http.iter().copied()), None);
    }

    #[test]
    fn env_names_cover_nested_keys() {
        let names = env_names();
        for n in [
            "REGISTRY_HTTP_ADDR",
            "REGISTRY_AUTH_HTPASSWD_PATH",
            "REGISTRY_STORAGE_MAINTENANCE_READONLY_ENABLED",
            "REGISTRY_PORTCULLIS_AUTOMOUNT",
            "REGISTRY_STORAGE_S3",
        ] {
            assert!(names.iter().any(|x| x == n), "{n}");
        }
    }

    #[test]
    fn no_duplicate_names_in_a_section() {
        fn check(fields: &[Field]) {
            for (i, f) in fields.iter().enumerate() {
                assert!(
                    fields[i + 1..].iter().all(|g| g.name != f.name),
                    "{}",
                    f.name
                );
                if let Shape::Map(children) = f.shape {
                    check(children);
                }
            }
        }
        check(ROOT);
    }
}
