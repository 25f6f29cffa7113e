//! Per-call metrics of the gRPC server: a tower layer recording
//! [`DURATION`]`{service, method, code}` and [`IN_FLIGHT`]`{service}`.
//!
//! The code is the call's `grpc-status`: in the response headers for a
//! trailers-only answer (how errors are usually sent), else in the trailers
//! at the end of the body. The call is measured to the end of its response
//! body, so a streaming call counts as in flight until its stream ends. A
//! call whose response is dropped before its status (the client went away)
//! is recorded as CANCELLED; a response that ends with no status as UNKNOWN.
//!
//! Health and reflection calls are recorded like the practice's own, under
//! their service names (`grpc.health.v1.Health`, ...): probes show up, and
//! dashboards select the practice's service. Paths naming a service this
//! server does not serve share one `service="unknown", method="unknown"`
//! series, so a scanner cannot grow the label sets without bound.
//!
//! Cheap per call: each method's label sets and metric handles are built on
//! its first call and kept; a call then costs a map lookup under a read lock,
//! two gauge updates and one histogram record, with no allocation.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock, RwLock};
use std::task::{Context, Poll, ready};
use std::time::Instant;

use http_body::{Body, Frame, SizeHint};
use metrics::{Gauge, Histogram};

/// Histogram `{service, method, code}`: seconds from a call's arrival to the
/// end of its response; `code` is the gRPC code name (`OK`, `NOT_FOUND`...).
pub const DURATION: &str = "itsm_rpc_server_duration_seconds";
/// Gauge `{service}`: calls started and not yet answered to the end.
pub const IN_FLIGHT: &str = "itsm_rpc_server_in_flight";

/// The gRPC code names, indexed by code number (the `code` label).
const CODE_NAMES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];
const CANCELLED: usize = 1;
const UNKNOWN: usize = 2;

pub(super) fn describe() {
    metrics::describe_histogram!(
        DURATION,
        metrics::Unit::Seconds,
        "gRPC calls served, arrival to the end of the response, by service, method and code"
    );
    metrics::describe_gauge!(IN_FLIGHT, "gRPC calls being served, by service");
}

/// The layer; one per server, built with the names of the services it serves.
#[derive(Debug, Clone)]
pub struct RpcMetricsLayer {
    registry: Arc<Registry>,
}

impl RpcMetricsLayer {
    /// Records calls to `services` (fully-qualified gRPC service names) under
    /// their own labels and every other path as `unknown`.
    pub fn new<'a>(services: impl IntoIterator<Item = &'a str>) -> Self {
        let services = services
            .into_iter()
            .map(|name| {
                (
                    name.to_owned(),
                    metrics::gauge!(IN_FLIGHT, "service" => name.to_owned()),
                )
            })
            .collect();
        let unknown = Arc::new(Method::new(
            "unknown",
            "unknown",
            metrics::gauge!(IN_FLIGHT, "service" => "unknown"),
        ));
        Self {
            registry: Arc::new(Registry {
                services,
                methods: RwLock::new(HashMap::new()),
                unknown,
            }),
        }
    }
}

impl<S> tower::Layer<S> for RpcMetricsLayer {
    type Service = RpcMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RpcMetrics {
            inner,
            registry: Arc::clone(&self.registry),
        }
    }
}

/// Every method seen so far, by path, with its metric handles.
#[derive(Debug)]
struct Registry {
    /// The served services and their in-flight gauges.
    services: HashMap<String, Gauge>,
    /// `/pkg.Service/Method` → handles, filled on each method's first call.
    methods: RwLock<HashMap<Box<str>, Arc<Method>>>,
    /// Where calls to services not served here are counted.
    unknown: Arc<Method>,
}

impl Registry {
    fn method(&self, path: &str) -> Arc<Method> {
        let known = self
            .methods
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(path)
            .cloned();
        if let Some(method) = known {
            return method;
        }
        let Some((service, name)) = path
            .strip_prefix('/')
            .and_then(|rest| rest.split_once('/'))
            .filter(|(_, name)| !name.is_empty() && !name.contains('/'))
        else {
            return Arc::clone(&self.unknown);
        };
        let Some(in_flight) = self.services.get(service) else {
            return Arc::clone(&self.unknown);
        };
        let mut methods = self
            .methods
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(
            methods
                .entry(path.into())
                .or_insert_with(|| Arc::new(Method::new(service, name, in_flight.clone()))),
        )
    }
}

/// One method's label values and handles (a histogram per code, made on the
/// code's first use).
#[derive(Debug)]
struct Method {
    service: String,
    name: String,
    in_flight: Gauge,
    by_code: [OnceLock<Histogram>; 17],
}

impl Method {
    fn new(service: &str, name: &str, in_flight: Gauge) -> Self {
        Self {
            service: service.to_owned(),
            name: name.to_owned(),
            in_flight,
            by_code: Default::default(),
        }
    }

    fn histogram(&self, code: usize) -> &Histogram {
        let code = code.min(CODE_NAMES.len() - 1);
        self.by_code[code].get_or_init(|| {
            metrics::histogram!(
                DURATION,
                "service" => self.service.clone(),
                "method" => self.name.clone(),
                "code" => CODE_NAMES[code]
            )
        })
    }
}

/// One call being measured: started at construction, recorded once, when
/// the response ends or is dropped.
#[derive(Debug)]
struct Call {
    method: Arc<Method>,
    start: Instant,
    /// The status seen so far (from the headers), used if the body ends or is
    /// dropped without trailers.
    code: Option<usize>,
    done: bool,
}

impl Call {
    fn start(method: Arc<Method>) -> Self {
        method.in_flight.increment(1.0);
        Self {
            method,
            start: Instant::now(),
            code: None,
            done: false,
        }
    }

    fn finish(&mut self, code: usize) {
        if self.done {
            return;
        }
        self.done = true;
        self.method.in_flight.decrement(1.0);
        self.method
            .histogram(code)
            .record(self.start.elapsed().as_secs_f64());
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        let code = self.code.unwrap_or(CANCELLED);
        self.finish(code);
    }
}

/// The `grpc-status` of a header or trailer map, as an index into [`CODE_NAMES`].
fn status_of(headers: &http::HeaderMap) -> Option<usize> {
    let value = headers.get("grpc-status")?;
    let code: usize = std::str::from_utf8(value.as_bytes()).ok()?.parse().ok()?;
    Some(if code < CODE_NAMES.len() {
        code
    } else {
        UNKNOWN
    })
}

/// The service the layer wraps.
#[derive(Debug, Clone)]
pub struct RpcMetrics<S> {
    inner: S,
    registry: Arc<Registry>,
}

impl<S, ReqBody, ResBody> tower::Service<http::Request<ReqBody>> for RpcMetrics<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Unpin,
    ResBody: Body + Unpin,
{
    type Response = http::Response<MeasuredBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let call = Call::start(self.registry.method(request.uri().path()));
        ResponseFuture {
            inner: self.inner.call(request),
            call: Some(call),
        }
    }
}

/// The response future: hands the call over to the body once headers are out.
#[derive(Debug)]
pub struct ResponseFuture<F> {
    inner: F,
    call: Option<Call>,
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<http::Response<B>, E>> + Unpin,
{
    type Output = Result<http::Response<MeasuredBody<B>>, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let result = ready!(Pin::new(&mut self.inner).poll(cx));
        let mut call = self.call.take();
        Poll::Ready(match result {
            Ok(response) => {
                if let Some(call) = call.as_mut() {
                    call.code = status_of(response.headers());
                }
                Ok(response.map(|inner| MeasuredBody { inner, call }))
            }
            Err(error) => {
                if let Some(mut call) = call {
                    call.finish(UNKNOWN);
                }
                Err(error)
            }
        })
    }
}

/// The response body: records the call when its trailers (or its end) pass.
#[derive(Debug)]
pub struct MeasuredBody<B> {
    inner: B,
    call: Option<Call>,
}

impl<B: Body + Unpin> Body for MeasuredBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = ready!(Pin::new(&mut self.inner).poll_frame(cx));
        if let Some(mut call) = self.call.take() {
            match &polled {
                Some(Ok(frame)) => match frame.trailers_ref() {
                    Some(trailers) => {
                        let code = status_of(trailers).or(call.code).unwrap_or(UNKNOWN);
                        call.finish(code);
                    }
                    None => self.call = Some(call),
                },
                // The connection or the stream failed mid-response.
                Some(Err(_)) => call.finish(UNKNOWN),
                None => {
                    let code = call.code.unwrap_or(UNKNOWN);
                    call.finish(code);
                }
            }
        }
        Poll::Ready(polled)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B: Default> Default for MeasuredBody<B> {
    fn default() -> Self {
        Self {
            inner: B::default(),
            call: None,
        }
    }
}
