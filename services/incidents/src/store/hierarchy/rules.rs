//! The `major_incident_rules` rows, and their evaluation against one incident.

use itsm_platform::ApiError;
use itsm_store::list::{ListRequest, ListSpec};
use itsm_store::page::PageTokens;
use itsm_store::query::{Field, FieldKind, Schema, filter_sql};
use itsm_store::{Db, SqlBuilder, StoreError};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::domain::hierarchy::major::{MajorRule, MajorRuleAction};
use crate::store::{actor, list};

const SELECT: &str = "SELECT id, condition, min_children, children_window_us, action, enabled, \
     created_by_subject, created_by_name, created_by_kind, created_at, version \
     FROM major_incident_rules";

/// Rules are listed oldest first; nothing to filter on.
static SCHEMA: Schema = Schema {
    resource: "major incident rule",
    fields: &[Field {
        name: "create_time",
        column: "created_at",
        kind: FieldKind::Timestamp,
        sortable: true,
    }],
};

const SPEC: ListSpec = ListSpec {
    schema: &SCHEMA,
    select: SELECT,
    id_column: "id",
    default_order: "create_time",
};

/// Compiles a rule's condition as `ListIncidents` compiles its filter (the
/// same schema): what a rule may say is what a list may ask. Appends
/// nothing for an empty condition.
pub fn compile_condition(condition: &str, out: &mut SqlBuilder) -> Result<bool, ApiError> {
    filter_sql(condition, &list::SCHEMA, out).map_err(|e| {
        ApiError::invalid_field(
            "rule.condition",
            format!("{} (the incident list's filter language)", e.description()),
        )
    })
}

/// Inserts a rule; returns its id.
pub async fn insert_rule(conn: &mut AnyConnection, r: &MajorRule) -> Result<i64, StoreError> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO major_incident_rules (condition, min_children, children_window_us, action, \
         enabled, created_by_subject, created_by_name, created_by_kind, created_at, version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
    )
    .bind(&r.condition)
    .bind(r.min_children)
    .bind(r.children_window)
    .bind(r.action.number())
    .bind(i32::from(r.enabled))
    .bind(&r.created_by.subject)
    .bind(&r.created_by.display_name)
    .bind(r.created_by.kind)
    .bind(r.create_time)
    .bind(r.version)
    .fetch_one(conn)
    .await?;
    Ok(id)
}

/// Rule `id`.
pub async fn select_rule(
    conn: &mut AnyConnection,
    id: i64,
) -> Result<Option<MajorRule>, StoreError> {
    let mut sql = SqlBuilder::new(SELECT);
    sql.push(" WHERE id = ").push_bind(id);
    let row = itsm_store::db::query(&sql).fetch_optional(conn).await?;
    row.as_ref().map(rule).transpose().map_err(StoreError::from)
}

/// Deletes rule `id`; whether it existed.
pub async fn delete_rule(conn: &mut AnyConnection, id: i64) -> Result<bool, StoreError> {
    let result = sqlx::query("DELETE FROM major_incident_rules WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(result.rows_affected() == 1)
}

/// One page of rules, oldest first.
pub async fn select_page(
    db: &Db,
    request: &ListRequest<'_>,
    tokens: &PageTokens,
) -> Result<(Vec<MajorRule>, String), ApiError> {
    let plan = SPEC.plan(request, tokens, |_: &mut SqlBuilder| {})?;
    let rows = itsm_store::db::query(plan.sql())
        .fetch_all(db.pool())
        .await
        .map_err(StoreError::from)?;
    let page = plan.finish(rows, tokens)?;
    let rules = page
        .rows
        .iter()
        .map(rule)
        .collect::<Result<_, _>>()
        .map_err(StoreError::from)?;
    Ok((rules, page.next_page_token))
}

/// What the enabled major-incident rules say about incident row
/// `incident_id`: the strongest action of those that match (PROMOTE over
/// PROPOSE), or `None`. A rule matches when
/// `SELECT 1 FROM incidents WHERE id = $1 AND (<its condition>)` finds the
/// row and, when its `min_children` > 0, the incident has more than that
/// many children created within its `children_window` (before now).
///
/// Applying the action (and its audit entry and event) is the caller's, in
/// the same transaction: see `Incident::apply_major_rule`. A stored
/// condition that no longer compiles (the schema changed) is skipped with a
/// warning rather than failing the change being made.
pub(crate) async fn evaluate_major_rules(
    conn: &mut AnyConnection,
    incident_id: i64,
) -> Result<Option<MajorRuleAction>, StoreError> {
    let mut sql = SqlBuilder::new(SELECT);
    sql.push(" WHERE enabled = 1 ORDER BY id");
    let rows = itsm_store::db::query(&sql).fetch_all(&mut *conn).await?;
    let rules = rows.iter().map(rule).collect::<Result<Vec<_>, _>>()?;
    let now = itsm_store::now_micros();
    let mut strongest: Option<MajorRuleAction> = None;
    for r in rules {
        if strongest >= Some(r.action) {
            continue;
        }
        let mut query = SqlBuilder::new("SELECT 1 AS one FROM incidents WHERE id = ");
        query.push_bind(incident_id);
        let mut condition = SqlBuilder::default();
        match compile_condition(&r.condition, &mut condition) {
            Ok(true) => {
                query.push(" AND (").append(&condition).push(")");
            }
            Ok(false) => {}
            Err(error) => {
                tracing::warn!(rule = %r.name(), %error, "major incident rule no longer compiles, skipped");
                continue;
            }
        }
        if r.min_children > 0 {
            query
                .push(
                    " AND (SELECT COUNT(*) FROM incidents c \
                     WHERE c.parent = incidents.number AND c.created_at >= ",
                )
                .push_bind(now.saturating_sub(r.children_window))
                .push(") > ")
                .push_bind(i64::from(r.min_children));
        }
        if itsm_store::db::query(&query)
            .fetch_optional(&mut *conn)
            .await?
            .is_some()
        {
            strongest = Some(r.action);
        }
    }
    Ok(strongest)
}

fn rule(row: &AnyRow) -> Result<MajorRule, sqlx::Error> {
    let action: i32 = row.try_get("action")?;
    Ok(MajorRule {
        id: row.try_get("id")?,
        condition: row.try_get("condition")?,
        min_children: row.try_get("min_children")?,
        children_window: row.try_get("children_window_us")?,
        action: MajorRuleAction::from_number(action).ok_or_else(|| {
            sqlx::Error::Decode(
                format!("major_incident_rules.action holds an unknown value {action}").into(),
            )
        })?,
        enabled: row.try_get::<i32, _>("enabled")? != 0,
        created_by: actor(row, "created_by")?,
        create_time: row.try_get("created_at")?,
        version: row.try_get("version")?,
    })
}
