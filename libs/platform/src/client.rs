//! Calls from one service to another: each outgoing gRPC call gets a client
//! span (OpenTelemetry RPC attributes, `server.address`), carries that span's
//! W3C trace context in `traceparent` / `tracestate` so the callee's span
//! joins the caller's trace, and is timed into
//! `itsm_rpc_client_duration_seconds{service, method, code}`.
//!
//! Wrap the channel a generated client is built on:
//!
//! ```no_run
//! # fn example() -> Result<(), tonic::transport::Error> {
//! use itsm_platform::client::{Traced, TracedChannel};
//! let endpoint = tonic::transport::Endpoint::from_shared("http://cmdb:50051")?;
//! let channel: TracedChannel = Traced::connect_lazy(endpoint);
//! // CmdbServiceClient::new(channel) — a `CmdbServiceClient<TracedChannel>`
//! # Ok(()) }
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use http_body::{Frame, SizeHint};
use tonic::Code;
use tonic::body::Body;
use tonic::codegen::Bytes;
use tonic::transport::{Channel, Endpoint};
use tracing::{Instrument as _, Span};

use crate::server::{is_server_fault, rpc_names};
use crate::telemetry::propagation;

/// The metric every outgoing call is timed into.
pub const CLIENT_DURATION: &str = "itsm_rpc_client_duration_seconds";

/// A traced tonic channel, what generated clients are built on.
pub type TracedChannel = Traced<Channel>;

/// A gRPC transport (a tonic [`Channel`]) whose calls are traced and timed.
#[derive(Clone)]
pub struct Traced<S> {
    inner: S,
    peer: Arc<Peer>,
}

/// Where the calls go, as `server.address` / `server.port`.
#[derive(Debug)]
struct Peer {
    address: String,
    port: Option<u16>,
}

impl<S> fmt::Debug for Traced<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Traced")
            .field("address", &self.peer.address)
            .field("port", &self.peer.port)
            .finish_non_exhaustive()
    }
}

impl Traced<Channel> {
    /// A channel to `endpoint` that connects on first use (the callee may
    /// still be starting), traced.
    pub fn connect_lazy(endpoint: Endpoint) -> Self {
        let channel = endpoint.connect_lazy();
        Self::new(channel, endpoint.uri())
    }
}

impl<S> Traced<S> {
    /// Traces the calls made through `inner`, which connects to `uri`.
    pub fn new(inner: S, uri: &http::Uri) -> Self {
        let (address, port) = match uri.authority() {
            Some(authority) => (authority.host().to_owned(), authority.port_u16()),
            None => (String::new(), None),
        };
        Self {
            inner,
            peer: Arc::new(Peer { address, port }),
        }
    }
}

impl<S> tower::Service<http::Request<Body>> for Traced<S>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<Body>>,
    S::Future: Send + 'static,
    S::Error: 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future =
        Pin<Box<dyn Future<Output = Result<http::Response<Body>, S::Error>> + Send + 'static>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<Body>) -> Self::Future {
        let (service, method) = rpc_names(request.uri().path());
        let (service, method) = (service.to_owned(), method.to_owned());
        let span = tracing::info_span!(
            "rpc.client",
            otel.name = %format_args!("{service}/{method}"),
            otel.kind = "client",
            otel.status_code = tracing::field::Empty,
            rpc.system = "grpc",
            rpc.service = %service,
            rpc.method = %method,
            rpc.grpc.status_code = tracing::field::Empty,
            server.address = %self.peer.address,
            server.port = tracing::field::Empty,
        );
        if let Some(port) = self.peer.port {
            span.record("server.port", port);
        }
        propagation::inject_headers(&span, request.headers_mut());
        let call = Call {
            span: span.clone(),
            service,
            method,
            start: Instant::now(),
            finished: false,
        };
        let response = self.inner.call(request);
        Box::pin(async move {
            let mut call = call;
            match response.instrument(span).await {
                Ok(response) => {
                    let (parts, body) = response.into_parts();
                    // A call that failed before any message has its status
                    // in the headers (trailers-only response).
                    if let Some(code) = grpc_status(&parts.headers) {
                        call.finish(code);
                        return Ok(http::Response::from_parts(parts, body));
                    }
                    let body = Body::new(TracedBody {
                        inner: body,
                        call: Some(call),
                    });
                    Ok(http::Response::from_parts(parts, body))
                }
                Err(error) => {
                    // Connection refused, reset...: what tonic reports as UNAVAILABLE.
                    call.finish(Code::Unavailable);
                    Err(error)
                }
            }
        })
    }
}

/// One call in progress: finished once, when its status is known; dropped
/// unfinished, it was cancelled by the caller.
struct Call {
    span: Span,
    service: String,
    method: String,
    start: Instant,
    finished: bool,
}

impl Call {
    fn finish(&mut self, code: Code) {
        if self.finished {
            return;
        }
        self.finished = true;
        self.span.record("rpc.grpc.status_code", code as i32);
        if is_server_fault(code) {
            self.span.record("otel.status_code", "ERROR");
        }
        metrics::histogram!(
            CLIENT_DURATION,
            "service" => self.service.clone(),
            "method" => self.method.clone(),
            "code" => code_name(code),
        )
        .record(self.start.elapsed().as_secs_f64());
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        self.finish(Code::Cancelled);
    }
}

/// The response body, watched for the trailers that carry the call's status.
struct TracedBody {
    inner: Body,
    call: Option<Call>,
}

impl http_body::Body for TracedBody {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        let code = match &polled {
            Poll::Ready(Some(Ok(frame))) => frame.trailers_ref().map(|trailers| {
                // Trailers without a status break the protocol.
                grpc_status(trailers).unwrap_or(Code::Unknown)
            }),
            Poll::Ready(Some(Err(status))) => Some(status.code()),
            // The body ended with no trailers: no status ever came.
            Poll::Ready(None) => Some(Code::Unknown),
            Poll::Pending => None,
        };
        if let Some(code) = code
            && let Some(mut call) = self.call.take()
        {
            call.finish(code);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

fn grpc_status(headers: &http::HeaderMap) -> Option<Code> {
    headers
        .get("grpc-status")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<i32>().ok())
        .map(Code::from_i32)
}

/// The gRPC code's canonical name, as the metrics label it.
fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}
