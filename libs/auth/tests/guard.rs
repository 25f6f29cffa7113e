//! The guard in front of a real gRPC server: anonymous and role-less callers
//! are refused before any handler runs, the policy decides the rest, and the
//! principal reaches the handler.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use itsm_auth::jwt::{JwtSettings, JwtVerifier, TokenRequest, mint_hs256};
use itsm_auth::{Authenticator, Guard, principal};
use itsm_platform::GrpcServer;
use itsm_proto::itsm::incidents::v1::incident_service_client::IncidentServiceClient;
use itsm_proto::itsm::incidents::v1::incident_service_server::{
    IncidentService, IncidentServiceServer,
};
use itsm_proto::itsm::incidents::v1::{GetIncidentRequest, Incident, ListIncidentsRequest};
use itsm_testkit::{TestServer, test_config};
use tonic::{Code, Request, Response, Status};

const SECRET: &[u8] = b"guard test secret, 32 bytes long!!";

const POLICY: &str = r#"
service = "itsm.incidents.v1.IncidentService"

[methods]
GetIncident = { permission = "incidents.incident.get", read = true, roles = ["requester", "agent"] }
ListIncidents = { permission = "incidents.incident.list", read = true, roles = ["agent"] }
"#;

/// Echoes the caller's subject as the incident's caller.
#[derive(Debug, Clone)]
struct WhoAmI;

#[tonic::async_trait]
impl IncidentService for WhoAmI {
    async fn get_incident(
        &self,
        request: Request<GetIncidentRequest>,
    ) -> Result<Response<Incident>, Status> {
        let caller = principal(&request)?.subject.clone();
        // What a call to another service on the caller's behalf would carry.
        let onward = itsm_auth::forward::forward(&request, ());
        let header = |name: &str| {
            onward
                .metadata()
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default()
        };
        Ok(Response::new(Incident {
            caller,
            description: header("authorization"),
            category: header("x-request-id"),
            ..Incident::default()
        }))
    }
}

fn settings() -> JwtSettings {
    JwtSettings {
        issuer: "itsm".into(),
        audience: "itsm".into(),
        clock_skew: Duration::from_secs(30),
        roles_claim: "roles".into(),
        groups_claim: "groups".into(),
    }
}

fn token(subject: &str, roles: &[&str]) -> String {
    let roles: Vec<String> = roles.iter().map(|r| (*r).to_owned()).collect();
    let request = TokenRequest {
        subject,
        name: subject,
        roles: &roles,
        groups: &[],
        ttl: Duration::from_secs(300),
    };
    mint_hs256(SECRET, &settings(), &request).unwrap()
}

async fn server() -> TestServer {
    let authn = Authenticator::new(Some(JwtVerifier::hs256(SECRET, settings())), None);
    let guard = Guard::new(Arc::new(authn));
    let service = guard
        .protect(IncidentServiceServer::new(WhoAmI), POLICY)
        .unwrap();
    TestServer::start(GrpcServer::new(&test_config()).add_service(service))
        .await
        .unwrap()
}

fn with_token<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

#[tokio::test]
async fn anonymous_calls_are_unauthenticated() {
    let server = server().await;
    let mut client = IncidentServiceClient::new(server.connect().await.unwrap());
    let error = client
        .get_incident(GetIncidentRequest::default())
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::Unauthenticated);
    assert!(
        error.message().starts_with("no credentials"),
        "{}",
        error.message()
    );
    let error = client
        .get_incident(with_token(GetIncidentRequest::default(), "garbage"))
        .await
        .unwrap_err();
    assert_eq!(
        (error.code(), error.message()),
        (Code::Unauthenticated, "malformed bearer token: not a JWT")
    );
}

#[tokio::test]
async fn callers_without_the_role_are_denied_naming_the_permission() {
    let server = server().await;
    let mut client = IncidentServiceClient::new(server.connect().await.unwrap());
    let error = client
        .get_incident(with_token(GetIncidentRequest::default(), &token("u1", &[])))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::PermissionDenied);
    assert!(
        error.message().contains("incidents.incident.get"),
        "{}",
        error.message()
    );
    let error = client
        .list_incidents(with_token(
            ListIncidentsRequest::default(),
            &token("u1", &["requester"]),
        ))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::PermissionDenied);
    assert!(error.message().contains("incidents.incident.list"));
}

#[tokio::test]
async fn permitted_callers_reach_the_handler_as_themselves() {
    let server = server().await;
    let mut client = IncidentServiceClient::new(server.connect().await.unwrap());
    let incident = client
        .get_incident(with_token(
            GetIncidentRequest::default(),
            &token("ada", &["requester"]),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(incident.caller, "ada");
    assert_eq!(
        incident.description,
        format!("Bearer {}", token("ada", &["requester"])),
        "credentials forwarded"
    );
    assert_eq!(incident.category.len(), 36, "the request id travels on too");
    // Auditors read; admins call anything listed.
    assert!(
        client
            .get_incident(with_token(
                GetIncidentRequest::default(),
                &token("aud", &["auditor"])
            ))
            .await
            .is_ok()
    );
    let unbuilt = client
        .list_incidents(with_token(
            ListIncidentsRequest::default(),
            &token("root", &["admin"]),
        ))
        .await
        .unwrap_err();
    assert_eq!(
        unbuilt.code(),
        Code::Unimplemented,
        "past the guard, into the (unbuilt) handler"
    );
}

#[tokio::test]
async fn methods_missing_from_the_table_are_refused_to_everyone() {
    let server = server().await;
    let mut client = IncidentServiceClient::new(server.connect().await.unwrap());
    let request = itsm_proto::itsm::incidents::v1::CreateIncidentRequest::default();
    let error = client
        .create_incident(with_token(request, &token("root", &["admin"])))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::PermissionDenied);
    assert!(
        error.message().contains("has no rule"),
        "{}",
        error.message()
    );
}

#[tokio::test]
async fn health_stays_open_for_probes() {
    let server = server().await;
    let mut health =
        tonic_health::pb::health_client::HealthClient::new(server.connect().await.unwrap());
    let response = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "itsm.incidents.v1.IncidentService".into(),
        })
        .await
        .unwrap();
    assert_eq!(response.into_inner().status, 1);
}

#[test]
fn a_table_for_another_service_is_refused() {
    let guard = Guard::new(Arc::new(Authenticator::default()));
    let other = POLICY.replace(
        "itsm.incidents.v1.IncidentService",
        "itsm.cmdb.v1.CmdbService",
    );
    let error = guard
        .protect(IncidentServiceServer::new(WhoAmI), &other)
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("not itsm.incidents.v1.IncidentService"),
        "{error}"
    );
}
