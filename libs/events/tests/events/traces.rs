//! Traces and metrics through the outbox and the bus: an event written under
//! a span carries that span's context, the consumer handles it in a span
//! that continues it, the relay's send span links to it, and every Redis
//! command is a client span; the handle and Redis metrics are recorded.
//!
//! Spans go through the OpenTelemetry SDK into an exporter that keeps them
//! in memory; the subscriber is this test thread's (`#[tokio::test]` runs on
//! one thread), so tests running at the same time do not see each other's.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use itsm_events::{
    Consumer, ConsumerConfig, EventBus, Handler, HandlerError, OutboxRelay, Outcome, RelayConfig,
};
use itsm_proto::itsm::events::v1::Event;
use itsm_store::audit::Actor;
use itsm_store::outbox::{self, NewEvent};
use itsm_store::{Db, Tx};
use itsm_testkit::TestDb;
use opentelemetry::trace::{SpanId, SpanKind, TraceId, TracerProvider as _};
use opentelemetry::{KeyValue, Value};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use tracing::Instrument as _;
use tracing::subscriber::DefaultGuard;
use tracing_subscriber::layer::SubscriberExt as _;

use crate::support::Backend;

/// Keeps every exported span.
#[derive(Clone, Debug, Default)]
struct Spans(Arc<Mutex<Vec<SpanData>>>);

impl SpanExporter for Spans {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        self.0.lock().unwrap().extend(batch);
        Ok(())
    }
}

impl Spans {
    fn all(&self) -> Vec<SpanData> {
        self.0.lock().unwrap().clone()
    }

    fn named(&self, name: &str) -> Vec<SpanData> {
        self.all().into_iter().filter(|s| s.name == name).collect()
    }

    fn one(&self, name: &str) -> SpanData {
        let found = self.named(name);
        assert_eq!(found.len(), 1, "spans named {name:?}: {:#?}", self.names());
        found.into_iter().next().unwrap()
    }

    /// Waits until a span named `name` ended. A span ends when its last
    /// handle drops, and sqlx's SQLite worker thread holds one for a moment
    /// after the statement it ran under it.
    async fn ended(&self, name: &str) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while self.named(name).is_empty() {
            assert!(
                std::time::Instant::now() < deadline,
                "no span {name:?} within 10 s: {:?}",
                self.names()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn names(&self) -> Vec<String> {
        self.all().iter().map(|s| s.name.to_string()).collect()
    }
}

/// Spans of this thread go to the returned exporter (each exported as it ends).
fn trace_this_thread() -> (Spans, SdkTracerProvider, DefaultGuard) {
    let spans = Spans::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(spans.clone())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("itsm-events-test")));
    let guard = tracing::subscriber::set_default(subscriber);
    (spans, provider, guard)
}

fn attribute<'a>(span: &'a SpanData, key: &str) -> Option<&'a Value> {
    span.attributes
        .iter()
        .find(|kv: &&KeyValue| kv.key.as_str() == key)
        .map(|kv| &kv.value)
}

fn text(span: &SpanData, key: &str) -> String {
    match attribute(span, key) {
        Some(value) => value.as_str().into_owned(),
        None => panic!("span {:?} has no {key}: {:?}", span.name, span.attributes),
    }
}

/// Commits one event, as a write path does; `traceparent` is what the call carried.
async fn produce(db: &Db, traceparent: &str) -> String {
    let actor = Actor::system("test");
    let mut tx = db.begin().await.unwrap();
    let id = outbox::insert(
        &mut tx,
        &NewEvent {
            stream: "incidents",
            source: "itsm.incidents",
            event_type: "incidents.incident.created",
            subject: "incidents/INC0000001",
            sequence: 1,
            payload: prost_types::Any::default(),
            actor: &actor,
            request_id: "",
            traceparent,
            tracestate: "",
            time: itsm_store::now_micros(),
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    id
}

/// Runs one statement in the consumer's transaction, under a span of its
/// own, as the platform's SQL spans do: the handler's work must land under
/// the consumer span.
struct Touch;

#[async_trait]
impl Handler for Touch {
    async fn handle(&self, tx: &mut Tx, _event: &Event) -> Result<(), HandlerError> {
        sqlx::query("SELECT 1")
            .execute(&mut **tx)
            .instrument(tracing::info_span!("handler sql"))
            .await
            .map_err(|e| HandlerError::Retryable(e.to_string()))?;
        Ok(())
    }
}

async fn relay_and_consume(db: &Db, bus: &Arc<dyn EventBus>) -> Vec<Outcome> {
    let relay = OutboxRelay::new(db.clone(), Arc::clone(bus), RelayConfig::default());
    assert_eq!(relay.relay_once().await.unwrap(), 1);
    let mut config = ConsumerConfig::new("sla.ticket-clocks", &["incidents"]);
    config.wait = Duration::from_millis(100);
    let consumer = Consumer::new(db.clone(), Arc::clone(bus), Arc::new(Touch), config);
    let mut outcomes = Vec::new();
    for _ in 0..50 {
        outcomes.extend(
            consumer
                .poll_once(Duration::from_millis(100))
                .await
                .unwrap(),
        );
        if !outcomes.is_empty() {
            break;
        }
    }
    outcomes
}

#[tokio::test]
async fn the_consumer_continues_the_trace_of_the_span_that_wrote_the_event() {
    let test_db = TestDb::sqlite().await;
    let db = Db::connect(test_db.url()).await.unwrap();
    db.migrate(None).await.unwrap();
    let test_bus = Backend::Redis.bus(Duration::from_secs(30)).await;
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let metrics = recorder.handle();
    let _metrics = metrics::set_default_local_recorder(&recorder);
    let (spans, provider, _tracing) = trace_this_thread();

    // The call carried a traceparent of its own; the span the event is
    // written under wins, so the consumer's work is that span's child.
    let carried = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let rpc = tracing::info_span!("CreateIncident", otel.kind = "server");
    let event_id = produce(&db, carried).instrument(rpc.clone()).await;
    drop(rpc);
    let outcomes = relay_and_consume(&db, &test_bus.bus).await;
    assert_eq!(outcomes, [Outcome::Applied]);
    spans.ended("process incidents").await;
    provider.force_flush().unwrap();

    let rpc = spans.one("CreateIncident");
    let process = spans.one("process incidents");
    assert_eq!(process.span_kind, SpanKind::Consumer);
    assert_eq!(
        process.span_context.trace_id(),
        rpc.span_context.trace_id(),
        "the consumer span is in the producer's trace"
    );
    assert_eq!(process.parent_span_id, rpc.span_context.span_id());
    assert_eq!(text(&process, "messaging.system"), "redis");
    assert_eq!(text(&process, "messaging.destination.name"), "incidents");
    assert_eq!(
        text(&process, "messaging.consumer.group.name"),
        "sla.ticket-clocks"
    );
    assert_eq!(text(&process, "messaging.message.id"), event_id);
    assert_eq!(
        text(&process, "cloudevents.event_type"),
        "incidents.incident.created"
    );

    // The handler's statement and the acknowledgement are the consumer's children.
    let sql = spans.one("handler sql");
    assert_eq!(sql.parent_span_id, process.span_context.span_id());
    let ack = spans.one("XACK");
    assert_eq!(ack.parent_span_id, process.span_context.span_id());
    assert_eq!(ack.span_kind, SpanKind::Client);
    assert_eq!(text(&ack, "db.system.name"), "redis");
    assert_eq!(text(&ack, "db.operation.name"), "XACK");
    let redis = redis::Client::open(crate::support::redis_url()).unwrap();
    let redis::ConnectionAddr::Tcp(host, port) = redis.get_connection_info().addr() else {
        panic!("the test Redis is not at a TCP address");
    };
    assert_eq!(text(&ack, "server.address"), *host);
    assert_eq!(
        attribute(&ack, "server.port"),
        Some(&Value::I64(i64::from(*port)))
    );

    // The relay's send span is a root linking to the event's context, with
    // the XADD it sent as its child.
    let send = spans.one("send incidents");
    assert_eq!(send.span_kind, SpanKind::Producer);
    assert_eq!(send.parent_span_id, SpanId::INVALID);
    let linked: Vec<_> = send
        .links
        .iter()
        .map(|l| (l.span_context.trace_id(), l.span_context.span_id()))
        .collect();
    assert_eq!(
        linked,
        [(rpc.span_context.trace_id(), rpc.span_context.span_id())]
    );
    let xadd = spans.one("XADD");
    assert_eq!(xadd.parent_span_id, send.span_context.span_id());
    assert_eq!(xadd.span_context.trace_id(), send.span_context.trace_id());

    let exposed = metrics.render();
    let handled = exposed
        .lines()
        .find(|l| l.starts_with("itsm_event_handle_duration_seconds_count{"))
        .unwrap_or_else(|| panic!("no handle duration in:\n{exposed}"));
    for label in [
        "stream=\"incidents\"",
        "group=\"sla.ticket-clocks\"",
        "outcome=\"ok\"",
    ] {
        assert!(handled.contains(label), "{handled}");
    }
    assert!(handled.ends_with(" 1"), "{handled}");
    for command in ["XADD", "XACK", "XREADGROUP"] {
        let count = format!("itsm_redis_command_duration_seconds_count{{command=\"{command}\"}}");
        assert!(exposed.contains(&count), "no {count} in:\n{exposed}");
    }
    // Creating a group that exists is an answer, not an error.
    assert!(!exposed.contains("itsm_redis_errors_total"), "{exposed}");
}

#[tokio::test]
async fn without_a_traced_span_the_event_keeps_the_context_the_call_carried() {
    let test_db = TestDb::sqlite().await;
    let db = Db::connect(test_db.url()).await.unwrap();
    db.migrate(None).await.unwrap();
    let test_bus = Backend::Memory.bus(Duration::from_secs(30)).await;

    // Written with no OpenTelemetry layer, as a process without an exporter does.
    let carried = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    produce(&db, carried).await;

    let (spans, provider, _tracing) = trace_this_thread();
    let outcomes = relay_and_consume(&db, &test_bus.bus).await;
    assert_eq!(outcomes, [Outcome::Applied]);
    spans.ended("process incidents").await;
    provider.force_flush().unwrap();

    let process = spans.one("process incidents");
    assert_eq!(
        process.span_context.trace_id(),
        TraceId::from_hex("0af7651916cd43dd8448eb211c80319c").unwrap()
    );
    assert_eq!(
        process.parent_span_id,
        SpanId::from_hex("b7ad6b7169203331").unwrap()
    );
    assert!(process.parent_span_is_remote);
    assert_eq!(text(&process, "messaging.system"), "in-process");
}
