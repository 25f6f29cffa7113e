//! The production cache: Redis strings with `PX` expiry, under a key prefix.
//!
//! Short timeouts (250 ms by default) keep a slow or dead Redis from slowing
//! requests down; after a connection failure the cache is skipped for a
//! moment (reads are misses without asking Redis), so an outage costs one
//! timeout per pause rather than one per request. Invalidations are always
//! attempted: a skipped delete could serve stale data until the TTL.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ::redis::aio::ConnectionManager;
use ::redis::{Cmd, FromRedisValue, RedisError, cmd};
use async_trait::async_trait;

use super::Cache;
use crate::connection::{Command, Endpoint, Timeouts, is_transport};
use crate::error::{BusError, format_duration};
use crate::metrics;

/// How often a failing cache may log; the rest are counted and reported with the next line.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// Settings of a [`RedisCache`].
#[derive(Clone, Debug)]
pub struct RedisCacheConfig {
    /// Put in front of every key, e.g. `itsm:cache:`.
    pub key_prefix: String,
    /// Longest a command (and a connection attempt) may take before it counts as a miss.
    pub timeout: Duration,
    /// How long the cache is skipped after Redis was unreachable.
    pub pause_after_failure: Duration,
}

impl Default for RedisCacheConfig {
    fn default() -> Self {
        Self {
            key_prefix: "itsm:cache:".into(),
            timeout: Duration::from_millis(250),
            pause_after_failure: Duration::from_secs(1),
        }
    }
}

/// The Redis [`Cache`]. Reconnects by itself; share it behind an `Arc`.
pub struct RedisCache {
    endpoint: Endpoint,
    config: RedisCacheConfig,
    conn: ConnectionManager,
    /// The reference point of the millisecond clocks below.
    started: Instant,
    /// Until when (ms since `started`) reads and writes skip Redis.
    paused_until: AtomicU64,
    /// When (ms since `started`) the next failure may be logged.
    next_log: AtomicU64,
    /// Failures not logged since the last line.
    unlogged: AtomicU64,
}

impl RedisCache {
    /// A cache on the Redis at `url` (a secret). Does not connect; fails only
    /// on a malformed URL.
    pub async fn open(url: &str, config: RedisCacheConfig) -> Result<Self, BusError> {
        let endpoint = Endpoint::parse(url)?;
        let conn = endpoint.manager(Timeouts {
            connect: config.timeout,
            response: config.timeout,
            retries: 0,
        })?;
        Ok(Self {
            endpoint,
            config,
            conn,
            started: Instant::now(),
            paused_until: AtomicU64::new(0),
            next_log: AtomicU64::new(0),
            unlogged: AtomicU64::new(0),
        })
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.config.key_prefix)
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn paused(&self) -> bool {
        self.now_ms() < self.paused_until.load(Ordering::Relaxed)
    }

    async fn run<T: FromRedisValue>(
        &self,
        operation: &'static str,
        name: &'static str,
        command: &Cmd,
    ) -> Option<T> {
        let mut conn = self.conn.clone();
        let traced = Command {
            name,
            polling: false,
        };
        match self
            .endpoint
            .observe(traced, 1, &[], command.query_async(&mut conn))
            .await
        {
            Ok(value) => Some(value),
            Err(error) => {
                self.failed(operation, &error);
                None
            }
        }
    }

    fn failed(&self, operation: &'static str, error: &RedisError) {
        metrics::cache_error();
        let now = self.now_ms();
        if is_transport(error) {
            let pause = u64::try_from(self.config.pause_after_failure.as_millis()).unwrap_or(0);
            self.paused_until.store(now + pause, Ordering::Relaxed);
        }
        let next = self.next_log.load(Ordering::Relaxed);
        let every = u64::try_from(LOG_EVERY.as_millis()).unwrap_or(u64::MAX);
        if now < next
            || self
                .next_log
                .compare_exchange(next, now + every, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            self.unlogged.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let unlogged = self.unlogged.swap(0, Ordering::Relaxed);
        tracing::warn!(
            redis = self.endpoint.target(),
            operation,
            %error,
            unlogged,
            timeout = %format_duration(self.config.timeout),
            "cache unavailable; reading from the source instead"
        );
    }
}

#[async_trait]
impl Cache for RedisCache {
    async fn get(&self, key: &str) -> Option<Vec<u8>> {
        let value = if self.paused() {
            None
        } else {
            let mut get = cmd("GET");
            get.arg(self.key(key));
            self.run::<Option<Vec<u8>>>("cache get", "GET", &get)
                .await
                .flatten()
        };
        if value.is_some() {
            metrics::cache_hit();
        } else {
            metrics::cache_miss();
        }
        value
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Duration) {
        let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        if ms == 0 || self.paused() {
            return;
        }
        let mut set = cmd("SET");
        set.arg(self.key(key)).arg(value).arg("PX").arg(ms);
        self.run::<()>("cache set", "SET", &set).await;
    }

    async fn delete(&self, keys: &[&str]) {
        if keys.is_empty() {
            return;
        }
        let mut del = cmd("DEL");
        for key in keys {
            del.arg(self.key(key));
        }
        self.run::<()>("cache delete", "DEL", &del).await;
    }
}

impl std::fmt::Debug for RedisCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCache")
            .field("redis", &self.endpoint.target())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}
