//! The graph: relationship CRUD with every bad input refused and nothing
//! written, history and events of relate/unrelate, and impact analysis
//! (downstream, upstream, cycles, the depth bound, type filters, redundancy,
//! result filters and the impact cache).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// The shared harness (support/mod.rs) holds a server handle without Debug.
#![allow(missing_debug_implementations)]

#[path = "support/mod.rs"]
mod support;

#[path = "graph/impact.rs"]
mod impact;
#[path = "graph/relationships.rs"]
mod relationships;

use itsm_proto::itsm::cmdb::v1 as pb;
use prost::Message as _;
use tonic::{Code, Status};

use support::{AGENT, CMDB_ADMIN, Harness, as_};

/// Creates an OPERATIONAL CI of `class` named `display_name`; returns its name.
pub async fn add(h: &mut Harness, class: &str, display_name: &str) -> String {
    add_ci(h, support::ci(class, display_name, &[])).await
}

/// Creates `ci` through the API (or, while CreateCi is not built, as a row).
pub async fn add_ci(h: &mut Harness, ci: pb::Ci) -> String {
    let request = pb::CreateCiRequest {
        ci: Some(ci.clone()),
        request_id: String::new(),
        validate_only: false,
    };
    match h.client.create_ci(as_(CMDB_ADMIN, request)).await {
        Ok(reply) => reply.into_inner().name,
        Err(status) if status.code() == Code::Unimplemented => insert_row(h, ci).await,
        Err(status) => panic!("create_ci: {status:?}"),
    }
}

async fn insert_row(h: &Harness, mut ci: pb::Ci) -> String {
    let uid = uuid::Uuid::new_v4().to_string();
    ci.name = format!("cis/{uid}");
    let mut conn = h.db.pool().acquire().await.unwrap();
    itsm_cmdb::store::cis::insert_ci(&mut conn, &uid, &ci)
        .await
        .unwrap();
    ci.name
}

/// Retires the CI `name` (through the API, or as a row while RetireCi is not built).
pub async fn retire(h: &mut Harness, name: &str) {
    let request = pb::RetireCiRequest {
        name: name.to_owned(),
        reason: "decommissioned".into(),
        etag: String::new(),
    };
    match h.client.retire_ci(as_(CMDB_ADMIN, request)).await {
        Ok(_) => {}
        Err(status) if status.code() == Code::Unimplemented => {
            let mut conn = h.db.pool().acquire().await.unwrap();
            let stored = itsm_cmdb::write::load(&mut conn, name, "")
                .await
                .unwrap()
                .unwrap();
            let mut ci = stored.ci.clone();
            ci.status = pb::CiStatus::Retired as i32;
            let version = stored.version;
            assert!(
                itsm_cmdb::store::cis::update_ci(&mut conn, stored.id, &ci, version + 1, version)
                    .await
                    .unwrap()
            );
        }
        Err(status) => panic!("retire_ci: {status:?}"),
    }
}

/// A CreateRelationship request.
pub fn relationship(source: &str, type_id: &str, target: &str) -> pb::CreateRelationshipRequest {
    pb::CreateRelationshipRequest {
        relationship: Some(pb::Relationship {
            r#type: format!("relationshipTypes/{type_id}"),
            source_ci: source.to_owned(),
            target_ci: target.to_owned(),
            ..pb::Relationship::default()
        }),
        request_id: String::new(),
    }
}

pub async fn try_relate(
    h: &mut Harness,
    source: &str,
    type_id: &str,
    target: &str,
) -> Result<pb::Relationship, Status> {
    let request = relationship(source, type_id, target);
    h.client
        .create_relationship(as_(CMDB_ADMIN, request))
        .await
        .map(tonic::Response::into_inner)
}

/// An AnalyzeImpact request from `cis` in `direction`.
pub fn analysis(cis: &[&str], direction: pb::ImpactDirection) -> pb::AnalyzeImpactRequest {
    pb::AnalyzeImpactRequest {
        cis: cis.iter().map(|c| (*c).to_owned()).collect(),
        direction: direction as i32,
        ..pb::AnalyzeImpactRequest::default()
    }
}

pub async fn try_analyze(
    h: &mut Harness,
    request: pb::AnalyzeImpactRequest,
) -> Result<pb::ImpactAnalysis, Status> {
    h.client
        .analyze_impact(as_(AGENT, request))
        .await
        .map(tonic::Response::into_inner)
}

pub async fn analyze(h: &mut Harness, request: pb::AnalyzeImpactRequest) -> pb::ImpactAnalysis {
    try_analyze(h, request).await.unwrap()
}

/// `(ci, level, depth)` of every reached CI, in the answer's order.
pub fn reached(analysis: &pb::ImpactAnalysis) -> Vec<(String, pb::ImpactLevel, i32)> {
    analysis
        .impacted_cis
        .iter()
        .map(|c| (c.ci.clone(), c.level(), c.depth))
        .collect()
}

/// The history of the CI `name`: `(action, relationship)` in order.
pub async fn history(h: &Harness, name: &str) -> Vec<(String, String)> {
    let uid = itsm_cmdb::ci_uid(name).unwrap();
    sqlx::query_as(
        "SELECT h.action, h.relationship FROM ci_history h JOIN cis c ON c.id = h.ci_id \
         WHERE c.uid = $1 ORDER BY h.id",
    )
    .bind(uid)
    .fetch_all(h.db.pool())
    .await
    .unwrap()
}

/// The payloads of the `event_type` events about `subject`.
pub async fn relationship_events(
    h: &Harness,
    subject: &str,
    event_type: &str,
) -> Vec<pb::RelationshipEvent> {
    h.events()
        .await
        .into_iter()
        .filter(|e| e.subject == subject && e.r#type == event_type)
        .map(|e| pb::RelationshipEvent::decode(e.payload.unwrap().value.as_slice()).unwrap())
        .collect()
}
