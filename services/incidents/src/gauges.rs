//! The incidents' business gauges, sampled from the database every
//! `metrics_sample_every` by the process (`itsm serve incidents`, `itsm dev`).

use itsm_store::{Db, StoreError};
use sqlx::Row;

/// Gauge `{priority}`: incidents not yet resolved (NEW, IN_PROGRESS,
/// ON_HOLD), by priority `P1` (critical) to `P5` (planning).
pub const OPEN: &str = "itsm_incidents_open";

/// The `priority` label of each priority number (1 = critical).
const PRIORITIES: [&str; 5] = ["P1", "P2", "P3", "P4", "P5"];

/// Describes the gauges above to the installed recorder.
pub fn describe() {
    metrics::describe_gauge!(
        OPEN,
        "incidents not yet resolved (new, in progress, on hold), by priority P1..P5"
    );
}

/// Sets [`OPEN`] for every priority (0 where none is open) with one grouped
/// count; no transaction.
pub async fn sample(db: &Db) -> Result<(), StoreError> {
    // States 1-3: NEW, IN_PROGRESS, ON_HOLD (itsm.incidents.v1.IncidentState).
    let rows = sqlx::query(
        "SELECT CAST(priority AS BIGINT) AS priority, COUNT(*) AS n FROM incidents \
         WHERE state IN (1, 2, 3) GROUP BY priority",
    )
    .fetch_all(db.pool())
    .await?;
    let mut open = [0_i64; PRIORITIES.len()];
    for row in rows {
        let priority: i64 = row.try_get("priority")?;
        let n: i64 = row.try_get("n")?;
        if let Some(slot) = usize::try_from(priority - 1)
            .ok()
            .and_then(|i| open.get_mut(i))
        {
            *slot = n;
        }
    }
    for (label, n) in PRIORITIES.iter().zip(open) {
        #[allow(clippy::cast_precision_loss)] // counts far below 2^53
        metrics::gauge!(OPEN, "priority" => *label).set(n as f64);
    }
    Ok(())
}
