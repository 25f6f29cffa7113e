//! Traces over a real socket to a real OTLP receiver: a call made through the
//! traced client continues the caller's trace on the server, with the
//! OpenTelemetry RPC attributes on both sides and the SQL the handler ran as
//! child spans; a bare `traceparent` is continued too, and server faults are
//! errors on the span. Telemetry is process-global: this binary installs it
//! once, for its one test.
// Test helpers may unwrap and panic: that is how a test reports failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use itsm_platform::GrpcServer;
use itsm_platform::client::Traced;
use itsm_platform::config::LogFormat;
use itsm_platform::telemetry::{self, propagation};
use itsm_proto::itsm::incidents::v1::incident_service_client::IncidentServiceClient;
use itsm_proto::itsm::incidents::v1::incident_service_server::{
    IncidentService, IncidentServiceServer,
};
use itsm_proto::itsm::incidents::v1::{GetIncidentRequest, Incident};
use itsm_testkit::otlp::{OtlpReceiver, ReceivedSpan, SpanKind, children};
use itsm_testkit::{TestServer, test_config};
use sqlx::SqlitePool;
use tonic::{Code, Request, Response, Status};
use tracing::Instrument as _;

const INCIDENTS: &str = "itsm.incidents.v1.IncidentService";
/// What the caller's caller sent: the trace every span below must join.
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_PARENT: &str = "00f067aa0ba902b7";

/// Incidents kept in SQLite: `GetIncident` looks the name up with SQL;
/// "incidents/broken" fails as a server fault would.
#[derive(Debug, Clone)]
struct SqlIncidents(SqlitePool);

#[tonic::async_trait]
impl IncidentService for SqlIncidents {
    async fn get_incident(
        &self,
        request: Request<GetIncidentRequest>,
    ) -> Result<Response<Incident>, Status> {
        let name = request.into_inner().name;
        if name == "incidents/broken" {
            return Err(Status::internal("the disk is on fire"));
        }
        let found: Option<(String, Option<String>)> =
            sqlx::query_as("SELECT name, title FROM incidents WHERE name = ? LIMIT 1")
                .bind(&name)
                .fetch_optional(&self.0)
                .await
                .map_err(|e| Status::internal(e.to_string()))?;
        match found {
            Some((name, _title)) => Ok(Response::new(Incident {
                name,
                ..Incident::default()
            })),
            None => Err(Status::not_found(name)),
        }
    }
}

fn one<'a>(
    spans: &'a [ReceivedSpan],
    what: &str,
    pick: impl Fn(&ReceivedSpan) -> bool,
) -> &'a ReceivedSpan {
    let found: Vec<&ReceivedSpan> = spans.iter().filter(|s| pick(s)).collect();
    match found.as_slice() {
        [span] => span,
        _ => panic!(
            "expected one {what}, found {}; all spans:\n{}",
            found.len(),
            spans
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_continue_the_callers_trace_with_rpc_and_sql_spans() {
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .unwrap();
    let receiver = OtlpReceiver::start().await;
    let endpoint = receiver.endpoint();
    let mut config = test_config();
    config.log = "warn".to_owned();
    config.log_format = LogFormat::Json;
    let guard = telemetry::init_with_env(&config, "itsm-otel-test", |name| {
        (name == "OTEL_EXPORTER_OTLP_ENDPOINT").then(|| endpoint.clone())
    })
    .unwrap();
    assert!(guard.exporting());

    // Set up outside any traced work: these statements make no spans.
    let pool = SqlitePool::connect("sqlite::memory:").await.unwrap();
    sqlx::query("CREATE TABLE incidents (name TEXT PRIMARY KEY, title TEXT)")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO incidents (name, title) VALUES ('incidents/1', 'Mail down')")
        .execute(&pool)
        .await
        .unwrap();
    let server = TestServer::start(
        GrpcServer::new(&config).add_service(IncidentServiceServer::new(SqlIncidents(pool))),
    )
    .await
    .unwrap();
    let uri: http::Uri = format!("http://{}", server.addr()).parse().unwrap();

    // A traced caller (any `itsm*` target is exported) that continues a
    // trace it received, calling through the traced client.
    let caller = tracing::info_span!(target: "itsm_otel_test", "caller");
    propagation::set_parent(
        &caller,
        &format!("00-{TRACE_ID}-{CALLER_PARENT}-01"),
        "vendor=opaque",
    );
    let channel = Traced::new(server.connect().await.unwrap(), &uri);
    let mut client = IncidentServiceClient::new(channel);
    let found = client
        .get_incident(GetIncidentRequest {
            name: "incidents/1".to_owned(),
        })
        .instrument(caller.clone())
        .await
        .unwrap();
    assert_eq!(found.into_inner().name, "incidents/1");
    let missing = client
        .get_incident(GetIncidentRequest {
            name: "incidents/404".to_owned(),
        })
        .instrument(caller.clone())
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    drop(caller);

    // A plain client sending only a `traceparent` header, to a call that fails.
    let mut plain = IncidentServiceClient::new(server.connect().await.unwrap());
    let mut request = Request::new(GetIncidentRequest {
        name: "incidents/broken".to_owned(),
    });
    request.metadata_mut().insert(
        "traceparent",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
            .parse()
            .unwrap(),
    );
    let broken = plain.get_incident(request).await.unwrap_err();
    assert_eq!(broken.code(), Code::Internal);

    // Probes are not traced.
    let probe = tonic_health::pb::health_client::HealthClient::new(server.connect().await.unwrap())
        .check(tonic_health::pb::HealthCheckRequest::default())
        .await
        .unwrap();
    assert_eq!(probe.into_inner().status, 1);

    server.shutdown().await.unwrap();

    // The traced client timed both of its calls, by code.
    let exposition = metrics.render();
    for code in ["OK", "NOT_FOUND"] {
        let counted = exposition.lines().any(|line| {
            line.starts_with("itsm_rpc_client_duration_seconds_count{")
                && line.contains(&format!("code=\"{code}\""))
                && line.contains("method=\"GetIncident\"")
                && line.contains(&format!("service=\"{INCIDENTS}\""))
                && line.ends_with(" 1")
        });
        assert!(counted, "no {code} call counted in:\n{exposition}");
    }

    // Dropping the guard flushes the batch: it blocks, so off the runtime's workers.
    tokio::task::spawn_blocking(move || drop(guard))
        .await
        .unwrap();

    let spans = receiver
        .wait_for(
            |spans| {
                spans.iter().filter(|s| s.kind == SpanKind::Server).count() >= 3
                    && spans.iter().any(|s| s.name == "caller")
            },
            Duration::from_secs(30),
        )
        .await;
    assert!(
        spans.iter().all(|s| s.service == "itsm-otel-test"),
        "{spans:?}"
    );

    let caller = one(&spans, "caller span", |s| s.name == "caller");
    assert_eq!(caller.trace_id, TRACE_ID);
    assert_eq!(caller.parent_span_id, CALLER_PARENT);

    let method = format!("{INCIDENTS}/GetIncident");
    let clients: Vec<&ReceivedSpan> = children(&spans, caller);
    assert_eq!(
        clients.len(),
        2,
        "two calls made under the caller: {clients:?}"
    );
    for client_span in &clients {
        assert_eq!(client_span.kind, SpanKind::Client);
        assert_eq!(client_span.name, method);
        assert_eq!(client_span.attribute("rpc.system"), Some("grpc"));
        assert_eq!(client_span.attribute("rpc.service"), Some(INCIDENTS));
        assert_eq!(client_span.attribute("rpc.method"), Some("GetIncident"));
        assert_eq!(client_span.attribute("server.address"), Some("127.0.0.1"));
        let port = server_port(&uri);
        assert_eq!(client_span.attribute("server.port"), Some(port.as_str()));
    }
    let statuses: Vec<Option<&str>> = clients
        .iter()
        .map(|s| s.attribute("rpc.grpc.status_code"))
        .collect();
    assert!(statuses.contains(&Some("0")), "{statuses:?}");
    assert!(statuses.contains(&Some("5")), "{statuses:?}");

    // Each client span has the server span of its call as its only child.
    for client_span in &clients {
        let servers = children(&spans, client_span);
        assert_eq!(servers.len(), 1, "{servers:?}");
        let server_span = servers[0];
        assert_eq!(server_span.kind, SpanKind::Server);
        assert_eq!(server_span.name, method);
        assert_eq!(server_span.attribute("rpc.system"), Some("grpc"));
        assert_eq!(server_span.attribute("rpc.service"), Some(INCIDENTS));
        assert_eq!(server_span.attribute("rpc.method"), Some("GetIncident"));
        assert_eq!(
            server_span.attribute("rpc.grpc.status_code"),
            client_span.attribute("rpc.grpc.status_code")
        );
        assert!(
            server_span
                .attribute("request_id")
                .is_some_and(|id| !id.is_empty())
        );
        assert!(server_span.attribute("client.address").is_some());
        // NOT_FOUND is the caller's doing, not a fault.
        assert_eq!(server_span.status, "UNSET");

        // The handler's statement, as a client span under the server span.
        let sql = one(&spans, "SQL span", |s| {
            s.parent_span_id == server_span.span_id && s.attribute("db.system.name").is_some()
        });
        assert_eq!(sql.kind, SpanKind::Client);
        assert_eq!(sql.trace_id, TRACE_ID);
        assert_eq!(sql.name, "SELECT incidents");
        assert_eq!(sql.attribute("db.system.name"), Some("sqlite"));
        assert_eq!(sql.attribute("db.operation.name"), Some("SELECT"));
        assert_eq!(sql.attribute("db.collection.name"), Some("incidents"));
        assert_eq!(
            sql.attribute("db.query.text"),
            Some("SELECT name, title FROM incidents WHERE name = ? LIMIT 1")
        );
        let rows = sql.attribute("db.response.returned_rows");
        let expected = if server_span.attribute("rpc.grpc.status_code") == Some("0") {
            "1"
        } else {
            "0"
        };
        assert_eq!(rows, Some(expected), "{sql}");
    }

    // The bare `traceparent` is continued, and INTERNAL marks the span an error.
    let broken = one(&spans, "server span of the failed call", |s| {
        s.kind == SpanKind::Server && s.trace_id == "0af7651916cd43dd8448eb211c80319c"
    });
    assert_eq!(broken.parent_span_id, "b7ad6b7169203331");
    assert_eq!(broken.attribute("rpc.grpc.status_code"), Some("13"));
    assert_eq!(broken.status, "ERROR");

    assert!(
        !spans
            .iter()
            .any(|s| s.attribute("rpc.service") == Some("grpc.health.v1.Health")),
        "{spans:?}"
    );

    // Setup statements ran outside any trace: no root SQL spans.
    assert!(
        spans
            .iter()
            .filter(|s| s.attribute("db.system.name").is_some())
            .all(|s| s.trace_id == TRACE_ID),
        "{spans:?}"
    );
}

fn server_port(uri: &http::Uri) -> String {
    uri.port_u16().map(|p| p.to_string()).unwrap_or_default()
}
