//! Leases: singleton work (the outbox relay, timers) done by one replica at a
//! time. A holder renews its lease well before it expires; when a holder dies,
//! another takes over after the expiry. Work guarded by a lease must still be
//! idempotent: a holder that stalls past its expiry can overlap its successor.

use std::time::Duration;

use sqlx::AnyConnection;

use crate::error::StoreError;

/// Takes or renews the lease `name` for `holder`; true when `holder` has it now.
pub async fn try_acquire(
    conn: &mut AnyConnection,
    name: &str,
    holder: &str,
    ttl: Duration,
) -> Result<bool, StoreError> {
    let now = crate::now_micros();
    let expires = now.saturating_add(i64::try_from(ttl.as_micros()).unwrap_or(i64::MAX));
    let result = sqlx::query(
        "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
         WHERE leases.holder = excluded.holder OR leases.expires_at < $4",
    )
    .bind(name)
    .bind(holder)
    .bind(expires)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Gives the lease up so another replica can take it at once.
pub async fn release(conn: &mut AnyConnection, name: &str, holder: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
        .bind(name)
        .bind(holder)
        .execute(conn)
        .await?;
    Ok(())
}
