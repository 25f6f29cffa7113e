//! The `calendars` and `calendar_versions` tables (doc: `Calendar` with the
//! `version` and `etag` of that version).

use itsm_proto::itsm::sla::v1 as pb;
use itsm_store::StoreError;
use itsm_store::query::{Field, FieldKind, Schema};
use prost::Message as _;
use sqlx::AnyConnection;

use super::text_field;
use super::versioned::{self, Tables};

pub const TABLES: Tables = Tables {
    current: "calendars",
    versions: "calendar_versions",
    key: "calendar_id",
};

/// `SELECT` of a list page.
pub const SELECT: &str =
    "SELECT id, display_name, time_zone, created_at, updated_at, doc FROM calendars";

/// What ListCalendars' `filter` and `order_by` may name.
pub static SCHEMA: Schema = Schema {
    resource: "calendar",
    fields: &[
        Field {
            name: "name",
            column: "('calendars/' || id)",
            kind: FieldKind::Text,
            sortable: false,
        },
        text_field("display_name", true),
        text_field("time_zone", false),
        Field {
            name: "create_time",
            column: "created_at",
            kind: FieldKind::Timestamp,
            sortable: true,
        },
        Field {
            name: "update_time",
            column: "updated_at",
            kind: FieldKind::Timestamp,
            sortable: true,
        },
    ],
};

/// The id of "calendars/<id>".
pub fn id_of(name: &str) -> Option<&str> {
    name.strip_prefix("calendars/")
        .filter(|id| !id.is_empty() && !id.contains('/'))
}

/// A calendar read: its current version or one of its versions.
pub async fn select(
    conn: &mut AnyConnection,
    id: &str,
    version: i64,
) -> Result<Option<pb::Calendar>, StoreError> {
    let doc = if version == 0 {
        versioned::select_current(conn, TABLES, id, "")
            .await?
            .filter(|(_, deleted, _)| !deleted)
            .map(|(_, _, doc)| doc)
    } else {
        versioned::select_version(conn, TABLES, id, version).await?
    };
    doc.map(|d| super::decode("calendars", &d)).transpose()
}

/// The current version of `id`, deleted or not, read with `lock`.
pub async fn select_for_write(
    conn: &mut AnyConnection,
    id: &str,
    lock: &str,
) -> Result<Option<(bool, pb::Calendar)>, StoreError> {
    let row = versioned::select_current(conn, TABLES, id, lock).await?;
    row.map(|(_, deleted, doc)| Ok((deleted, super::decode("calendars", &doc)?)))
        .transpose()
}

/// Inserts a new calendar at `c.version` (1) with its version row. A calendar
/// of that id already there is a unique violation.
pub async fn insert(
    conn: &mut AnyConnection,
    id: &str,
    c: &pb::Calendar,
    now: i64,
) -> Result<(), StoreError> {
    let doc = c.encode_to_vec();
    sqlx::query(
        "INSERT INTO calendars (id, display_name, time_zone, version, created_at, updated_at, doc) \
         VALUES ($1, $2, $3, $4, $5, $5, $6)",
    )
    .bind(id)
    .bind(&c.display_name)
    .bind(&c.time_zone)
    .bind(c.version)
    .bind(now)
    .bind(&doc)
    .execute(&mut *conn)
    .await?;
    versioned::insert_version(conn, TABLES, id, c.version, now, &doc).await
}

/// Makes `c` (at its new `version`) the current version and records it.
pub async fn update(
    conn: &mut AnyConnection,
    id: &str,
    c: &pb::Calendar,
    now: i64,
) -> Result<(), StoreError> {
    let doc = c.encode_to_vec();
    sqlx::query(
        "UPDATE calendars SET display_name = $2, time_zone = $3, version = $4, updated_at = $5, \
         doc = $6 WHERE id = $1",
    )
    .bind(id)
    .bind(&c.display_name)
    .bind(&c.time_zone)
    .bind(c.version)
    .bind(now)
    .bind(&doc)
    .execute(&mut *conn)
    .await?;
    versioned::insert_version(conn, TABLES, id, c.version, now, &doc).await
}

/// The names of enabled definitions (not deleted) that use calendar `id`, at most 10.
pub async fn used_by(conn: &mut AnyConnection, id: &str) -> Result<Vec<String>, StoreError> {
    let ids: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM sla_definitions WHERE calendar_id = $1 AND enabled = 1 AND deleted = 0 \
         ORDER BY id LIMIT 10",
    )
    .bind(id)
    .fetch_all(conn)
    .await?;
    Ok(ids
        .into_iter()
        .map(|id| format!("slaDefinitions/{id}"))
        .collect())
}

/// The current version number of calendar `id`, unless it is missing or deleted.
pub async fn current_version(
    conn: &mut AnyConnection,
    id: &str,
) -> Result<Option<i64>, StoreError> {
    let version = sqlx::query_scalar("SELECT version FROM calendars WHERE id = $1 AND deleted = 0")
        .bind(id)
        .fetch_optional(conn)
        .await?;
    Ok(version)
}
