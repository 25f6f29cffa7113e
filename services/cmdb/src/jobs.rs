//! Background work of the practice: the health report, recomputed every
//! `CmdbSettings.health_refresh_interval`.
//!
//! Every replica runs [`run_health`]; a lease in the practice's database
//! (`cmdb.health`) lets one of them work at a time. Whether a computation is
//! due is read from the stored report's time, not from the runner's memory,
//! so a new holder after a failover does not recompute a fresh report, and a
//! holder that stalls past its lease and overlaps its successor only
//! recomputes (the computation replaces the findings wholesale, serialized
//! on the report's row).

use std::time::Duration;

use itsm_platform::ApiError;
use itsm_store::{Db, StoreError, lease};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::store::health;

/// The lease that makes one replica the health reporter.
pub const HEALTH_LEASE: &str = "cmdb.health";
/// How long the lease outlives its last renewal: longer than a computation
/// over a large CMDB, so a working holder keeps it.
const LEASE_TTL: Duration = Duration::from_secs(15 * 60);
/// How often the runner checks whether a computation is due (at most):
/// a shortened interval takes effect within this.
const MAX_TICK: Duration = Duration::from_secs(60);
/// The interval when the settings hold none.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(3_600);

/// Recomputes the health report whenever it is due, until `cancel` fires,
/// while this replica holds the lease. Failures are logged and retried at
/// the next check; nothing here panics.
pub async fn run_health(db: Db, cancel: CancellationToken) {
    let holder = holder_id();
    let mut held = false;
    let mut next = Instant::now();
    loop {
        tokio::select! {
            () = cancel.cancelled() => break,
            () = tokio::time::sleep_until(next) => {}
        }
        let tick = match interval(&db).await {
            Ok(interval) => interval.min(MAX_TICK),
            Err(error) => {
                tracing::warn!(%error, "health report cannot read its settings; retrying");
                MAX_TICK
            }
        };
        next = Instant::now() + tick;
        let round = tokio::select! {
            () = cancel.cancelled() => break,
            round = refresh_health_once(&db, &holder) => round,
        };
        match round {
            Ok(true) => {
                held = true;
                tracing::info!("health report recomputed");
            }
            Ok(false) => {}
            Err(error) => {
                tracing::warn!(%error, "health report failed; retrying at the next check")
            }
        }
    }
    if held && let Ok(mut conn) = db.pool().acquire().await {
        let _ = lease::release(&mut conn, HEALTH_LEASE, &holder).await;
    }
}

/// One check, as `holder`: takes or renews the lease, and recomputes the
/// report when it is due (none stored yet, or the stored one at least one
/// `health_refresh_interval` old). Returns whether it recomputed: `false`
/// when another holder has the lease or the report is fresh.
pub async fn refresh_health_once(db: &Db, holder: &str) -> Result<bool, ApiError> {
    let mut conn = db.pool().acquire().await.map_err(StoreError::from)?;
    if !lease::try_acquire(&mut conn, HEALTH_LEASE, holder, LEASE_TTL).await? {
        return Ok(false);
    }
    let settings = crate::store::settings::load(&mut conn).await?;
    let every = refresh_interval(&settings);
    let computed_at = health::select_compute_time(&mut conn).await?;
    drop(conn);
    let now = itsm_store::now_micros();
    let every = i64::try_from(every.as_micros()).unwrap_or(i64::MAX);
    if computed_at.is_some_and(|at| now.saturating_sub(at) < every) {
        return Ok(false);
    }
    health::refresh(db).await?;
    Ok(true)
}

/// The refresh interval in force.
async fn interval(db: &Db) -> Result<Duration, StoreError> {
    let mut conn = db.pool().acquire().await?;
    let settings = crate::store::settings::load(&mut conn).await?;
    Ok(refresh_interval(&settings))
}

fn refresh_interval(settings: &itsm_proto::itsm::cmdb::v1::CmdbSettings) -> Duration {
    settings
        .health_refresh_interval
        .as_ref()
        .and_then(|d| Duration::try_from(*d).ok())
        .filter(|d| !d.is_zero())
        .unwrap_or(DEFAULT_INTERVAL)
}

/// This runner's name on the lease: unique per process and runner.
fn holder_id() -> String {
    format!(
        "health-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    )
}
