//! The harness of the API tests: the identity server on a fresh database,
//! a client, and a stand-in for the auth layer that puts a named caller
//! into each request.

use std::task::{Context, Poll};

use itsm_auth::{Principal, PrincipalKind};
use itsm_identity::IdentityApi;
use itsm_platform::GrpcServer;
use itsm_proto::itsm::identity::v1 as pb;
use itsm_proto::itsm::identity::v1::identity_service_client::IdentityServiceClient;
use itsm_proto::itsm::identity::v1::identity_service_server::IdentityServiceServer;
use itsm_store::Db;
use itsm_testkit::{TestDb, TestServer, test_config};
use tonic::body::Body;
use tonic::codegen::{Service, http};
use tonic::server::NamedService;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};
use tonic_types::StatusExt as _;

const DAY_SECONDS: i64 = 24 * 3600;
/// Who the test interceptor makes the caller: `<subject>:<role>,<role>`.
const CALLER_HEADER: &str = "x-test-caller";

/// Until the auth layer exists: puts the caller a test names into the
/// request, as the layer will after checking a credential. A tower service
/// (not an interceptor) so the server sees the plain body type it serves.
#[derive(Clone)]
struct AsCaller<S>(S);

impl<S: NamedService> NamedService for AsCaller<S> {
    const NAME: &'static str = S::NAME;
}

impl<S: Service<http::Request<Body>>> Service<http::Request<Body>> for AsCaller<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<Body>) -> Self::Future {
        let named = request
            .headers()
            .get(CALLER_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if let Some((subject, roles)) = named.as_deref().and_then(|v| v.split_once(':')) {
            request.extensions_mut().insert(Principal {
                subject: subject.to_owned(),
                display_name: format!("Test {subject}"),
                kind: PrincipalKind::User,
                roles: roles.split(',').map(str::to_owned).collect(),
                groups: vec![],
                tenant: String::new(),
            });
        }
        self.0.call(request)
    }
}

pub struct Harness {
    pub db: Db,
    pub client: IdentityServiceClient<Channel>,
    _server: TestServer,
}

pub async fn start(test_db: &TestDb) -> Harness {
    let db = Db::connect(test_db.url()).await.unwrap();
    db.migrate(itsm_identity::MIGRATIONS.as_ref())
        .await
        .unwrap();
    let service = AsCaller(IdentityServiceServer::new(IdentityApi::new(db.clone())));
    let server = TestServer::start(GrpcServer::new(&test_config()).add_service(service))
        .await
        .unwrap();
    let client = IdentityServiceClient::new(server.connect().await.unwrap());
    Harness {
        db,
        client,
        _server: server,
    }
}

/// `message` sent as `caller` (`"alice:admin"`).
pub fn as_<T>(caller: &str, message: T) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert(CALLER_HEADER, caller.parse().unwrap());
    request
}

pub const ADMIN: &str = "alice:admin";
pub const SERVICE: &str = "svc-incidents:service";
pub const AGENT: &str = "bob:agent";

pub fn in_days(days: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: itsm_store::now_micros() / 1_000_000 + days * DAY_SECONDS,
        nanos: 0,
    }
}

pub fn key_for(account: &str, roles: &[&str]) -> pb::ApiKey {
    pb::ApiKey {
        display_name: format!("{account} key"),
        service_account: account.to_owned(),
        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        description: "for tests".into(),
        expire_time: Some(in_days(90)),
        ..pb::ApiKey::default()
    }
}

pub fn create_request(key: pb::ApiKey) -> pb::CreateApiKeyRequest {
    pb::CreateApiKeyRequest {
        api_key: Some(key),
        request_id: String::new(),
    }
}

impl Harness {
    pub async fn create(&mut self, account: &str, roles: &[&str]) -> pb::CreateApiKeyResponse {
        let request = create_request(key_for(account, roles));
        self.client
            .create_api_key(as_(ADMIN, request))
            .await
            .unwrap()
            .into_inner()
    }

    pub async fn verify(&mut self, key: &str) -> Result<pb::VerifyApiKeyResponse, Status> {
        let request = pb::VerifyApiKeyRequest {
            key: key.to_owned(),
        };
        let reply = self.client.verify_api_key(as_(SERVICE, request)).await;
        reply.map(tonic::Response::into_inner)
    }

    pub async fn revoke(&mut self, name: &str, etag: &str) -> Result<pb::ApiKey, Status> {
        let request = pb::RevokeApiKeyRequest {
            name: name.to_owned(),
            reason: "rotated".into(),
            etag: etag.to_owned(),
        };
        let reply = self.client.revoke_api_key(as_(ADMIN, request)).await;
        reply.map(tonic::Response::into_inner)
    }

    pub async fn get(&mut self, name: &str) -> Result<pb::ApiKey, Status> {
        let request = pb::GetApiKeyRequest {
            name: name.to_owned(),
        };
        let reply = self.client.get_api_key(as_("ann:auditor", request)).await;
        reply.map(tonic::Response::into_inner)
    }

    pub async fn list(
        &mut self,
        filter: &str,
        page_size: i32,
        token: &str,
    ) -> pb::ListApiKeysResponse {
        let request = pb::ListApiKeysRequest {
            page_size,
            page_token: token.to_owned(),
            filter: filter.to_owned(),
            order_by: String::new(),
        };
        let reply = self.client.list_api_keys(as_(ADMIN, request)).await;
        reply.unwrap().into_inner()
    }

    pub async fn count(&self, table: &str) -> i64 {
        let sql = format!("SELECT COUNT(*) FROM {table}");
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_one(self.db.pool())
            .await
            .unwrap()
    }
}

/// A group to create: `members` as given, the optional fields set.
pub fn group_for(display_name: &str, members: &[&str]) -> pb::Group {
    pb::Group {
        display_name: display_name.to_owned(),
        description: "for tests".into(),
        email: "team@example.com".into(),
        manager: "grace".into(),
        members: members.iter().map(|m| (*m).to_owned()).collect(),
        ..pb::Group::default()
    }
}

pub fn create_group_request(group_id: &str, group: pb::Group) -> pb::CreateGroupRequest {
    pb::CreateGroupRequest {
        group: Some(group),
        group_id: group_id.to_owned(),
        request_id: String::new(),
    }
}

impl Harness {
    /// Creates `groups/<group_id>` as an admin.
    pub async fn create_group(&mut self, group_id: &str, members: &[&str]) -> pb::Group {
        let group = group_for(&format!("{group_id} team"), members);
        let request = create_group_request(group_id, group);
        self.client
            .create_group(as_(ADMIN, request))
            .await
            .unwrap()
            .into_inner()
    }

    pub async fn get_group(&mut self, name: &str) -> Result<pb::Group, Status> {
        let request = pb::GetGroupRequest {
            name: name.to_owned(),
        };
        let reply = self.client.get_group(as_(AGENT, request)).await;
        reply.map(tonic::Response::into_inner)
    }

    pub async fn list_groups(
        &mut self,
        request: pb::ListGroupsRequest,
    ) -> Result<pb::ListGroupsResponse, Status> {
        let reply = self.client.list_groups(as_(AGENT, request)).await;
        reply.map(tonic::Response::into_inner)
    }

    pub async fn update_group(
        &mut self,
        group: pb::Group,
        paths: &[&str],
        etag: &str,
    ) -> Result<pb::Group, Status> {
        let request = pb::UpdateGroupRequest {
            group: Some(group),
            update_mask: Some(prost_types::FieldMask {
                paths: paths.iter().map(|p| (*p).to_owned()).collect(),
            }),
            etag: etag.to_owned(),
        };
        let reply = self.client.update_group(as_(ADMIN, request)).await;
        reply.map(tonic::Response::into_inner)
    }

    pub async fn delete_group(&mut self, name: &str, etag: &str) -> Result<(), Status> {
        let request = pb::DeleteGroupRequest {
            name: name.to_owned(),
            etag: etag.to_owned(),
        };
        let reply = self.client.delete_group(as_(ADMIN, request)).await;
        reply.map(|_| ())
    }

    pub async fn add_member(
        &mut self,
        group: &str,
        member: &str,
        etag: &str,
    ) -> Result<pb::Group, Status> {
        let request = pb::AddGroupMemberRequest {
            group: group.to_owned(),
            member: member.to_owned(),
            etag: etag.to_owned(),
        };
        let reply = self.client.add_group_member(as_(ADMIN, request)).await;
        reply.map(tonic::Response::into_inner)
    }

    pub async fn remove_member(&mut self, group: &str, member: &str) -> Result<pb::Group, Status> {
        let request = pb::RemoveGroupMemberRequest {
            group: group.to_owned(),
            member: member.to_owned(),
        };
        let reply = self.client.remove_group_member(as_(ADMIN, request)).await;
        reply.map(tonic::Response::into_inner)
    }

    /// CheckMembership as a practice asks it: with the service role.
    pub async fn check(
        &mut self,
        group: &str,
        member: &str,
    ) -> Result<pb::CheckMembershipResponse, Status> {
        let request = pb::CheckMembershipRequest {
            group: group.to_owned(),
            member: member.to_owned(),
        };
        let reply = self.client.check_membership(as_(SERVICE, request)).await;
        reply.map(tonic::Response::into_inner)
    }

    /// The audit actions recorded for `resource`, oldest first.
    pub async fn audit_actions(&self, resource: &str) -> Vec<String> {
        sqlx::query_scalar("SELECT action FROM audit_log WHERE resource = $1 ORDER BY id")
            .bind(resource)
            .fetch_all(self.db.pool())
            .await
            .unwrap()
    }
}

pub fn bad_fields(status: &Status) -> Vec<String> {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let details = status.get_error_details();
    let bad = details.bad_request().expect("BadRequest details");
    bad.field_violations
        .iter()
        .map(|v| v.field.clone())
        .collect()
}
