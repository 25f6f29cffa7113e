//! The model: the seeded classes and relationship types, custom classes and
//! their checks, relationship types, settings and the audit trail of
//! configuration resources. Every test runs on PostgreSQL and SQLite.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/mod.rs"]
mod support;

#[path = "model/classes.rs"]
mod classes;
#[path = "model/settings.rs"]
mod settings;
#[path = "model/types.rs"]
mod types;

use itsm_proto::itsm::cmdb::v1 as pb;
use prost_types::FieldMask;

use support::{CMDB_ADMIN, Harness, as_};

/// A CI row of class `class` (id), written directly, with these text
/// attribute values in the index; returns its internal id.
pub async fn insert_ci(svc: &Harness, class: &str, attributes: &[(&str, &str)]) -> i64 {
    let uid = uuid::Uuid::new_v4().to_string();
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO cis (uid, ci_class, display_name, status, created_at, updated_at, version, doc) \
         VALUES ($1, $2, $3, 3, 1, 1, 1, $4) RETURNING id",
    )
    .bind(&uid)
    .bind(class)
    .bind(format!("ci-{uid}"))
    .bind(Vec::<u8>::new())
    .fetch_one(svc.db.pool())
    .await
    .unwrap();
    for (key, value) in attributes {
        sqlx::query(
            "INSERT INTO ci_attributes (ci_id, key, text_value, norm_value) VALUES ($1, $2, $3, $3)",
        )
        .bind(id)
        .bind(*key)
        .bind(*value)
        .execute(svc.db.pool())
        .await
        .unwrap();
    }
    id
}

/// A relationship row of type `type_id` from `source` to `target` (internal ids).
pub async fn insert_edge(svc: &Harness, type_id: &str, source: i64, target: i64) {
    sqlx::query(
        "INSERT INTO relationships (uid, type, source_id, target_id, created_at, doc) \
         VALUES ($1, $2, $3, $4, 1, $5)",
    )
    .bind(uuid::Uuid::new_v4().to_string())
    .bind(type_id)
    .bind(source)
    .bind(target)
    .bind(Vec::<u8>::new())
    .execute(svc.db.pool())
    .await
    .unwrap();
}

pub fn mask(paths: &[&str]) -> Option<FieldMask> {
    Some(FieldMask {
        paths: paths.iter().map(|p| (*p).to_owned()).collect(),
    })
}

pub fn attribute(key: &str, kind: pb::AttributeType) -> pb::AttributeDefinition {
    pb::AttributeDefinition {
        key: key.into(),
        display_name: key.into(),
        r#type: kind as i32,
        ..pb::AttributeDefinition::default()
    }
}

/// Creates class `id` under `parent` (ids) declaring `attributes`, as the CMDB admin.
pub async fn create_class(
    svc: &mut Harness,
    id: &str,
    parent: &str,
    attributes: Vec<pb::AttributeDefinition>,
) -> pb::CiClass {
    let request = pb::CreateCiClassRequest {
        ci_class: Some(pb::CiClass {
            display_name: id.replace('_', " "),
            parent: format!("classes/{parent}"),
            attributes,
            ..pb::CiClass::default()
        }),
        ci_class_id: id.into(),
        request_id: String::new(),
    };
    svc.client
        .create_ci_class(as_(CMDB_ADMIN, request))
        .await
        .unwrap()
        .into_inner()
}

/// The class named `name` as the CMDB admin reads it.
pub async fn get_class(svc: &mut Harness, name: &str) -> Result<pb::CiClass, tonic::Status> {
    let request = pb::GetCiClassRequest { name: name.into() };
    svc.client
        .get_ci_class(as_(CMDB_ADMIN, request))
        .await
        .map(tonic::Response::into_inner)
}

/// The audit actions of `parent`, oldest first.
pub async fn audit_actions(svc: &mut Harness, parent: &str) -> Vec<String> {
    let request = pb::ListAuditEntriesRequest {
        parent: parent.into(),
        page_size: 0,
        page_token: String::new(),
    };
    svc.client
        .list_audit_entries(as_(CMDB_ADMIN, request))
        .await
        .unwrap()
        .into_inner()
        .entries
        .into_iter()
        .map(|e| e.action)
        .collect()
}
