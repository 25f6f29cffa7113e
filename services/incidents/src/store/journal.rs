//! Journal entries of an incident: appended, read one at a time (a retried
//! add), and listed oldest first.

use itsm_platform::ApiError;
use itsm_store::list::{ListRequest, ListSpec};
use itsm_store::page::PageTokens;
use itsm_store::query::{Field, FieldKind, Schema};
use itsm_store::{Db, SqlBuilder, StoreError};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::actor;
use crate::domain::enums::JournalKind;
use crate::domain::journal::JournalEntry;

const SELECT: &str = "SELECT id, incident_id, kind, body, author_subject, author_name, \
     author_kind, created_at FROM incident_journal";

/// What a journal list's `filter` may name.
static SCHEMA: Schema = Schema {
    resource: "journal entry",
    fields: &[
        Field {
            name: "kind",
            column: "kind",
            kind: FieldKind::Enum(JournalKind::NAMES),
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

const SPEC: ListSpec = ListSpec {
    schema: &SCHEMA,
    select: SELECT,
    id_column: "id",
    default_order: "create_time",
};

/// Appends an entry to incident row `incident_id`; returns its id.
pub async fn insert_entry(
    conn: &mut AnyConnection,
    incident_id: i64,
    kind: JournalKind,
    body: &str,
    author: &itsm_store::audit::Actor,
    now: i64,
) -> Result<JournalEntry, StoreError> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO incident_journal (incident_id, kind, body, author_subject, author_name, \
         author_kind, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(incident_id)
    .bind(kind.number())
    .bind(body)
    .bind(&author.subject)
    .bind(&author.display_name)
    .bind(author.kind)
    .bind(now)
    .fetch_one(conn)
    .await?;
    Ok(JournalEntry {
        id,
        kind,
        body: body.to_owned(),
        author: author.clone(),
        create_time: now,
    })
}

/// Entry `id` of incident row `incident_id`.
pub async fn select_entry(
    conn: &mut AnyConnection,
    incident_id: i64,
    id: i64,
) -> Result<Option<JournalEntry>, StoreError> {
    let mut sql = SqlBuilder::new(SELECT);
    sql.push(" WHERE incident_id = ")
        .push_bind(incident_id)
        .push(" AND id = ")
        .push_bind(id);
    let row = itsm_store::db::query(&sql).fetch_optional(conn).await?;
    row.as_ref()
        .map(entry)
        .transpose()
        .map_err(StoreError::from)
}

/// One page of incident row `incident_id`'s entries, oldest first; only
/// comments when `comments_only` (a requester's view).
pub async fn select_page(
    db: &Db,
    incident_id: i64,
    request: &ListRequest<'_>,
    tokens: &PageTokens,
    comments_only: bool,
) -> Result<(Vec<JournalEntry>, String), ApiError> {
    let plan = SPEC.plan(request, tokens, |sql: &mut SqlBuilder| {
        sql.push("incident_id = ").push_bind(incident_id);
        if comments_only {
            sql.push(" AND kind = ")
                .push_bind(JournalKind::Comment.number());
        }
    })?;
    let rows = itsm_store::db::query(plan.sql())
        .fetch_all(db.pool())
        .await
        .map_err(StoreError::from)?;
    let page = plan.finish(rows, tokens)?;
    let entries = page
        .rows
        .iter()
        .map(entry)
        .collect::<Result<_, _>>()
        .map_err(StoreError::from)?;
    Ok((entries, page.next_page_token))
}

fn entry(row: &AnyRow) -> Result<JournalEntry, sqlx::Error> {
    let kind: i32 = row.try_get("kind")?;
    Ok(JournalEntry {
        id: row.try_get("id")?,
        kind: JournalKind::from_number(kind).ok_or_else(|| {
            sqlx::Error::Decode(
                format!("incident_journal.kind holds an unknown value {kind}").into(),
            )
        })?,
        body: row.try_get("body")?,
        author: actor(row, "author")?,
        create_time: row.try_get("created_at")?,
    })
}
