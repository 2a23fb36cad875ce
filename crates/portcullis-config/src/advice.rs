//! Warnings about configurations that are valid but probably not what was
//! meant. `serve` logs them at start and `config check` prints them; they
//! never stop the start.

use crate::model::Config;
use crate::validate::is_loopback;

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
                 (upload `Location`s, the token realm) are built from each request's `Host` header. \
                 Set http.host to the URL clients use, such as https://registry.example.com",
                http.addr
            ),
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
