//! Background jobs of the SLA service.

use std::time::Duration;

use itsm_store::Db;
use tokio_util::sync::CancellationToken;

/// How many due timers one pass fires at most.
const BATCH: usize = 500;

/// Fires due SLA timers every 500 ms (immediately again while a pass found a
/// full batch) until `cancel`.
pub async fn run_timers(db: Db, cancel: CancellationToken) {
    loop {
        let fired = match crate::engine::fire_due_timers(&db, itsm_store::now_micros(), BATCH).await
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
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
}
