//! `itsm serve` and the OpenTelemetry environment, from the outside: on
//! PostgreSQL (the store's pool) a call's statements are spans under the
//! call's server span, which continues the caller's `traceparent`; a protocol
//! this build does not ship stops the process at startup with the variable
//! named.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/process.rs"]
mod support;

use std::time::Duration;

use itsm_proto::itsm::cmdb::v1 as cmdb;
use itsm_proto::itsm::cmdb::v1::cmdb_service_client::CmdbServiceClient;
use itsm_testkit::TestDb;
use itsm_testkit::otlp::{OtlpReceiver, SpanKind, children};
use support::{admin_token, connect, exit_code_within, output, serve, sigterm, start};
use tonic::Request;

#[tokio::test]
async fn statements_on_postgres_are_spans_under_the_call_that_ran_them() {
    let db = TestDb::postgres().await;
    let receiver = OtlpReceiver::start().await;
    let mut command = serve("cmdb");
    command
        .env("ITSM_DATABASE_URL", db.url())
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint())
        .env("OTEL_BSP_SCHEDULE_DELAY", "200");
    let mut cmdb = start(command).await;

    let trace_id = uuid::Uuid::new_v4().simple().to_string();
    let parent = uuid::Uuid::new_v4().simple().to_string()[..16].to_owned();
    let mut request = Request::new(cmdb::GetCiRequest {
        name: format!("cis/{}", uuid::Uuid::new_v4()),
        ..cmdb::GetCiRequest::default()
    });
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {}", admin_token()).parse().unwrap(),
    );
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{trace_id}-{parent}-01").parse().unwrap(),
    );
    let missing = CmdbServiceClient::new(connect(&cmdb.addr).await)
        .get_ci(request)
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound, "{missing:?}");

    let spans = receiver
        .wait_for(
            |spans| {
                spans
                    .iter()
                    .any(|s| s.trace_id == trace_id && s.attribute("db.system.name").is_some())
            },
            Duration::from_secs(60),
        )
        .await;
    let server = spans
        .iter()
        .find(|s| s.trace_id == trace_id && s.kind == SpanKind::Server)
        .unwrap_or_else(|| panic!("no server span in {spans:#?}"));
    assert_eq!(server.service, "itsm-cmdb");
    assert_eq!(server.parent_span_id, parent);
    assert_eq!(server.name, "itsm.cmdb.v1.CmdbService/GetCi");
    assert_eq!(server.attribute("rpc.grpc.status_code"), Some("5"));

    let statements: Vec<_> = children(&spans, server)
        .into_iter()
        .filter(|s| s.attribute("db.system.name").is_some())
        .collect();
    assert!(!statements.is_empty(), "{spans:#?}");
    for statement in &statements {
        assert_eq!(statement.kind, SpanKind::Client);
        assert_eq!(statement.attribute("db.system.name"), Some("postgresql"));
        assert!(
            statement
                .attribute("db.query.text")
                .is_some_and(|text| !text.is_empty()),
            "{statement}"
        );
        assert!(
            statement.attribute("db.operation.name").is_some(),
            "{statement}"
        );
    }
    assert!(
        statements
            .iter()
            .any(|s| s.attribute("db.operation.name") == Some("SELECT")),
        "{statements:#?}"
    );

    sigterm(&cmdb.child);
    assert_eq!(
        exit_code_within(&mut cmdb.child, Duration::from_secs(30)).await,
        0
    );
}

#[tokio::test]
async fn an_otlp_protocol_other_than_grpc_stops_startup_naming_the_variable() {
    let mut command = serve("cmdb");
    command
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf");
    let (code, _stdout, stderr) = output(&mut command).await;
    assert_ne!(code, 0);
    assert!(
        stderr.contains("OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf") && stderr.contains("grpc"),
        "{stderr}"
    );
}
