//! The `sla_definitions` and `sla_definition_versions` tables (doc:
//! `SlaDefinition` with the `version` and `etag` of that version).

use itsm_proto::itsm::sla::v1 as pb;
use itsm_store::StoreError;
use itsm_store::query::{Field, FieldKind, Schema};
use prost::Message as _;
use sqlx::AnyConnection;

use super::text_field;
use super::versioned::{self, Tables};

pub const TABLES: Tables = Tables {
    current: "sla_definitions",
    versions: "sla_definition_versions",
    key: "sla_definition_id",
};

/// `SELECT` of a list page.
pub const SELECT: &str = "SELECT id, display_name, kind, ticket_type, enabled, created_at, \
                          updated_at, doc FROM sla_definitions";

const KINDS: &[(&str, i64)] = &[("SLA", 1), ("OLA", 2), ("UC", 3)];

/// What ListSlaDefinitions' `filter` and `order_by` may name.
pub static SCHEMA: Schema = Schema {
    resource: "SLA definition",
    fields: &[
        Field {
            name: "name",
            column: "('slaDefinitions/' || id)",
            kind: FieldKind::Text,
            sortable: false,
        },
        text_field("display_name", true),
        text_field("ticket_type", true),
        Field {
            name: "kind",
            column: "kind",
            kind: FieldKind::Enum(KINDS),
            sortable: true,
        },
        Field {
            name: "enabled",
            column: "(enabled <> 0)",
            kind: FieldKind::Bool,
            sortable: false,
        },
        Field {
            name: "calendar",
            column: "(CASE WHEN calendar_id = '' THEN '' ELSE 'calendars/' || calendar_id END)",
            kind: FieldKind::Text,
            sortable: false,
        },
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

/// The id of "slaDefinitions/<id>".
pub fn id_of(name: &str) -> Option<&str> {
    name.strip_prefix("slaDefinitions/")
        .filter(|id| !id.is_empty() && !id.contains('/'))
}

/// A definition read: its current version (0) or one of its versions.
pub async fn select(
    conn: &mut AnyConnection,
    id: &str,
    version: i64,
) -> Result<Option<pb::SlaDefinition>, StoreError> {
    let doc = if version == 0 {
        versioned::select_current(conn, TABLES, id, "")
            .await?
            .filter(|(_, deleted, _)| !deleted)
            .map(|(_, _, doc)| doc)
    } else {
        versioned::select_version(conn, TABLES, id, version).await?
    };
    doc.map(|d| super::decode("sla_definitions", &d))
        .transpose()
}

/// The current version of `id`, deleted or not, read with `lock`.
pub async fn select_for_write(
    conn: &mut AnyConnection,
    id: &str,
    lock: &str,
) -> Result<Option<(bool, pb::SlaDefinition)>, StoreError> {
    let row = versioned::select_current(conn, TABLES, id, lock).await?;
    row.map(|(_, deleted, doc)| Ok((deleted, super::decode("sla_definitions", &doc)?)))
        .transpose()
}

/// Inserts a new definition at `d.version` (1) with its version row; an
/// existing id is a unique violation.
pub async fn insert(
    conn: &mut AnyConnection,
    id: &str,
    d: &pb::SlaDefinition,
    now: i64,
) -> Result<(), StoreError> {
    let doc = d.encode_to_vec();
    sqlx::query(
        "INSERT INTO sla_definitions (id, display_name, kind, ticket_type, enabled, calendar_id, \
         version, created_at, updated_at, doc) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9)",
    )
    .bind(id)
    .bind(&d.display_name)
    .bind(d.kind)
    .bind(&d.ticket_type)
    .bind(i32::from(d.enabled))
    .bind(calendar_id(d))
    .bind(d.version)
    .bind(now)
    .bind(&doc)
    .execute(&mut *conn)
    .await?;
    versioned::insert_version(conn, TABLES, id, d.version, now, &doc).await
}

/// Makes `d` (at its new `version`) the current version and records it.
pub async fn update(
    conn: &mut AnyConnection,
    id: &str,
    d: &pb::SlaDefinition,
    now: i64,
) -> Result<(), StoreError> {
    let doc = d.encode_to_vec();
    sqlx::query(
        "UPDATE sla_definitions SET display_name = $2, kind = $3, ticket_type = $4, enabled = $5, \
         calendar_id = $6, version = $7, updated_at = $8, doc = $9 WHERE id = $1",
    )
    .bind(id)
    .bind(&d.display_name)
    .bind(d.kind)
    .bind(&d.ticket_type)
    .bind(i32::from(d.enabled))
    .bind(calendar_id(d))
    .bind(d.version)
    .bind(now)
    .bind(&doc)
    .execute(&mut *conn)
    .await?;
    versioned::insert_version(conn, TABLES, id, d.version, now, &doc).await
}

/// Whether any task SLA refers to definition `id`.
pub async fn in_use(conn: &mut AnyConnection, id: &str) -> Result<bool, StoreError> {
    let found = sqlx::query("SELECT 1 FROM task_slas WHERE sla_definition_id = $1 LIMIT 1")
        .bind(id)
        .fetch_optional(conn)
        .await?;
    Ok(found.is_some())
}

fn calendar_id(d: &pb::SlaDefinition) -> &str {
    super::calendars::id_of(&d.calendar).unwrap_or_default()
}
