//! The audit trail: who changed what, when, from what to what. Written in the
//! same transaction as the change (so it exists exactly when the change
//! does) and append-only (database triggers refuse updates and deletes).

use serde::{Deserialize, Serialize};
use sqlx::{AnyConnection, Row};

use crate::error::StoreError;

/// Who acted: a person, a service account or the platform itself.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Actor {
    pub subject: String,
    pub display_name: String,
    /// `itsm.common.v1.PrincipalKind` number.
    pub kind: i32,
}

impl Actor {
    /// The platform acting on its own (auto-close, propagation, timers).
    pub fn system(what: &str) -> Self {
        Self {
            subject: format!("system:{what}"),
            display_name: what.to_owned(),
            kind: itsm_proto::itsm::common::v1::PrincipalKind::System as i32,
        }
    }

    pub fn to_proto(&self) -> itsm_proto::itsm::common::v1::Principal {
        itsm_proto::itsm::common::v1::Principal {
            subject: self.subject.clone(),
            display_name: self.display_name.clone(),
            kind: self.kind,
        }
    }
}

/// One field, from what to what, as text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldChange {
    pub field: String,
    pub old: String,
    pub new: String,
}

impl FieldChange {
    pub fn new(field: &str, old: impl ToString, new: impl ToString) -> Self {
        Self {
            field: field.to_owned(),
            old: old.to_string(),
            new: new.to_string(),
        }
    }
}

/// One audit entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// Resource name, e.g. `incidents/INC0000042`.
    pub resource: String,
    /// What happened: `create`, `update`, `resolve`...
    pub action: String,
    pub actor: Actor,
    /// Microseconds since the epoch.
    pub time: i64,
    pub changes: Vec<FieldChange>,
    pub request_id: String,
}

/// Appends an entry; returns its id.
pub async fn insert(conn: &mut AnyConnection, record: &AuditRecord) -> Result<i64, StoreError> {
    let changes = serde_json::to_string(&record.changes)
        .map_err(|e| StoreError::Database(sqlx::Error::Encode(Box::new(e))))?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO audit_log (resource, action, actor_subject, actor_name, actor_kind, time, changes, request_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
    )
    .bind(&record.resource)
    .bind(&record.action)
    .bind(&record.actor.subject)
    .bind(&record.actor.display_name)
    .bind(record.actor.kind)
    .bind(record.time)
    .bind(changes)
    .bind(&record.request_id)
    .fetch_one(conn)
    .await?;
    Ok(id)
}

/// The entries of one resource after entry `after_id`, oldest first.
pub async fn select_for_resource(
    conn: &mut AnyConnection,
    resource: &str,
    after_id: i64,
    limit: i64,
) -> Result<Vec<(i64, AuditRecord)>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, resource, action, actor_subject, actor_name, actor_kind, time, changes, request_id \
         FROM audit_log WHERE resource = $1 AND id > $2 ORDER BY id LIMIT $3",
    )
    .bind(resource)
    .bind(after_id)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| {
            let changes: String = row.try_get("changes")?;
            let changes =
                serde_json::from_str(&changes).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
            Ok((
                row.try_get("id")?,
                AuditRecord {
                    resource: row.try_get("resource")?,
                    action: row.try_get("action")?,
                    actor: Actor {
                        subject: row.try_get("actor_subject")?,
                        display_name: row.try_get("actor_name")?,
                        kind: row.try_get("actor_kind")?,
                    },
                    time: row.try_get("time")?,
                    changes,
                    request_id: row.try_get("request_id")?,
                },
            ))
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(StoreError::from)
}

impl AuditRecord {
    /// The entry as the API returns it, named `<resource>/audit/<id>`.
    pub fn to_proto(&self, id: i64) -> itsm_proto::itsm::common::v1::AuditEntry {
        use itsm_proto::itsm::common::v1 as pb;
        pb::AuditEntry {
            name: format!("{}/audit/{id}", self.resource),
            resource: self.resource.clone(),
            action: self.action.clone(),
            actor: Some(self.actor.to_proto()),
            time: Some(timestamp(self.time)),
            changes: self
                .changes
                .iter()
                .map(|c| pb::FieldChange {
                    field: c.field.clone(),
                    old_value: c.old.clone(),
                    new_value: c.new.clone(),
                })
                .collect(),
            request_id: self.request_id.clone(),
        }
    }
}

/// Microseconds since the epoch as a protobuf timestamp.
pub fn timestamp(micros: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: micros.div_euclid(1_000_000),
        nanos: i32::try_from(micros.rem_euclid(1_000_000) * 1_000).unwrap_or(0),
    }
}
