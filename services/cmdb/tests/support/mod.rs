//! The harness of the CMDB API tests: the server on a fresh database (PostgreSQL
//! or SQLite), behind the real auth guard with the real `policy.toml`, callers
//! signing HS256 tokens; a Redis cache under a key prefix of its own (PostgreSQL
//! runs) or an in-process one (SQLite runs); a client; and readers of what a
//! change left in the database. Shared by every test binary of this crate
//! (`#[path = "support/mod.rs"] mod support;`); helpers a binary does not use
//! are allowed to be dead there.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use itsm_auth::jwt::{JwtSettings, JwtVerifier, TokenRequest, mint_hs256};
use itsm_auth::{Authenticator, Guard};
use itsm_cmdb::CmdbApi;
use itsm_events::cache::{Cache, MemoryCache, RedisCache, RedisCacheConfig};
use itsm_platform::GrpcServer;
use itsm_proto::itsm::cmdb::v1 as pb;
use itsm_proto::itsm::cmdb::v1::cmdb_service_client::CmdbServiceClient;
use itsm_proto::itsm::cmdb::v1::cmdb_service_server::CmdbServiceServer;
use itsm_store::Db;
use itsm_testkit::{TestDb, TestServer, test_config};
use prost::Message as _;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};
use tonic_types::StatusExt as _;

const SECRET: &[u8] = b"cmdb api test secret, 32 bytes long!";

pub const ADMIN: &str = "root:admin";
pub const CMDB_ADMIN: &str = "carla:cmdb_admin";
pub const AGENT: &str = "bob:agent";
pub const CHANGE_MANAGER: &str = "cora:change_manager";
/// A discovery tool's service account.
pub const SCANNER: &str = "svc-sccm:service";
pub const REQUESTER: &str = "ada:requester";

fn settings() -> JwtSettings {
    JwtSettings {
        issuer: "itsm".into(),
        audience: "itsm".into(),
        clock_skew: Duration::from_secs(30),
        roles_claim: "roles".into(),
        groups_claim: "groups".into(),
    }
}

#[derive(Debug)]
pub struct Harness {
    pub db: Db,
    pub client: CmdbServiceClient<Channel>,
    pub cache: Arc<dyn Cache>,
    server: TestServer,
}

/// The CMDB server on `test_db`, migrated, with the default model seeded on first call.
pub async fn start(test_db: &TestDb) -> Harness {
    let authn = Authenticator::new(Some(JwtVerifier::hs256(SECRET, settings())), None);
    let guard = Guard::new(Arc::new(authn));
    let db = Db::connect(test_db.url()).await.unwrap();
    db.migrate(itsm_cmdb::MIGRATIONS.as_ref()).await.unwrap();
    let cache: Arc<dyn Cache> = match test_db.backend() {
        "postgres" => {
            let config = RedisCacheConfig {
                key_prefix: itsm_testkit::unique_prefix(),
                ..RedisCacheConfig::default()
            };
            Arc::new(
                RedisCache::open(&itsm_testkit::redis_url(), config)
                    .await
                    .unwrap(),
            )
        }
        _ => Arc::new(MemoryCache::new(10_000)),
    };
    let api = CmdbApi::new(db.clone(), Arc::clone(&cache), itsm_cmdb::CACHE_PREFIX);
    let service = guard
        .protect(CmdbServiceServer::new(api), itsm_cmdb::POLICY)
        .unwrap();
    let server = TestServer::start(GrpcServer::new(&test_config()).add_service(service))
        .await
        .unwrap();
    let client = CmdbServiceClient::new(server.connect().await.unwrap());
    Harness {
        db,
        client,
        cache,
        server,
    }
}

/// A token for `who` (`"carla:cmdb_admin"`, roles comma-separated).
pub fn token(who: &str) -> String {
    let (subject, roles) = who.split_once(':').unwrap();
    let roles: Vec<String> = roles.split(',').map(str::to_owned).collect();
    let request = TokenRequest {
        subject,
        name: subject,
        roles: &roles,
        groups: &[],
        ttl: Duration::from_secs(600),
    };
    mint_hs256(SECRET, &settings(), &request).unwrap()
}

/// `message` sent by `who` (`"carla:cmdb_admin"`).
pub fn as_<T>(who: &str, message: T) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {}", token(who)).parse().unwrap(),
    );
    request
}

/// A string attribute value.
pub fn text(value: &str) -> pb::AttributeValue {
    pb::AttributeValue {
        value: Some(pb::attribute_value::Value::StringValue(value.to_owned())),
    }
}

/// A number attribute value.
pub fn number(value: f64) -> pb::AttributeValue {
    pb::AttributeValue {
        value: Some(pb::attribute_value::Value::NumberValue(value)),
    }
}

/// A CI of `class` ("linux_server") named `display_name` with these attributes.
pub fn ci(class: &str, display_name: &str, attributes: &[(&str, pb::AttributeValue)]) -> pb::Ci {
    pb::Ci {
        ci_class: format!("classes/{class}"),
        display_name: display_name.to_owned(),
        status: pb::CiStatus::Operational as i32,
        attributes: attributes
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect(),
        ..pb::Ci::default()
    }
}

impl Harness {
    /// A new client on a connection of its own (for concurrent calls).
    pub async fn client(&self) -> CmdbServiceClient<Channel> {
        CmdbServiceClient::new(self.server.connect().await.unwrap())
    }

    /// Creates `ci` as the CMDB admin.
    pub async fn create(&mut self, ci: pb::Ci) -> pb::Ci {
        let request = pb::CreateCiRequest {
            ci: Some(ci),
            request_id: String::new(),
            validate_only: false,
        };
        self.client
            .create_ci(as_(CMDB_ADMIN, request))
            .await
            .unwrap()
            .into_inner()
    }

    /// Relates `source` to `target` by `type_id` ("runs_on") as the CMDB admin.
    pub async fn relate(&mut self, source: &str, type_id: &str, target: &str) -> pb::Relationship {
        let request = pb::CreateRelationshipRequest {
            relationship: Some(pb::Relationship {
                r#type: format!("relationshipTypes/{type_id}"),
                source_ci: source.to_owned(),
                target_ci: target.to_owned(),
                ..pb::Relationship::default()
            }),
            request_id: String::new(),
        };
        self.client
            .create_relationship(as_(CMDB_ADMIN, request))
            .await
            .unwrap()
            .into_inner()
    }

    pub async fn get(&mut self, name: &str) -> Result<pb::Ci, Status> {
        let request = pb::GetCiRequest {
            name: name.to_owned(),
            read_mask: None,
        };
        let reply = self.client.get_ci(as_(AGENT, request)).await;
        reply.map(tonic::Response::into_inner)
    }

    pub async fn count(&self, table: &str) -> i64 {
        let sql = format!("SELECT COUNT(*) FROM {table}");
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_one(self.db.pool())
            .await
            .unwrap()
    }

    /// The envelopes of the outbox, in order.
    pub async fn events(&self) -> Vec<itsm_proto::itsm::events::v1::Event> {
        let rows: Vec<(Vec<u8>,)> = sqlx::query_as("SELECT payload FROM outbox ORDER BY id")
            .fetch_all(self.db.pool())
            .await
            .unwrap();
        rows.iter()
            .map(|(bytes,)| itsm_proto::itsm::events::v1::Event::decode(bytes.as_slice()).unwrap())
            .collect()
    }

    /// The types of the events about `subject`, in order.
    pub async fn event_names(&self, subject: &str) -> Vec<String> {
        self.events()
            .await
            .into_iter()
            .filter(|e| e.subject == subject)
            .map(|e| e.r#type)
            .collect()
    }
}

/// The fields an INVALID_ARGUMENT names, in order.
pub fn bad_fields(status: &Status) -> Vec<String> {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let details = status.get_error_details();
    let bad = details.bad_request().expect("BadRequest details");
    bad.field_violations
        .iter()
        .map(|v| v.field.clone())
        .collect()
}

/// `(type, subject, description)` of a FAILED_PRECONDITION's one violation.
pub fn precondition(status: &Status) -> (String, String, String) {
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    let details = status.get_error_details();
    let failure = details
        .precondition_failure()
        .expect("PreconditionFailure details");
    assert_eq!(failure.violations.len(), 1);
    let v = &failure.violations[0];
    (v.r#type.clone(), v.subject.clone(), v.description.clone())
}
