//! SQL for automation: assignment rules and their evaluation against an
//! incident row, the round-robin cursors, the open load of assignees, the
//! KPI aggregates and the auto-close scan. One text for both backends.

use std::collections::HashMap;

use itsm_platform::ApiError;
use itsm_store::list::{ListRequest, ListSpec};
use itsm_store::page::PageTokens;
use itsm_store::query::{Field, FieldKind, Schema};
use itsm_store::{SqlBuilder, StoreError};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::actor;
use crate::domain::automation::{AssignmentRule, Strategy};
use crate::domain::enums::State;

const SELECT_RULES: &str = "SELECT id, position, condition, use_ci_support_group, \
     assignment_group, strategy, enabled, created_by_subject, created_by_name, created_by_kind, \
     created_at, updated_at, version FROM assignment_rules";

/// The states an incident is open in: counted as load and as backlog.
pub const OPEN_STATES: [State; 3] = [State::New, State::InProgress, State::OnHold];

/// Members asked about per statement: far below either backend's parameter limit.
const MEMBERS_PER_STATEMENT: usize = 500;

/// Rules are listed in evaluation order only: `order`, then creation.
static RULE_SCHEMA: Schema = Schema {
    resource: "assignment rule",
    fields: &[Field {
        name: "order",
        column: "position",
        kind: FieldKind::Int,
        sortable: true,
    }],
};

const RULES: ListSpec = ListSpec {
    schema: &RULE_SCHEMA,
    select: SELECT_RULES,
    id_column: "id",
    default_order: "order",
};

fn rule(row: &AnyRow) -> Result<AssignmentRule, sqlx::Error> {
    let strategy: i32 = row.try_get("strategy")?;
    let strategy = Strategy::from_number(strategy).ok_or_else(|| {
        sqlx::Error::Decode(format!("assignment_rules.strategy holds {strategy}").into())
    })?;
    Ok(AssignmentRule {
        id: row.try_get("id")?,
        order: row.try_get("position")?,
        condition: row.try_get("condition")?,
        use_ci_support_group: row.try_get::<i32, _>("use_ci_support_group")? != 0,
        assignment_group: row.try_get("assignment_group")?,
        strategy,
        enabled: row.try_get::<i32, _>("enabled")? != 0,
        created_by: actor(row, "created_by")?,
        create_time: row.try_get("created_at")?,
        update_time: row.try_get("updated_at")?,
        version: row.try_get("version")?,
    })
}

/// Inserts a new rule; returns its id.
pub async fn insert_rule(conn: &mut AnyConnection, r: &AssignmentRule) -> Result<i64, StoreError> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO assignment_rules (position, condition, use_ci_support_group, \
         assignment_group, strategy, enabled, created_by_subject, created_by_name, \
         created_by_kind, created_at, updated_at, version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id",
    )
    .bind(r.order)
    .bind(&r.condition)
    .bind(i32::from(r.use_ci_support_group))
    .bind(&r.assignment_group)
    .bind(r.strategy.number())
    .bind(i32::from(r.enabled))
    .bind(&r.created_by.subject)
    .bind(&r.created_by.display_name)
    .bind(r.created_by.kind)
    .bind(r.create_time)
    .bind(r.update_time)
    .bind(r.version)
    .fetch_one(conn)
    .await?;
    Ok(id)
}

/// The rule `id`. `lock` is [`itsm_store::Backend::lock_suffix`] when the
/// transaction will change it.
pub async fn select_rule(
    conn: &mut AnyConnection,
    id: i64,
    lock: &'static str,
) -> Result<Option<AssignmentRule>, StoreError> {
    let mut sql = SqlBuilder::new(SELECT_RULES);
    sql.push(" WHERE id = ").push_bind(id).push(lock);
    let row = itsm_store::db::query(&sql).fetch_optional(conn).await?;
    Ok(row.as_ref().map(rule).transpose()?)
}

/// Writes a changed rule; `previous_version` is the version read under the lock.
pub async fn update_rule(
    conn: &mut AnyConnection,
    r: &AssignmentRule,
    previous_version: i64,
) -> Result<(), StoreError> {
    let result = sqlx::query(
        "UPDATE assignment_rules SET position = $1, condition = $2, use_ci_support_group = $3, \
         assignment_group = $4, strategy = $5, enabled = $6, updated_at = $7, version = $8 \
         WHERE id = $9 AND version = $10",
    )
    .bind(r.order)
    .bind(&r.condition)
    .bind(i32::from(r.use_ci_support_group))
    .bind(&r.assignment_group)
    .bind(r.strategy.number())
    .bind(i32::from(r.enabled))
    .bind(r.update_time)
    .bind(r.version)
    .bind(r.id)
    .bind(previous_version)
    .execute(conn)
    .await?;
    // The row is locked, so this only happens if the lock was not taken.
    if result.rows_affected() == 1 {
        Ok(())
    } else {
        Err(StoreError::StaleEtag(r.name()))
    }
}

/// Deletes the rule `id`.
pub async fn delete_rule(conn: &mut AnyConnection, id: i64) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM assignment_rules WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// One page of rules in evaluation order, and the next page's token.
pub async fn select_rule_page(
    conn: &mut AnyConnection,
    request: &ListRequest<'_>,
    tokens: &PageTokens,
) -> Result<(Vec<AssignmentRule>, String), ApiError> {
    let plan = RULES.plan(request, tokens, |_: &mut SqlBuilder| {})?;
    let rows = itsm_store::db::query(plan.sql())
        .fetch_all(conn)
        .await
        .map_err(StoreError::from)?;
    let page = plan.finish(rows, tokens)?;
    let rules = page
        .rows
        .iter()
        .map(rule)
        .collect::<Result<Vec<_>, _>>()
        .map_err(StoreError::from)?;
    Ok((rules, page.next_page_token))
}

/// The enabled rules, in evaluation order.
pub async fn select_enabled_rules(
    conn: &mut AnyConnection,
) -> Result<Vec<AssignmentRule>, StoreError> {
    let sql = SqlBuilder::new(format!(
        "{SELECT_RULES} WHERE enabled = 1 ORDER BY position, id"
    ));
    let rows = itsm_store::db::query(&sql).fetch_all(conn).await?;
    Ok(rows.iter().map(rule).collect::<Result<Vec<_>, _>>()?)
}

/// Whether the incident row `incident_id` satisfies `predicate`, a filter
/// compiled against the incident list's schema (placeholders from `$1`).
pub async fn incident_matches(
    conn: &mut AnyConnection,
    incident_id: i64,
    predicate: &SqlBuilder,
) -> Result<bool, StoreError> {
    let mut sql = SqlBuilder::new("SELECT 1 AS hit FROM incidents WHERE id = ");
    sql.push_bind(incident_id);
    if !predicate.sql().is_empty() {
        sql.push(" AND ").append(predicate);
    }
    let row = itsm_store::db::query(&sql).fetch_optional(conn).await?;
    Ok(row.is_some())
}

/// The group's round-robin cursor (who got its last incident, `""` at
/// first), locked until the transaction ends so concurrent creations take
/// turns instead of picking the same member.
pub async fn lock_round_robin(
    conn: &mut AnyConnection,
    group: &str,
    lock: &'static str,
    now: i64,
) -> Result<String, StoreError> {
    // The row must exist to be locked; a concurrent first insert waits on the key.
    sqlx::query(
        "INSERT INTO assignment_round_robin (assignment_group, last_assignee, updated_at) \
         VALUES ($1, '', $2) ON CONFLICT (assignment_group) DO NOTHING",
    )
    .bind(group)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    let mut sql = SqlBuilder::new(
        "SELECT last_assignee FROM assignment_round_robin WHERE assignment_group = ",
    );
    sql.push_bind(group).push(lock);
    let row = itsm_store::db::query(&sql).fetch_one(conn).await?;
    Ok(row.try_get("last_assignee")?)
}

/// Moves the group's round-robin cursor to `assignee`.
pub async fn update_round_robin(
    conn: &mut AnyConnection,
    group: &str,
    assignee: &str,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE assignment_round_robin SET last_assignee = $1, updated_at = $2 \
         WHERE assignment_group = $3",
    )
    .bind(assignee)
    .bind(now)
    .bind(group)
    .execute(conn)
    .await?;
    Ok(())
}

/// How many open incidents each of `members` is assignee of, in any group;
/// members with none are absent.
pub async fn select_open_loads(
    conn: &mut AnyConnection,
    members: &[String],
) -> Result<HashMap<String, i64>, StoreError> {
    let mut loads = HashMap::new();
    for chunk in members.chunks(MEMBERS_PER_STATEMENT) {
        let mut sql = SqlBuilder::new(
            "SELECT assignee, COUNT(*) AS open_count FROM incidents WHERE state IN ",
        );
        sql.push_bind_list(OPEN_STATES.map(State::number))
            .push(" AND assignee IN ")
            .push_bind_list(chunk.iter().map(String::as_str))
            .push(" GROUP BY assignee");
        for row in itsm_store::db::query(&sql).fetch_all(&mut *conn).await? {
            loads.insert(row.try_get("assignee")?, row.try_get("open_count")?);
        }
    }
    Ok(loads)
}

/// A resolved incident old enough to close: its sort key and number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub resolve_time: i64,
    pub id: i64,
    pub number: String,
}

/// Up to `limit` incidents RESOLVED at or before `cutoff`, oldest first,
/// after the key `after` (resolve time, id) of the previous batch.
pub async fn select_resolved_before(
    conn: &mut AnyConnection,
    cutoff: i64,
    after: (i64, i64),
    limit: i64,
) -> Result<Vec<Resolved>, StoreError> {
    let rows = sqlx::query(
        "SELECT resolved_at, id, number FROM incidents WHERE state = $1 AND resolved_at <= $2 \
         AND (resolved_at > $3 OR (resolved_at = $3 AND id > $4)) \
         ORDER BY resolved_at, id LIMIT $5",
    )
    .bind(State::Resolved.number())
    .bind(cutoff)
    .bind(after.0)
    .bind(after.1)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(Resolved {
                resolve_time: row.try_get("resolved_at")?,
                id: row.try_get("id")?,
                number: row.try_get("number")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .map_err(StoreError::from)
}

/// What the KPIs are computed from: sums and counts over the incidents
/// opened in a period (times in microseconds).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeriodTotals {
    pub opened: i64,
    /// Resolved now (RESOLVED or CLOSED: closing keeps the resolve time).
    pub resolved: i64,
    /// Sum of create -> resolve over the resolved.
    pub resolve_total: i64,
    pub acknowledged: i64,
    /// Sum of create -> acknowledge over the acknowledged.
    pub acknowledge_total: i64,
    /// Resolved at least once: resolved now, or reopened (which needs a resolution).
    pub ever_resolved: i64,
    pub reopened: i64,
    /// Resolved now, on first contact.
    pub first_contact: i64,
}

/// Totals over the incidents created in `[start, end)`, of `group` when not empty.
pub async fn select_period_totals(
    conn: &mut AnyConnection,
    (start, end): (i64, i64),
    group: &str,
) -> Result<PeriodTotals, StoreError> {
    // COUNT(CASE ...) and CAST(SUM ...) keep every column a 64-bit integer on
    // both backends (PostgreSQL's SUM of BIGINT is NUMERIC).
    let mut sql = SqlBuilder::new(
        "SELECT COUNT(*) AS opened, \
         COUNT(CASE WHEN resolved_at <> 0 THEN 1 END) AS resolved, \
         CAST(COALESCE(SUM(CASE WHEN resolved_at <> 0 THEN resolved_at - created_at \
         ELSE 0 END), 0) AS BIGINT) AS resolve_total, \
         COUNT(CASE WHEN acknowledged_at <> 0 THEN 1 END) AS acknowledged, \
         CAST(COALESCE(SUM(CASE WHEN acknowledged_at <> 0 THEN acknowledged_at - created_at \
         ELSE 0 END), 0) AS BIGINT) AS acknowledge_total, \
         COUNT(CASE WHEN resolved_at <> 0 OR reopen_count > 0 THEN 1 END) AS ever_resolved, \
         COUNT(CASE WHEN reopen_count > 0 THEN 1 END) AS reopened, \
         COUNT(CASE WHEN resolved_at <> 0 AND first_contact_resolution <> 0 THEN 1 END) \
         AS first_contact FROM incidents WHERE created_at >= ",
    );
    sql.push_bind(start)
        .push(" AND created_at < ")
        .push_bind(end);
    if !group.is_empty() {
        sql.push(" AND assignment_group = ").push_bind(group);
    }
    let row = itsm_store::db::query(&sql).fetch_one(conn).await?;
    Ok(PeriodTotals {
        opened: row.try_get("opened")?,
        resolved: row.try_get("resolved")?,
        resolve_total: row.try_get("resolve_total")?,
        acknowledged: row.try_get("acknowledged")?,
        acknowledge_total: row.try_get("acknowledge_total")?,
        ever_resolved: row.try_get("ever_resolved")?,
        reopened: row.try_get("reopened")?,
        first_contact: row.try_get("first_contact")?,
    })
}

/// Open incidents now, per priority number, of `group` when not empty.
pub async fn select_open_by_priority(
    conn: &mut AnyConnection,
    group: &str,
) -> Result<HashMap<i32, i64>, StoreError> {
    let mut sql =
        SqlBuilder::new("SELECT priority, COUNT(*) AS open_count FROM incidents WHERE state IN ");
    sql.push_bind_list(OPEN_STATES.map(State::number));
    if !group.is_empty() {
        sql.push(" AND assignment_group = ").push_bind(group);
    }
    sql.push(" GROUP BY priority");
    let mut counts = HashMap::new();
    for row in itsm_store::db::query(&sql).fetch_all(conn).await? {
        counts.insert(row.try_get("priority")?, row.try_get("open_count")?);
    }
    Ok(counts)
}
