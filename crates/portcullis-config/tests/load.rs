//! Loading configurations: distribution's files, unknown keys, wrong types,
//! warnings for ignored keys, and storage driver selection.

use std::time::Duration;

use portcullis_config::{
    Config, ConfigError, ConfigErrors, ExposeSecret, LogFormatter, LogLevel, Named, StorageDriver,
    TlsVersion,
};

fn load(text: &str) -> Result<portcullis_config::Loaded, ConfigErrors> {
    Config::from_yaml(text, "config.yml", &[])
}

fn errors(text: &str) -> Vec<ConfigError> {
    match load(text) {
        Ok(loaded) => panic!("expected errors, got {:?}", loaded.config),
        Err(e) => e.0,
    }
}

fn one_error(text: &str) -> ConfigError {
    let mut errors = errors(text);
    assert_eq!(errors.len(), 1, "{errors:?}");
    errors.remove(0)
}

/// The full example from distribution's configuration docs, trimmed of the
/// keys that need one driver or auth method only.
const DISTRIBUTION_FULL: &str = r"version: 0.1
log:
  accesslog:
    disabled: true
  level: debug
  formatter: text
  fields:
    service: registry
    environment: staging
  hooks:
    - type: mail
      disabled: true
      levels:
        - panic
      options:
        smtp:
          addr: mail.example.com:25
          username: mailuser
          password: password
          insecure: true
        from: sender@example.com
        to:
          - errors@example.com
loglevel: debug
storage:
  filesystem:
    rootdirectory: /var/lib/registry
    maxthreads: 100
  delete:
    enabled: false
  redirect:
    disable: false
  cache:
    blobdescriptor: redis
    blobdescriptorsize: 10000
  maintenance:
    uploadpurging:
      enabled: true
      age: 168h
      interval: 24h
      dryrun: false
    readonly:
      enabled: false
  tag:
    concurrencylimit: 8
auth:
  htpasswd:
    realm: basic-realm
    path: /path/to/htpasswd
middleware:
  registry:
    - name: ARegistryMiddleware
      options:
        foo: bar
  repository:
    - name: ARepositoryMiddleware
      options:
        foo: bar
  storage:
    - name: cloudfront
      options:
        baseurl: https://my.cloudfronted.domain.com/
        privatekey: /path/to/pem
        keypairid: cloudfrontkeypairid
        duration: 3000s
        ipfilteredby: awsregion
        awsregion: us-east-1, use-east-2
        updatefrequency: 12h
        iprangesurl: https://ip-ranges.amazonaws.com/ip-ranges.json
reporting:
  bugsnag:
    apikey: bugsnagapikey
    releasestage: bugsnagreleasestage
    endpoint: bugsnagendpoint
  newrelic:
    licensekey: newreliclicensekey
    name: newrelicname
    verbose: true
http:
  addr: localhost:5000
  prefix: /my/nested/registry/
  host: https://myregistryaddress.org:5000
  secret: asecretforlocaldevelopment
  relativeurls: false
  draintimeout: 60s
  tls:
    certificate: /path/to/x509/public
    key: /path/to/x509/private
    clientcas:
      - /path/to/ca.pem
      - /path/to/another/ca.pem
    minimumtls: tls1.2
    ciphersuites:
      - TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
      - TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
    letsencrypt:
      cachefile: /path/to/cache-file
      email: emailused@letsencrypt.com
      hosts: [myregistryaddress.org]
      directoryurl: https://acme-v02.api.letsencrypt.org/directory
  debug:
    addr: localhost:5001
    prometheus:
      enabled: true
      path: /metrics
  headers:
    X-Content-Type-Options: [nosniff]
  http2:
    disabled: false
  h2c:
    enabled: false
notifications:
  events:
    includereferences: true
  endpoints:
    - name: alistener
      disabled: false
      url: https://my.listener.com/event
      headers:
        Authorization: [Bearer abc]
      timeout: 1s
      threshold: 10
      backoff: 1s
      ignoredmediatypes:
        - application/octet-stream
      ignore:
        mediatypes:
           - application/octet-stream
        actions:
           - pull
redis:
  addr: localhost:6379
  password: asecret
  db: 0
  dialtimeout: 10ms
  readtimeout: 10ms
  writetimeout: 10ms
  pool:
    maxidle: 16
    maxactive: 64
    idletimeout: 300s
  tls:
    enabled: false
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
  file:
    - file: /path/to/checked/file
      interval: 10s
  http:
    - uri: http://server.to.check/must/return/200
      headers:
        Authorization: [Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==]
      statuscode: 200
      timeout: 3s
      interval: 10s
      threshold: 3
  tcp:
    - addr: redis-server.domain.com:6379
      timeout: 3s
      interval: 10s
      threshold: 3
proxy:
  remoteurl: https://registry-1.docker.io
  username: username
  password: password
  ttl: 168h
compatibility:
  schema1:
    signingkeyfile: /etc/registry/key.json
    enabled: true
validation:
  manifests:
    urls:
      allow:
        - ^https?://([^/]+\.)*example\.com/
      deny:
        - ^https?://www\.example\.com/
catalog:
  maxentries: 100
";

#[test]
fn distribution_full_example_loads_with_warnings() {
    let loaded = load(DISTRIBUTION_FULL).unwrap();
    let c = &loaded.config;
    assert_eq!(c.version, "0.1");
    assert_eq!(c.log.level, LogLevel::Debug);
    assert_eq!(c.log.formatter, LogFormatter::Text);
    assert!(c.log.accesslog.disabled);
    assert_eq!(c.http.addr, "localhost:5000");
    assert_eq!(c.http.prefix, "/my/nested/registry/");
    assert_eq!(
        c.http.host.as_deref(),
        Some("https://myregistryaddress.org:5000")
    );
    assert_eq!(
        c.http.secret.as_ref().map(ExposeSecret::expose_secret),
        Some("asecretforlocaldevelopment")
    );
    assert_eq!(c.http.headers["X-Content-Type-Options"], vec!["nosniff"]);
    let tls = c.http.tls.as_ref().unwrap();
    assert_eq!(tls.clientcas.len(), 2);
    assert_eq!(tls.minimumtls, Some(Named::Known(TlsVersion::Tls12)));
    assert_eq!(tls.ciphersuites.len(), 2);
    let fs = c.storage.filesystem.as_ref().unwrap();
    assert_eq!(fs.rootdirectory.to_str(), Some("/var/lib/registry"));
    assert_eq!(fs.maxthreads, Some(100));
    assert!(matches!(
        c.storage.driver(),
        Some(StorageDriver::Filesystem(_))
    ));
    assert_eq!(
        c.storage.maintenance.uploadpurging.age,
        Duration::from_secs(168 * 3600)
    );
    assert_eq!(c.catalog.maxentries, 100);
    let htpasswd = c.auth.htpasswd.as_ref().unwrap();
    assert_eq!(htpasswd.realm, "basic-realm");

    assert_eq!(loaded.config.notifications.endpoints.len(), 1);
    assert_eq!(
        loaded.config.notifications.endpoints[0]["url"],
        "https://my.listener.com/event"
    );
    let w = loaded.warnings.join("\n");
    for key in [
        "log.hooks",
        "loglevel",
        "storage.cache",
        "storage.tag",
        "middleware",
        "reporting",
        "http.tls.letsencrypt",
        "notifications.events",
        "redis",
        "health",
        "proxy",
        "compatibility",
        "validation",
    ] {
        assert!(
            w.contains(&format!(": {key}: ")),
            "no warning for {key} in:\n{w}"
        );
    }
    assert!(
        w.contains(
            "config.yml:10: log.hooks: accepted for compatibility with distribution, but ignored"
        ),
        "{w}"
    );
    // Only the top of an ignored section is reported.
    assert!(!w.contains("reporting.bugsnag"), "{w}");
    for key in ["log.fields", "http.draintimeout", "http.http2"] {
        assert!(
            w.contains(&format!(": {key}: ")),
            "no warning for {key} in:\n{w}"
        );
    }
    // The debug listener is implemented.
    assert!(!w.contains("http.debug"), "{w}");
    let debug = c.http.debug.as_ref().unwrap();
    assert_eq!(debug.addr, "localhost:5001");
    assert!(debug.prometheus.enabled);
    assert_eq!(debug.prometheus.path, "/metrics");
    assert_eq!(loaded.warnings.len(), 17, "{w}");
}

#[test]
fn warning_names_key_and_line() {
    let text = "version: 0.1\nstorage:\n  inmemory:\nreporting:\n  bugsnag:\n    apikey: x\n";
    let loaded = load(text).unwrap();
    assert_eq!(loaded.warnings.len(), 1);
    let w = &loaded.warnings[0];
    assert!(w.starts_with("config.yml:4: reporting: accepted"), "{w}");
    assert!(w.contains("bugsnag"), "{w}");
}

#[test]
fn defaults() {
    let c = load("version: 0.1\nstorage:\n  filesystem:\n")
        .unwrap()
        .config;
    assert_eq!(c.http.addr, ":5000");
    assert_eq!(c.http.net, "tcp");
    assert_eq!(c.log.level, LogLevel::Info);
    assert_eq!(
        c.storage.filesystem.unwrap().rootdirectory.to_str(),
        Some("/var/lib/registry")
    );
    assert!(!c.storage.delete.enabled);
    let purge = &c.storage.maintenance.uploadpurging;
    assert!(purge.enabled);
    assert_eq!(purge.age, Duration::from_secs(168 * 3600));
    assert_eq!(purge.interval, Duration::from_secs(24 * 3600));
    assert!(!c.storage.maintenance.readonly.enabled);
    assert!(!c.portcullis.automount);
    assert_eq!(c.portcullis.manifestmaxbytes, 4 * 1024 * 1024);
    assert_eq!(c.catalog.maxentries, 1000);
    assert!(c.auth.methods().is_empty());
}

#[test]
fn default_yaml_loads_and_validates() {
    let loaded = Config::from_yaml(portcullis_config::DEFAULT_YAML, "default", &[]).unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    assert_eq!(
        loaded
            .config
            .storage
            .filesystem
            .unwrap()
            .rootdirectory
            .to_str(),
        Some("/var/lib/registry")
    );
}

#[test]
fn unknown_key_has_line_and_nearest() {
    let e = one_error("version: 0.1\nhttp:\n  adr: :5000\nstorage:\n  inmemory:\n");
    assert_eq!(e.key, "http.adr");
    assert_eq!(e.line, Some(3));
    assert_eq!(e.nearest.as_deref(), Some("http.addr"));
    assert_eq!(
        e.to_string(),
        "config.yml:3: http.adr: unknown key. Fix: remove it or rename it; did you mean `http.addr`?"
    );
}

#[test]
fn unknown_top_level_key_and_driver() {
    let errors = errors(
        "version: 0.1\nstorag:\n  filesystem:\nstorage:\n  filesytem:\n    rootdirectory: /x\n",
    );
    let keys: Vec<(&str, Option<usize>, Option<&str>)> = errors
        .iter()
        .map(|e| (e.key.as_str(), e.line, e.nearest.as_deref()))
        .collect();
    assert!(
        keys.contains(&("storag", Some(2), Some("storage"))),
        "{errors:?}"
    );
    assert!(
        keys.contains(&("storage.filesytem", Some(5), Some("storage.filesystem"))),
        "{errors:?}"
    );
    // The misspelt driver leaves no driver at all.
    assert!(
        errors
            .iter()
            .any(|e| e.key == "storage" && e.message.contains("no storage driver")),
        "{errors:?}"
    );
}

#[test]
fn unknown_key_without_close_match_lists_valid_keys() {
    let e = one_error("version: 0.1\nstorage:\n  inmemory:\nauth:\n  ldap:\n    url: x\n");
    assert_eq!(e.key, "auth.ldap");
    assert_eq!(e.line, Some(5));
    assert_eq!(e.nearest, None);
    assert!(e.fix.contains("silly, token, htpasswd"), "{}", e.fix);
}

#[test]
fn unknown_key_inside_ignored_section_is_an_error() {
    let e = one_error(
        "version: 0.1\nstorage:\n  inmemory:\nhealth:\n  storagedrivr:\n    enabled: true\n",
    );
    assert_eq!(e.key, "health.storagedrivr");
    assert_eq!(e.line, Some(5));
    assert_eq!(e.nearest.as_deref(), Some("health.storagedriver"));
}

#[test]
fn wrong_types_have_key_and_line() {
    let text = "version: 0.1
storage:
  inmemory:
  delete:
    enabled: maybe
http:
  headers:
    X-Content-Type-Options: nosniff
  draintimeout: soon
  tls: yes
log:
  level: loud
portcullis:
  manifestmaxbytes: -1
";
    let errors = errors(text);
    let find = |key: &str| {
        errors
            .iter()
            .find(|e| e.key == key)
            .unwrap_or_else(|| panic!("no error for {key}: {errors:?}"))
    };
    let e = find("storage.delete.enabled");
    assert_eq!(e.line, Some(5));
    assert!(
        e.message.contains("expected true or false, got `maybe`"),
        "{e}"
    );
    let e = find("http.headers.X-Content-Type-Options");
    assert_eq!(e.line, Some(8));
    assert!(e.message.contains("expected a list"), "{e}");
    assert_eq!(find("http.draintimeout").line, Some(9));
    assert_eq!(find("http.tls").line, Some(10));
    let e = find("log.level");
    assert_eq!(e.line, Some(12));
    assert!(e.fix.contains("debug"), "{e}");
    assert_eq!(find("portcullis.manifestmaxbytes").line, Some(14));
    assert_eq!(errors.len(), 6, "{errors:?}");
}

#[test]
fn headers_must_be_a_map_of_lists() {
    let e = one_error("version: 0.1\nstorage: inmemory\nhttp:\n  headers: [nosniff]\n");
    assert_eq!(e.key, "http.headers");
    assert_eq!(e.line, Some(4));
    assert!(e.message.contains("expected a map"), "{e}");
}

#[test]
fn two_errors_are_both_reported() {
    let text =
        "version: 0.1\nhttp:\n  adr: :5000\nstorage:\n  inmemory:\n  delete:\n    enabled: maybe\n";
    let err = load(text).unwrap_err();
    assert_eq!(err.0.len(), 2, "{err}");
    let shown = err.to_string();
    let lines: Vec<&str> = shown.lines().collect();
    assert_eq!(lines.len(), 2, "{shown}");
    assert!(
        lines[0].starts_with("config.yml:3: http.adr: unknown key."),
        "{shown}"
    );
    assert!(
        lines[1].starts_with("config.yml:7: storage.delete.enabled: expected true or false"),
        "{shown}"
    );
}

#[test]
fn yaml_booleans_and_quoting() {
    let c = load("version: \"0.1\"\nstorage:\n  inmemory:\n  delete:\n    enabled: yes\nhttp:\n  relativeurls: \"true\"\n  secret: 012\n")
        .unwrap()
        .config;
    assert!(c.storage.delete.enabled);
    assert!(c.http.relativeurls);
    // A secret keeps its exact text, leading zero included.
    assert_eq!(
        c.http.secret.as_ref().map(ExposeSecret::expose_secret),
        Some("012")
    );
}

#[test]
fn version_is_required_and_must_be_0_1() {
    let e = one_error("storage:\n  inmemory:\n");
    assert_eq!(e.key, "version");
    assert!(e.fix.contains("version: 0.1"), "{e}");
    let e = one_error("version: 0.2\nstorage:\n  inmemory:\n");
    assert_eq!(e.key, "version");
    assert_eq!(e.line, Some(1));
}

#[test]
fn storage_driver_selection() {
    let c = load("version: 0.1\nstorage:\n  inmemory:\n")
        .unwrap()
        .config;
    assert!(c.storage.inmemory);
    assert_eq!(c.storage.driver(), Some(StorageDriver::InMemory));

    let c = load("version: 0.1\nstorage: inmemory\n").unwrap().config;
    assert_eq!(c.storage.driver(), Some(StorageDriver::InMemory));

    let loaded =
        load("version: 0.1\nstorage:\n  s3:\n    bucket: b\n    secretkey: hidden\n").unwrap();
    match loaded.config.storage.driver() {
        Some(StorageDriver::Other(other)) => {
            assert_eq!(other.name, "s3");
            assert_eq!(other.params["bucket"], "b");
            assert!(!format!("{other:?}").contains("hidden"));
        }
        other => panic!("{other:?}"),
    }
    assert!(
        loaded.warnings[0].contains("storage.s3"),
        "{:?}",
        loaded.warnings
    );

    let errors =
        errors("version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /x\n  inmemory:\n");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].key, "storage.inmemory");
    assert_eq!(errors[0].line, Some(5));
    assert!(
        errors[0].message.contains("more than one storage driver"),
        "{}",
        errors[0]
    );

    let e = one_error("version: 0.1\nhttp:\n  addr: :5000\n");
    assert_eq!(e.key, "storage");
    assert!(e.fix.contains("storage.filesystem.rootdirectory"), "{e}");
    let e = one_error("version: 0.1\nstorage:\n  delete:\n    enabled: true\n");
    assert_eq!((e.key.as_str(), e.line), ("storage", Some(2)));
}

#[test]
fn syntax_error_has_line() {
    let e = one_error("version: 0.1\nstorage:\n  inmemory:\n http: [\n");
    assert!(e.line.is_some(), "{e}");
    assert!(e.to_string().starts_with("config.yml:"), "{e}");
}

#[test]
fn duplicate_key_is_an_error() {
    let e = one_error("version: 0.1\nstorage:\n  inmemory:\nhttp:\n  addr: :1\n  addr: :2\n");
    assert_eq!((e.key.as_str(), e.line), ("http.addr", Some(6)));
    assert!(e.message.contains("line 5"), "{e}");
}

#[test]
fn not_a_map_and_empty_file() {
    let errors = errors("- a\n- b\n");
    assert!(errors[0].message.contains("must be a map"), "{errors:?}");
    let empty = self::errors("");
    assert!(empty.iter().any(|e| e.key == "version"), "{empty:?}");
    assert!(empty.iter().any(|e| e.key == "storage"), "{empty:?}");
}

#[test]
fn loglevel_is_folded_into_log_level() {
    let loaded = load("version: 0.1\nloglevel: debug\nstorage: inmemory\n").unwrap();
    assert_eq!(loaded.config.log.level, LogLevel::Debug);
    assert!(
        loaded.warnings[0].contains("use `log.level`"),
        "{:?}",
        loaded.warnings
    );
    let loaded =
        load("version: 0.1\nloglevel: debug\nlog:\n  level: WARNING\nstorage: inmemory\n").unwrap();
    assert_eq!(loaded.config.log.level, LogLevel::Warn);
}

#[test]
fn anchors_and_merges_work() {
    let text = "version: 0.1\nx-common: &common\n  enabled: true\nstorage:\n  inmemory:\n  delete: *common\n";
    // `x-common` is not a key, so this is an error; aliases themselves are fine.
    let e = one_error(text);
    assert_eq!(e.key, "x-common");
    let text = "version: 0.1\nstorage:\n  inmemory:\n  delete: &on\n    enabled: true\n  maintenance:\n    readonly: *on\n";
    let c = load(text).unwrap().config;
    assert!(c.storage.delete.enabled);
    assert!(c.storage.maintenance.readonly.enabled);
}

#[test]
fn serialize_redacts_secret() {
    let c = load("version: 0.1\nstorage: inmemory\nhttp:\n  secret: topsecret\n")
        .unwrap()
        .config;
    let json = serde_json::to_string(&c).unwrap();
    assert!(!json.contains("topsecret"), "{json}");
    assert!(json.contains("168h0m0s"), "{json}");
    assert!(!format!("{c:?}").contains("topsecret"));
}

#[test]
fn debug_never_shows_the_secret() {
    // From the file and from the environment, in every Debug form.
    let env = [("REGISTRY_HTTP_SECRET".to_owned(), "envsecret-42".to_owned())];
    for (text, env, secret) in [
        (
            "version: 0.1\nstorage: inmemory\nhttp:\n  secret: filesecret-42\n",
            &[][..],
            "filesecret-42",
        ),
        (
            "version: 0.1\nstorage: inmemory\n",
            &env[..],
            "envsecret-42",
        ),
    ] {
        let loaded = Config::from_yaml(text, "config.yml", env).unwrap();
        let http = &loaded.config.http;
        assert_eq!(
            http.secret.as_ref().map(ExposeSecret::expose_secret),
            Some(secret)
        );
        for shown in [
            format!("{loaded:?}"),
            format!("{loaded:#?}"),
            format!("{:?}", loaded.config),
            format!("{http:?}"),
            format!("{:?}", http.secret),
        ] {
            assert!(!shown.contains(secret), "{shown}");
            assert!(shown.contains("redacted"), "{shown}");
        }
    }
}

#[test]
fn line_of_reports_file_lines() {
    let c = load("version: 0.1\nstorage: inmemory\nhttp:\n  addr: :5000\n")
        .unwrap()
        .config;
    assert_eq!(c.line_of("http.addr"), Some(4));
    assert_eq!(c.line_of("http.secret"), None);
    assert_eq!(c.source(), "config.yml");
}
