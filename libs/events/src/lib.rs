//! The event bus, the outbox relay, idempotent consumers and the cache.
//!
//! - [`bus`]: the [`EventBus`] trait (publish, consumer groups, at-least-once
//!   delivery, claim-timeout redelivery, dead letters, lag) with [`RedisBus`]
//!   (Redis Streams) and [`MemoryBus`] (in-process, for `itsm dev` and tests).
//! - [`cache`]: the [`Cache`] trait, where an outage is a miss, with
//!   [`RedisCache`] and [`MemoryCache`], and [`get_or_load`].
//! - [`relay`]: the outbox relay, publishing each service's outbox in order.
//! - [`consumer`]: idempotent consumers, applying each event once;
//!   [`invalidate`], a consumer handler that deletes the cache keys an event made stale.
//! - [`metrics`]: every metric name this crate records, in one place.
//!
//! The bus and the cache know nothing of the database or of the event
//! envelope, which travels as encoded bytes; the relay and consumers join
//! them to `itsm-store`.

pub mod bus;
pub mod cache;
mod connection;
pub mod consumer;
pub mod error;
pub mod invalidate;
pub mod metrics;
pub mod relay;

pub use bus::{
    DeadLetter, Delivery, EventBus, MemoryBus, MemoryBusConfig, Message, RedisBus, RedisBusConfig,
};
pub use cache::{Cache, MemoryCache, RedisCache, RedisCacheConfig, get_or_load};
pub use consumer::{Consumer, ConsumerConfig, Handler, HandlerError, Outcome};
pub use error::BusError;
pub use invalidate::InvalidateOnEvents;
pub use relay::{OutboxRelay, RelayConfig, RelayError};

/// Now, in milliseconds since the Unix epoch: how dead letters record time.
pub(crate) fn now_unix_ms() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(now.as_millis()).unwrap_or(i64::MAX)
}
