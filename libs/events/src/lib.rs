//! The event bus, the outbox relay, idempotent consumers and the cache.
//!
//! - [`bus`]: the [`EventBus`] trait (publish, consumer groups, at-least-once
//!   delivery, claim-timeout redelivery, dead letters, lag) with [`RedisBus`]
//!   (Redis Streams) and [`MemoryBus`] (in-process, for `itsm dev` and tests).
//! - [`cache`]: the [`Cache`] trait, where an outage is a miss, with
//!   [`RedisCache`] and [`MemoryCache`], and [`get_or_load`].
//! - [`metrics`]: every metric name this crate records, in one place.
//!
//! Depends on Redis (the `redis` crate) and Tokio only; it knows nothing of
//! the database or of the event envelope, which travels as encoded bytes.

pub mod bus;
pub mod cache;
mod connection;
pub mod error;
pub mod metrics;

pub use bus::{
    DeadLetter, Delivery, EventBus, MemoryBus, MemoryBusConfig, Message, RedisBus, RedisBusConfig,
};
pub use cache::{Cache, MemoryCache, RedisCache, RedisCacheConfig, get_or_load};
pub use error::BusError;

/// Now, in milliseconds since the Unix epoch: how dead letters record time.
pub(crate) fn now_unix_ms() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(now.as_millis()).unwrap_or(i64::MAX)
}
