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

pub fn bad_fields(status: &Status) -> Vec<String> {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let details = status.get_error_details();
    let bad = details.bad_request().expect("BadRequest details");
    bad.field_violations
        .iter()
        .map(|v| v.field.clone())
        .collect()
}
