//! The `task_slas` rows the reports read: compliance counted by `GROUP BY`
//! in the database (one pass over the period's rows, whatever their number),
//! and a keyset page of breaches.
//!
//! A task SLA is counted once, at its report instant: when it stopped
//! (ACHIEVED, BREACHED: `stop_at`), or for a running one (IN_PROGRESS,
//! PAUSED) that breached, when it breached. Canceled ones are never counted.

use itsm_platform::ApiError;
use itsm_store::page::PageTokens;
use itsm_store::query::{Field, FieldKind, Schema, SqlBuilder, filter_sql};
use itsm_store::{Db, StoreError};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::task_slas::SCHEMA;
use crate::reports::Tally;

/// The column holding a task SLA's breach instant: when it reached its
/// target, kept through pauses and after the stop (`breach_at` is only the
/// planned instant of a running clock).
pub const BREACH_INSTANT: &str = "breached_at";

/// A dimension of a compliance report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dimension {
    SlaDefinition,
    Kind,
    AssignmentGroup,
    Priority,
    Service,
    /// The bucket index.
    Period,
}

impl Dimension {
    /// The column of the counted rows (see [`select_compliance`]).
    fn column(self) -> &'static str {
        match self {
            Self::SlaDefinition => "sla_definition_id",
            Self::Kind => "kind",
            Self::AssignmentGroup => "assignment_group",
            Self::Priority => "priority",
            Self::Service => "service",
            Self::Period => "bucket",
        }
    }
}

/// What a compliance report counts.
#[derive(Debug, Clone, Copy)]
pub struct ComplianceQuery<'a> {
    /// [start, end), microseconds.
    pub start: i64,
    pub end: i64,
    pub group_by: &'a [Dimension],
    /// Bucket boundaries (`crate::reports::boundaries`), when grouped by period.
    pub boundaries: &'a [i64],
    /// Over [`SCHEMA`].
    pub filter: &'a str,
}

/// One group of a compliance report: the values of the dimensions grouped
/// by (the others empty) and its tally.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Group {
    /// The definition's id.
    pub sla_definition: String,
    pub kind: i32,
    pub assignment_group: String,
    pub priority: i32,
    pub service: String,
    /// Index of the bucket.
    pub bucket: usize,
    pub tally: Tally,
}

/// States by number (`TaskSlaState`).
const ACHIEVED: i64 = 3;
const STOPPED: [i64; 2] = [3, 4];
const RUNNING: [i64; 2] = [1, 2];

/// Appends the bucket index of `column` (boundaries `b`: bucket `i` is
/// `[b[i], b[i + 1])`) for buckets `lo..hi`: a balanced tree of CASEs, so a
/// row costs log2(buckets) comparisons.
fn push_bucket(sql: &mut SqlBuilder, column: &str, b: &[i64], lo: usize, hi: usize) {
    if hi - lo <= 1 {
        sql.push_bind(i64::try_from(lo).unwrap_or_default());
        return;
    }
    let mid = lo + (hi - lo) / 2;
    sql.push("CASE WHEN ")
        .push(column)
        .push(" < ")
        .push_bind(b[mid])
        .push(" THEN ");
    push_bucket(sql, column, b, lo, mid);
    sql.push(" ELSE ");
    push_bucket(sql, column, b, mid, hi);
    sql.push(" END");
}

/// The period predicate: stopped within it, or running and breached within it.
fn push_period(sql: &mut SqlBuilder, start: i64, end: i64) {
    sql.push("((state IN ")
        .push_bind_list(STOPPED)
        .push(" AND stop_at >= ")
        .push_bind(start)
        .push(" AND stop_at < ")
        .push_bind(end)
        .push(") OR (state IN ")
        .push_bind_list(RUNNING)
        .push(" AND breached = 1 AND ")
        .push(BREACH_INSTANT)
        .push(" > 0 AND ")
        .push(BREACH_INSTANT)
        .push(" >= ")
        .push_bind(start)
        .push(" AND ")
        .push(BREACH_INSTANT)
        .push(" < ")
        .push_bind(end)
        .push("))");
}

/// The compliance groups of `query`, ordered by its dimensions. Without
/// dimensions, one group (the total, maybe of nothing).
pub async fn select_compliance(
    db: &Db,
    query: &ComplianceQuery<'_>,
) -> Result<Vec<Group>, ApiError> {
    let sql = compliance_sql(query)?;
    let mut conn = db.pool().acquire().await.map_err(StoreError::from)?;
    let rows = itsm_store::db::query(&sql)
        .fetch_all(&mut *conn)
        .await
        .map_err(StoreError::from)?;
    rows.iter()
        .map(|row| group(row, query.group_by))
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .map_err(|e| StoreError::from(e).into())
}

/// The statement of [`select_compliance`]: the counted rows with their
/// report instant and bucket, grouped.
fn compliance_sql(query: &ComplianceQuery<'_>) -> Result<SqlBuilder, ApiError> {
    // Innermost: the counted rows with their report instant.
    let mut sql = SqlBuilder::new(
        "SELECT sla_definition_id, CAST(kind AS BIGINT) AS kind, assignment_group, \
         CAST(priority AS BIGINT) AS priority, service, ",
    );
    let grouped_by_period = query.group_by.contains(&Dimension::Period);
    if grouped_by_period {
        let buckets = query.boundaries.len().saturating_sub(1).max(1);
        push_bucket(&mut sql, "at", query.boundaries, 0, buckets);
    } else {
        sql.push_bind(0_i64);
    }
    sql.push(
        " AS bucket, state, breached, elapsed, target FROM (SELECT sla_definition_id, kind, \
         assignment_group, priority, service, state, breached, elapsed, target, \
         CASE WHEN state IN ",
    )
    .push_bind_list(STOPPED)
    .push(" THEN stop_at ELSE ")
    .push(BREACH_INSTANT)
    .push(" END AS at FROM task_slas WHERE ");
    push_period(&mut sql, query.start, query.end);
    let mut filter = SqlBuilder::default();
    if filter_sql(query.filter, &SCHEMA, &mut filter)? {
        sql.push(" AND (").append(&filter).push(")");
    }
    sql.push(") AS counted");

    let columns: Vec<&str> = query.group_by.iter().map(|d| d.column()).collect();
    let mut outer = SqlBuilder::new("SELECT ");
    for column in &columns {
        outer.push(column).push(", ");
    }
    outer
        .push("COUNT(*) AS total_count, SUM(CASE WHEN state = ")
        .push_bind(ACHIEVED)
        .push(
            " THEN 1 ELSE 0 END) AS met_count, \
             SUM(CASE WHEN breached <> 0 THEN 1 ELSE 0 END) AS breached_count, \
             SUM(CAST(elapsed AS DOUBLE PRECISION)) AS sum_elapsed, \
             SUM(CASE WHEN target > 0 THEN CAST(elapsed AS DOUBLE PRECISION) * 100.0 / target \
             ELSE 0.0 END) AS sum_percentage, \
             SUM(CASE WHEN target > 0 THEN 1 ELSE 0 END) AS with_target FROM (",
        )
        .append(&sql)
        .push(") AS bucketed");
    if !columns.is_empty() {
        let list = columns.join(", ");
        outer.push(" GROUP BY ").push(&list);
        outer.push(" ORDER BY ").push(&list);
    }
    Ok(outer)
}

fn group(row: &AnyRow, dimensions: &[Dimension]) -> Result<Group, sqlx::Error> {
    let mut g = Group {
        tally: Tally {
            total: row.try_get("total_count")?,
            met: row.try_get::<Option<i64>, _>("met_count")?.unwrap_or(0),
            breached: row
                .try_get::<Option<i64>, _>("breached_count")?
                .unwrap_or(0),
            elapsed: row.try_get::<Option<f64>, _>("sum_elapsed")?.unwrap_or(0.0),
            percentage: row
                .try_get::<Option<f64>, _>("sum_percentage")?
                .unwrap_or(0.0),
            with_target: row.try_get::<Option<i64>, _>("with_target")?.unwrap_or(0),
        },
        ..Group::default()
    };
    let int = |column| -> Result<i32, sqlx::Error> {
        Ok(i32::try_from(row.try_get::<i64, _>(column)?).unwrap_or_default())
    };
    for d in dimensions {
        match d {
            Dimension::SlaDefinition => g.sla_definition = row.try_get("sla_definition_id")?,
            Dimension::Kind => g.kind = int("kind")?,
            Dimension::AssignmentGroup => g.assignment_group = row.try_get("assignment_group")?,
            Dimension::Priority => g.priority = int("priority")?,
            Dimension::Service => g.service = row.try_get("service")?,
            Dimension::Period => {
                g.bucket = usize::try_from(row.try_get::<i64, _>("bucket")?).unwrap_or_default();
            }
        }
    }
    Ok(g)
}

/// What ListBreaches' `order_by` may name.
pub static BREACH_ORDER: Schema = Schema {
    resource: "breach",
    fields: &[
        Field {
            name: "breach_time",
            column: BREACH_INSTANT,
            kind: FieldKind::Timestamp,
            sortable: true,
        },
        Field {
            name: "overrun",
            column: "(elapsed - target)",
            kind: FieldKind::Int,
            sortable: true,
        },
    ],
};

/// A page of breaches: the internal id and doc of each task SLA.
#[derive(Debug, Clone, Default)]
pub struct BreachPage {
    pub rows: Vec<(i64, Vec<u8>)>,
    pub next_page_token: String,
}

/// A keyset page of breached task SLAs (canceled ones excluded) whose breach
/// instant is within [start, end) (either bound open), `filter` over
/// [`SCHEMA`], `order_by` over [`BREACH_ORDER`] (default `breach_time desc`),
/// ties broken by the internal id.
pub async fn select_breaches(
    db: &Db,
    start: Option<i64>,
    end: Option<i64>,
    request: &itsm_store::list::ListRequest<'_>,
    tokens: &PageTokens,
) -> Result<BreachPage, ApiError> {
    let mut base = SqlBuilder::new("breached = 1 AND state <> ");
    base.push_bind(5_i64)
        .push(" AND ")
        .push(BREACH_INSTANT)
        .push(" > 0");
    if let Some(start) = start {
        base.push(" AND ")
            .push(BREACH_INSTANT)
            .push(" >= ")
            .push_bind(start);
    }
    if let Some(end) = end {
        base.push(" AND ")
            .push(BREACH_INSTANT)
            .push(" < ")
            .push_bind(end);
    }
    let list = super::Keyset {
        select: "SELECT id, doc FROM task_slas",
        base,
        filter_schema: &SCHEMA,
        order_schema: &BREACH_ORDER,
        default_order: "breach_time desc",
        tie: ("id", FieldKind::Int),
        scope: format!("breach\u{0}{start:?}\u{0}{end:?}"),
    };
    let (rows, next_page_token) = super::select_keyset_page(db, list, request, tokens).await?;
    let rows = rows
        .iter()
        .map(|row| Ok((row.try_get("id")?, row.try_get("doc")?)))
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .map_err(StoreError::from)?;
    Ok(BreachPage {
        rows,
        next_page_token,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use itsm_store::query::SqlValue;

    #[test]
    fn buckets_are_found_by_a_balanced_tree_of_cases() {
        let mut sql = SqlBuilder::default();
        push_bucket(&mut sql, "at", &[0, 10, 20, 30], 0, 3);
        assert_eq!(
            sql.sql(),
            "CASE WHEN at < $1 THEN $2 ELSE CASE WHEN at < $3 THEN $4 ELSE $5 END END"
        );
        assert_eq!(
            sql.params(),
            [
                SqlValue::Int(10),
                SqlValue::Int(0),
                SqlValue::Int(20),
                SqlValue::Int(1),
                SqlValue::Int(2)
            ]
        );
        let mut one = SqlBuilder::default();
        push_bucket(&mut one, "at", &[0, 10], 0, 1);
        assert_eq!(one.sql(), "$1");
    }
}
