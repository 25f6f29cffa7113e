//! The `incident_tasks` rows: inserted, read, updated, and listed per incident.

use itsm_platform::ApiError;
use itsm_store::list::{ListRequest, ListSpec};
use itsm_store::page::PageTokens;
use itsm_store::query::{Field, FieldKind, Schema};
use itsm_store::{Db, SqlBuilder, StoreError};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::domain::hierarchy::task::{Task, TaskState};
use crate::store::{actor, time};

const SELECT: &str = "SELECT id, number, incident_id, title, description, state, \
     assignment_group, assignee, due_at, created_by_subject, created_by_name, created_by_kind, \
     created_at, updated_at, version FROM incident_tasks";

const fn text(name: &'static str, sortable: bool) -> Field {
    Field {
        name,
        column: name,
        kind: FieldKind::Text,
        sortable,
    }
}

/// What a task list's `filter` and `order_by` may name.
static SCHEMA: Schema = Schema {
    resource: "incident task",
    fields: &[
        text("number", true),
        Field {
            name: "state",
            column: "state",
            kind: FieldKind::Enum(TaskState::NAMES),
            sortable: true,
        },
        text("assignment_group", false),
        text("assignee", false),
        Field {
            name: "due_time",
            column: "due_at",
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

const SPEC: ListSpec = ListSpec {
    schema: &SCHEMA,
    select: SELECT,
    id_column: "id",
    default_order: "create_time",
};

/// Inserts a new task of incident row `incident_id`; returns its row id.
pub async fn insert_task(
    conn: &mut AnyConnection,
    incident_id: i64,
    t: &Task,
) -> Result<i64, StoreError> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO incident_tasks (number, incident_id, title, description, state, \
         assignment_group, assignee, due_at, created_by_subject, created_by_name, \
         created_by_kind, created_at, updated_at, version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING id",
    )
    .bind(&t.number)
    .bind(incident_id)
    .bind(&t.title)
    .bind(&t.description)
    .bind(t.state.number())
    .bind(&t.assignment_group)
    .bind(&t.assignee)
    .bind(t.due_time.unwrap_or(0))
    .bind(&t.created_by.subject)
    .bind(&t.created_by.display_name)
    .bind(t.created_by.kind)
    .bind(t.create_time)
    .bind(t.update_time)
    .bind(t.version)
    .fetch_one(conn)
    .await?;
    Ok(id)
}

/// Writes a changed task; `previous_version` is the version read under the row lock.
pub async fn update_task(
    conn: &mut AnyConnection,
    t: &Task,
    incident_id: i64,
    previous_version: i64,
) -> Result<(), StoreError> {
    let result = sqlx::query(
        "UPDATE incident_tasks SET title = $1, description = $2, state = $3, \
         assignment_group = $4, assignee = $5, due_at = $6, updated_at = $7, version = $8 \
         WHERE incident_id = $9 AND number = $10 AND version = $11",
    )
    .bind(&t.title)
    .bind(&t.description)
    .bind(t.state.number())
    .bind(&t.assignment_group)
    .bind(&t.assignee)
    .bind(t.due_time.unwrap_or(0))
    .bind(t.update_time)
    .bind(t.version)
    .bind(incident_id)
    .bind(&t.number)
    .bind(previous_version)
    .execute(conn)
    .await?;
    if result.rows_affected() == 1 {
        Ok(())
    } else {
        Err(StoreError::StaleEtag(t.name()))
    }
}

/// Task `number` of incident row `incident_id` (numbered `incident`). `lock`
/// is [`itsm_store::Backend::lock_suffix`] when the transaction will update it.
pub async fn select_task(
    conn: &mut AnyConnection,
    incident_id: i64,
    incident: &str,
    number: &str,
    lock: &'static str,
) -> Result<Option<Task>, StoreError> {
    let mut sql = SqlBuilder::new(SELECT);
    sql.push(" WHERE incident_id = ")
        .push_bind(incident_id)
        .push(" AND number = ")
        .push_bind(number)
        .push(lock);
    let row = itsm_store::db::query(&sql).fetch_optional(conn).await?;
    row.as_ref()
        .map(|row| task(row, incident))
        .transpose()
        .map_err(StoreError::from)
}

/// One page of incident row `incident_id`'s tasks (the incident numbered `incident`).
pub async fn select_page(
    db: &Db,
    incident_id: i64,
    incident: &str,
    request: &ListRequest<'_>,
    tokens: &PageTokens,
) -> Result<(Vec<Task>, String), ApiError> {
    let plan = SPEC.plan(request, tokens, |sql: &mut SqlBuilder| {
        sql.push("incident_id = ").push_bind(incident_id);
    })?;
    let rows = itsm_store::db::query(plan.sql())
        .fetch_all(db.pool())
        .await
        .map_err(StoreError::from)?;
    let page = plan.finish(rows, tokens)?;
    let tasks = page
        .rows
        .iter()
        .map(|row| task(row, incident))
        .collect::<Result<_, _>>()
        .map_err(StoreError::from)?;
    Ok((tasks, page.next_page_token))
}

fn task(row: &AnyRow, incident: &str) -> Result<Task, sqlx::Error> {
    let state: i32 = row.try_get("state")?;
    Ok(Task {
        number: row.try_get("number")?,
        incident: incident.to_owned(),
        title: row.try_get("title")?,
        description: row.try_get("description")?,
        state: TaskState::from_number(state).ok_or_else(|| {
            sqlx::Error::Decode(
                format!("incident_tasks.state holds an unknown value {state}").into(),
            )
        })?,
        assignment_group: row.try_get("assignment_group")?,
        assignee: row.try_get("assignee")?,
        due_time: time(row, "due_at")?,
        created_by: actor(row, "created_by")?,
        create_time: row.try_get("created_at")?,
        update_time: row.try_get("updated_at")?,
        version: row.try_get("version")?,
    })
}
