//! Body plumbing: the boxed body type of gateway responses, plain-text refusals, and
//! [`Watched`], a body wrapper that bounds idle time and size, counts bytes and runs a
//! callback when the body ends or is dropped (for the access log and open-request counts).

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONNECTION, CONTENT_TYPE};
use http::{HeaderValue, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, SizeHint};
use tokio::time::Sleep;

/// Errors inside bodies.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body of an ordinary request on its way to a backend: the client's, watched for the
/// size and idle limits.
pub type BackendBody = Watched<hyper::body::Incoming>;

/// The body of every gateway response.
pub type ProxyBody = UnsyncBoxBody<Bytes, BoxError>;

/// A body from bytes.
pub fn full(bytes: impl Into<Bytes>) -> ProxyBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// A refusal by the gateway itself: `status` with a plain-text body saying why.
pub fn refusal(status: StatusCode, message: &str) -> Response<ProxyBody> {
    let mut response = Response::new(full(format!("{message}\n")));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// Like [`refusal`], and closes the connection afterwards.
pub fn refusal_and_close(status: StatusCode, message: &str) -> Response<ProxyBody> {
    let mut response = refusal(status, message);
    response
        .headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Called once with the bytes that went through, when the body ends or is dropped.
pub type OnEnd = Box<dyn FnOnce(u64) + Send>;

/// A body that fails after `idle` without a frame or beyond `limit` bytes, and reports its
/// size when done.
pub struct Watched<B> {
    inner: Pin<Box<B>>,
    idle: Duration,
    timer: Pin<Box<Sleep>>,
    bytes: u64,
    limit: u64,
    on_end: Option<OnEnd>,
}

impl<B> Watched<B> {
    /// Wraps `inner`.
    pub fn new(inner: B, idle: Duration, limit: u64, on_end: Option<OnEnd>) -> Self {
        Self {
            inner: Box::pin(inner),
            idle,
            timer: Box::pin(tokio::time::sleep(idle)),
            bytes: 0,
            limit,
            on_end,
        }
    }

    fn end(&mut self) {
        if let Some(f) = self.on_end.take() {
            f(self.bytes);
        }
    }
}

impl<B> Drop for Watched<B> {
    fn drop(&mut self) {
        self.end();
    }
}

#[derive(Debug, thiserror::Error)]
enum WatchError {
    #[error("no data for {0:?}")]
    Idle(Duration),
    #[error("the body is larger than {0} bytes")]
    TooLarge(u64),
}

impl<B> Body for Watched<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        match this.inner.as_mut().poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.bytes += data.len() as u64;
                    if this.bytes > this.limit {
                        this.end();
                        return Poll::Ready(Some(Err(WatchError::TooLarge(this.limit).into())));
                    }
                }
                let deadline = tokio::time::Instant::now() + this.idle;
                this.timer.as_mut().reset(deadline);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                this.end();
                Poll::Ready(Some(Err(e.into())))
            }
            Poll::Ready(None) => {
                this.end();
                Poll::Ready(None)
            }
            Poll::Pending => match this.timer.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    this.end();
                    Poll::Ready(Some(Err(WatchError::Idle(this.idle).into())))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

use std::future::Future as _;
