//! `http.cors` (or the `http.headers: Access-Control-*` read as it).

use super::Validator;
use crate::cors::{CorsConfig, CorsSource, is_origin};

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

impl Validator<'_> {
    pub(super) fn cors(&mut self, cors: &CorsConfig, source: CorsSource) {
        let (origins, methods, headers, exposed, credentials) = match source {
            CorsSource::Cors => (
                "http.cors.allowedorigins",
                "http.cors.allowedmethods",
                "http.cors.allowedheaders",
                "http.cors.exposedheaders",
                "http.cors.allowcredentials",
            ),
            CorsSource::Headers => (
                "http.headers.Access-Control-Allow-Origin",
                "http.headers.Access-Control-Allow-Methods",
                "http.headers.Access-Control-Allow-Headers",
                "http.headers.Access-Control-Expose-Headers",
                "http.headers.Access-Control-Allow-Credentials",
            ),
        };
        if cors.allowedorigins.is_empty() {
            self.err(
                origins,
                "names no origin, so no browser page may call the registry",
                "list the origins of your registry UI, such as [\"https://ui.example.com\"]",
            );
        }
        let wildcard = cors.allowedorigins.iter().any(|o| o == "*");
        for (i, o) in cors.allowedorigins.iter().enumerate() {
            if o != "*" && !is_origin(o) {
                let fixed = o.trim_end_matches('/').to_ascii_lowercase();
                self.err(
                    &format!("{origins}[{i}]"),
                    format!("`{o}` is not an origin"),
                    format!(
                        "write scheme://host[:port] in lower case with no path, as a browser sends it{}",
                        if is_origin(&fixed) { format!(": `{fixed}`") } else { String::new() }
                    ),
                );
            }
        }
        if wildcard && cors.allowcredentials == Some(true) {
            self.err(
                credentials,
                "is true while the allowed origins are `*`, which browsers refuse",
                "list the UI's exact origins instead of `*`, or set allowcredentials: false",
            );
        }
        for (key, list) in [
            (methods, &cors.allowedmethods),
            (headers, &cors.allowedheaders),
            (exposed, &cors.exposedheaders),
        ] {
            for (i, v) in list.iter().enumerate() {
                if !is_token(v) {
                    self.err(
                        &format!("{key}[{i}]"),
                        format!("`{v}` is not a method or header name"),
                        "use names such as GET or Docker-Content-Digest, one per list item",
                    );
                }
            }
        }
    }
}
