//! The `task_slas` table as ListTaskSlas reads it (doc: `TaskSla`).

use itsm_platform::ApiError;
use itsm_store::Db;
use itsm_store::page::PageTokens;
use itsm_store::query::{Field, FieldKind, Schema, SqlBuilder};

use super::text_field;

/// `SELECT` of a list page.
pub const SELECT: &str = "SELECT id, created_at, breach_at, doc FROM task_slas";

const STATES: &[(&str, i64)] = &[
    ("IN_PROGRESS", 1),
    ("PAUSED", 2),
    ("ACHIEVED", 3),
    ("BREACHED", 4),
    ("CANCELED", 5),
];

const KINDS: &[(&str, i64)] = &[("SLA", 1), ("OLA", 2), ("UC", 3)];

const PRIORITIES: &[(&str, i64)] = &[
    ("CRITICAL", 1),
    ("HIGH", 2),
    ("MODERATE", 3),
    ("LOW", 4),
    ("PLANNING", 5),
];

/// What ListTaskSlas' `filter` and `order_by` may name.
pub static SCHEMA: Schema = Schema {
    resource: "task SLA",
    fields: &[
        Field {
            name: "name",
            column: "('taskSlas/' || uid)",
            kind: FieldKind::Text,
            sortable: false,
        },
        text_field("ticket", false),
        Field {
            name: "sla_definition",
            column: "('slaDefinitions/' || sla_definition_id)",
            kind: FieldKind::Text,
            sortable: false,
        },
        Field {
            name: "state",
            column: "state",
            kind: FieldKind::Enum(STATES),
            sortable: false,
        },
        Field {
            name: "breached",
            column: "(breached <> 0)",
            kind: FieldKind::Bool,
            sortable: false,
        },
        Field {
            name: "calendar",
            column: "('calendars/' || calendar_id)",
            kind: FieldKind::Text,
            sortable: false,
        },
        text_field("assignment_group", false),
        Field {
            name: "kind",
            column: "kind",
            kind: FieldKind::Enum(KINDS),
            sortable: false,
        },
        Field {
            name: "priority",
            column: "priority",
            kind: FieldKind::Enum(PRIORITIES),
            sortable: false,
        },
        text_field("service", false),
        Field {
            name: "start_time",
            column: "start_at",
            kind: FieldKind::Timestamp,
            sortable: false,
        },
        Field {
            name: "stop_time",
            column: "stop_at",
            kind: FieldKind::Timestamp,
            sortable: false,
        },
        Field {
            name: "breach_time",
            column: "breach_at",
            kind: FieldKind::Timestamp,
            sortable: true,
        },
        Field {
            name: "create_time",
            column: "created_at",
            kind: FieldKind::Timestamp,
            sortable: true,
        },
    ],
};

/// A keyset page of task SLAs: `filter` and `order_by` (default
/// `create_time`) over [`SCHEMA`], ties broken by the internal id.
pub async fn select_page(
    db: &Db,
    request: &itsm_store::list::ListRequest<'_>,
    tokens: &PageTokens,
) -> Result<(Vec<Vec<u8>>, String), ApiError> {
    let list = super::Keyset {
        select: SELECT,
        base: SqlBuilder::default(),
        filter_schema: &SCHEMA,
        order_schema: &SCHEMA,
        default_order: "create_time",
        tie: ("id", FieldKind::Int),
        scope: String::new(),
    };
    let (rows, next_page_token) = super::select_keyset_page(db, list, request, tokens).await?;
    Ok((super::docs(&rows)?, next_page_token))
}
