//! Client certificates as identities (`http.tls.clientidentity`, issue 5):
//! a real server on 127.0.0.1 with htpasswd users, robot tokens and an
//! `access` policy, called over TLS with client certificates from a client
//! CA. The certificate's name is the caller for the policy, in Basic mode
//! and in token mode (directly, and at `GET /token`).

#[path = "tls_pki.rs"]
mod pki;

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use pki::{Ca, Leaf, ca, client, leaf_with, path_str, server, write};
use portcullis_auth::robots::RobotStore;
use portcullis_config::Config;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

const POLICY: &str = "
access:
  rules:
    - subjects: [\"user:alice\"]
      repositories: [\"alice/**\"]
      actions: [pull, push]
    - subjects: [authenticated]
      repositories: [\"shared/**\"]
      actions: [pull]
";

struct Server {
    port: u16,
    server_ca: Ca,
    client_ca: Ca,
    root: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

/// Starts portcullis over TLS with optional client certificates read by
/// `mode`, users alice and bob, and `auth` (`htpasswd` or token mode).
async fn start(mode: &str, token_mode: bool) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let server_ca = ca("Server CA");
    let client_ca = ca("Client CA");
    let leaf = server(&server_ca, &["localhost"]);
    let hash = bcrypt::hash("secret", 4).unwrap();
    let users = write(d, "htpasswd", &format!("alice:{hash}\nbob:{hash}\n"));
    let root = d.join("root");
    let tokenserver = if token_mode {
        "  tokenserver: {}\n"
    } else {
        ""
    };
    let yaml = format!(
        "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {root}\nhttp:\n  addr: 127.0.0.1:0\n  tls:\n    certificate: {cert}\n    key: {key}\n    clientcas: [{cas}]\n    clientauth: optional\n    clientidentity: {mode}\nauth:\n  htpasswd:\n    realm: test\n    path: {users}\n{tokenserver}{POLICY}",
        root = path_str(&root),
        cert = path_str(&write(d, "server.crt", &leaf.pem)),
        key = path_str(&write(d, "server.key", &leaf.key_pem)),
        cas = path_str(&write(d, "clients.pem", &client_ca.pem)),
        users = path_str(&users),
    );
    let config = Config::from_yaml(&yaml, "test.yml", &[])
        .expect("config loads")
        .config;
    config.validate().expect("config is valid");
    Server {
        port: pki::serve(config).await,
        server_ca,
        client_ca,
        root,
        _dir: dir,
    }
}

struct Reply {
    status: u16,
    body: String,
    www_authenticate: Option<String>,
}

impl Server {
    fn config(&self, cert: Option<&Leaf>) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots.add(self.server_ca.der.clone()).unwrap();
        let builder =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots);
        Arc::new(match cert {
            Some(leaf) => builder
                .with_client_auth_cert(
                    vec![leaf.der.clone()],
                    PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).unwrap(),
                )
                .unwrap(),
            None => builder.with_no_client_auth(),
        })
    }

    /// One HTTP/1.1 request on a new TLS connection.
    async fn call(
        &self,
        method: &str,
        path: &str,
        cert: Option<&Leaf>,
        authorization: Option<&str>,
    ) -> Reply {
        let tcp = TcpStream::connect(("127.0.0.1", self.port)).await.unwrap();
        let tls = TlsConnector::from(self.config(cert))
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .expect("TLS handshake");
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .unwrap();
        tokio::spawn(conn);
        let mut req = http::Request::builder()
            .method(method)
            .uri(path)
            .header("host", format!("localhost:{}", self.port));
        if let Some(a) = authorization {
            req = req.header("authorization", a);
        }
        let resp = sender
            .send_request(req.body(Empty::<Bytes>::new()).unwrap())
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let www_authenticate = resp
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned());
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        Reply {
            status,
            body: String::from_utf8_lossy(&body).into_owned(),
            www_authenticate,
        }
    }

    fn robots(&self) -> RobotStore {
        RobotStore::open(&self.root.join("portcullis").join("robots.json")).unwrap()
    }
}

fn basic(user: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:secret"))
    )
}

#[track_caller]
fn expect(r: &Reply, status: u16, what: &str) {
    assert_eq!(r.status, status, "{what}: {}", r.body);
}

#[tokio::test]
async fn basic_mode_certificate_names_the_user_for_the_policy() {
    let s = start("cn", false).await;
    let alice = client(&s.client_ca, "alice");
    let bob = client(&s.client_ca, "bob");
    let mallory = client(&s.client_ca, "mallory");

    // No certificate, no credentials: asked to authenticate.
    let r = s.call("GET", "/v2/alice/app/tags/list", None, None).await;
    expect(&r, 401, "anonymous");
    assert!(r.www_authenticate.unwrap().starts_with("Basic"));

    // alice's certificate: alice's rights, and nobody else's.
    let r = s
        .call("GET", "/v2/alice/app/tags/list", Some(&alice), None)
        .await;
    expect(
        &r,
        404,
        "alice pulls her own repository (which does not exist yet)",
    );
    assert!(r.body.contains("NAME_UNKNOWN"), "{}", r.body);
    let r = s
        .call("POST", "/v2/alice/app/blobs/uploads/", Some(&alice), None)
        .await;
    expect(&r, 202, "alice starts a push to her namespace");
    let r = s
        .call("POST", "/v2/shared/base/blobs/uploads/", Some(&alice), None)
        .await;
    expect(&r, 403, "alice may only pull shared/");
    assert!(r.body.contains("DENIED"), "{}", r.body);
    let r = s.call("GET", "/v2/", Some(&alice), None).await;
    expect(&r, 200, "alice at /v2/");

    // bob's certificate: only what authenticated users get.
    let r = s
        .call("GET", "/v2/alice/app/tags/list", Some(&bob), None)
        .await;
    expect(&r, 403, "bob reads alice's repository");
    let r = s
        .call("GET", "/v2/shared/base/tags/list", Some(&bob), None)
        .await;
    expect(&r, 404, "bob pulls shared/");

    // Explicit credentials win over the certificate.
    let r = s
        .call(
            "GET",
            "/v2/alice/fresh/tags/list",
            Some(&bob),
            Some(&basic("alice")),
        )
        .await;
    expect(&r, 404, "alice's password on bob's connection");

    // A certificate naming someone who is not a user is refused, and says why.
    let r = s
        .call("GET", "/v2/shared/base/tags/list", Some(&mallory), None)
        .await;
    expect(&r, 403, "unknown user's certificate");
    assert!(
        r.body
            .contains("`mallory`, who is not a user of this registry"),
        "{}",
        r.body
    );
}

#[tokio::test]
async fn robots_by_certificate_and_their_revocation() {
    let s = start("cn", false).await;
    let store = s.robots();
    store
        .create(
            "alice",
            "ci",
            vec!["alice/app".into()],
            vec![portcullis_types::ScopeAction::One(
                portcullis_types::Action::Pull,
            )],
            None,
            std::time::SystemTime::now(),
        )
        .unwrap();
    let robot = client(&s.client_ca, "alice+ci");

    let r = s
        .call("GET", "/v2/alice/app/tags/list", Some(&robot), None)
        .await;
    expect(&r, 404, "the robot pulls inside its scope");
    let r = s
        .call("POST", "/v2/alice/app/blobs/uploads/", Some(&robot), None)
        .await;
    expect(&r, 403, "the robot was given pull only");
    let r = s
        .call("GET", "/v2/alice/other/tags/list", Some(&robot), None)
        .await;
    expect(&r, 403, "outside the robot's repositories");

    store
        .revoke("alice+ci", std::time::SystemTime::now())
        .unwrap();
    let r = s
        .call("GET", "/v2/alice/app/tags/list", Some(&robot), None)
        .await;
    expect(&r, 403, "a revoked robot's certificate");
    assert!(r.body.contains("robot `alice+ci`"), "{}", r.body);
}

#[tokio::test]
async fn san_email_and_missing_names() {
    let s = start("san-email", false).await;
    let by_email = leaf_with(&s.client_ca, &[], |p| {
        p.distinguished_name
            .push(rcgen::DnType::CommonName, "Alice Example");
        p.subject_alt_names = vec![rcgen::SanType::Rfc822Name("alice".try_into().unwrap())];
        p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    });
    let r = s
        .call("GET", "/v2/alice/app/tags/list", Some(&by_email), None)
        .await;
    expect(&r, 404, "the e-mail SAN names alice");

    // A certificate with only a CN has no e-mail name: refused with the reason.
    let cn_only = client(&s.client_ca, "alice");
    let r = s
        .call("GET", "/v2/alice/app/tags/list", Some(&cn_only), None)
        .await;
    expect(&r, 403, "no e-mail SAN");
    assert!(
        r.body.contains("has no e-mail subject alternative name"),
        "{}",
        r.body
    );
}

#[tokio::test]
async fn token_mode_certificate_at_the_registry_and_the_token_service() {
    let s = start("cn", true).await;
    let alice = client(&s.client_ca, "alice");

    // Without a certificate: the usual bearer challenge.
    let r = s.call("GET", "/v2/alice/app/tags/list", None, None).await;
    expect(&r, 401, "anonymous in token mode");
    assert!(r.www_authenticate.unwrap().starts_with("Bearer"));

    // With one, the policy decides at once: no token needed.
    let r = s
        .call("GET", "/v2/alice/app/tags/list", Some(&alice), None)
        .await;
    expect(&r, 404, "alice's certificate in token mode");
    let r = s
        .call("GET", "/v2/shared/x/tags/list", Some(&alice), None)
        .await;
    expect(&r, 404, "alice pulls shared/");
    let r = s
        .call(
            "DELETE",
            "/v2/alice/app/manifests/latest",
            Some(&alice),
            None,
        )
        .await;
    expect(&r, 403, "alice may not delete");

    // GET /token with the certificate and no password: alice's grants, and
    // no refresh token even when one is asked for.
    let r = s
        .call(
            "GET",
            "/token?service=portcullis&scope=repository:alice/app:pull,push,delete&offline_token=true&client_id=t",
            Some(&alice),
            None,
        )
        .await;
    expect(&r, 200, "token for alice's certificate");
    let json: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert!(json.get("refresh_token").is_none(), "{}", r.body);
    let token = json["token"].as_str().unwrap();
    let payload = token.split('.').nth(1).unwrap();
    use base64::Engine;
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["sub"], "alice");
    let mut actions: Vec<&str> = claims["access"][0]["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    actions.sort_unstable();
    assert_eq!(actions, ["pull", "push"], "{claims}");

    // The token works on a connection without a certificate.
    let r = s
        .call(
            "GET",
            "/v2/alice/app/tags/list",
            None,
            Some(&format!("Bearer {token}")),
        )
        .await;
    expect(&r, 404, "alice's token");

    // An unknown name gets no token.
    let mallory = client(&s.client_ca, "mallory");
    let r = s
        .call(
            "GET",
            "/token?service=portcullis&scope=repository:shared/x:pull",
            Some(&mallory),
            None,
        )
        .await;
    expect(&r, 403, "token for an unknown user's certificate");
    assert!(r.body.contains("mallory"), "{}", r.body);
}

#[test]
fn clientidentity_needs_client_cas() {
    let yaml = "version: 0.1\nstorage:\n  inmemory: {}\nhttp:\n  addr: 127.0.0.1:0\n  tls:\n    certificate: /nonexistent.crt\n    key: /nonexistent.key\n    clientidentity: cn\n";
    let config = Config::from_yaml(yaml, "test.yml", &[]).unwrap().config;
    let errors = config
        .validate_relative_to(Path::new("/"))
        .unwrap_err()
        .to_string();
    assert!(
        errors.contains("http.tls.clientidentity") && errors.contains("clientcas"),
        "{errors}"
    );
}
