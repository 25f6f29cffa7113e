//! One trace per request across services, as `itsm serve` runs them: an
//! incident created through the gateway is one trace holding the gateway's
//! spans, the incidents service's (its call to the CMDB included), the
//! CMDB's, and the SLA service's handling of the incident's event, each
//! correctly parented; spans still buffered when a process gets SIGTERM are
//! exported before it exits.
//!
//! Every process exports to an OTLP receiver in this test process; the
//! practices share the test Redis under a key prefix of their own.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/spans.rs"]
mod spans;
#[path = "support/process.rs"]
mod support;

use std::time::{Duration, Instant};

use itsm_proto::itsm::cmdb::v1 as cmdb;
use itsm_proto::itsm::cmdb::v1::cmdb_service_client::CmdbServiceClient;
use itsm_proto::itsm::common::v1::{Impact, Urgency};
use itsm_proto::itsm::incidents::v1::incident_service_client::IncidentServiceClient;
use itsm_proto::itsm::incidents::v1::{CreateIncidentRequest, Incident};
use itsm_proto::itsm::sla::v1 as sla;
use itsm_proto::itsm::sla::v1::sla_service_client::SlaServiceClient;
use itsm_testkit::otlp::OtlpReceiver;
use spans::{Span, SpanKind, Trace};
use support::{
    SECRET, Served, admin_token, authorized, ci_routed_to_dba, connect, exit_code_within, serve,
    sigterm, start, start_gateway,
};
use tokio::process::Command;

/// Spans reach the receiver within a second or so; a loaded 2-core CI
/// machine gets much longer.
const WITHIN: Duration = Duration::from_secs(60);

/// A fresh W3C `traceparent`: (header, trace id, parent span id).
fn traceparent() -> (String, String, String) {
    let trace_id = uuid::Uuid::new_v4().simple().to_string();
    let span_id = uuid::Uuid::new_v4().simple().to_string()[..16].to_owned();
    (format!("00-{trace_id}-{span_id}-01"), trace_id, span_id)
}

/// Makes `command` export its traces to `receiver`, batching for `delay`.
fn traced(mut command: Command, receiver: &OtlpReceiver, delay: Duration) -> Command {
    command
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint())
        .env("OTEL_BSP_SCHEDULE_DELAY", delay.as_millis().to_string());
    command
}

/// Deletes the test's keys from the shared test Redis, even when it fails.
struct RedisKeys(String);

impl Drop for RedisKeys {
    fn drop(&mut self) {
        let Ok(client) = redis::Client::open(itsm_testkit::redis_url()) else {
            return;
        };
        let Ok(mut conn) = client.get_connection_with_timeout(Duration::from_secs(1)) else {
            return;
        };
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}*", self.0))
            .query(&mut conn)
            .unwrap_or_default();
        if !keys.is_empty() {
            let _: Result<(), _> = redis::cmd("DEL").arg(keys).query(&mut conn);
        }
    }
}

/// The practices and the gateway in front of them, each its own process.
struct Platform {
    cmdb: Served,
    incidents: Served,
    sla: Served,
    gateway: Served,
    _keys: RedisKeys,
}

impl Platform {
    async fn start(receiver: &OtlpReceiver) -> Self {
        let prefix = itsm_testkit::unique_prefix();
        let delay = Duration::from_millis(200);
        let practice = |name: &str| {
            let mut command = traced(serve(name), receiver, delay);
            command
                .env("ITSM_REDIS_URL", itsm_testkit::redis_url())
                .env("ITSM_REDIS_PREFIX", &prefix);
            command
        };
        let cmdb = start(practice("cmdb")).await;
        let mut incidents = practice("incidents");
        incidents.env("ITSM_CMDB_ADDR", format!("http://{}", cmdb.addr));
        let incidents = start(incidents).await;
        let sla = start(practice("sla")).await;
        let mut gateway = traced(support::itsm(), receiver, delay);
        gateway
            .args(["serve", "gateway"])
            .env("ITSM_AUTH_HS256_SECRET", SECRET)
            .env(
                "ITSM_GATEWAY_BACKENDS",
                format!(
                    "cmdb=http://{},incidents=http://{},sla=http://{}",
                    cmdb.addr, incidents.addr, sla.addr
                ),
            );
        let gateway = start_gateway(gateway).await;
        Self {
            cmdb,
            incidents,
            sla,
            gateway,
            _keys: RedisKeys(prefix),
        }
    }

    /// SIGTERMs every process and checks each exits cleanly.
    async fn stop(mut self) {
        for served in [&self.gateway, &self.incidents, &self.sla, &self.cmdb] {
            sigterm(&served.child);
        }
        for served in [
            &mut self.gateway,
            &mut self.incidents,
            &mut self.sla,
            &mut self.cmdb,
        ] {
            assert_eq!(
                exit_code_within(&mut served.child, Duration::from_secs(30)).await,
                0
            );
        }
    }
}

/// A CI supported by `dba`, a rule routing incidents to their CI's support
/// group (so creating one asks the CMDB), and an SLA every incident gets.
async fn configure(gateway: &str, token: &str) -> String {
    let channel = connect(gateway).await;
    let ci = ci_routed_to_dba(channel.clone(), channel.clone(), "orders-db", token).await;
    SlaServiceClient::new(channel)
        .create_sla_definition(authorized(
            sla::CreateSlaDefinitionRequest {
                sla_definition: Some(sla::SlaDefinition {
                    display_name: "Resolve within 8 hours".into(),
                    kind: sla::SlaKind::Sla as i32,
                    ticket_type: "incidents".into(),
                    target: Some(prost_types::Duration {
                        seconds: 8 * 3600,
                        nanos: 0,
                    }),
                    stop_condition: "state = RESOLVED".into(),
                    enabled: true,
                    ..sla::SlaDefinition::default()
                }),
                sla_definition_id: "resolution".into(),
                request_id: String::new(),
                validate_only: false,
            },
            token,
        ))
        .await
        .unwrap();
    ci
}

fn is(span: &Span, service: &str, kind: SpanKind) -> bool {
    span.service.contains(service) && span.kind == kind
}

fn is_sql(span: &Span) -> bool {
    span.attribute("db.system.name")
        .is_some_and(|system| system != "redis")
}

/// What the test waits for in the trace: every hop has reported and no span
/// waits for its parent.
fn complete(trace: &Trace, root_parent: &str) -> bool {
    let consumer = trace.find(|s| is(s, "sla", SpanKind::Consumer));
    let handled = consumer.is_some_and(|consumer| {
        trace
            .spans
            .iter()
            .any(|s| is_sql(s) && s.service.contains("sla") && trace.descends_from(s, consumer))
    });
    handled
        && trace.find(|s| is(s, "cmdb", SpanKind::Server)).is_some()
        && trace.find(|s| is(s, "gateway", SpanKind::Server)).is_some()
        && trace.orphans(root_parent).is_empty()
}

#[tokio::test]
async fn an_incident_created_through_the_gateway_is_one_trace_across_services() {
    let receiver = OtlpReceiver::start().await;
    let platform = Platform::start(&receiver).await;
    let token = admin_token();
    let ci = configure(&platform.gateway.addr, &token).await;

    let (header, trace_id, root_parent) = traceparent();
    let mut request = authorized(
        CreateIncidentRequest {
            incident: Some(Incident {
                title: "Orders database refuses connections".into(),
                caller: "u-1042".into(),
                impact: Impact::High as i32,
                urgency: Urgency::High as i32,
                configuration_item: ci,
                ..Incident::default()
            }),
            request_id: String::new(),
        },
        &token,
    );
    request
        .metadata_mut()
        .insert("traceparent", header.parse().unwrap());
    let created = IncidentServiceClient::new(connect(&platform.gateway.addr).await)
        .create_incident(request)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.assignment_group, "dba", "routed by asking the CMDB");

    let deadline = Instant::now() + WITHIN;
    let trace = loop {
        let trace = Trace::of(&receiver.spans(), &trace_id);
        if complete(&trace, &root_parent) {
            break trace;
        }
        assert!(
            Instant::now() < deadline,
            "trace {trace_id} incomplete after {WITHIN:?}; orphans {:?}; got:\n{}",
            trace
                .orphans(&root_parent)
                .iter()
                .map(|s| (&s.name, &s.service))
                .collect::<Vec<_>>(),
            trace.render()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let tree = trace.render();

    // The gateway's server span continues the caller's traceparent.
    let gateway = trace
        .find(|s| is(s, "gateway", SpanKind::Server))
        .unwrap_or_else(|| panic!("no gateway server span:\n{tree}"));
    assert_eq!(gateway.parent_span_id, root_parent, "{tree}");

    // The incidents service's CreateIncident is a child of a gateway client span.
    let create = trace
        .find(|s| is(s, "incidents", SpanKind::Server) && s.name.contains("CreateIncident"))
        .unwrap_or_else(|| panic!("no CreateIncident server span in incidents:\n{tree}"));
    let caller = trace.parent(create).unwrap();
    assert!(is(caller, "gateway", SpanKind::Client), "{tree}");
    assert!(trace.descends_from(caller, gateway), "{tree}");

    // The CMDB's GetCi is a child of an incidents client span under CreateIncident.
    let get_ci = trace
        .find(|s| is(s, "cmdb", SpanKind::Server) && s.name.contains("GetCi"))
        .unwrap_or_else(|| panic!("no GetCi server span in cmdb:\n{tree}"));
    let caller = trace.parent(get_ci).unwrap();
    assert!(is(caller, "incidents", SpanKind::Client), "{tree}");
    assert!(trace.descends_from(caller, create), "{tree}");

    // The SLA service handled the incident's event in the same trace, under
    // the RPC that made the change, with its SQL under that.
    let consumer = trace
        .find(|s| is(s, "sla", SpanKind::Consumer))
        .unwrap_or_else(|| panic!("no consumer span in sla:\n{tree}"));
    assert!(trace.descends_from(consumer, create), "{tree}");
    assert!(
        trace
            .spans
            .iter()
            .any(|s| is_sql(s) && s.service.contains("sla") && trace.descends_from(s, consumer)),
        "no SQL of the SLA service under its consumer span:\n{tree}"
    );
    assert_eq!(
        consumer.attribute("messaging.destination.name"),
        Some("incidents"),
        "{tree}"
    );
    assert_eq!(
        consumer.attribute("messaging.consumer.group.name"),
        Some("sla.ticket-clocks"),
        "{tree}"
    );
    assert_eq!(consumer.attribute("messaging.system"), Some("redis"));
    assert_eq!(
        consumer.attribute("cloudevents.event_type"),
        Some("incidents.incident.created")
    );
    let redis_ack = trace
        .find(|s| s.attribute("db.operation.name") == Some("XACK") && s.service.contains("sla"))
        .unwrap_or_else(|| panic!("no XACK span in sla:\n{tree}"));
    assert!(trace.descends_from(redis_ack, consumer), "{tree}");

    // Every span's parent is in the trace, but the root's: the caller's.
    assert!(trace.orphans(&root_parent).is_empty(), "{tree}");
    assert_eq!(
        trace
            .spans
            .iter()
            .filter(|s| s.parent_span_id == root_parent)
            .count(),
        1,
        "one root, the gateway's:\n{tree}"
    );

    platform.stop().await;
}

/// A span still in the exporter's buffer when SIGTERM arrives is exported
/// before the process exits.
#[tokio::test]
async fn spans_buffered_at_sigterm_are_exported_before_exit() {
    let receiver = OtlpReceiver::start().await;
    // Batches would wait ten minutes: only the flush at shutdown sends this one.
    let mut cmdb = start(traced(serve("cmdb"), &receiver, Duration::from_secs(600))).await;
    let (header, trace_id, _) = traceparent();
    let mut request = authorized(
        cmdb::GetCiRequest {
            name: format!("cis/{}", uuid::Uuid::new_v4()),
            ..cmdb::GetCiRequest::default()
        },
        &admin_token(),
    );
    request
        .metadata_mut()
        .insert("traceparent", header.parse().unwrap());
    let missing = CmdbServiceClient::new(connect(&cmdb.addr).await)
        .get_ci(request)
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound, "{missing:?}");
    let of_trace = |receiver: &OtlpReceiver| {
        receiver
            .spans()
            .into_iter()
            .filter(|s| s.trace_id == trace_id)
            .collect::<Vec<_>>()
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        of_trace(&receiver).is_empty(),
        "exported before shutdown: the batch delay was not honoured"
    );

    sigterm(&cmdb.child);
    assert_eq!(
        exit_code_within(&mut cmdb.child, Duration::from_secs(30)).await,
        0
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = of_trace(&receiver);
        if got.iter().any(|s| is(s, "cmdb", SpanKind::Server)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no server span of trace {trace_id} after the process exited: {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
