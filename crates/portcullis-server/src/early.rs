//! Early responses on HTTP/1.1: a response sent before its request body was
//! read (a 401 to an unauthenticated `PUT`, a 404, a 413) must not leave the
//! connection in a state the client cannot see.
//!
//! A keep-alive client (Go's net/http: docker, containerd, skopeo, podman)
//! writes its next request on the same connection. If the server gives up on
//! the unread body and closes without saying so, that next request meets a
//! closing socket and the client reports a bare `EOF`. So, like Go's own
//! server: a small unread remainder (up to [`DRAIN_LIMIT`]) is read and
//! discarded after the response, keeping the connection usable; anything
//! larger, of unknown length, or held back by `Expect: 100-continue` gets
//! `Connection: close` on the response, so the client knows to reconnect.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, Version, header};
use axum::middleware::Next;
use axum::response::Response;
use bytes::Bytes;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use parking_lot::Mutex;

/// The most of an unread body drained to keep a connection alive (Go's
/// net/http uses the same figure).
pub const DRAIN_LIMIT: u64 = 256 * 1024;

/// How long the rest of a small body may take to arrive after the response.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// What became of a request body once the handler let go of it.
#[derive(Default)]
struct Outcome {
    /// The body reached its end.
    finished: bool,
    /// Bytes the handler read.
    read: u64,
    /// The unread body, handed back when the handler dropped it early.
    left: Option<Body>,
}

/// A request body that reports how far it was read and, when dropped before
/// its end, hands the rest back instead of abandoning it.
struct Tracked {
    inner: Option<Body>,
    outcome: Arc<Mutex<Outcome>>,
}

impl HttpBody for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let Some(inner) = self.inner.as_mut() else {
            return Poll::Ready(None);
        };
        let polled = Pin::new(inner).poll_frame(cx);
        let mut outcome = self.outcome.lock();
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    outcome.read += data.len() as u64;
                }
            }
            Poll::Ready(None) => outcome.finished = true,
            Poll::Ready(Some(Err(_))) | Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(HttpBody::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), HttpBody::size_hint)
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        let Some(inner) = self.inner.take() else {
            return;
        };
        let mut outcome = self.outcome.lock();
        if inner.is_end_stream() {
            outcome.finished = true;
        } else {
            outcome.left = Some(inner);
        }
    }
}

/// The middleware: see the module documentation.
pub(crate) async fn guard(req: Request, next: Next) -> Response {
    if req.version() != Version::HTTP_11 && req.version() != Version::HTTP_10 {
        return next.run(req).await; // HTTP/2 resets a stream, not the connection
    }
    let headers = req.headers();
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let chunked = headers.contains_key(header::TRANSFER_ENCODING);
    if !chunked && length.unwrap_or(0) == 0 {
        return next.run(req).await; // no body
    }
    let expects_continue = headers
        .get(header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));

    let outcome = Arc::new(Mutex::new(Outcome::default()));
    let (parts, body) = req.into_parts();
    let tracked = Tracked {
        inner: Some(body),
        outcome: outcome.clone(),
    };
    let mut resp = next
        .run(Request::from_parts(parts, Body::new(tracked)))
        .await;

    let (left, read) = {
        let mut o = outcome.lock();
        if o.finished {
            return resp;
        }
        (o.left.take(), o.read)
    };
    // Still held elsewhere (a streaming handler owns it): nothing to decide.
    let Some(left) = left else {
        return resp;
    };
    let remaining = length.map(|l| l.saturating_sub(read));
    match remaining {
        Some(n) if n <= DRAIN_LIMIT && !expects_continue => {
            tokio::spawn(drain(left, n));
        }
        _ => {
            resp.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
    }
    resp
}

/// Reads and discards the rest of a body so the connection can carry the
/// next request. If it does not arrive in time, dropping it closes the
/// connection (the client already has its response).
async fn drain(body: Body, expected: u64) {
    use http_body_util::BodyExt;
    let mut body = body;
    let mut seen = 0u64;
    let reading = async {
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(frame) => {
                    seen += frame.data_ref().map_or(0, |d| d.len() as u64);
                    if seen > expected.max(DRAIN_LIMIT) {
                        return;
                    }
                }
                Err(_) => return,
            }
        }
    };
    if tokio::time::timeout(DRAIN_TIMEOUT, reading).await.is_err() {
        tracing::debug!(
            drained = seen,
            "an unread request body did not arrive in time; closing"
        );
    }
}
