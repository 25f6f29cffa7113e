//! Background work of the practice: closing resolved incidents once the
//! settings' `auto_close_after` has passed ("resolved incidents close
//! automatically after a configurable number of days").
//!
//! Every replica runs [`run_auto_close`]; a lease in the practice's database
//! (`incidents.auto-close`) lets one of them work at a time. The work is
//! idempotent besides: each incident is re-read under its row lock and
//! closed only if it is still RESOLVED and old enough, so a holder that
//! stalls past its lease and overlaps its successor closes nothing twice.
//! Each close is the incident's own change: its row, an audit entry by
//! `system:auto-close` and an `incidents.incident.closed` event, in one
//! transaction per batch.

use std::time::Duration;

use itsm_platform::ApiError;
use itsm_store::audit::Actor;
use itsm_store::change::{self, Change, Origin};
use itsm_store::{Db, StoreError, lease};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::convert;
use crate::domain::State;
use crate::domain::lifecycle::Action;
use crate::store::{automation, config, incidents};

/// The lease that makes one replica the auto-closer.
pub const AUTO_CLOSE_LEASE: &str = "incidents.auto-close";
/// Incidents closed per transaction.
const BATCH: i64 = 100;
/// The bus stream and event source of this practice (as `api::call` writes them).
const STREAM: &str = "incidents";
const SOURCE: &str = "itsm.incidents";
const CLOSED: &str = "incidents.incident.closed";

/// Closes old resolved incidents every `every` until `cancel` fires, while
/// this replica holds the lease. Failures are logged and retried next round.
pub async fn run_auto_close(db: Db, cancel: CancellationToken, every: Duration) {
    let holder = holder_id();
    // Long enough to outlive a round; renewed at the start of every round.
    let ttl = (every * 3).max(Duration::from_secs(30));
    let mut held = false;
    let mut next = Instant::now();
    loop {
        tokio::select! {
            () = cancel.cancelled() => break,
            () = tokio::time::sleep_until(next) => {}
        }
        next = Instant::now() + every;
        held = match acquire(&db, &holder, ttl).await {
            Ok(held) => held,
            Err(error) => {
                tracing::warn!(%error, "auto-close cannot take its lease; retrying next round");
                false
            }
        };
        if !held {
            continue;
        }
        let round = tokio::select! {
            () = cancel.cancelled() => break,
            round = auto_close_round(&db, itsm_store::now_micros()) => round,
        };
        match round {
            Ok(0) => {}
            Ok(closed) => tracing::info!(closed, "auto-closed resolved incidents"),
            Err(error) => tracing::warn!(%error, "auto-close round failed; retrying next round"),
        }
    }
    if held && let Ok(mut conn) = db.pool().acquire().await {
        let _ = lease::release(&mut conn, AUTO_CLOSE_LEASE, &holder).await;
    }
}

/// One round, without the lease: closes every incident RESOLVED at least
/// `auto_close_after` (the settings) before `now`, oldest first, in batches.
/// Returns how many it closed; running it again at once closes none.
pub async fn auto_close_round(db: &Db, now: i64) -> Result<u64, ApiError> {
    let mut conn = db.pool().acquire().await.map_err(StoreError::from)?;
    let settings = config::select_settings(&mut conn, "").await?;
    let cutoff = now.saturating_sub(settings.auto_close_after);
    let mut after = (i64::MIN, i64::MIN);
    let mut closed = 0;
    loop {
        let batch = automation::select_resolved_before(&mut conn, cutoff, after, BATCH).await?;
        let Some(last) = batch.last() else {
            break;
        };
        after = (last.resolve_time, last.id);
        closed += close_batch(db, &batch, cutoff, now).await?;
        if i64::try_from(batch.len()).unwrap_or(i64::MAX) < BATCH {
            break;
        }
    }
    Ok(closed)
}

/// Closes the incidents of `batch` still RESOLVED at or before `cutoff`, in one transaction.
async fn close_batch(
    db: &Db,
    batch: &[automation::Resolved],
    cutoff: i64,
    now: i64,
) -> Result<u64, ApiError> {
    let actor = Actor::system("auto-close");
    let lock = db.backend().lock_suffix();
    let mut tx = db.begin().await?;
    let mut closed = 0;
    for candidate in batch {
        let Some(stored) = incidents::select_incident(&mut tx, &candidate.number, lock).await?
        else {
            continue;
        };
        let mut incident = stored.incident;
        // Re-checked under the lock: another closer, a reopen or a person got here first.
        let old_enough = incident.resolve_time.is_some_and(|t| t <= cutoff);
        if incident.state != State::Resolved || !old_enough {
            continue;
        }
        let previous = incident.version;
        let applied = incident.apply(&Action::Close, &actor, now)?;
        incidents::update_incident(&mut tx, stored.id, &incident, previous).await?;
        let name = incident.name();
        let payload = convert::event_payload(&incident, &applied.changes, None);
        let origin = Origin {
            stream: STREAM,
            source: SOURCE,
            actor: &actor,
            request_id: "",
            traceparent: "",
            tracestate: "",
        };
        let change = Change {
            resource: &name,
            version: incident.version,
            action: Action::Close.method().action(),
            event_type: CLOSED,
            changes: applied.changes,
            payload,
        };
        change::record(&mut tx, &origin, change, now).await?;
        closed += 1;
    }
    tx.commit().await.map_err(StoreError::from)?;
    Ok(closed)
}

async fn acquire(db: &Db, holder: &str, ttl: Duration) -> Result<bool, StoreError> {
    let mut conn = db.pool().acquire().await?;
    lease::try_acquire(&mut conn, AUTO_CLOSE_LEASE, holder, ttl).await
}

/// This runner's name on the lease: unique per process and runner.
fn holder_id() -> String {
    use rand::RngCore as _;
    let mut bytes = [0_u8; 8];
    rand::rng().fill_bytes(&mut bytes);
    let suffix: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("auto-close-{}-{suffix}", std::process::id())
}
