//! SQL for API keys, one text for PostgreSQL and SQLite. Functions take a
//! connection; the use case in `api` owns the transaction. Groups are in
//! [`group`]; the page token key below serves both.
//!
//! Absent times are stored as 0 (see the migration), roles as sorted
//! comma-separated text; `version` is the etag.

use itsm_platform::ApiError;
use itsm_store::audit::Actor;
use itsm_store::list::{ListRequest, ListSpec};
use itsm_store::page::PageTokens;
use itsm_store::query::{Field, FieldKind, Schema};
use itsm_store::{Backend, Db, SqlBuilder, StoreError};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::domain::ApiKey;

pub mod group;

const SELECT: &str = "SELECT id, key_id, secret_hash, display_name, service_account, roles, \
     description, created_at, created_by_subject, created_by_name, created_by_kind, expire_at, \
     revoked_at, revoked_by_subject, revoked_by_name, revoked_by_kind, revoke_reason, \
     last_used_at, version FROM api_keys";

/// A key's row: the key, its row id (the keyset tie-breaker) and its secret's hash.
#[derive(Debug, Clone)]
pub struct StoredKey {
    pub id: i64,
    pub key: ApiKey,
    pub secret_hash: String,
}

/// Inserts a new key. Returns false, writing nothing, when its key id is
/// taken already (the caller draws another), so a collision never aborts
/// the surrounding transaction.
pub async fn insert_api_key(
    conn: &mut AnyConnection,
    key: &ApiKey,
    secret_hash: &str,
) -> Result<bool, StoreError> {
    let result = sqlx::query(
        "INSERT INTO api_keys (key_id, secret_hash, display_name, service_account, roles, \
         description, created_at, created_by_subject, created_by_name, created_by_kind, \
         expire_at, revoked_at, revoked_by_subject, revoked_by_name, revoked_by_kind, \
         revoke_reason, last_used_at, version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18) \
         ON CONFLICT (key_id) DO NOTHING",
    )
    .bind(&key.key_id)
    .bind(secret_hash)
    .bind(&key.display_name)
    .bind(&key.service_account)
    .bind(key.roles.join(","))
    .bind(&key.description)
    .bind(key.create_time)
    .bind(&key.created_by.subject)
    .bind(&key.created_by.display_name)
    .bind(key.created_by.kind)
    .bind(key.expire_time)
    .bind(key.revoke_time.unwrap_or(0))
    .bind(key.revoked_by.as_ref().map_or("", |a| a.subject.as_str()))
    .bind(
        key.revoked_by
            .as_ref()
            .map_or("", |a| a.display_name.as_str()),
    )
    .bind(key.revoked_by.as_ref().map_or(0, |a| a.kind))
    .bind(&key.revoke_reason)
    .bind(key.last_used_time.unwrap_or(0))
    .bind(key.version)
    .execute(conn)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// The key with this key id. `lock` is [`Backend::lock_suffix`] when the
/// caller's transaction will update the row, `""` for a plain read.
pub async fn select_api_key(
    conn: &mut AnyConnection,
    key_id: &str,
    lock: &'static str,
) -> Result<Option<StoredKey>, StoreError> {
    let mut sql = SqlBuilder::new(SELECT);
    sql.push(" WHERE key_id = ").push_bind(key_id).push(lock);
    let row = itsm_store::db::query(&sql).fetch_optional(conn).await?;
    row.as_ref()
        .map(stored_key)
        .transpose()
        .map_err(StoreError::from)
}

/// Writes a revocation made by [`ApiKey::revoke`]; `previous_version` is the
/// version read under the row lock.
pub async fn update_revoked(
    conn: &mut AnyConnection,
    id: i64,
    key: &ApiKey,
    previous_version: i64,
) -> Result<(), StoreError> {
    let result = sqlx::query(
        "UPDATE api_keys SET revoked_at = $1, revoked_by_subject = $2, revoked_by_name = $3, \
         revoked_by_kind = $4, revoke_reason = $5, version = $6 WHERE id = $7 AND version = $8",
    )
    .bind(key.revoke_time.unwrap_or(0))
    .bind(key.revoked_by.as_ref().map_or("", |a| a.subject.as_str()))
    .bind(
        key.revoked_by
            .as_ref()
            .map_or("", |a| a.display_name.as_str()),
    )
    .bind(key.revoked_by.as_ref().map_or(0, |a| a.kind))
    .bind(&key.revoke_reason)
    .bind(key.version)
    .bind(id)
    .bind(previous_version)
    .execute(conn)
    .await?;
    // The row is locked, so this only happens if the lock was not taken.
    if result.rows_affected() == 1 {
        Ok(())
    } else {
        Err(StoreError::StaleEtag(key.name()))
    }
}

/// Records that the key authenticated a call at `at`. Not a change anyone
/// made: no version bump, no audit entry, no event. Never moves backwards.
pub async fn update_last_used(
    conn: &mut AnyConnection,
    id: i64,
    at: i64,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE api_keys SET last_used_at = $1 WHERE id = $2 AND last_used_at < $1")
        .bind(at)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// The state, computed in SQL from the database's clock, for `filter`
/// (numbers as in `ApiKeyState`). The clock expression is each dialect's.
macro_rules! state_column {
    ($now:literal) => {
        concat!(
            "(CASE WHEN revoked_at <> 0 THEN 3 WHEN expire_at <= ",
            $now,
            " THEN 2 ELSE 1 END)"
        )
    };
}

/// What `filter` and `order_by` may name, with the state column of one dialect.
macro_rules! api_key_schema {
    ($now:literal) => {
        Schema {
            resource: "api key",
            fields: &[
                Field {
                    name: "service_account",
                    column: "service_account",
                    kind: FieldKind::Text,
                    sortable: true,
                },
                Field {
                    name: "display_name",
                    column: "display_name",
                    kind: FieldKind::Text,
                    sortable: false,
                },
                Field {
                    name: "state",
                    column: state_column!($now),
                    kind: FieldKind::Enum(&[("ACTIVE", 1), ("EXPIRED", 2), ("REVOKED", 3)]),
                    sortable: false,
                },
                Field {
                    name: "create_time",
                    column: "created_at",
                    kind: FieldKind::Timestamp,
                    sortable: true,
                },
                Field {
                    name: "expire_time",
                    column: "expire_at",
                    kind: FieldKind::Timestamp,
                    sortable: true,
                },
            ],
        }
    };
}

static POSTGRES_SCHEMA: Schema =
    api_key_schema!("CAST(EXTRACT(EPOCH FROM now()) * 1000000 AS BIGINT)");
static SQLITE_SCHEMA: Schema =
    api_key_schema!("CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER)");

fn list_spec(backend: Backend) -> ListSpec {
    ListSpec {
        schema: match backend {
            Backend::Postgres => &POSTGRES_SCHEMA,
            Backend::Sqlite => &SQLITE_SCHEMA,
        },
        select: SELECT,
        id_column: "id",
        default_order: "create_time desc",
    }
}

/// One page of keys and the next page's token ("" on the last page).
pub async fn select_page(
    db: &Db,
    request: &ListRequest<'_>,
    tokens: &PageTokens,
) -> Result<(Vec<ApiKey>, String), ApiError> {
    let plan = list_spec(db.backend()).plan(request, tokens, |_| {})?;
    let rows = itsm_store::db::query(plan.sql())
        .fetch_all(db.pool())
        .await
        .map_err(StoreError::from)?;
    let page = plan.finish(rows, tokens)?;
    let keys = page
        .rows
        .iter()
        .map(|row| stored_key(row).map(|stored| stored.key))
        .collect::<Result<_, _>>()
        .map_err(StoreError::from)?;
    Ok((keys, page.next_page_token))
}

fn stored_key(row: &AnyRow) -> Result<StoredKey, sqlx::Error> {
    let revoked_at: i64 = row.try_get("revoked_at")?;
    let last_used_at: i64 = row.try_get("last_used_at")?;
    let roles: String = row.try_get("roles")?;
    let revoked_by = (revoked_at != 0)
        .then(|| {
            Ok::<_, sqlx::Error>(Actor {
                subject: row.try_get("revoked_by_subject")?,
                display_name: row.try_get("revoked_by_name")?,
                kind: row.try_get("revoked_by_kind")?,
            })
        })
        .transpose()?;
    let key = ApiKey {
        key_id: row.try_get("key_id")?,
        display_name: row.try_get("display_name")?,
        service_account: row.try_get("service_account")?,
        roles: roles
            .split(',')
            .filter(|r| !r.is_empty())
            .map(str::to_owned)
            .collect(),
        description: row.try_get("description")?,
        create_time: row.try_get("created_at")?,
        created_by: Actor {
            subject: row.try_get("created_by_subject")?,
            display_name: row.try_get("created_by_name")?,
            kind: row.try_get("created_by_kind")?,
        },
        expire_time: row.try_get("expire_at")?,
        revoke_time: (revoked_at != 0).then_some(revoked_at),
        revoked_by,
        revoke_reason: row.try_get("revoke_reason")?,
        last_used_time: (last_used_at != 0).then_some(last_used_at),
        version: row.try_get("version")?,
    };
    Ok(StoredKey {
        id: row.try_get("id")?,
        key,
        secret_hash: row.try_get("secret_hash")?,
    })
}
