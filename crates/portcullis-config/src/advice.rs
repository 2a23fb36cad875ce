//! Warnings about configurations that are valid but probably not what was
//! meant. `serve` logs them at start and `config check` prints them; they
//! never stop the start: `http.host` unset beyond loopback, and `http.secret`
//! unset with authentication (what that does is read from the
//! server's `authorize.rs`: a session's `_state` must verify on every request).

use crate::model::Config;
use crate::validate::is_loopback;
use secrecy::ExposeSecret;

pub(crate) fn run(config: &Config) -> Vec<String> {
    let mut out = Vec::new();
    let http = &config.http;
    let host_set = http.host.as_deref().is_some_and(|h| !h.is_empty());
    if !host_set
        && let Ok(crate::ListenAddr::Tcp { host, .. }) = http.listen_addr()
        && !host.as_deref().is_some_and(is_loopback)
    {
        out.push(config.warning_at(
            "http.host",
            &format!(
                "is not set, and http.addr `{}` is reachable from other hosts, so absolute URLs \
                 (upload `Location`s, the token realm) are built from the address each client \
                 connected to (a `Host` header counts only when it names this server). \
                 Set http.host to the URL clients use, such as https://registry.example.com",
                http.addr
            ),
        ));
    }
    // Sessions are bound to their user whenever clients authenticate.
    let bound = config.auth.tokenserver.is_some()
        || config.auth.token.is_some()
        || config.auth.htpasswd.is_some();
    if bound
        && http
            .secret
            .as_ref()
            .is_none_or(|s| s.expose_secret().is_empty())
    {
        out.push(config.warning_at(
            "http.secret",
            "is not set, so a random key made at each start signs upload sessions (their `_state`). \
             After a restart, or on another replica, every push that was in progress is refused with \
             403 DENIED (\"this upload session belongs to another user or lacks its signed state\") \
             and must be run again; its partial data stays on disk until upload purging removes it. \
             Set http.secret to the same long random string on every replica, such as the output of \
             `openssl rand -hex 32`",
        ));
    }
    if let Some((_, crate::CorsSource::Headers)) = config.cors() {
        out.push(config.warning_at(
            "http.headers",
            "has Access-Control-* entries: portcullis reads them as CORS settings, so preflight \
             OPTIONS requests are answered (before authentication) and the headers go only to \
             allowed origins. Move them to http.cors (allowedorigins, allowedmethods, \
             allowedheaders, exposedheaders, allowcredentials, maxage); see docs/CONFIG.md",
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::Config;

    fn advice(http: &str) -> Vec<String> {
        let yaml = format!("version: 0.1\nstorage:\n  inmemory:\nhttp:\n{http}");
        Config::from_yaml(&yaml, "c.yml", &[])
            .unwrap()
            .config
            .advice()
    }

    #[test]
    fn http_secret_is_advised_with_authentication_only() {
        let token = "auth:\n  token:\n    realm: https://a/token\n    service: s\n    issuer: i\n    rootcertbundle: /b\n";
        let with = |http: &str, auth: &str| {
            let yaml = format!(
                "version: 0.1\nstorage:\n  inmemory:\nhttp:\n  addr: 127.0.0.1:5000\n{http}{auth}"
            );
            Config::from_yaml(&yaml, "c.yml", &[])
                .unwrap()
                .config
                .advice()
        };
        let w = with("", token);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].starts_with("c.yml:4: http.secret: is not set"),
            "{}",
            w[0]
        );
        assert!(
            w[0].contains("403 DENIED") && w[0].contains("openssl rand"),
            "{}",
            w[0]
        );
        assert!(with("  secret: 0123456789abcdef\n", token).is_empty());
        assert!(with("", "").is_empty());
        // Basic mode binds sessions to their user too.
        let basic = with("", "auth:\n  htpasswd:\n    realm: r\n    path: /h\n");
        assert_eq!(basic.len(), 1, "{basic:?}");
    }

    #[test]
    fn http_host_is_advised_beyond_loopback_only() {
        let w = advice("  addr: :5000\n");
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].starts_with("c.yml:4: http.host: is not set"),
            "{}",
            w[0]
        );
        assert_eq!(advice("  addr: 0.0.0.0:5000\n").len(), 1);
        for quiet in [
            "  addr: 127.0.0.1:5000\n",
            "  addr: localhost:5000\n",
            "  addr: '[::1]:5000'\n",
            "  addr: :5000\n  host: https://r.example.com\n",
            "  addr: /run/portcullis.sock\n  net: unix\n",
        ] {
            assert!(advice(quiet).is_empty(), "{quiet}: {:?}", advice(quiet));
        }
    }
}
