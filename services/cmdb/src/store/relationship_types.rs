//! The `relationship_types` table (doc: `RelationshipType` with the `etag`
//! and `update_time` of its current version).

use itsm_proto::itsm::cmdb::v1 as pb;
use itsm_store::{StoreError, etag};
use prost::Message as _;
use sqlx::AnyConnection;

use crate::model::relationship_type_id;

/// Every relationship type as stored.
pub async fn select_all(conn: &mut AnyConnection) -> Result<Vec<pb::RelationshipType>, StoreError> {
    let docs: Vec<Vec<u8>> = sqlx::query_scalar("SELECT doc FROM relationship_types")
        .fetch_all(conn)
        .await?;
    docs.iter()
        .map(|d| super::decode("relationship_types", d))
        .collect()
}

/// The type `id` and its version, read with `lock`.
pub async fn select_type(
    conn: &mut AnyConnection,
    id: &str,
    lock: &str,
) -> Result<Option<(i64, pb::RelationshipType)>, StoreError> {
    let sql = format!("SELECT version, doc FROM relationship_types WHERE id = $1{lock}");
    let row: Option<(i64, Vec<u8>)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(conn)
        .await?;
    row.map(|(version, doc)| Ok((version, super::decode("relationship_types", &doc)?)))
        .transpose()
}

/// Inserts `t` at `version`; with `if_absent` an existing id is left alone
/// and `false` returned.
pub async fn insert_type(
    conn: &mut AnyConnection,
    t: &pb::RelationshipType,
    version: i64,
    now: i64,
    if_absent: bool,
) -> Result<bool, StoreError> {
    let id = relationship_type_id(&t.name).unwrap_or_default();
    let mut doc = t.clone();
    doc.etag = etag::from_version(version);
    let conflict = if if_absent {
        " ON CONFLICT (id) DO NOTHING"
    } else {
        ""
    };
    let sql = format!(
        "INSERT INTO relationship_types (id, system, created_at, updated_at, version, doc) \
         VALUES ($1, $2, $3, $3, $4, $5){conflict}"
    );
    let result = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .bind(i32::from(t.system))
        .bind(now)
        .bind(version)
        .bind(doc.encode_to_vec())
        .execute(conn)
        .await?;
    Ok(result.rows_affected() == 1)
}

/// Replaces the stored type with `t` at `version`.
pub async fn update_type(
    conn: &mut AnyConnection,
    t: &pb::RelationshipType,
    version: i64,
    now: i64,
) -> Result<(), StoreError> {
    let id = relationship_type_id(&t.name).unwrap_or_default();
    let mut doc = t.clone();
    doc.etag = etag::from_version(version);
    let result = sqlx::query(
        "UPDATE relationship_types SET updated_at = $2, version = $3, doc = $4 WHERE id = $1",
    )
    .bind(id)
    .bind(now)
    .bind(version)
    .bind(doc.encode_to_vec())
    .execute(conn)
    .await?;
    if result.rows_affected() == 1 {
        Ok(())
    } else {
        Err(StoreError::NotFound(t.name.clone()))
    }
}

/// Deletes the type `id`.
pub async fn delete_type(conn: &mut AnyConnection, id: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM relationship_types WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Whether any relationship is of type `id` (`relationships.type` holds the
/// bare id, "depends_on").
pub async fn in_use(conn: &mut AnyConnection, id: &str) -> Result<bool, StoreError> {
    let found = sqlx::query("SELECT 1 FROM relationships WHERE type = $1 LIMIT 1")
        .bind(id)
        .fetch_optional(conn)
        .await?;
    Ok(found.is_some())
}

/// The edges (source id, target id) of type `id`.
pub async fn select_edges(
    conn: &mut AnyConnection,
    id: &str,
) -> Result<Vec<(i64, i64)>, StoreError> {
    let edges = sqlx::query_as("SELECT source_id, target_id FROM relationships WHERE type = $1")
        .bind(id)
        .fetch_all(conn)
        .await?;
    Ok(edges)
}
