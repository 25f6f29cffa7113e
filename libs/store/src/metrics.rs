//! Gauges of a practice's storage, sampled periodically (see
//! `itsm_platform::metrics::sampler`): the pool's connections and the outbox
//! rows not yet published. Labelled by practice, since `itsm dev` runs every
//! practice's pool in one process.

use crate::db::Db;
use crate::error::StoreError;

/// Gauge `{practice, state}`: open connections, `state` = `idle` | `in_use`.
pub const POOL_CONNECTIONS: &str = "itsm_db_pool_connections";
/// Gauge `{practice}`: the most connections the pool opens.
pub const POOL_MAX_CONNECTIONS: &str = "itsm_db_pool_max_connections";
/// Gauge `{practice}`: outbox rows committed and not yet published.
pub const OUTBOX_BACKLOG: &str = "itsm_outbox_backlog";

/// Describes the gauges above to the installed recorder.
pub fn describe() {
    metrics::describe_gauge!(
        POOL_CONNECTIONS,
        "open database connections of a practice, idle or in use"
    );
    metrics::describe_gauge!(
        POOL_MAX_CONNECTIONS,
        "the most database connections a practice's pool opens"
    );
    metrics::describe_gauge!(
        OUTBOX_BACKLOG,
        "outbox rows committed and not yet published to the bus"
    );
}

/// Sets the pool gauges of `practice` from `db`'s pool and read connections
/// (no I/O).
pub fn sample_pool(practice: &'static str, db: &Db) {
    let pool = db.pool();
    let open = pool.size();
    let idle = u32::try_from(pool.num_idle()).unwrap_or(u32::MAX).min(open);
    let (read_max, read_parked, read_in_use) = db.read_connections();
    metrics::gauge!(POOL_CONNECTIONS, "practice" => practice, "state" => "idle")
        .set(f64::from(idle + read_parked));
    metrics::gauge!(POOL_CONNECTIONS, "practice" => practice, "state" => "in_use")
        .set(f64::from(open - idle + read_in_use));
    metrics::gauge!(POOL_MAX_CONNECTIONS, "practice" => practice)
        .set(f64::from(pool.options().get_max_connections() + read_max));
}

/// Sets [`OUTBOX_BACKLOG`] of `practice`: one indexed count, no transaction.
pub async fn sample_outbox(practice: &'static str, db: &Db) -> Result<(), StoreError> {
    let mut conn = db.pool().acquire().await?;
    let (waiting, _) = crate::outbox::backlog(&mut conn).await?;
    #[allow(clippy::cast_precision_loss)] // a backlog beyond 2^53 is not a concern
    metrics::gauge!(OUTBOX_BACKLOG, "practice" => practice).set(waiting as f64);
    Ok(())
}
