//! With no exporter configured (here: an endpoint, but `OTEL_SDK_DISABLED`)
//! telemetry installs no OpenTelemetry layer: spans carry no trace context,
//! nothing is sent, and a call that arrives with a `traceparent` is served as
//! usual. Its own binary: telemetry is process-global.
// Test helpers may unwrap and panic: that is how a test reports failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use itsm_platform::GrpcServer;
use itsm_platform::telemetry::{self, propagation};
use itsm_proto::itsm::incidents::v1::GetIncidentRequest;
use itsm_proto::itsm::incidents::v1::incident_service_client::IncidentServiceClient;
use itsm_proto::itsm::incidents::v1::incident_service_server::{
    IncidentService, IncidentServiceServer,
};
use itsm_testkit::otlp::OtlpReceiver;
use itsm_testkit::{TestServer, test_config};
use tonic::{Code, Request};

#[derive(Debug, Clone, Copy)]
struct NoIncidents;

#[tonic::async_trait]
impl IncidentService for NoIncidents {}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_sdk_exports_nothing_and_installs_no_layer() {
    let receiver = OtlpReceiver::start().await;
    let endpoint = receiver.endpoint();
    let mut config = test_config();
    config.log = "warn".to_owned();
    let guard = telemetry::init_with_env(&config, "itsm-otel-off", |name| match name {
        "OTEL_EXPORTER_OTLP_ENDPOINT" => Some(endpoint.clone()),
        "OTEL_SDK_DISABLED" => Some("true".to_owned()),
        _ => None,
    })
    .unwrap();
    assert!(!guard.exporting());

    // An OpenTelemetry layer would give this span a context to propagate.
    let span = tracing::error_span!(target: "itsm_otel_off", "work");
    assert!(propagation::of(&span).is_empty());
    assert!(span.in_scope(propagation::current).is_empty());

    let server = TestServer::start(
        GrpcServer::new(&config).add_service(IncidentServiceServer::new(NoIncidents)),
    )
    .await
    .unwrap();
    let mut client = IncidentServiceClient::new(server.connect().await.unwrap());
    let mut request = Request::new(GetIncidentRequest {
        name: "incidents/1".to_owned(),
    });
    request.metadata_mut().insert(
        "traceparent",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
            .parse()
            .unwrap(),
    );
    let status = client.get_incident(request).await.unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented);
    server.shutdown().await.unwrap();
    tokio::task::spawn_blocking(move || drop(guard))
        .await
        .unwrap();

    // Nothing was configured to send; give a stray exporter time to show up anyway.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(receiver.spans().is_empty(), "{:?}", receiver.spans());
}
