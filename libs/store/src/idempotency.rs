//! Idempotent creates (AIP-155): a create carrying a `request_id` is recorded
//! with a hash of its content in the creating transaction. A retry with the
//! same id and content gets the first result; the same id with other content
//! is refused (ALREADY_EXISTS), never silently applied.
//!
//! Use, inside the create's transaction: [`claim`] first; on
//! [`Claim::Replay`] return the resource it names; on [`Claim::New`] create,
//! then [`complete`] with the new resource's name. A concurrent duplicate
//! blocks on the key until the first transaction ends, then replays it.

use sha2::{Digest, Sha256};
use sqlx::AnyConnection;

use crate::error::StoreError;

/// What [`claim`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// First use of the id: go ahead and create.
    New,
    /// A retry: the first call created this resource.
    Replay { resource: String },
}

/// The hash stored for a request: SHA-256 of its canonical encoding (the
/// protobuf bytes of the request with the request_id cleared).
pub fn hash_request(encoded: &[u8]) -> String {
    let digest = Sha256::digest(encoded);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Claims `request_id` for a `method` call with content `request_hash`.
pub async fn claim(
    conn: &mut AnyConnection,
    method: &str,
    request_id: &str,
    request_hash: &str,
) -> Result<Claim, StoreError> {
    let inserted = sqlx::query(
        "INSERT INTO idempotency_keys (method, request_id, request_hash, resource, created_at) \
         VALUES ($1, $2, $3, '', $4) ON CONFLICT (method, request_id) DO NOTHING",
    )
    .bind(method)
    .bind(request_id)
    .bind(request_hash)
    .bind(crate::now_micros())
    .execute(&mut *conn)
    .await?;
    if inserted.rows_affected() == 1 {
        return Ok(Claim::New);
    }
    let (hash, resource): (String, String) = sqlx::query_as(
        "SELECT request_hash, resource FROM idempotency_keys WHERE method = $1 AND request_id = $2",
    )
    .bind(method)
    .bind(request_id)
    .fetch_one(&mut *conn)
    .await?;
    if hash == request_hash && !resource.is_empty() {
        Ok(Claim::Replay { resource })
    } else {
        Err(StoreError::RequestIdReused {
            method: method.to_owned(),
            request_id: request_id.to_owned(),
        })
    }
}

/// Records the resource a claimed request created.
pub async fn complete(
    conn: &mut AnyConnection,
    method: &str,
    request_id: &str,
    resource: &str,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE idempotency_keys SET resource = $1 WHERE method = $2 AND request_id = $3")
        .bind(resource)
        .bind(method)
        .bind(request_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Forgets keys older than `before` (microseconds): a client retries within
/// minutes, not days.
pub async fn purge(conn: &mut AnyConnection, before: i64) -> Result<u64, StoreError> {
    let result = sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
        .bind(before)
        .execute(conn)
        .await?;
    Ok(result.rows_affected())
}
