//! An OTLP/gRPC trace receiver for tests: what a collector would get from the
//! processes under test, kept in memory so a test can assert on whole traces.
//!
//! Point a process at [`OtlpReceiver::endpoint`] with
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (a spawned `itsm`), or pass it to
//! `itsm_platform::telemetry::init_with_env` (in-process), then wait for the
//! spans: they arrive in batches, every few seconds or when the exporting
//! process shuts down its telemetry.
//!
//! ```no_run
//! # async fn example() {
//! use std::time::Duration;
//! use itsm_testkit::otlp::{OtlpReceiver, SpanKind};
//!
//! let receiver = OtlpReceiver::start().await;
//! // spawn `itsm serve cmdb` with OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint(),
//! // call it with a `traceparent`...
//! let spans = receiver
//!     .wait_for(
//!         |spans| spans.iter().any(|s| s.kind == SpanKind::Server && s.service == "itsm-cmdb"),
//!         Duration::from_secs(30),
//!     )
//!     .await;
//! let server = spans.iter().find(|s| s.kind == SpanKind::Server).unwrap();
//! assert_eq!(server.attribute("rpc.system"), Some("grpc"));
//! let children = itsm_testkit::otlp::children(&spans, server);
//! # }
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
pub use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// One span as received, flattened for assertions. Ids are lowercase hex,
/// as in a `traceparent`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedSpan {
    /// `service.name` of the resource the span came with.
    pub service: String,
    pub trace_id: String,
    pub span_id: String,
    /// Empty for a root span.
    pub parent_span_id: String,
    pub name: String,
    pub kind: SpanKind,
    /// "UNSET", "OK" or "ERROR".
    pub status: String,
    /// Attribute values rendered as text (numbers and booleans too).
    pub attributes: BTreeMap<String, String>,
}

impl ReceivedSpan {
    /// The attribute `key`, as text.
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }
}

impl fmt::Display for ReceivedSpan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {:?} {:?} trace={} span={} parent={} status={} {:?}",
            self.service,
            self.name,
            self.kind,
            self.trace_id,
            self.span_id,
            self.parent_span_id,
            self.status,
            self.attributes
        )
    }
}

/// The spans of `spans` whose parent is `parent`.
pub fn children<'a>(spans: &'a [ReceivedSpan], parent: &ReceivedSpan) -> Vec<&'a ReceivedSpan> {
    spans
        .iter()
        .filter(|s| s.trace_id == parent.trace_id && s.parent_span_id == parent.span_id)
        .collect()
}

/// A running receiver; stops when dropped.
#[derive(Debug)]
pub struct OtlpReceiver {
    addr: SocketAddr,
    state: Arc<State>,
    task: JoinHandle<()>,
}

#[derive(Debug, Default)]
struct State {
    spans: Mutex<Vec<ReceivedSpan>>,
    arrived: Notify,
}

impl OtlpReceiver {
    /// Starts a receiver on a free loopback port.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("bind the OTLP receiver on loopback");
        let addr = listener.local_addr().expect("the receiver's bound address");
        let state = Arc::new(State::default());
        let service = TraceServiceServer::new(Collector(Arc::clone(&state)));
        let incoming = tonic::transport::server::TcpIncoming::from(listener);
        let task = tokio::spawn(async move {
            let served = tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(incoming)
                .await;
            if let Err(error) = served {
                eprintln!("OTLP test receiver stopped: {error}");
            }
        });
        Self { addr, state, task }
    }

    /// `http://127.0.0.1:<port>`, the value for `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every span received so far, in arrival order.
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.state
            .spans
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Waits until `predicate` holds for the spans received so far and returns
    /// them. Panics after `timeout`, listing what did arrive.
    pub async fn wait_for(
        &self,
        predicate: impl Fn(&[ReceivedSpan]) -> bool,
        timeout: Duration,
    ) -> Vec<ReceivedSpan> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Register interest before looking, so a batch arriving in
            // between is not missed.
            let arrived = self.state.arrived.notified();
            let spans = self.spans();
            if predicate(&spans) {
                return spans;
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                let listing: Vec<String> = spans.iter().map(ToString::to_string).collect();
                panic!(
                    "the OTLP receiver did not get the expected spans within {timeout:?}; \
                     it got {}:\n{}",
                    spans.len(),
                    listing.join("\n")
                );
            }
        }
    }
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Collector(Arc<State>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut received = Vec::new();
        for batch in request.into_inner().resource_spans {
            let service = batch
                .resource
                .iter()
                .flat_map(|resource| &resource.attributes)
                .find(|kv| kv.key == "service.name")
                .map(value_text)
                .unwrap_or_default();
            for span in batch.scope_spans.into_iter().flat_map(|scope| scope.spans) {
                received.push(ReceivedSpan {
                    service: service.clone(),
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_span_id: hex(&span.parent_span_id),
                    kind: SpanKind::try_from(span.kind).unwrap_or(SpanKind::Unspecified),
                    status: match span.status.map(|status| status.code()) {
                        Some(StatusCode::Ok) => "OK",
                        Some(StatusCode::Error) => "ERROR",
                        Some(StatusCode::Unset) | None => "UNSET",
                    }
                    .to_owned(),
                    attributes: span
                        .attributes
                        .iter()
                        .map(|kv| (kv.key.clone(), value_text(kv)))
                        .collect(),
                    name: span.name,
                });
            }
        }
        self.0
            .spans
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(received);
        self.0.arrived.notify_waiters();
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

fn value_text(kv: &KeyValue) -> String {
    kv.value.as_ref().map(any_text).unwrap_or_default()
}

fn any_text(value: &AnyValue) -> String {
    match &value.value {
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::DoubleValue(d)) => d.to_string(),
        Some(Value::ArrayValue(array)) => {
            let items: Vec<String> = array.values.iter().map(any_text).collect();
            format!("[{}]", items.join(","))
        }
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
