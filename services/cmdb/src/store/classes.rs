//! The `ci_classes` table: classes as declared (doc: `CiClass` with `etag`,
//! `update_time` and `updated_by` of its current version; the `effective_*`
//! and `ancestors` fields are computed on read by the model).

use itsm_proto::itsm::cmdb::v1 as pb;
use itsm_store::{StoreError, etag};
use prost::Message as _;
use sqlx::AnyConnection;

use crate::model::class_id;

/// Every class as stored.
pub async fn select_all(conn: &mut AnyConnection) -> Result<Vec<pb::CiClass>, StoreError> {
    let docs: Vec<Vec<u8>> = sqlx::query_scalar("SELECT doc FROM ci_classes")
        .fetch_all(conn)
        .await?;
    docs.iter()
        .map(|d| super::decode("ci_classes", d))
        .collect()
}

/// The class `id` and its version, read with `lock` (the backend's
/// `lock_suffix()` in a write transaction, "" otherwise).
pub async fn select_class(
    conn: &mut AnyConnection,
    id: &str,
    lock: &str,
) -> Result<Option<(i64, pb::CiClass)>, StoreError> {
    let sql = format!("SELECT version, doc FROM ci_classes WHERE id = $1{lock}");
    let row: Option<(i64, Vec<u8>)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(conn)
        .await?;
    row.map(|(version, doc)| Ok((version, super::decode("ci_classes", &doc)?)))
        .transpose()
}

/// Inserts `class` at `version` (its `etag` is set to match). With
/// `if_absent`, an existing class of the same id is left alone and `false`
/// returned (seeding, safe when replicas race); otherwise a duplicate id is
/// a unique violation.
pub async fn insert_class(
    conn: &mut AnyConnection,
    class: &pb::CiClass,
    version: i64,
    now: i64,
    if_absent: bool,
) -> Result<bool, StoreError> {
    let id = class_id(&class.name).unwrap_or_default();
    let parent = class_id(&class.parent).unwrap_or_default();
    let mut doc = class.clone();
    doc.etag = etag::from_version(version);
    let conflict = if if_absent {
        " ON CONFLICT (id) DO NOTHING"
    } else {
        ""
    };
    let sql = format!(
        "INSERT INTO ci_classes (id, parent, display_name, is_abstract, system, created_at, \
         updated_at, version, doc) VALUES ($1, $2, $3, $4, $5, $6, $6, $7, $8){conflict}"
    );
    let result = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .bind(parent)
        .bind(&class.display_name)
        .bind(i32::from(class.is_abstract))
        .bind(i32::from(class.system))
        .bind(now)
        .bind(version)
        .bind(doc.encode_to_vec())
        .execute(conn)
        .await?;
    Ok(result.rows_affected() == 1)
}

/// Replaces the stored class with `class` at `version` (the previous one
/// plus one; its `etag` is set to match).
pub async fn update_class(
    conn: &mut AnyConnection,
    class: &pb::CiClass,
    version: i64,
    now: i64,
) -> Result<(), StoreError> {
    let id = class_id(&class.name).unwrap_or_default();
    let parent = class_id(&class.parent).unwrap_or_default();
    let mut doc = class.clone();
    doc.etag = etag::from_version(version);
    let result = sqlx::query(
        "UPDATE ci_classes SET parent = $2, display_name = $3, is_abstract = $4, \
         updated_at = $5, version = $6, doc = $7 WHERE id = $1",
    )
    .bind(id)
    .bind(parent)
    .bind(&class.display_name)
    .bind(i32::from(class.is_abstract))
    .bind(now)
    .bind(version)
    .bind(doc.encode_to_vec())
    .execute(conn)
    .await?;
    if result.rows_affected() == 1 {
        Ok(())
    } else {
        Err(StoreError::NotFound(class.name.clone()))
    }
}

/// Deletes the class `id`.
pub async fn delete_class(conn: &mut AnyConnection, id: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM ci_classes WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Appends `($n, $n+1, ...)` binding the class ids (`cis.ci_class` holds
/// the bare id, "linux_server").
fn push_class_list(sql: &mut itsm_store::SqlBuilder, ids: &[&str]) {
    sql.push("(");
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            sql.push(", ");
        }
        sql.push_bind(itsm_store::SqlValue::Text((*id).to_owned()));
    }
    sql.push(")");
}

/// Whether any CI (retired ones included) is of one of these classes.
pub async fn any_ci_of(conn: &mut AnyConnection, ids: &[&str]) -> Result<bool, StoreError> {
    if ids.is_empty() {
        return Ok(false);
    }
    let mut sql = itsm_store::SqlBuilder::new("SELECT 1 FROM cis WHERE ci_class IN ");
    push_class_list(&mut sql, ids);
    sql.push(" LIMIT 1");
    let found = itsm_store::db::query(&sql).fetch_optional(conn).await?;
    Ok(found.is_some())
}

/// Whether any CI of one of these classes has a value for attribute `key`.
pub async fn any_value_of(
    conn: &mut AnyConnection,
    ids: &[&str],
    key: &str,
) -> Result<bool, StoreError> {
    if ids.is_empty() {
        return Ok(false);
    }
    let mut sql = itsm_store::SqlBuilder::new(
        "SELECT 1 FROM ci_attributes a JOIN cis c ON c.id = a.ci_id WHERE a.key = ",
    );
    sql.push_bind(itsm_store::SqlValue::Text(key.to_owned()));
    sql.push(" AND c.ci_class IN ");
    push_class_list(&mut sql, ids);
    sql.push(" LIMIT 1");
    let found = itsm_store::db::query(&sql).fetch_optional(conn).await?;
    Ok(found.is_some())
}
