//! The accept loop for every listener, plain or TLS, TCP or unix socket:
//! bounded time to send headers (which also closes idle keep-alive
//! connections and slowloris clients), a TLS handshake deadline, logged
//! handshake failures and descriptor exhaustion (both rate-limited), the
//! caller's address and certificate on every request, and a graceful drain.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::tls::{ClientIdentity, TlsReloader, client_certificate};

/// How long a client has to complete the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Bytes after which hyper knows the protocol and its own header timeout
/// applies (the HTTP/2 preface is 24 bytes).
const SNIFF_BYTES: u64 = 24;

/// The time limits of a listener.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// For a request's headers, from the moment the connection is ready for
    /// one: idle keep-alive connections close after it too.
    pub header: Duration,
    /// For open connections to finish after shutdown begins.
    pub drain: Duration,
}

/// A listener the loop can accept from.
pub trait Accept: Send + 'static {
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    /// The stream, the peer's address and this end's address (TCP only).
    fn accept(&mut self) -> impl Future<Output = std::io::Result<Accepted<Self::Io>>> + Send;
}

/// An accepted stream with both ends' addresses (TCP only).
pub type Accepted<I> = (I, Option<SocketAddr>, Option<SocketAddr>);

impl Accept for tokio::net::TcpListener {
    type Io = tokio::net::TcpStream;
    async fn accept(&mut self) -> std::io::Result<Accepted<Self::Io>> {
        let (io, addr) = tokio::net::TcpListener::accept(self).await?;
        let _ = io.set_nodelay(true);
        let local = io.local_addr().ok();
        Ok((io, Some(addr), local))
    }
}

impl Accept for tokio::net::UnixListener {
    type Io = tokio::net::UnixStream;
    async fn accept(&mut self) -> std::io::Result<Accepted<Self::Io>> {
        let (io, _) = tokio::net::UnixListener::accept(self).await?;
        Ok((io, None, None))
    }
}

/// Serves `router` on `listener` (over TLS when `tls` is set) until
/// `shutdown` completes, then waits up to `timeouts.drain` for open
/// connections.
///
/// # Errors
/// Never at present: accept errors are logged and retried.
pub async fn serve<L: Accept>(
    mut listener: L,
    router: axum::Router,
    tls: Option<Arc<TlsReloader>>,
    shutdown: impl Future<Output = ()>,
    timeouts: Timeouts,
) -> std::io::Result<()> {
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(timeouts.header);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(60)))
        .keep_alive_timeout(Duration::from_secs(20));
    let builder = Arc::new(builder);
    let handshake_log = Arc::new(RateLimited::new(Duration::from_secs(10)));
    let accept_log = RateLimited::new(Duration::from_secs(10));
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            conn = listener.accept() => conn,
            () = &mut shutdown => break,
        };
        let (io, peer, local) = match accepted {
            Ok(conn) => conn,
            Err(e) => {
                accept_failed(&e, &accept_log).await;
                continue;
            }
        };
        let conn = Conn {
            router: router.clone(),
            builder: builder.clone(),
            peer,
            local,
            header_timeout: timeouts.header,
        };
        let watcher = graceful.watcher();
        let tls = tls.clone();
        let handshake_log = handshake_log.clone();
        tokio::spawn(async move {
            let Some(tls) = tls else {
                conn.serve(io, None, None, watcher).await;
                return;
            };
            let acceptor = tls.acceptor();
            let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(io)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    handshake_log.log(|suppressed| {
                        tracing::info!(
                            peer = %show(peer), error = %e, suppressed,
                            "TLS handshake failed (a client that does not trust the certificate's CA shows this as an alert)"
                        );
                    });
                    return;
                }
                Err(_) => {
                    handshake_log.log(|suppressed| {
                        tracing::info!(peer = %show(peer), suppressed, "TLS handshake timed out");
                    });
                    return;
                }
            };
            // rustls verified the chain; read the caller's name once per connection.
            let certificate = match tls.settings().client_identity {
                ClientIdentity::None => None,
                mode => stream
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|chain| chain.first())
                    .map(|leaf| client_certificate(mode, leaf)),
            };
            let sni = stream.get_ref().1.server_name().map(str::to_owned);
            conn.serve(stream, certificate, Some(sni), watcher).await;
        });
    }
    drop(listener);
    if tokio::time::timeout(timeouts.drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            "connections still open after {:?}; closing them",
            timeouts.drain
        );
    }
    Ok(())
}

fn show(peer: Option<SocketAddr>) -> String {
    peer.map_or_else(|| "unix socket".to_owned(), |p| p.to_string())
}

/// What one connection needs to be served.
struct Conn {
    router: axum::Router,
    builder: Arc<auto::Builder<TokioExecutor>>,
    peer: Option<SocketAddr>,
    local: Option<SocketAddr>,
    header_timeout: Duration,
}

impl Conn {
    async fn serve<I>(
        self,
        io: I,
        certificate: Option<Arc<crate::tls::ClientCertificate>>,
        tls: Option<Option<String>>,
        watcher: hyper_util::server::graceful::Watcher,
    ) where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let peer = self.peer;
        let local = self.local.map(|addr| crate::proxy::LocalEnd {
            addr,
            sni: tls.clone().flatten(),
        });
        let tls = tls.is_some();
        let with_peer = tower::ServiceBuilder::new()
            .map_request(move |mut req: http::Request<hyper::body::Incoming>| {
                let ext = req.extensions_mut();
                if let Some(p) = peer {
                    ext.insert(axum::extract::ConnectInfo(p));
                }
                if tls {
                    ext.insert(crate::proxy::TlsConnection);
                }
                if let Some(l) = &local {
                    ext.insert(l.clone());
                }
                if let Some(c) = &certificate {
                    ext.insert(c.clone());
                }
                req
            })
            .service(self.router);
        let service = TowerToHyperService::new(with_peer);
        let io = FirstBytes::new(io, self.header_timeout);
        let conn = self.builder.serve_connection(TokioIo::new(io), service);
        if let Err(e) = watcher.watch(conn).await {
            tracing::debug!(peer = %show(peer), error = %e, "connection ended with an error");
        }
    }
}

/// Accept failed: out of descriptors is logged (it means clients are being
/// turned away) and backs off briefly; other errors are transient.
async fn accept_failed(e: &std::io::Error, log: &RateLimited) {
    let out_of_files = matches!(e.raw_os_error(), Some(23 | 24)); // ENFILE, EMFILE
    if out_of_files {
        let limit = rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(0, |(soft, _)| soft);
        log.log(|suppressed| {
            tracing::warn!(
                limit, suppressed,
                "refusing connections: out of file descriptors (raise LimitNOFILE or `ulimit -n`, or lower portcullis.headertimeout to close idle connections sooner)"
            );
        });
    } else {
        tracing::debug!(error = %e, "accept failed");
    }
    tokio::time::sleep(Duration::from_millis(if out_of_files { 100 } else { 10 })).await;
}

/// Raises the soft descriptor limit to the hard limit, so the registry can
/// hold as many connections as the system allows it; returns the new limit.
pub fn raise_descriptor_limit() -> Option<u64> {
    let (_, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE).ok()?;
    rlimit::increase_nofile_limit(hard).ok()
}

/// At most one log line per period; the lines in between are counted.
struct RateLimited {
    period_secs: u64,
    next: AtomicU64,
    suppressed: AtomicU64,
}

impl RateLimited {
    fn new(period: Duration) -> Self {
        Self {
            period_secs: period.as_secs().max(1),
            next: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    fn log(&self, emit: impl FnOnce(u64)) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let next = self.next.load(Ordering::Relaxed);
        if now >= next
            && self
                .next
                .compare_exchange(
                    next,
                    now + self.period_secs,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
        {
            emit(self.suppressed.swap(0, Ordering::Relaxed));
        } else {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Until the first [`SNIFF_BYTES`] arrive, reads fail once the header
/// timeout has passed since the connection was accepted. hyper's own header
/// timeout starts only once it knows the protocol, so without this a client
/// that connects and sends nothing (or one byte) would be kept forever.
struct FirstBytes<I> {
    io: I,
    seen: u64,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<I> FirstBytes<I> {
    fn new(io: I, timeout: Duration) -> Self {
        Self {
            io,
            seen: 0,
            deadline: Some(Box::pin(tokio::time::sleep(timeout))),
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for FirstBytes<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(r) => {
                this.seen += (buf.filled().len() - before) as u64;
                if this.seen >= SNIFF_BYTES {
                    this.deadline = None;
                }
                Poll::Ready(r)
            }
            Poll::Pending => {
                let expired = this
                    .deadline
                    .as_mut()
                    .is_some_and(|d| d.as_mut().poll(cx).is_ready());
                if expired {
                    Poll::Ready(Err(std::io::ErrorKind::TimedOut.into()))
                } else {
                    Poll::Pending
                }
            }
        }
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for FirstBytes<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
