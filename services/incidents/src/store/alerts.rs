//! The `alert_groups` row, and `ListAlertGroups`' fields and pages.
//!
//! A fingerprint's alerts are serialized on its row: the intake transaction
//! makes the row when missing (`INSERT ... ON CONFLICT DO NOTHING` on the
//! unique fingerprint, status 0 until an alert is applied) and then locks it
//! ([`select_group`] with the backend's lock suffix), so concurrent callers
//! with the same alert queue on one row and exactly one of them opens it.

use std::collections::HashMap;

use itsm_platform::ApiError;
use itsm_store::list::{ListRequest, ListSpec};
use itsm_store::page::PageTokens;
use itsm_store::query::{Field, FieldKind, Schema};
use itsm_store::{Db, SqlBuilder, StoreError};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::domain::alerts::{AlertGroup, AlertSeverity, AlertStatus};

/// Every column of an alert group.
const SELECT: &str = "SELECT id, fingerprint, source, status, severity, node, resource, metric, \
     summary, last_alert, occurrence_count, flap_count, flapping, flap_window_started_at, \
     window_flaps, last_fired_at, incident, first_seen_at, last_seen_at, last_resolved_at, \
     version FROM alert_groups";

/// The group with this fingerprint and its row id. `lock` is
/// [`itsm_store::Backend::lock_suffix`] when the transaction will update it.
pub async fn select_group(
    conn: &mut AnyConnection,
    fingerprint: &str,
    lock: &'static str,
) -> Result<Option<(i64, AlertGroup)>, StoreError> {
    let mut sql = SqlBuilder::new(SELECT);
    sql.push(" WHERE fingerprint = ")
        .push_bind(fingerprint)
        .push(lock);
    let row = itsm_store::db::query(&sql).fetch_optional(conn).await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let id: i64 = row.try_get("id")?;
    Ok(Some((id, group(&row)?)))
}

/// The groups of these fingerprints (those that exist), by fingerprint, with
/// their row ids, locked with `lock` in fingerprint order: transactions that
/// lock several groups this way wait for each other but never deadlock.
pub async fn lock_groups(
    conn: &mut AnyConnection,
    fingerprints: &[&str],
    lock: &'static str,
) -> Result<HashMap<String, (i64, AlertGroup)>, StoreError> {
    let mut found = HashMap::with_capacity(fingerprints.len());
    if fingerprints.is_empty() {
        return Ok(found);
    }
    let mut sql = SqlBuilder::new(SELECT);
    sql.push(" WHERE fingerprint IN ")
        .push_bind_list(fingerprints.iter().copied())
        .push(" ORDER BY fingerprint")
        .push(lock);
    let rows = itsm_store::db::query(&sql).fetch_all(conn).await?;
    for row in &rows {
        let g = group(row)?;
        found.insert(g.fingerprint.clone(), (row.try_get("id")?, g));
    }
    Ok(found)
}

/// Makes the row of a new group (status 0: no alert applied yet) unless the
/// fingerprint has one; a concurrent maker's row wins, once it commits.
pub async fn insert_group(conn: &mut AnyConnection, g: &AlertGroup) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO alert_groups (fingerprint, status, last_alert, first_seen_at, \
         last_seen_at, version) VALUES ($1, 0, $2, $3, $4, 0) \
         ON CONFLICT (fingerprint) DO NOTHING",
    )
    .bind(&g.fingerprint)
    .bind(g.last_alert.as_slice())
    .bind(g.first_seen_at)
    .bind(g.last_seen_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Writes a changed group, locked by [`select_group`] in this transaction.
pub async fn update_group(
    conn: &mut AnyConnection,
    id: i64,
    g: &AlertGroup,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE alert_groups SET source = $1, status = $2, severity = $3, node = $4, \
         resource = $5, metric = $6, summary = $7, last_alert = $8, occurrence_count = $9, \
         flap_count = $10, flapping = $11, flap_window_started_at = $12, window_flaps = $13, \
         last_fired_at = $14, incident = $15, first_seen_at = $16, last_seen_at = $17, \
         last_resolved_at = $18, version = $19 WHERE id = $20",
    )
    .bind(&g.source)
    .bind(g.status.map_or(0, AlertStatus::number))
    .bind(g.severity.map_or(0, AlertSeverity::number))
    .bind(&g.node)
    .bind(&g.resource)
    .bind(&g.metric)
    .bind(&g.summary)
    .bind(g.last_alert.as_slice())
    .bind(g.occurrence_count)
    .bind(g.flap_count)
    .bind(i32::from(g.flapping))
    .bind(g.flap_window_started_at)
    .bind(g.window_flaps)
    .bind(g.last_fired_at)
    .bind(&g.incident)
    .bind(g.first_seen_at)
    .bind(g.last_seen_at)
    .bind(g.last_resolved_at)
    .bind(g.version)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// An alert group row.
fn group(row: &AnyRow) -> Result<AlertGroup, sqlx::Error> {
    let status: i32 = row.try_get("status")?;
    let parsed = AlertStatus::from_number(status);
    if status != 0 && parsed.is_none() {
        return Err(sqlx::Error::Decode(
            format!("alert_groups.status holds an unknown value {status}").into(),
        ));
    }
    Ok(AlertGroup {
        fingerprint: row.try_get("fingerprint")?,
        status: parsed,
        severity: AlertSeverity::from_number(row.try_get("severity")?),
        source: row.try_get("source")?,
        node: row.try_get("node")?,
        resource: row.try_get("resource")?,
        metric: row.try_get("metric")?,
        summary: row.try_get("summary")?,
        last_alert: row.try_get("last_alert")?,
        occurrence_count: row.try_get("occurrence_count")?,
        flap_count: row.try_get("flap_count")?,
        flapping: row.try_get::<i32, _>("flapping")? != 0,
        flap_window_started_at: row.try_get("flap_window_started_at")?,
        window_flaps: row.try_get("window_flaps")?,
        last_fired_at: row.try_get("last_fired_at")?,
        incident: row.try_get("incident")?,
        first_seen_at: row.try_get("first_seen_at")?,
        last_seen_at: row.try_get("last_seen_at")?,
        last_resolved_at: row.try_get("last_resolved_at")?,
        version: row.try_get("version")?,
    })
}

/// What `ListAlertGroups`' filter and order_by may name. `flapping` and
/// `incident` read expressions: the row keeps a 0/1 integer and the
/// incident's number, the API a boolean and `incidents/<number>` (the
/// migration indexes the latter expression).
pub static SCHEMA: Schema = Schema {
    resource: "alert group",
    fields: &[
        Field {
            name: "fingerprint",
            column: "fingerprint",
            kind: FieldKind::Text,
            sortable: false,
        },
        Field {
            name: "status",
            column: "status",
            kind: FieldKind::Enum(AlertStatus::NAMES),
            sortable: false,
        },
        Field {
            name: "severity",
            column: "severity",
            kind: FieldKind::Enum(AlertSeverity::NAMES),
            sortable: false,
        },
        Field {
            name: "flapping",
            column: "(flapping <> 0)",
            kind: FieldKind::Bool,
            sortable: false,
        },
        Field {
            name: "incident",
            column: "('incidents/' || incident)",
            kind: FieldKind::Text,
            sortable: false,
        },
        Field {
            name: "source",
            column: "source",
            kind: FieldKind::Text,
            sortable: false,
        },
        Field {
            name: "node",
            column: "node",
            kind: FieldKind::Text,
            sortable: false,
        },
        Field {
            name: "summary",
            column: "summary",
            kind: FieldKind::Text,
            sortable: false,
        },
        Field {
            name: "occurrence_count",
            column: "occurrence_count",
            kind: FieldKind::Int,
            sortable: true,
        },
        Field {
            name: "flap_count",
            column: "flap_count",
            kind: FieldKind::Int,
            sortable: false,
        },
        Field {
            name: "first_seen_time",
            column: "first_seen_at",
            kind: FieldKind::Timestamp,
            sortable: false,
        },
        Field {
            name: "last_seen_time",
            column: "last_seen_at",
            kind: FieldKind::Timestamp,
            sortable: true,
        },
    ],
};

const SPEC: ListSpec = ListSpec {
    schema: &SCHEMA,
    select: SELECT,
    id_column: "id",
    default_order: "last_seen_time desc",
};

/// One page of alert groups and the next page's token ("" on the last page).
pub async fn select_page(
    db: &Db,
    request: &ListRequest<'_>,
    tokens: &PageTokens,
) -> Result<(Vec<AlertGroup>, String), ApiError> {
    let plan = SPEC.plan(request, tokens, |_: &mut SqlBuilder| {})?;
    let rows = itsm_store::db::query(plan.sql())
        .fetch_all(db.pool())
        .await
        .map_err(StoreError::from)?;
    let page = plan.finish(rows, tokens)?;
    let groups = page
        .rows
        .iter()
        .map(group)
        .collect::<Result<Vec<_>, _>>()
        .map_err(StoreError::from)?;
    Ok((groups, page.next_page_token))
}
