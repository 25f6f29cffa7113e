//! API keys across services, as deployed: `itsm serve identity` issues a key,
//! `itsm serve incidents` (configured with ITSM_IDENTITY_ADDR) accepts it by
//! asking the identity service, and grants exactly the key's roles.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/process.rs"]
mod support;

use itsm_proto::itsm::identity::v1::identity_service_client::IdentityServiceClient;
use itsm_proto::itsm::identity::v1::{ApiKey, CreateApiKeyRequest, RevokeApiKeyRequest};
use itsm_proto::itsm::incidents::v1::incident_service_client::IncidentServiceClient;
use itsm_proto::itsm::incidents::v1::{
    GetIncidentRequest, GetPriorityMatrixRequest, UpdatePriorityMatrixRequest,
};
use support::{admin_token, connect, serve, start};
use tonic::{Code, Request};

fn as_admin<T>(message: T) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {}", admin_token()).parse().unwrap(),
    );
    request
}

fn with_key<T>(message: T, key: &str) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("x-api-key", key.parse().unwrap());
    request
}

async fn create_key(
    identity: &mut IdentityServiceClient<tonic::transport::Channel>,
    account: &str,
    roles: &[&str],
) -> (String, String) {
    let expire = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 30 * 86_400;
    let response = identity
        .create_api_key(as_admin(CreateApiKeyRequest {
            api_key: Some(ApiKey {
                display_name: format!("{account} key"),
                service_account: account.to_owned(),
                roles: roles.iter().map(|r| (*r).to_owned()).collect(),
                expire_time: Some(prost_types::Timestamp {
                    seconds: i64::try_from(expire).unwrap(),
                    nanos: 0,
                }),
                ..ApiKey::default()
            }),
            request_id: String::new(),
        }))
        .await
        .unwrap()
        .into_inner();
    (response.secret, response.api_key.unwrap().name)
}

#[tokio::test]
async fn a_key_issued_by_identity_works_at_another_service_with_its_roles_only() {
    let mut identity_process = start(serve("identity")).await;
    let mut identity = IdentityServiceClient::new(connect(&identity_process.addr).await);
    let mut incidents_command = serve("incidents");
    incidents_command.env(
        "ITSM_IDENTITY_ADDR",
        format!("http://{}", identity_process.addr),
    );
    let mut incidents_process = start(incidents_command).await;
    let mut incidents = IncidentServiceClient::new(connect(&incidents_process.addr).await);

    let (agent_key, _) = create_key(&mut identity, "svc-monitoring", &["agent"]).await;
    let past_the_guard = incidents
        .get_incident(with_key(
            GetIncidentRequest {
                name: "incidents/INC0000001".into(),
            },
            &agent_key,
        ))
        .await
        .unwrap_err();
    assert_eq!(
        past_the_guard.code(),
        Code::NotFound,
        "the key authenticated and authorized; no such incident yet: {past_the_guard:?}"
    );
    let matrix = incidents
        .get_priority_matrix(with_key(GetPriorityMatrixRequest {}, &agent_key))
        .await
        .expect("agents read the priority matrix")
        .into_inner();
    assert_eq!(matrix.cells.len(), 9);
    let denied = incidents
        .update_priority_matrix(with_key(UpdatePriorityMatrixRequest::default(), &agent_key))
        .await
        .unwrap_err();
    assert_eq!(
        denied.code(),
        Code::PermissionDenied,
        "agents may not change the matrix"
    );
    assert!(
        denied
            .message()
            .contains("incidents.priority_matrix.update"),
        "{}",
        denied.message()
    );

    // A key revoked before its first use is refused everywhere.
    let (revoked_key, revoked_name) = create_key(&mut identity, "svc-ci", &["agent"]).await;
    identity
        .revoke_api_key(as_admin(RevokeApiKeyRequest {
            name: revoked_name,
            reason: "leaked".into(),
            etag: String::new(),
        }))
        .await
        .unwrap();
    let refused = incidents
        .get_incident(with_key(GetIncidentRequest::default(), &revoked_key))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);
    assert!(
        refused.message().contains("revoked"),
        "{}",
        refused.message()
    );
    assert!(!refused.message().contains(&revoked_key));

    let forged = format!("{}{}", &agent_key[..agent_key.len() - 4], "AAAA");
    let refused = incidents
        .get_incident(with_key(GetIncidentRequest::default(), &forged))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);
    let garbage = incidents
        .get_incident(with_key(GetIncidentRequest::default(), "hunter2"))
        .await
        .unwrap_err();
    assert_eq!(garbage.code(), Code::Unauthenticated);
    assert!(
        garbage.message().starts_with("malformed API key"),
        "{}",
        garbage.message()
    );

    // Identity down: keys cannot be checked, so the call is UNAVAILABLE, not a wrong answer.
    identity_process.child.kill().await.unwrap();
    let (fresh_key, _) = (format!("itsm_0123456789ab_{}", "x".repeat(43)), ());
    let unavailable = incidents
        .get_incident(with_key(GetIncidentRequest::default(), &fresh_key))
        .await
        .unwrap_err();
    assert_eq!(unavailable.code(), Code::Unavailable, "{unavailable:?}");
    assert!(
        unavailable
            .message()
            .starts_with("cannot verify the API key"),
        "{}",
        unavailable.message()
    );
    incidents_process.child.kill().await.unwrap();
}
