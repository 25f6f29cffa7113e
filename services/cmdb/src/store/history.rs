//! The change history of CIs (`ci_history`): one row per change, its field
//! changes as JSON, `fields` as "|a|b|" for field filters.

use itsm_store::StoreError;
use itsm_store::audit::{Actor, FieldChange};
use sqlx::{AnyConnection, Row};

/// One history row to write.
#[derive(Debug, Clone)]
pub struct NewEntry<'a> {
    pub ci_id: i64,
    /// The CI's version after the change, 0 for relate/unrelate.
    pub version: i64,
    pub action: &'a str,
    /// The discovery source id: "sccm", "manual".
    pub source: &'a str,
    pub relationship: &'a str,
    pub changes: &'a [FieldChange],
    pub actor: &'a Actor,
    pub request_id: &'a str,
    pub time: i64,
}

/// One history row as read.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub id: i64,
    pub ci_id: i64,
    pub version: i64,
    pub action: String,
    pub source: String,
    pub relationship: String,
    pub changes: Vec<FieldChange>,
    pub actor: Actor,
    pub request_id: String,
    pub time: i64,
}

/// The `fields` column of `changes`: "|a|b|" ("|" for none).
pub fn fields_column(changes: &[FieldChange]) -> String {
    let mut out = String::from("|");
    for change in changes {
        out.push_str(&change.field);
        out.push('|');
    }
    out
}

/// Appends an entry; returns its id.
pub async fn insert(conn: &mut AnyConnection, entry: &NewEntry<'_>) -> Result<i64, StoreError> {
    let changes = serde_json::to_string(
        &entry
            .changes
            .iter()
            .map(|c| serde_json::json!({"field": c.field, "old_value": c.old, "new_value": c.new}))
            .collect::<Vec<_>>(),
    )
    .map_err(|e| StoreError::Database(sqlx::Error::Encode(Box::new(e))))?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO ci_history (ci_id, version, action, source, relationship, changes, fields, \
         actor_subject, actor_name, actor_kind, request_id, time) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id",
    )
    .bind(entry.ci_id)
    .bind(entry.version)
    .bind(entry.action)
    .bind(entry.source)
    .bind(entry.relationship)
    .bind(changes)
    .bind(fields_column(entry.changes))
    .bind(&entry.actor.subject)
    .bind(&entry.actor.display_name)
    .bind(entry.actor.kind)
    .bind(entry.request_id)
    .bind(entry.time)
    .fetch_one(conn)
    .await?;
    Ok(id)
}

/// The columns [`from_row`] reads.
pub const COLUMNS: &str = "h.id, h.ci_id, h.version, h.action, h.source, h.relationship, \
    h.changes, h.actor_subject, h.actor_name, h.actor_kind, \
    h.request_id, h.time";

#[derive(serde::Deserialize)]
struct StoredChange {
    field: String,
    #[serde(default)]
    old_value: String,
    #[serde(default)]
    new_value: String,
}

/// An entry from a row of [`COLUMNS`].
pub fn from_row(row: &sqlx::any::AnyRow) -> Result<Entry, StoreError> {
    let changes: String = row.try_get("changes")?;
    let changes: Vec<StoredChange> =
        serde_json::from_str(&changes).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
    Ok(Entry {
        id: row.try_get("id")?,
        ci_id: row.try_get("ci_id")?,
        version: row.try_get("version")?,
        action: row.try_get("action")?,
        source: row.try_get("source")?,
        relationship: row.try_get("relationship")?,
        changes: changes
            .into_iter()
            .map(|c| FieldChange {
                field: c.field,
                old: c.old_value,
                new: c.new_value,
            })
            .collect(),
        actor: Actor {
            subject: row.try_get("actor_subject")?,
            display_name: row.try_get("actor_name")?,
            kind: row.try_get("actor_kind")?,
        },
        request_id: row.try_get("request_id")?,
        time: row.try_get("time")?,
    })
}
