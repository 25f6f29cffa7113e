//! The harness of the automation tests: the incidents server on a fresh
//! database behind the real auth guard and `policy.toml`, asking a real
//! identity service (its own database, same backend) for group members,
//! and a CMDB chosen by the test.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use itsm_auth::forward::OwnCredential;
use itsm_auth::jwt::{JwtSettings, JwtVerifier, TokenRequest, mint_hs256};
use itsm_auth::{Authenticator, Guard};
use itsm_incidents::directory::Cmdb;
use itsm_incidents::{IdentityDirectory, IncidentsApi};
use itsm_platform::{ApiError, GrpcServer};
use itsm_proto::itsm::identity::v1 as identity_pb;
use itsm_proto::itsm::identity::v1::identity_service_client::IdentityServiceClient;
use itsm_proto::itsm::incidents::v1 as pb;
use itsm_proto::itsm::incidents::v1::incident_service_client::IncidentServiceClient;
use itsm_proto::itsm::incidents::v1::incident_service_server::IncidentServiceServer;
use itsm_store::Db;
use itsm_testkit::{TestDb, TestServer, test_config};
use prost::Message as _;
use tonic::transport::Channel;
use tonic::{Request, Status};

const SECRET: &[u8] = b"incidents automation test secret!!";

pub const ADMIN: &str = "root:admin";
pub const AGENT: &str = "bob:agent";
pub const ADA: &str = "ada:requester";

/// The groups identity knows: `ops` has three members.
pub const GROUPS: &[(&str, &[&str])] = &[
    ("ops", &["ann", "ben", "cat"]),
    ("desk", &["carl", "dora"]),
    ("network", &["nina"]),
];

fn settings() -> JwtSettings {
    JwtSettings {
        issuer: "itsm".into(),
        audience: "itsm".into(),
        clock_skew: Duration::from_secs(30),
        roles_claim: "roles".into(),
        groups_claim: "groups".into(),
    }
}

/// A CMDB answering from a table: CIs it does not list have no support group.
#[derive(Debug, Default)]
pub struct TableCmdb(pub HashMap<String, String>);

#[async_trait]
impl Cmdb for TableCmdb {
    async fn support_group(&self, ci: &str) -> Result<Option<String>, ApiError> {
        Ok(self.0.get(ci).cloned())
    }
}

pub struct Harness {
    pub db: Db,
    pub client: IncidentServiceClient<Channel>,
    _server: TestServer,
    identity: Option<TestServer>,
    _identity_db: TestDb,
}

/// The server, asking `cmdb` for CI support groups.
pub async fn start(test_db: &TestDb, cmdb: Arc<dyn Cmdb>) -> Harness {
    let authn = Authenticator::new(Some(JwtVerifier::hs256(SECRET, settings())), None);
    let guard = Guard::new(Arc::new(authn));

    let identity_db = match test_db.backend() {
        "postgres" => TestDb::postgres().await,
        _ => TestDb::sqlite().await,
    };
    let db = Db::connect(identity_db.url()).await.unwrap();
    db.migrate(itsm_identity::MIGRATIONS.as_ref())
        .await
        .unwrap();
    let service = guard
        .protect(itsm_identity::service(db), itsm_identity::POLICY)
        .unwrap();
    let identity = TestServer::start(GrpcServer::new(&test_config()).add_service(service))
        .await
        .unwrap();
    let mut admin = IdentityServiceClient::new(identity.connect().await.unwrap());
    for (id, members) in GROUPS {
        let request = identity_pb::CreateGroupRequest {
            group: Some(identity_pb::Group {
                display_name: format!("{id} team"),
                members: members.iter().map(|m| (*m).to_owned()).collect(),
                ..identity_pb::Group::default()
            }),
            group_id: (*id).to_owned(),
            request_id: String::new(),
        };
        admin.create_group(as_(ADMIN, request)).await.unwrap();
    }
    let credential = OwnCredential::bearer(&token("svc-incidents:service")).unwrap();
    let addr = format!("http://{}", identity.addr());
    let directory = IdentityDirectory::connect_lazy(&addr, credential).unwrap();

    let db = Db::connect(test_db.url()).await.unwrap();
    db.migrate(itsm_incidents::MIGRATIONS.as_ref())
        .await
        .unwrap();
    let api = IncidentsApi::new(db.clone(), Arc::new(directory)).with_cmdb(cmdb);
    let service = guard
        .protect(IncidentServiceServer::new(api), itsm_incidents::POLICY)
        .unwrap();
    let server = TestServer::start(GrpcServer::new(&test_config()).add_service(service))
        .await
        .unwrap();
    let client = IncidentServiceClient::new(server.connect().await.unwrap());
    Harness {
        db,
        client,
        _server: server,
        identity: Some(identity),
        _identity_db: identity_db,
    }
}

/// A token for `who` (`"ada:requester"`).
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

/// `message` sent by `who`.
pub fn as_<T>(who: &str, message: T) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {}", token(who)).parse().unwrap(),
    );
    request
}

/// A rule sending incidents matching `condition` to `group`.
pub fn rule(
    order: i32,
    condition: &str,
    group: &str,
    strategy: pb::AssignmentStrategy,
) -> pb::AssignmentRule {
    pb::AssignmentRule {
        order,
        condition: condition.to_owned(),
        assignment_group: group.to_owned(),
        strategy: strategy as i32,
        enabled: true,
        ..pb::AssignmentRule::default()
    }
}

/// An incident of category `category` (impact and urgency MEDIUM), ada's.
pub fn incident(title: &str, category: &str) -> pb::Incident {
    pb::Incident {
        title: title.to_owned(),
        category: category.to_owned(),
        impact: 2,
        urgency: 2,
        caller: "ada".into(),
        ..pb::Incident::default()
    }
}

impl Harness {
    /// Stops the identity service, as an outage would.
    pub async fn stop_identity(&mut self) {
        if let Some(identity) = self.identity.take() {
            identity.shutdown().await.unwrap();
        }
    }

    pub async fn create_rule(
        &mut self,
        rule: pb::AssignmentRule,
    ) -> Result<pb::AssignmentRule, Status> {
        let request = pb::CreateAssignmentRuleRequest {
            rule: Some(rule),
            request_id: String::new(),
        };
        let reply = self
            .client
            .create_assignment_rule(as_(ADMIN, request))
            .await;
        reply.map(tonic::Response::into_inner)
    }

    pub async fn list_rules(&mut self) -> Vec<pb::AssignmentRule> {
        let request = pb::ListAssignmentRulesRequest::default();
        let reply = self.client.list_assignment_rules(as_(AGENT, request)).await;
        reply.unwrap().into_inner().rules
    }

    /// Opens `incident` as `who`.
    pub async fn create(
        &mut self,
        who: &str,
        incident: pb::Incident,
    ) -> Result<pb::Incident, Status> {
        let request = pb::CreateIncidentRequest {
            incident: Some(incident),
            request_id: String::new(),
        };
        let reply = self.client.create_incident(as_(who, request)).await;
        reply.map(tonic::Response::into_inner)
    }

    /// Opens `incident` as an agent.
    pub async fn open(&mut self, incident: pb::Incident) -> pb::Incident {
        self.create(AGENT, incident).await.unwrap()
    }

    pub async fn get(&mut self, name: &str) -> pb::Incident {
        let request = pb::GetIncidentRequest {
            name: name.to_owned(),
        };
        self.client
            .get_incident(as_(AGENT, request))
            .await
            .unwrap()
            .into_inner()
    }

    pub async fn resolve(&mut self, name: &str) -> pb::Incident {
        let request = pb::ResolveIncidentRequest {
            name: name.to_owned(),
            resolution_code: pb::ResolutionCode::SolvedPermanently as i32,
            resolution_notes: "fixed".into(),
            etag: String::new(),
        };
        let reply = self.client.resolve_incident(as_(AGENT, request)).await;
        reply.unwrap().into_inner()
    }

    pub async fn reopen(&mut self, name: &str) -> pb::Incident {
        let request = pb::ReopenIncidentRequest {
            name: name.to_owned(),
            reason: "back again".into(),
            etag: String::new(),
        };
        let reply = self.client.reopen_incident(as_(AGENT, request)).await;
        reply.unwrap().into_inner()
    }

    /// Sets the settings' auto_close_after, as an admin.
    pub async fn auto_close_after(&mut self, seconds: i64) {
        let current = self
            .client
            .get_incident_settings(as_(AGENT, pb::GetIncidentSettingsRequest {}))
            .await
            .unwrap()
            .into_inner();
        let request = pb::UpdateIncidentSettingsRequest {
            settings: Some(pb::IncidentSettings {
                auto_close_after: Some(prost_types::Duration { seconds, nanos: 0 }),
                ..pb::IncidentSettings::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["auto_close_after".into()],
            }),
            etag: current.etag,
        };
        self.client
            .update_incident_settings(as_(ADMIN, request))
            .await
            .unwrap();
    }

    /// Runs one statement on the incidents database (to put times in the past).
    pub async fn execute(&self, sql: &str, binds: &[i64], number: &str) {
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()));
        for bind in binds {
            query = query.bind(*bind);
        }
        let done = query.bind(number).execute(self.db.pool()).await.unwrap();
        assert_eq!(done.rows_affected(), 1, "{sql} for {number}");
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
    pub async fn event_types(&self, subject: &str) -> Vec<String> {
        self.events()
            .await
            .into_iter()
            .filter(|e| e.subject == subject)
            .map(|e| e.r#type)
            .collect()
    }

    /// `(action, actor subject, changes)` of the audit entries of `resource`, in order.
    pub async fn audit(&self, resource: &str) -> Vec<(String, String, String)> {
        sqlx::query_as(
            "SELECT action, actor_subject, changes FROM audit_log WHERE resource = $1 ORDER BY id",
        )
        .bind(resource)
        .fetch_all(self.db.pool())
        .await
        .unwrap()
    }
}

/// The `IncidentEvent` an envelope carries.
pub fn payload(event: &itsm_proto::itsm::events::v1::Event) -> pb::IncidentEvent {
    let any = event.payload.as_ref().unwrap();
    pb::IncidentEvent::decode(any.value.as_slice()).unwrap()
}

/// `(field, description)` of an INVALID_ARGUMENT's violations.
pub fn violations(status: &Status) -> Vec<(String, String)> {
    use tonic_types::StatusExt as _;
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    let details = status.get_error_details();
    let bad = details.bad_request().unwrap();
    bad.field_violations
        .iter()
        .map(|v| (v.field.clone(), v.description.clone()))
        .collect()
}
