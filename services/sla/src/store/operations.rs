//! The `operations` table (doc: `Operation`): long-running recomputations
//! with their state, the cancel flag CancelOperation sets and the worker's
//! keyset cursor (the last `task_slas.id` processed).

use itsm_platform::ApiError;
use itsm_proto::itsm::sla::v1 as pb;
use itsm_store::page::PageTokens;
use itsm_store::query::{Field, FieldKind, Schema, SqlBuilder};
use itsm_store::{Db, StoreError};
use prost::Message as _;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::decode;

/// The columns a worker or a handler reads.
const COLUMNS: &str = "SELECT uid, state, cancel_requested, cursor, doc FROM operations";

const STATES: &[(&str, i64)] = &[
    ("PENDING", 1),
    ("RUNNING", 2),
    ("SUCCEEDED", 3),
    ("FAILED", 4),
    ("CANCELED", 5),
];

const KINDS: &[(&str, i64)] = &[("RECOMPUTE", 1)];

/// What ListOperations' `filter` and `order_by` may name.
pub static SCHEMA: Schema = Schema {
    resource: "operation",
    fields: &[
        Field {
            name: "name",
            column: "('operations/' || uid)",
            kind: FieldKind::Text,
            sortable: false,
        },
        Field {
            name: "kind",
            column: "kind",
            kind: FieldKind::Enum(KINDS),
            sortable: false,
        },
        Field {
            name: "state",
            column: "state",
            kind: FieldKind::Enum(STATES),
            sortable: false,
        },
        Field {
            name: "create_time",
            column: "created_at",
            kind: FieldKind::Timestamp,
            sortable: true,
        },
    ],
};

/// A stored operation.
#[derive(Debug, Clone)]
pub struct Stored {
    pub uid: String,
    /// CancelOperation asked it to stop.
    pub cancel_requested: bool,
    /// The last `task_slas.id` processed (0: none yet).
    pub cursor: i64,
    pub doc: pb::Operation,
}

impl Stored {
    /// Whether it is still to run (PENDING or RUNNING).
    pub fn is_active(&self) -> bool {
        is_active(self.doc.state)
    }
}

/// Whether `state` is PENDING or RUNNING.
pub fn is_active(state: i32) -> bool {
    state == pb::OperationState::Pending as i32 || state == pb::OperationState::Running as i32
}

/// The uid of "operations/<uid>".
pub fn uid_of(name: &str) -> Option<&str> {
    name.strip_prefix("operations/")
        .filter(|id| !id.is_empty() && !id.contains('/'))
}

fn stored(row: &AnyRow) -> Result<Stored, StoreError> {
    let doc: Vec<u8> = row.try_get("doc")?;
    Ok(Stored {
        uid: row.try_get("uid")?,
        cancel_requested: row.try_get::<i32, _>("cancel_requested")? != 0,
        cursor: row.try_get("cursor")?,
        doc: decode("operations", &doc)?,
    })
}

/// Inserts a new operation (its name is "operations/<uid>").
pub async fn insert(
    conn: &mut AnyConnection,
    uid: &str,
    op: &pb::Operation,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO operations (uid, tenant, kind, state, cancel_requested, cursor, created_at, updated_at, doc) \
         VALUES ($1, $2, $3, $4, 0, 0, $5, $5, $6)",
    )
    .bind(uid)
    .bind(&op.tenant)
    .bind(op.kind)
    .bind(op.state)
    .bind(now)
    .bind(op.encode_to_vec())
    .execute(conn)
    .await?;
    Ok(())
}

/// The operation `uid`, read with `lock` appended (`Backend::lock_suffix`
/// to update it; "" to read).
pub async fn select(
    conn: &mut AnyConnection,
    uid: &str,
    lock: &str,
) -> Result<Option<Stored>, StoreError> {
    let sql = format!("{COLUMNS} WHERE uid = $1{lock}");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(uid)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(stored).transpose()
}

/// The oldest PENDING or RUNNING operation no other transaction holds,
/// locked for this transaction (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so
/// each operation has one worker at a time across replicas; SQLite writers
/// are serialized already).
pub async fn select_next_active(
    conn: &mut AnyConnection,
    skip_locked: bool,
) -> Result<Option<Stored>, StoreError> {
    let lock = if skip_locked {
        " FOR UPDATE SKIP LOCKED"
    } else {
        ""
    };
    let sql = format!("{COLUMNS} WHERE state IN (1, 2) ORDER BY created_at, uid LIMIT 1{lock}");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(stored).transpose()
}

/// Writes an operation's state, cursor and document (never the cancel flag:
/// a CancelOperation racing the worker is not undone).
pub async fn update(conn: &mut AnyConnection, op: &Stored, now: i64) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE operations SET state = $2, cursor = $3, updated_at = $4, doc = $5 WHERE uid = $1",
    )
    .bind(&op.uid)
    .bind(op.doc.state)
    .bind(op.cursor)
    .bind(now)
    .bind(op.doc.encode_to_vec())
    .execute(conn)
    .await?;
    Ok(())
}

/// Sets the cancel flag of operation `uid`.
pub async fn request_cancel(
    conn: &mut AnyConnection,
    uid: &str,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE operations SET cancel_requested = 1, updated_at = $2 WHERE uid = $1")
        .bind(uid)
        .bind(now)
        .execute(conn)
        .await?;
    Ok(())
}

/// A keyset page of operations: `filter` and `order_by` (default
/// `create_time desc`) over [`SCHEMA`], ties broken by uid.
pub async fn select_page(
    db: &Db,
    request: &itsm_store::list::ListRequest<'_>,
    tokens: &PageTokens,
) -> Result<(Vec<pb::Operation>, String), ApiError> {
    let list = super::Keyset {
        select: "SELECT uid, created_at, doc FROM operations",
        base: SqlBuilder::default(),
        filter_schema: &SCHEMA,
        order_schema: &SCHEMA,
        default_order: "create_time desc",
        tie: ("uid", FieldKind::Text),
        scope: String::new(),
    };
    let (rows, next_page_token) = super::select_keyset_page(db, list, request, tokens).await?;
    let operations = super::docs(&rows)?
        .iter()
        .map(|doc| decode("operations", doc))
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok((operations, next_page_token))
}
