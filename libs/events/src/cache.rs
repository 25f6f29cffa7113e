//! The cache for hot reads (CI lookups, SLA status, auth keys).
//!
//! A cache never fails a request: a Redis error or outage is a miss, and the
//! caller reads the database. Entries are invalidated explicitly (consumers
//! of the owning service's events call [`Cache::delete`]) and always carry a
//! TTL, which bounds how stale a value can get when an invalidation is lost
//! (Redis unreachable at that moment). Values are bytes; callers encode them
//! (protobuf) and choose keys under their own namespace, e.g. `cmdb:ci:<id>`.

mod memory;
mod redis;

use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;

pub use self::memory::MemoryCache;
pub use self::redis::{RedisCache, RedisCacheConfig};

/// A key-value cache with expiry. Object safe: services hold an `Arc<dyn Cache>`.
#[async_trait]
pub trait Cache: Send + Sync + std::fmt::Debug {
    /// The value under `key`, or `None` when absent, expired, or the cache is
    /// unavailable (logged, rate-limited).
    async fn get(&self, key: &str) -> Option<Vec<u8>>;

    /// Stores `value` under `key` for `ttl` (a zero `ttl` stores nothing).
    /// Failures are logged and swallowed.
    async fn set(&self, key: &str, value: &[u8], ttl: Duration);

    /// Removes `keys` (invalidation). Failures are logged and swallowed.
    async fn delete(&self, keys: &[&str]);
}

/// The value under `key`, or else the result of `load`, which is then cached
/// for `ttl`. A failed load is returned and not cached.
///
/// Two callers missing at once both load; the database sees the same read
/// twice, which is cheaper than coordinating them.
pub async fn get_or_load<F, Fut, E>(
    cache: &dyn Cache,
    key: &str,
    ttl: Duration,
    load: F,
) -> Result<Vec<u8>, E>
where
    F: FnOnce() -> Fut + Send,
    Fut: Future<Output = Result<Vec<u8>, E>> + Send,
{
    if let Some(value) = cache.get(key).await {
        return Ok(value);
    }
    let value = load().await?;
    cache.set(key, &value, ttl).await;
    Ok(value)
}
