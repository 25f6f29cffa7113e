//! The SLA service's metrics: gauges sampled from its tables every
//! `metrics_sample_every` by the process, and the breach counter and timer
//! lateness recorded where timers fire and breaches are written.

use itsm_proto::itsm::sla::v1::{SlaKind, TaskSlaState};
use itsm_store::{Db, StoreError};
use sqlx::Row;

/// Gauge: durable deadlines not yet fired (running clocks with a next
/// warning or breach instant).
pub const TIMERS_PENDING: &str = "itsm_sla_timers_pending";
/// Histogram: seconds from a timer's due instant to the pass that fired it.
pub const TIMER_LATENESS: &str = "itsm_sla_timer_lateness_seconds";
/// Counter `{kind}`: clocks that breached, `kind` = `SLA` | `OLA` | `UC`.
pub const BREACHES: &str = "itsm_sla_breaches_total";
/// Gauge `{state}`: clocks not finished, by state (`IN_PROGRESS`, `PAUSED`,
/// `BREACHED`); achieved and canceled clocks only ever accumulate and are
/// left to the reports.
pub const TASK_SLAS: &str = "itsm_sla_task_slas";

/// The states [`TASK_SLAS`] counts.
const LIVE_STATES: [TaskSlaState; 3] = [
    TaskSlaState::InProgress,
    TaskSlaState::Paused,
    TaskSlaState::Breached,
];

/// Describes the metrics above to the installed recorder.
pub fn describe() {
    metrics::describe_gauge!(
        TIMERS_PENDING,
        "SLA deadlines (warnings, breaches) not yet fired"
    );
    metrics::describe_histogram!(
        TIMER_LATENESS,
        metrics::Unit::Seconds,
        "how late SLA timers fire: fire instant minus due instant"
    );
    metrics::describe_counter!(BREACHES, "task SLAs that breached, by kind (SLA, OLA, UC)");
    metrics::describe_gauge!(TASK_SLAS, "task SLAs not finished, by state");
}

/// Sets [`TIMERS_PENDING`] and [`TASK_SLAS`] with two counts; no transaction.
pub async fn sample(db: &Db) -> Result<(), StoreError> {
    let pending: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM task_slas WHERE state = 1 AND next_deadline_at > 0",
    )
    .fetch_one(db.pool())
    .await?;
    let rows = sqlx::query(
        "SELECT CAST(state AS BIGINT) AS state, COUNT(*) AS n FROM task_slas \
         WHERE state IN (1, 2, 4) GROUP BY state",
    )
    .fetch_all(db.pool())
    .await?;
    let mut by_state = [0_i64; LIVE_STATES.len()];
    for row in rows {
        let state: i64 = row.try_get("state")?;
        let n: i64 = row.try_get("n")?;
        if let Some(i) = LIVE_STATES.iter().position(|s| *s as i64 == state) {
            by_state[i] = n;
        }
    }
    #[allow(clippy::cast_precision_loss)] // counts far below 2^53
    {
        metrics::gauge!(TIMERS_PENDING).set(pending as f64);
        for (state, n) in LIVE_STATES.iter().zip(by_state) {
            metrics::gauge!(TASK_SLAS, "state" => state_label(*state)).set(n as f64);
        }
    }
    Ok(())
}

/// `IN_PROGRESS` for `TASK_SLA_STATE_IN_PROGRESS`.
fn state_label(state: TaskSlaState) -> &'static str {
    let name = state.as_str_name();
    name.strip_prefix("TASK_SLA_STATE_").unwrap_or(name)
}

/// Counts one breach of a clock of `kind` (an `SlaKind` number).
pub(crate) fn breached(kind: i32) {
    let label = match SlaKind::try_from(kind) {
        Ok(SlaKind::Sla) => "SLA",
        Ok(SlaKind::Ola) => "OLA",
        Ok(SlaKind::Uc) => "UC",
        _ => "UNSPECIFIED",
    };
    metrics::counter!(BREACHES, "kind" => label).increment(1);
}

/// Records how late a timer due at `due` fired at `fired` (microseconds).
pub(crate) fn timer_fired(due: i64, fired: i64) {
    #[allow(clippy::cast_precision_loss)] // microsecond spans fit f64 well enough
    let late = (fired - due).max(0) as f64 / 1_000_000.0;
    metrics::histogram!(TIMER_LATENESS).record(late);
}
