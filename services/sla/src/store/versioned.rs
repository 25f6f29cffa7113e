//! What calendars and definitions share: a row holding the current version
//! (`doc`, `version`, `deleted`) and an immutable row per version.

use itsm_store::StoreError;
use sqlx::AnyConnection;

/// The two tables of a versioned resource.
#[derive(Debug, Clone, Copy)]
pub struct Tables {
    /// The current-version table, keyed by `id`.
    pub current: &'static str,
    /// The versions table and its column holding the resource's id.
    pub versions: &'static str,
    pub key: &'static str,
}

/// The current row of `id`: its version, whether it is deleted, and its doc;
/// read with `lock` (`FOR UPDATE` in a write on PostgreSQL).
pub async fn select_current(
    conn: &mut AnyConnection,
    t: Tables,
    id: &str,
    lock: &str,
) -> Result<Option<(i64, bool, Vec<u8>)>, StoreError> {
    let sql = format!(
        "SELECT version, deleted, doc FROM {} WHERE id = $1{lock}",
        t.current
    );
    let row: Option<(i64, i32, Vec<u8>)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(conn)
        .await?;
    Ok(row.map(|(version, deleted, doc)| (version, deleted != 0, doc)))
}

/// The doc of version `version` of `id`.
pub async fn select_version(
    conn: &mut AnyConnection,
    t: Tables,
    id: &str,
    version: i64,
) -> Result<Option<Vec<u8>>, StoreError> {
    let sql = format!(
        "SELECT doc FROM {} WHERE {} = $1 AND version = $2",
        t.versions, t.key
    );
    let doc = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .bind(version)
        .fetch_optional(conn)
        .await?;
    Ok(doc)
}

/// Records version `version` of `id`.
pub async fn insert_version(
    conn: &mut AnyConnection,
    t: Tables,
    id: &str,
    version: i64,
    now: i64,
    doc: &[u8],
) -> Result<(), StoreError> {
    let sql = format!(
        "INSERT INTO {} ({}, version, created_at, doc) VALUES ($1, $2, $3, $4)",
        t.versions, t.key
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .bind(version)
        .bind(now)
        .bind(doc)
        .execute(conn)
        .await?;
    Ok(())
}

/// Up to `limit` versions of `id` older than `before`, newest first.
pub async fn select_versions(
    conn: &mut AnyConnection,
    t: Tables,
    id: &str,
    before: i64,
    limit: i64,
) -> Result<Vec<(i64, Vec<u8>)>, StoreError> {
    let sql = format!(
        "SELECT version, doc FROM {} WHERE {} = $1 AND version < $2 ORDER BY version DESC LIMIT $3",
        t.versions, t.key
    );
    let rows = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .bind(before)
        .bind(limit)
        .fetch_all(conn)
        .await?;
    Ok(rows)
}

/// Marks `id` deleted (its rows stay, for the replay of task SLAs that used it).
pub async fn mark_deleted(
    conn: &mut AnyConnection,
    t: Tables,
    id: &str,
    now: i64,
) -> Result<(), StoreError> {
    let sql = format!(
        "UPDATE {} SET deleted = 1, updated_at = $2 WHERE id = $1",
        t.current
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .bind(now)
        .execute(conn)
        .await?;
    Ok(())
}
