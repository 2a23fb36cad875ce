//! A real server on 127.0.0.1 serving over TLS: protocol versions, ALPN and
//! HTTP/2, certificate rotation on disk, and client certificates. Uses a
//! rustls client, and curl / openssl s_client when they are installed.

#[path = "tls_pki.rs"]
mod pki;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::rt::{TokioExecutor, TokioIo};
use pki::{Ca, Leaf, ca, client, path_str, server, write};
use portcullis_config::{Config, TlsConfig};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ProtocolVersion, RootCertStore, SupportedProtocolVersion};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

type Client = TlsStream<TcpStream>;

/// Starts portcullis with `tls`; returns the port.
async fn start(tls: TlsConfig) -> u16 {
    let mut config = Config::default();
    config.http.addr = "127.0.0.1:0".into();
    config.http.tls = Some(tls);
    pki::serve(config).await
}

fn tls_files(dir: &Path, leaf: &Leaf) -> TlsConfig {
    TlsConfig {
        certificate: path_str(&write(dir, "server.crt", &leaf.pem)),
        key: path_str(&write(dir, "server.key", &leaf.key_pem)),
        ..TlsConfig::default()
    }
}

struct ClientOpts<'a> {
    versions: &'a [&'static SupportedProtocolVersion],
    alpn: &'a [&'a [u8]],
    cert: Option<&'a Leaf>,
}

impl Default for ClientOpts<'_> {
    fn default() -> Self {
        Self {
            versions: rustls::DEFAULT_VERSIONS,
            alpn: &[b"http/1.1"],
            cert: None,
        }
    }
}

fn client_config(trust: &Ca, opts: &ClientOpts<'_>) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(trust.der.clone()).unwrap();
    let builder =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(opts.versions)
            .unwrap()
            .with_root_certificates(roots);
    let mut config = match opts.cert {
        Some(leaf) => builder
            .with_client_auth_cert(
                vec![leaf.der.clone()],
                PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = opts.alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

async fn connect(port: u16, config: Arc<ClientConfig>) -> std::io::Result<Client> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
    TlsConnector::from(config)
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
}

/// An HTTP/1.1 connection: a request sender that can be reused.
async fn http1(
    stream: Client,
) -> Result<hyper::client::conn::http1::SendRequest<Empty<Bytes>>, hyper::Error> {
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    Ok(sender)
}

async fn get_v2(
    sender: &mut hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
) -> Result<u16, hyper::Error> {
    let req = http::Request::get("/v2/")
        .header("host", "localhost")
        .body(Empty::new())
        .unwrap();
    Ok(sender.send_request(req).await?.status().as_u16())
}

/// Connects and fetches `/v2/` over HTTP/1.1; the status or why it failed.
async fn fetch(port: u16, config: Arc<ClientConfig>) -> Result<u16, String> {
    let stream = connect(port, config).await.map_err(|e| e.to_string())?;
    let mut sender = http1(stream).await.map_err(|e| e.to_string())?;
    get_v2(&mut sender).await.map_err(|e| e.to_string())
}

fn peer_leaf(stream: &Client) -> CertificateDer<'static> {
    stream.get_ref().1.peer_certificates().unwrap()[0]
        .clone()
        .into_owned()
}

#[tokio::test]
async fn serves_tls13_and_tls12_with_alpn_h2() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca("Test CA");
    let leaf = server(&ca, &["localhost", "127.0.0.1"]);
    let port = start(tls_files(dir.path(), &leaf)).await;

    for (versions, expected) in [
        (&[&rustls::version::TLS13][..], ProtocolVersion::TLSv1_3),
        (&[&rustls::version::TLS12][..], ProtocolVersion::TLSv1_2),
    ] {
        let opts = ClientOpts {
            versions,
            ..ClientOpts::default()
        };
        let stream = connect(port, client_config(&ca, &opts)).await.unwrap();
        assert_eq!(stream.get_ref().1.protocol_version(), Some(expected));
        assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
        let mut sender = http1(stream).await.unwrap();
        assert_eq!(get_v2(&mut sender).await.unwrap(), 200);
    }

    // ALPN offers h2 first; an HTTP/2 request is answered.
    let opts = ClientOpts {
        alpn: &[b"h2", b"http/1.1"],
        ..ClientOpts::default()
    };
    let stream = connect(port, client_config(&ca, &opts)).await.unwrap();
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let req = http::Request::get("https://localhost/v2/")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    assert_eq!(resp.version(), http::Version::HTTP_2);
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn minimum_tls13_refuses_tls12() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca("Test CA");
    let leaf = server(&ca, &["localhost"]);
    let mut tls = tls_files(dir.path(), &leaf);
    tls.minimumtls = Some("tls1.3".into());
    let port = start(tls).await;
    let tls12 = ClientOpts {
        versions: &[&rustls::version::TLS12],
        ..ClientOpts::default()
    };
    assert!(connect(port, client_config(&ca, &tls12)).await.is_err());
    assert_eq!(
        fetch(port, client_config(&ca, &ClientOpts::default())).await,
        Ok(200)
    );
}

/// Waits until a new connection presents `want`, for up to 10 s.
async fn wait_for_leaf(port: u16, config: &Arc<ClientConfig>, want: &CertificateDer<'_>) {
    for _ in 0..100 {
        let stream = connect(port, config.clone()).await.unwrap();
        if peer_leaf(&stream) == *want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the rotated certificate was not picked up");
}

#[tokio::test]
async fn rotation_on_disk_reaches_new_connections_and_bad_files_keep_the_old() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca("Test CA");
    let first = server(&ca, &["localhost"]);
    let mut tls = tls_files(dir.path(), &first);
    tls.reloadinterval = Some(Duration::from_millis(200));
    let port = start(tls).await;
    let config = client_config(&ca, &ClientOpts::default());

    let old = connect(port, config.clone()).await.unwrap();
    assert_eq!(peer_leaf(&old), first.der);
    let mut old = http1(old).await.unwrap();
    assert_eq!(get_v2(&mut old).await.unwrap(), 200);

    // Rotate: key first, then certificate, as a careless script would; the
    // mismatch in between is logged and the old certificate keeps serving.
    let second = server(&ca, &["localhost"]);
    write(dir.path(), "server.key", &second.key_pem);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let mid = connect(port, config.clone()).await.unwrap();
    assert_eq!(peer_leaf(&mid), first.der);
    write(dir.path(), "server.crt", &second.pem);
    wait_for_leaf(port, &config, &second.der).await;

    // The connection opened before the rotation still works.
    assert_eq!(get_v2(&mut old).await.unwrap(), 200);

    // A broken new certificate leaves the current one serving.
    write(
        dir.path(),
        "server.crt",
        "-----BEGIN CERTIFICATE-----\nbroken\n",
    );
    tokio::time::sleep(Duration::from_millis(800)).await;
    let stream = connect(port, config.clone()).await.unwrap();
    assert_eq!(peer_leaf(&stream), second.der);
    let mut s = http1(stream).await.unwrap();
    assert_eq!(get_v2(&mut s).await.unwrap(), 200);

    // Fixing the file is picked up again.
    let third = server(&ca, &["localhost"]);
    write(dir.path(), "server.key", &third.key_pem);
    write(dir.path(), "server.crt", &third.pem);
    wait_for_leaf(port, &config, &third.der).await;
}

#[tokio::test]
async fn client_certificates_required_and_optional() {
    let dir = tempfile::tempdir().unwrap();
    let server_ca = ca("Server CA");
    let client_ca = ca("Client CA");
    let other_ca = ca("Other CA");
    let leaf = server(&server_ca, &["localhost"]);
    let robot = client(&client_ca, "robot-ci");
    let stranger = client(&other_ca, "stranger");
    let mut tls = tls_files(dir.path(), &leaf);
    tls.clientcas = vec![path_str(&write(dir.path(), "clients.pem", &client_ca.pem))];
    let required = start(tls.clone()).await;
    tls.clientauth = Some("optional".into());
    let optional = start(tls).await;

    let anonymous = client_config(&server_ca, &ClientOpts::default());
    let with = |cert| {
        client_config(
            &server_ca,
            &ClientOpts {
                cert: Some(cert),
                ..ClientOpts::default()
            },
        )
    };

    // Required (the default with clientcas, as in distribution).
    assert!(fetch(required, anonymous.clone()).await.is_err());
    assert_eq!(fetch(required, with(&robot)).await, Ok(200));
    assert!(fetch(required, with(&stranger)).await.is_err());

    // Optional: no certificate is fine, a bad one is not.
    assert_eq!(fetch(optional, anonymous).await, Ok(200));
    assert_eq!(fetch(optional, with(&robot)).await, Ok(200));
    assert!(fetch(optional, with(&stranger)).await.is_err());
}

/// Runs `cmd ARGS...` off the runtime's threads, killed after a minute.
async fn run(cmd: &str, args: Vec<String>) -> std::process::Output {
    let cmd = cmd.to_owned();
    tokio::task::spawn_blocking(move || {
        portcullis_testkit::run(
            std::process::Command::new(cmd).args(args),
            None,
            Duration::from_secs(60),
        )
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn curl_negotiates_http2() {
    if !portcullis_testkit::e2e_gate("curl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ca = ca("Test CA");
    let leaf = server(&ca, &["localhost"]);
    let port = start(tls_files(dir.path(), &leaf)).await;
    let ca_file = path_str(&write(dir.path(), "ca.pem", &ca.pem));
    let args = |extra: &[&str]| {
        let mut a: Vec<String> = [
            "-sS",
            "--cacert",
            &ca_file,
            "--resolve",
            &format!("localhost:{port}:127.0.0.1"),
            "-o",
            "/dev/null",
            "-w",
            "%{http_version} %{http_code}",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        a.extend(extra.iter().map(|s| (*s).to_owned()));
        a.push(format!("https://localhost:{port}/v2/"));
        a
    };
    let out = run("curl", args(&["--http2"])).await;
    assert_eq!(String::from_utf8_lossy(&out.stdout), "2 200", "{out:?}");
    let out = run(
        "curl",
        args(&["--http1.1", "--tlsv1.2", "--tls-max", "1.2"]),
    )
    .await;
    assert_eq!(String::from_utf8_lossy(&out.stdout), "1.1 200", "{out:?}");
}

#[tokio::test]
async fn openssl_s_client_versions_and_mtls() {
    if !portcullis_testkit::e2e_gate("openssl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server_ca = ca("Server CA");
    let client_ca = ca("Client CA");
    let leaf = server(&server_ca, &["localhost"]);
    let port = start(tls_files(dir.path(), &leaf)).await;
    let connect = format!("127.0.0.1:{port}");
    let s_client = |extra: &[&str]| {
        let mut a: Vec<String> = ["s_client", "-connect", &connect, "-servername", "localhost"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        a.extend(extra.iter().map(|s| (*s).to_owned()));
        a
    };
    // TLS 1.1 is refused even with OpenSSL's security level lowered to allow it.
    let out = run(
        "openssl",
        s_client(&["-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0"]),
    )
    .await;
    assert!(!out.status.success(), "TLS 1.1 was accepted: {out:?}");
    for v in ["-tls1_2", "-tls1_3"] {
        let out = run("openssl", s_client(&[v])).await;
        assert!(out.status.success(), "{v} refused: {out:?}");
    }

    // mTLS required: a handshake without a client certificate fails.
    let mut tls = tls_files(dir.path(), &leaf);
    tls.clientcas = vec![path_str(&write(dir.path(), "clients.pem", &client_ca.pem))];
    let mtls = start(tls).await;
    let robot = client(&client_ca, "robot");
    let cert = path_str(&write(dir.path(), "robot.crt", &robot.pem));
    let key = path_str(&write(dir.path(), "robot.key", &robot.key_pem));
    let target = format!("127.0.0.1:{mtls}");
    for v in ["-tls1_2", "-tls1_3"] {
        // With TLS 1.3 the server's refusal arrives after the client's
        // Finished; sending a request makes s_client wait for it.
        let shell = format!(
            "printf 'GET /v2/ HTTP/1.0\\r\\n\\r\\n' | openssl s_client -connect {target} {v} -ign_eof 2>&1"
        );
        let out = run("sh", vec!["-c".into(), shell]).await;
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            !text.contains("HTTP/1.0 200"),
            "{v} without a certificate: {text}"
        );
        let shell = format!(
            "printf 'GET /v2/ HTTP/1.0\\r\\n\\r\\n' | openssl s_client -connect {target} {v} -cert {cert} -key {key} -ign_eof 2>&1"
        );
        let out = run("sh", vec!["-c".into(), shell]).await;
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("HTTP/1.0 200"),
            "{v} with a certificate: {text}"
        );
    }
}
