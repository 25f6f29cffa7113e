//! The platform's gRPC server over a real socket: health, reflection, request
//! ids, deadlines and the staged shutdown.
// Test helpers may unwrap and panic: that is how a test reports failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use itsm_platform::{Drain, GrpcServer, ServerError};
use itsm_proto::itsm::incidents::v1::incident_service_client::IncidentServiceClient;
use itsm_proto::itsm::incidents::v1::incident_service_server::{
    IncidentService, IncidentServiceServer,
};
use itsm_proto::itsm::incidents::v1::{GetIncidentRequest, Incident};
use itsm_testkit::{TestServer, test_config};
use tokio_stream::StreamExt;
use tonic::{Code, Request, Response, Status};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

const INCIDENTS: &str = "itsm.incidents.v1.IncidentService";

/// An incident service whose GetIncident takes as long as the name says, in
/// milliseconds ("incidents/slow-300"); every other method is unimplemented.
#[derive(Debug, Clone, Default)]
struct SlowIncidents;

#[tonic::async_trait]
impl IncidentService for SlowIncidents {
    async fn get_incident(
        &self,
        request: Request<GetIncidentRequest>,
    ) -> Result<Response<Incident>, Status> {
        let name = request.into_inner().name;
        let millis: u64 = name
            .strip_prefix("incidents/slow-")
            .and_then(|ms| ms.parse().ok())
            .unwrap_or(0);
        tokio::time::sleep(Duration::from_millis(millis)).await;
        Ok(Response::new(Incident {
            name,
            ..Incident::default()
        }))
    }
}

fn server(config: &itsm_platform::Config) -> GrpcServer {
    GrpcServer::new(config).add_service(IncidentServiceServer::new(SlowIncidents))
}

async fn health(channel: tonic::transport::Channel, service: &str) -> Result<i32, Status> {
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: service.to_owned(),
        })
        .await?;
    Ok(response.into_inner().status)
}

fn get(name: &str) -> GetIncidentRequest {
    GetIncidentRequest {
        name: name.to_owned(),
    }
}

#[tokio::test]
async fn health_reports_serving_for_each_service_and_overall() {
    let server = TestServer::start(server(&test_config())).await.unwrap();
    let channel = server.connect().await.unwrap();
    let serving = ServingStatus::Serving as i32;
    assert_eq!(health(channel.clone(), "").await.unwrap(), serving);
    assert_eq!(health(channel.clone(), INCIDENTS).await.unwrap(), serving);
    let unknown = health(channel, "itsm.nope.v1.NopeService")
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn reflection_lists_the_services_and_describes_their_files() {
    let server = TestServer::start(server(&test_config())).await.unwrap();
    let mut client = ServerReflectionClient::new(server.connect().await.unwrap());

    let requests = tokio_stream::iter([
        ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        },
        ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::FileContainingSymbol(INCIDENTS.to_owned())),
        },
    ]);
    let mut responses = client
        .server_reflection_info(requests)
        .await
        .unwrap()
        .into_inner();

    let listed = responses
        .next()
        .await
        .unwrap()
        .unwrap()
        .message_response
        .unwrap();
    let MessageResponse::ListServicesResponse(listed) = listed else {
        panic!("expected a service list, got {listed:?}");
    };
    let mut names: Vec<_> = listed.service.into_iter().map(|s| s.name).collect();
    names.sort();
    // Only what this server serves: reflection must not advertise the other practices.
    assert_eq!(names, ["grpc.health.v1.Health", INCIDENTS]);

    let file = responses
        .next()
        .await
        .unwrap()
        .unwrap()
        .message_response
        .unwrap();
    let MessageResponse::FileDescriptorResponse(file) = file else {
        panic!("expected file descriptors, got {file:?}");
    };
    assert!(!file.file_descriptor_proto.is_empty());
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn unbuilt_methods_answer_unimplemented() {
    let server = TestServer::start(server(&test_config())).await.unwrap();
    let mut client = IncidentServiceClient::new(server.connect().await.unwrap());
    let error = client
        .list_incidents(itsm_proto::itsm::incidents::v1::ListIncidentsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::Unimplemented);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn every_call_gets_a_request_id_and_keeps_the_callers() {
    let server = TestServer::start(server(&test_config())).await.unwrap();
    let mut client = IncidentServiceClient::new(server.connect().await.unwrap());

    let response = client.get_incident(get("incidents/a")).await.unwrap();
    let generated = response
        .metadata()
        .get("x-request-id")
        .unwrap()
        .to_str()
        .unwrap();
    assert_eq!(generated.len(), 36, "a UUID: {generated}");

    let mut request = Request::new(get("incidents/b"));
    request
        .metadata_mut()
        .insert("x-request-id", "req-from-caller".parse().unwrap());
    let response = client.get_incident(request).await.unwrap();
    assert_eq!(
        response.metadata().get("x-request-id").unwrap(),
        "req-from-caller"
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_call_past_the_request_timeout_is_deadline_exceeded() {
    let config = itsm_platform::Config {
        request_timeout: Duration::from_millis(100),
        ..test_config()
    };
    let server = TestServer::start(server(&config)).await.unwrap();
    let mut client = IncidentServiceClient::new(server.connect().await.unwrap());
    let started = Instant::now();
    let error = client
        .get_incident(get("incidents/slow-5000"))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::DeadlineExceeded, "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
    // A quick call on the same server is unaffected.
    client.get_incident(get("incidents/slow-1")).await.unwrap();
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_call_in_flight_at_shutdown_completes_and_new_connections_are_refused() {
    let mut server = TestServer::start(server(&test_config())).await.unwrap();
    let addr = server.addr();
    let mut client = IncidentServiceClient::new(server.connect().await.unwrap());

    let in_flight =
        tokio::spawn(async move { client.get_incident(get("incidents/slow-700")).await });
    tokio::time::sleep(Duration::from_millis(150)).await;
    server.begin_shutdown();

    let response = in_flight
        .await
        .unwrap()
        .expect("the in-flight call completes");
    assert_eq!(response.into_inner().name, "incidents/slow-700");
    assert_eq!(server.stopped().await.unwrap(), Drain::Complete);

    let refused = tokio::net::TcpStream::connect(addr).await;
    assert!(refused.is_err(), "the listener is closed after shutdown");
}

#[tokio::test]
async fn health_turns_not_serving_before_new_calls_are_refused() {
    let config = itsm_platform::Config {
        shutdown_delay: Duration::from_millis(800),
        ..test_config()
    };
    let mut server = TestServer::start(server(&config)).await.unwrap();
    let channel = server.connect().await.unwrap();
    server.begin_shutdown();
    tokio::time::sleep(Duration::from_millis(100)).await;

    let not_serving = ServingStatus::NotServing as i32;
    assert_eq!(health(channel.clone(), "").await.unwrap(), not_serving);
    assert_eq!(
        health(channel.clone(), INCIDENTS).await.unwrap(),
        not_serving
    );
    // Still serving during the delay, so nothing routed here in the meantime fails.
    let mut client = IncidentServiceClient::new(channel);
    client.get_incident(get("incidents/late")).await.unwrap();
    assert_eq!(server.stopped().await.unwrap(), Drain::Complete);
}

#[tokio::test]
async fn the_grace_period_bounds_the_drain() {
    let config = itsm_platform::Config {
        shutdown_grace: Duration::from_millis(200),
        ..test_config()
    };
    let mut server = TestServer::start(server(&config)).await.unwrap();
    let mut client = IncidentServiceClient::new(server.connect().await.unwrap());
    let _stuck =
        tokio::spawn(async move { client.get_incident(get("incidents/slow-20000")).await });
    tokio::time::sleep(Duration::from_millis(100)).await;

    let started = Instant::now();
    server.begin_shutdown();
    assert_eq!(server.stopped().await.unwrap(), Drain::Abandoned);
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_port_in_use_is_named() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let error = server(&test_config())
        .with_addr(taken.local_addr().unwrap())
        .bind()
        .await
        .unwrap_err();
    assert!(matches!(error, ServerError::PortInUse { .. }), "{error:?}");
    assert!(
        error
            .to_string()
            .starts_with(&format!("port {port} is already in use")),
        "{error}"
    );
}
