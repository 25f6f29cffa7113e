//! The harness of the SLA API tests: the server on a fresh database
//! (PostgreSQL or SQLite), behind the real auth guard with the real
//! `policy.toml`, callers signing HS256 tokens; a client; and readers of what a
//! change left in the database. Shared by every test binary of this crate
//! (`#[path = "support/mod.rs"] mod support;`); helpers a binary does not use
//! are allowed to be dead there. Add helpers only by appending at the end.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use itsm_auth::jwt::{JwtSettings, JwtVerifier, TokenRequest, mint_hs256};
use itsm_auth::{Authenticator, Guard};
use itsm_platform::GrpcServer;
use itsm_proto::itsm::common::v1 as common;
use itsm_proto::itsm::sla::v1 as pb;
use itsm_proto::itsm::sla::v1::sla_service_client::SlaServiceClient;
use itsm_proto::itsm::sla::v1::sla_service_server::SlaServiceServer;
use itsm_sla::SlaApi;
use itsm_store::Db;
use itsm_testkit::{TestDb, TestServer, test_config};
use prost::Message as _;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};
use tonic_types::StatusExt as _;

const SECRET: &[u8] = b"sla api test secret, 32 bytes long!!";

pub const ADMIN: &str = "root:admin";
pub const AGENT: &str = "bob:agent";
pub const AUDITOR: &str = "audrey:auditor";
/// Another service's account.
pub const SERVICE: &str = "svc-incidents:service";

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
    pub client: SlaServiceClient<Channel>,
    server: TestServer,
}

/// The SLA server on `test_db`, migrated, with an engine that knows no CMDB.
pub async fn start(test_db: &TestDb) -> Harness {
    start_with(test_db, itsm_sla::engine::Engine::default()).await
}

/// The SLA server on `test_db`, migrated, its replays run by `engine`.
pub async fn start_with(test_db: &TestDb, engine: itsm_sla::engine::Engine) -> Harness {
    let authn = Authenticator::new(Some(JwtVerifier::hs256(SECRET, settings())), None);
    let guard = Guard::new(Arc::new(authn));
    let db = Db::connect(test_db.url()).await.unwrap();
    db.migrate(itsm_sla::MIGRATIONS.as_ref()).await.unwrap();
    let service = guard
        .protect(
            SlaServiceServer::new(SlaApi::with_engine(db.clone(), engine)),
            itsm_sla::POLICY,
        )
        .unwrap();
    let server = TestServer::start(GrpcServer::new(&test_config()).add_service(service))
        .await
        .unwrap();
    let client = SlaServiceClient::new(server.connect().await.unwrap());
    Harness { db, client, server }
}

/// A token for `who` (`"root:admin"`, roles comma-separated).
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

/// `message` sent by `who` (`"root:admin"`).
pub fn as_<T>(who: &str, message: T) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {}", token(who)).parse().unwrap(),
    );
    request
}

/// A time of day.
pub fn hm(hours: i32, minutes: i32) -> common::TimeOfDay {
    common::TimeOfDay {
        hours,
        minutes,
        seconds: 0,
    }
}

/// A span [start, end) of `day` (1 = Monday .. 7 = Sunday), hours only.
pub fn weekly(day: i32, start: i32, end: i32) -> pb::WeeklySpan {
    pb::WeeklySpan {
        day,
        span: Some(pb::DaySpan {
            start: Some(hm(start, 0)),
            end: Some(hm(end, 0)),
        }),
    }
}

/// A date.
pub fn date(year: i32, month: i32, day: i32) -> common::Date {
    common::Date { year, month, day }
}

/// A day closed all day.
pub fn holiday(year: i32, month: i32, day: i32, name: &str) -> pb::Holiday {
    pb::Holiday {
        date: Some(date(year, month, day)),
        display_name: name.to_owned(),
        open_spans: Vec::new(),
        origin: String::new(),
    }
}

/// Monday to Friday 09:00-17:00 in `zone`.
pub fn office_hours(display_name: &str, zone: &str) -> pb::Calendar {
    pb::Calendar {
        display_name: display_name.to_owned(),
        time_zone: zone.to_owned(),
        weekly_spans: (1..=5).map(|d| weekly(d, 9, 17)).collect(),
        ..pb::Calendar::default()
    }
}

/// An instant from RFC 3339 text.
pub fn at(rfc3339: &str) -> prost_types::Timestamp {
    let t: jiff::Timestamp = rfc3339.parse().unwrap();
    prost_types::Timestamp {
        seconds: t.as_second(),
        nanos: t.subsec_nanosecond(),
    }
}

/// A duration of whole seconds.
pub fn seconds(seconds: i64) -> prost_types::Duration {
    prost_types::Duration { seconds, nanos: 0 }
}

/// A field mask.
pub fn mask(paths: &[&str]) -> prost_types::FieldMask {
    prost_types::FieldMask {
        paths: paths.iter().map(|p| (*p).to_owned()).collect(),
    }
}

impl Harness {
    /// A new client on a connection of its own (for concurrent calls).
    pub async fn client(&self) -> SlaServiceClient<Channel> {
        SlaServiceClient::new(self.server.connect().await.unwrap())
    }

    /// Creates `calendar` as `calendars/<id>` as the admin.
    pub async fn create_calendar(&mut self, id: &str, calendar: pb::Calendar) -> pb::Calendar {
        let request = pb::CreateCalendarRequest {
            calendar: Some(calendar),
            calendar_id: id.to_owned(),
            request_id: String::new(),
        };
        self.client
            .create_calendar(as_(ADMIN, request))
            .await
            .unwrap()
            .into_inner()
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

/// `(field, description)` of every violation of an INVALID_ARGUMENT.
pub fn violations(status: &Status) -> Vec<(String, String)> {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let details = status.get_error_details();
    let bad = details.bad_request().expect("BadRequest details");
    bad.field_violations
        .iter()
        .map(|v| (v.field.clone(), v.description.clone()))
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

// Incident events as the incidents service publishes them (shared by the
// clock, operation and report tests).

use itsm_proto::itsm::events::v1::Event;
use itsm_proto::itsm::incidents::v1::{HoldReason, Incident, IncidentEvent, IncidentState};

/// An hour in microseconds.
pub const H: i64 = 3_600_000_000;

/// Microseconds since the epoch of `t`.
pub fn micros(t: &prost_types::Timestamp) -> i64 {
    t.seconds * 1_000_000 + i64::from(t.nanos) / 1_000
}

/// The timestamp of `micros` since the epoch.
pub fn ts(micros: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: micros.div_euclid(1_000_000),
        nanos: (micros.rem_euclid(1_000_000) * 1_000) as i32,
    }
}

/// Monday 2026-01-05T00:00:00Z.
pub fn monday() -> i64 {
    micros(&at("2026-01-05T00:00:00Z"))
}

/// An incident's events as the incidents service would publish them.
pub struct Ticket {
    pub incident: Incident,
    pub events: Vec<Event>,
}

impl Ticket {
    pub fn created(number: &str, time: i64, priority: i32, group: &str) -> Self {
        let mut t = Self {
            incident: Incident {
                name: format!("incidents/{number}"),
                number: number.to_owned(),
                state: IncidentState::New as i32,
                priority,
                assignment_group: group.to_owned(),
                create_time: Some(ts(time)),
                ..Incident::default()
            },
            events: Vec::new(),
        };
        t.push(time, "incidents.incident.created");
        t
    }

    pub fn push(&mut self, time: i64, event_type: &str) {
        let sequence = self.events.len() as u64 + 1;
        let payload = IncidentEvent {
            incident: Some(self.incident.clone()),
            ..IncidentEvent::default()
        };
        self.events.push(Event {
            id: format!("{}-{sequence}", self.incident.number),
            r#type: event_type.to_owned(),
            source: "itsm.incidents".into(),
            subject: self.incident.name.clone(),
            time: Some(ts(time)),
            sequence,
            payload: Some(prost_types::Any {
                type_url: "type.googleapis.com/itsm.incidents.v1.IncidentEvent".into(),
                value: payload.encode_to_vec(),
            }),
            ..Event::default()
        });
    }

    pub fn state(&mut self, time: i64, state: IncidentState) -> &mut Self {
        self.incident.state = state as i32;
        self.incident.hold_reason = if state == IncidentState::OnHold {
            HoldReason::AwaitingCaller as i32
        } else {
            0
        };
        self.push(time, "incidents.incident.updated");
        self
    }
}
