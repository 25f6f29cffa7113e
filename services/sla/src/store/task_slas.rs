//! The `task_slas` table as ListTaskSlas reads it (doc: `TaskSla`).

use itsm_platform::ApiError;
use itsm_store::page::{self, PageTokens, SortColumn};
use itsm_store::query::{
    Field, FieldKind, Schema, SqlBuilder, SqlValue, filter_sql, parse_order_by,
};
use itsm_store::{Db, StoreError};
use sqlx::Row;

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
        text_field("assignment_group", false),
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
    let limit = page::page_size(request.page_size)?;
    let mut terms = parse_order_by(request.order_by, &SCHEMA)?;
    if terms.is_empty() {
        terms = parse_order_by("create_time", &SCHEMA)?;
    }
    let descending = terms.first().is_some_and(|t| t.descending);
    let mut key: Vec<(&'static str, bool)> = terms
        .iter()
        .map(|t| (t.field.column, t.descending))
        .collect();
    key.push(("id", descending));
    let fingerprint = format!(
        "task SLA\u{0}{}\u{0}{}",
        request.filter.trim(),
        terms
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")
    );
    let mut sql = SqlBuilder::new(SELECT);
    sql.push(" WHERE 1 = 1");
    let mut filter = SqlBuilder::default();
    if filter_sql(request.filter, &SCHEMA, &mut filter)? {
        sql.push(" AND ");
        sql.append(&filter);
    }
    let columns: Vec<SortColumn<'_>> = key
        .iter()
        .map(|(column, descending)| SortColumn {
            column,
            descending: *descending,
        })
        .collect();
    if !request.page_token.is_empty() {
        let after = tokens.decode(request.page_token, &fingerprint)?;
        if after.len() != key.len() {
            return Err(ApiError::invalid_field(
                "page_token",
                "does not match this list's order; start again without a page_token",
            ));
        }
        sql.push(" AND ");
        page::push_after(&mut sql, &columns, &after);
    }
    page::push_order_by(&mut sql, &columns);
    sql.push(" LIMIT ")
        .push_bind(i64::try_from(limit + 1).unwrap_or(i64::MAX));
    let mut conn = db.pool().acquire().await.map_err(StoreError::from)?;
    let mut rows = itsm_store::db::query(&sql)
        .fetch_all(&mut *conn)
        .await
        .map_err(StoreError::from)?;
    let mut next_page_token = String::new();
    if rows.len() > limit {
        rows.truncate(limit);
        if let Some(last) = rows.last() {
            let after = key
                .iter()
                .map(|(column, _)| row_key(last, column).map(SqlValue::Int))
                .collect::<Result<Vec<_>, sqlx::Error>>()
                .map_err(StoreError::from)?;
            next_page_token = tokens.encode(&fingerprint, &after);
        }
    }
    let docs = rows
        .iter()
        .map(|row| row.try_get::<Vec<u8>, _>("doc"))
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .map_err(StoreError::from)?;
    Ok((docs, next_page_token))
}

fn row_key(row: &sqlx::any::AnyRow, column: &str) -> Result<i64, sqlx::Error> {
    row.try_get(column)
}
