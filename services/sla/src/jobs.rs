//! Background jobs of the SLA service.

use std::time::Duration;

use itsm_store::Db;

use crate::engine::Engine;
use tokio_util::sync::CancellationToken;

/// How many due timers one pass fires at most.
const BATCH: usize = 500;

/// The longest the timer job sleeps: a clock started meanwhile whose first
/// timer falls sooner than the next known deadline is fired this late at most.
const IDLE: Duration = Duration::from_millis(500);

/// The shortest sleep: a due clock the pass skipped (its ticket busy
/// elsewhere) is retried after this, not in a tight loop.
const RETRY: Duration = Duration::from_millis(50);

/// Fires due SLA timers until `cancel`: immediately again while a pass found
/// a full batch, otherwise after sleeping until the next deadline (between
/// [`RETRY`] and [`IDLE`]), so a timer fires as its instant comes rather than
/// up to a poll interval later.
pub async fn run_timers(db: Db, engine: Engine, cancel: CancellationToken) {
    loop {
        let fired = match engine
            .fire_due_timers(&db, itsm_store::now_micros(), BATCH)
            .await
        {
            Ok(n) => n,
            Err(error) => {
                tracing::warn!(%error, "firing SLA timers failed");
                0
            }
        };
        if fired >= BATCH {
            continue;
        }
        let pause = match next_deadline(&db).await {
            Ok(Some(at)) => {
                let wait = at.saturating_sub(itsm_store::now_micros());
                Duration::from_micros(u64::try_from(wait).unwrap_or(0)).clamp(RETRY, IDLE)
            }
            Ok(None) => IDLE,
            Err(error) => {
                tracing::warn!(%error, "reading the next SLA deadline failed");
                IDLE
            }
        };
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(pause) => {}
        }
    }
}

/// The earliest deadline of a running clock (the due-timer index's first
/// entry), if any.
async fn next_deadline(db: &Db) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT MIN(next_deadline_at) FROM task_slas WHERE state = 1 AND next_deadline_at > 0",
    )
    .fetch_one(db.pool())
    .await
}

/// Runs recomputation operations (see [`crate::operations`]) until
/// `cancel`: batch after batch while there is work, otherwise every second.
/// A failed step is logged and retried after the pause (the operation's
/// cursor is where the last committed batch left it).
pub async fn run_operations(db: Db, engine: Engine, cancel: CancellationToken) {
    loop {
        let worked = match crate::operations::run_step(
            &db,
            &engine,
            itsm_store::now_micros(),
            crate::operations::BATCH,
        )
        .await
        {
            Ok(worked) => worked,
            Err(error) => {
                tracing::warn!(%error, "an SLA recomputation step failed");
                false
            }
        };
        if worked && !cancel.is_cancelled() {
            continue;
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}
