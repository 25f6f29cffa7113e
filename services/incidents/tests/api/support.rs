//! The harness of the API tests: the incidents server on a fresh database,
//! behind the real auth guard with the real `policy.toml`, callers signing
//! HS256 tokens; a real identity service answering who belongs to which
//! group; a CMDB of the test's choosing; a client; and readers of what a
//! change left in the database (rows, audit entries, events). Shared by every
//! test binary of this crate.

use std::sync::Arc;
use std::time::Duration;

use itsm_auth::forward::OwnCredential;
use itsm_auth::jwt::{JwtSettings, JwtVerifier, TokenRequest, mint_hs256};
use itsm_auth::{Authenticator, Guard};
use itsm_incidents::{Cmdb, IdentityDirectory, IncidentsApi, NoCmdb};
use itsm_platform::GrpcServer;
use itsm_proto::itsm::identity::v1 as identity_pb;
use itsm_proto::itsm::identity::v1::identity_service_client::IdentityServiceClient;
use itsm_proto::itsm::incidents::v1 as pb;
use itsm_proto::itsm::incidents::v1::incident_service_client::IncidentServiceClient;
use itsm_proto::itsm::incidents::v1::incident_service_server::IncidentServiceServer;
use itsm_store::Db;
use itsm_testkit::{TestDb, TestServer, test_config};
use prost::Message as _;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};
use tonic_types::StatusExt as _;

const SECRET: &[u8] = b"incidents api test secret, 32 bytes!";

pub const ADMIN: &str = "root:admin";
pub const AGENT: &str = "bob:agent";
/// A requester who is the caller of the incidents [`Harness::open`] makes.
pub const ADA: &str = "ada:requester";
/// A requester who is the caller of nothing.
pub const EVE: &str = "eve:requester";
pub const PROBLEM_MANAGER: &str = "pam:problem_manager";

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

pub struct Harness {
    pub db: Db,
    pub client: IncidentServiceClient<Channel>,
    server: TestServer,
    identity: Option<TestServer>,
    _identity_db: TestDb,
}

/// A group of the identity service, as an admin creates it.
async fn create_group(identity: &mut IdentityServiceClient<Channel>, id: &str, members: &[&str]) {
    let request = identity_pb::CreateGroupRequest {
        group: Some(identity_pb::Group {
            display_name: format!("{id} team"),
            members: members.iter().map(|m| (*m).to_owned()).collect(),
            ..identity_pb::Group::default()
        }),
        group_id: id.to_owned(),
        request_id: String::new(),
    };
    identity.create_group(as_(ADMIN, request)).await.unwrap();
}

/// The incidents server without a CMDB, and an identity server of its own
/// (its own database, on the same backend) holding the [`GROUPS`], asked
/// with a `service` token.
pub async fn start(test_db: &TestDb) -> Harness {
    start_with_cmdb(test_db, Arc::new(NoCmdb)).await
}

/// [`start`], the server asking `cmdb` for CI support groups.
pub async fn start_with_cmdb(test_db: &TestDb, cmdb: Arc<dyn Cmdb>) -> Harness {
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
        create_group(&mut admin, id, members).await;
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
        server,
        identity: Some(identity),
        _identity_db: identity_db,
    }
}

/// A token for `who` (`"ada:requester"`, roles comma-separated).
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

/// `message` sent by `who` (`"ada:requester"`).
pub fn as_<T>(who: &str, message: T) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {}", token(who)).parse().unwrap(),
    );
    request
}

pub fn incident(title: &str, impact: i32, urgency: i32) -> pb::Incident {
    pb::Incident {
        title: title.to_owned(),
        impact,
        urgency,
        caller: "ada".into(),
        ..pb::Incident::default()
    }
}

pub fn create_request(incident: pb::Incident, request_id: &str) -> pb::CreateIncidentRequest {
    pb::CreateIncidentRequest {
        incident: Some(incident),
        request_id: request_id.to_owned(),
    }
}

impl Harness {
    /// Stops the identity service, as an outage would.
    pub async fn stop_identity(&mut self) {
        if let Some(identity) = self.identity.take() {
            identity.shutdown().await.unwrap();
        }
    }

    /// A new client on a connection of its own (for concurrent calls).
    pub async fn client(&self) -> IncidentServiceClient<Channel> {
        IncidentServiceClient::new(self.server.connect().await.unwrap())
    }

    /// Opens an incident with ada as its caller, as an agent.
    pub async fn open(&mut self, title: &str) -> pb::Incident {
        let request = create_request(incident(title, 2, 2), "");
        self.client
            .create_incident(as_(AGENT, request))
            .await
            .unwrap()
            .into_inner()
    }

    pub async fn get(&mut self, who: &str, name: &str) -> Result<pb::Incident, Status> {
        let request = pb::GetIncidentRequest {
            name: name.to_owned(),
        };
        let reply = self.client.get_incident(as_(who, request)).await;
        reply.map(tonic::Response::into_inner)
    }

    pub async fn list(
        &mut self,
        who: &str,
        filter: &str,
        order_by: &str,
        page_size: i32,
        token: &str,
    ) -> Result<pb::ListIncidentsResponse, Status> {
        let request = pb::ListIncidentsRequest {
            page_size,
            page_token: token.to_owned(),
            filter: filter.to_owned(),
            order_by: order_by.to_owned(),
        };
        let reply = self.client.list_incidents(as_(who, request)).await;
        reply.map(tonic::Response::into_inner)
    }

    /// Every title a list returns, page by page of `page_size`.
    pub async fn titles(&mut self, who: &str, filter: &str, order_by: &str) -> Vec<String> {
        let page = self.list(who, filter, order_by, 0, "").await.unwrap();
        assert!(page.next_page_token.is_empty());
        page.incidents.into_iter().map(|i| i.title).collect()
    }

    pub async fn assign(
        &mut self,
        name: &str,
        group: &str,
        assignee: &str,
    ) -> Result<pb::Incident, Status> {
        let request = pb::AssignIncidentRequest {
            name: name.to_owned(),
            assignment_group: group.to_owned(),
            assignee: assignee.to_owned(),
            etag: String::new(),
        };
        let reply = self.client.assign_incident(as_(AGENT, request)).await;
        reply.map(tonic::Response::into_inner)
    }

    pub async fn hold(
        &mut self,
        name: &str,
        reason: pb::HoldReason,
    ) -> Result<pb::Incident, Status> {
        let request = pb::HoldIncidentRequest {
            name: name.to_owned(),
            reason: reason as i32,
            note: String::new(),
            etag: String::new(),
        };
        let reply = self.client.hold_incident(as_(AGENT, request)).await;
        reply.map(tonic::Response::into_inner)
    }

    pub async fn resolve(&mut self, name: &str) -> Result<pb::Incident, Status> {
        let request = pb::ResolveIncidentRequest {
            name: name.to_owned(),
            resolution_code: pb::ResolutionCode::SolvedPermanently as i32,
            resolution_notes: "restarted the tunnel".into(),
            etag: String::new(),
        };
        let reply = self.client.resolve_incident(as_(AGENT, request)).await;
        reply.map(tonic::Response::into_inner)
    }

    pub async fn reopen(
        &mut self,
        who: &str,
        name: &str,
        reason: &str,
    ) -> Result<pb::Incident, Status> {
        let request = pb::ReopenIncidentRequest {
            name: name.to_owned(),
            reason: reason.to_owned(),
            etag: String::new(),
        };
        let reply = self.client.reopen_incident(as_(who, request)).await;
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

    /// `(type, sequence)` of every event about `subject`, in order.
    pub async fn event_types(&self, subject: &str) -> Vec<(String, u64)> {
        self.events()
            .await
            .into_iter()
            .filter(|e| e.subject == subject)
            .map(|e| (e.r#type, e.sequence))
            .collect()
    }

    /// The types of the events about `subject`, in order.
    #[allow(dead_code)] // by the other test binaries, not tests/api.rs
    pub async fn event_names(&self, subject: &str) -> Vec<String> {
        let types = self.event_types(subject).await;
        types.into_iter().map(|(t, _)| t).collect()
    }

    pub async fn cancel(&mut self, name: &str, reason: &str) -> Result<pb::Incident, Status> {
        let request = pb::CancelIncidentRequest {
            name: name.to_owned(),
            reason: reason.to_owned(),
            etag: String::new(),
        };
        let reply = self.client.cancel_incident(as_(AGENT, request)).await;
        reply.map(tonic::Response::into_inner)
    }

    pub async fn close(&mut self, name: &str) -> Result<pb::Incident, Status> {
        let request = pb::CloseIncidentRequest {
            name: name.to_owned(),
            etag: String::new(),
        };
        let reply = self.client.close_incident(as_(AGENT, request)).await;
        reply.map(tonic::Response::into_inner)
    }

    pub async fn resume(&mut self, name: &str) -> Result<pb::Incident, Status> {
        let request = pb::ResumeIncidentRequest {
            name: name.to_owned(),
            etag: String::new(),
        };
        let reply = self.client.resume_incident(as_(AGENT, request)).await;
        reply.map(tonic::Response::into_inner)
    }
}

/// The `IncidentEvent` an envelope carries.
pub fn payload(event: &itsm_proto::itsm::events::v1::Event) -> pb::IncidentEvent {
    let any = event.payload.as_ref().unwrap();
    assert_eq!(
        any.type_url,
        "type.googleapis.com/itsm.incidents.v1.IncidentEvent"
    );
    pb::IncidentEvent::decode(any.value.as_slice()).unwrap()
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

impl Harness {
    /// Creates the group `id` in identity, managed by `manager`, with no members.
    #[allow(dead_code)] // by tests/sla.rs
    pub async fn create_managed_group(&self, id: &str, manager: &str) {
        let identity = self.identity.as_ref().expect("identity is running");
        let mut admin = IdentityServiceClient::new(identity.connect().await.unwrap());
        let request = identity_pb::CreateGroupRequest {
            group: Some(identity_pb::Group {
                display_name: format!("{id} team"),
                manager: manager.to_owned(),
                ..identity_pb::Group::default()
            }),
            group_id: id.to_owned(),
            request_id: String::new(),
        };
        admin.create_group(as_(ADMIN, request)).await.unwrap();
    }

    /// A directory over the harness's identity service (as the server's own),
    /// for handlers a test drives itself. Fails once identity is stopped.
    #[allow(dead_code)] // by tests/sla.rs
    pub fn directory(&self) -> IdentityDirectory {
        let identity = self.identity.as_ref().expect("identity is running");
        let credential = OwnCredential::bearer(&token("svc-incidents:service")).unwrap();
        IdentityDirectory::connect_lazy(&format!("http://{}", identity.addr()), credential).unwrap()
    }
}
