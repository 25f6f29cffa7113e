//! Rate limits per principal and method class: a token bucket per (class,
//! principal), kept in Redis so every gateway replica draws from the same
//! bucket. One Lua script refills and takes a token atomically, on Redis's
//! own clock (replicas' clocks may disagree; Redis's is the one that counts).
//!
//! A Redis round trip on every call would cost more than the rest of the
//! gateway's work (and Redis's CPU) on a busy caller, so a replica takes a
//! small lease of tokens at once ([`lease_size`]: what the bucket refills
//! in 50 ms, at most a sixteenth of the burst and 64 tokens; one token for
//! slow buckets, which keeps them exact) and spends it locally for up to
//! [`LEASE_TTL`]. The shared limit is never exceeded (a lease is taken from
//! the shared bucket before it is spent); the cost is the other way: tokens
//! leased by one replica and not used within the lease are lost, so a caller
//! spread over replicas may be refused up to (lease − 1) × replicas tokens
//! early, and a burst that starts on several concurrent calls may lease a
//! few times at once.
//!
//! When Redis is not configured, or does not answer within a few hundred
//! milliseconds, the buckets live in this process instead: the limit then
//! holds per replica, which is looser but keeps the platform up. The switch
//! is logged once each way, never per call; Redis is tried again a couple of
//! seconds later.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use itsm_platform::config::RateLimit;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::MethodClass;

/// Refill, then take up to ARGV[3] tokens (at least one). KEYS[1]: the
/// bucket. ARGV: rate per second, burst, tokens wanted. Returns {tokens
/// taken, 0} when allowed, {0, ms until a token is there} when not.
const TOKEN_BUCKET: &str = r"
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1])
local at = tonumber(state[2])
if tokens == nil or at == nil then
  tokens = burst
  at = now
end
if now > at then
  tokens = math.min(burst, tokens + (now - at) * rate / 1000)
  at = now
end
local allowed = 0
local wait = 0
if tokens >= 1 then
  allowed = math.min(want, math.floor(tokens))
  tokens = tokens - allowed
else
  wait = math.ceil((1 - tokens) * 1000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(at))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
return {allowed, wait}
";

/// How long a Redis call may take before the in-process buckets answer.
const REDIS_TIMEOUT: Duration = Duration::from_millis(250);
/// After a Redis failure, how long the in-process buckets answer before Redis is tried again.
const REDIS_RETRY_AFTER: Duration = Duration::from_secs(2);
/// Above this many in-process buckets, full ones are forgotten (they mean no debt).
const LOCAL_BUCKETS_MAX: usize = 10_000;
/// How long tokens leased from Redis may be spent here; unspent ones are dropped.
pub const LEASE_TTL: Duration = Duration::from_millis(250);
/// The refill time a lease holds at most.
const LEASE_WINDOW: f64 = 0.05;
/// The most tokens leased at once.
const LEASE_MAX: u32 = 64;

/// How many tokens a replica leases from a shared bucket at once (see the module docs).
pub fn lease_size(limit: RateLimit) -> u32 {
    let by_rate = (limit.per_second * LEASE_WINDOW).floor();
    let by_burst = f64::from(limit.burst / 16);
    // Saturating float-to-int conversion: never above LEASE_MAX anyway.
    (by_rate.min(by_burst).min(f64::from(LEASE_MAX)) as u32).max(1)
}

/// The limiter; see the module docs.
pub struct RateLimiter {
    read: RateLimit,
    write: RateLimit,
    prefix: String,
    redis: Option<Shared>,
    local: Mutex<HashMap<String, Bucket>>,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("read", &self.read)
            .field("write", &self.write)
            .field("prefix", &self.prefix)
            .field("redis", &self.redis.as_ref().map(|r| &r.target))
            .finish_non_exhaustive()
    }
}

struct Shared {
    conn: ConnectionManager,
    /// Tokens leased from Redis and not spent yet, by bucket key.
    leases: Mutex<HashMap<String, Lease>>,
    script: redis::Script,
    /// `host:port` for logs (the URL may hold a password).
    target: String,
    degraded: AtomicBool,
    retry_at: Mutex<Option<Instant>>,
}

#[derive(Debug, Clone, Copy)]
struct Lease {
    tokens: u32,
    until: Instant,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Why the limiter could not be built.
#[derive(Debug, thiserror::Error)]
#[error("ITSM_REDIS_URL: {0}")]
pub struct RateLimitError(String);

impl RateLimiter {
    /// Buckets in this process only (`itsm dev`, or no Redis configured).
    pub fn in_process(read: RateLimit, write: RateLimit) -> Self {
        Self {
            read,
            write,
            prefix: String::new(),
            redis: None,
            local: Mutex::new(HashMap::new()),
        }
    }

    /// Buckets in Redis at `redis_url`, keys under `prefix`; connects on
    /// first use, so the gateway starts while Redis is down.
    pub fn redis(
        redis_url: &str,
        prefix: &str,
        read: RateLimit,
        write: RateLimit,
    ) -> Result<Self, RateLimitError> {
        let client = redis::Client::open(redis_url).map_err(|e| RateLimitError(e.to_string()))?;
        let target = client.get_connection_info().addr().to_string();
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(REDIS_TIMEOUT))
            .set_response_timeout(Some(REDIS_TIMEOUT))
            .set_number_of_retries(0);
        let conn = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| RateLimitError(e.to_string()))?;
        Ok(Self {
            read,
            write,
            prefix: prefix.to_owned(),
            redis: Some(Shared {
                conn,
                leases: Mutex::new(HashMap::new()),
                script: redis::Script::new(TOKEN_BUCKET),
                target,
                degraded: AtomicBool::new(false),
                retry_at: Mutex::new(None),
            }),
            local: Mutex::new(HashMap::new()),
        })
    }

    /// The limit of a class.
    pub fn limit(&self, class: MethodClass) -> RateLimit {
        match class {
            MethodClass::Read => self.read,
            MethodClass::Write => self.write,
        }
    }

    /// Takes a token for `principal` calling a method of `class`; when the
    /// bucket is empty, how long until a token is there.
    pub async fn check(&self, principal: &str, class: MethodClass) -> Result<(), Duration> {
        let limit = self.limit(class);
        let key = format!("{}{}:{principal}", self.prefix, class.as_str());
        if let Some(shared) = &self.redis
            && shared.available()
        {
            if shared.spend_lease(&key) {
                return Ok(());
            }
            let lease = lease_size(limit);
            let mut conn = shared.conn.clone();
            let mut invocation = shared.script.prepare_invoke();
            invocation
                .key(&key)
                .arg(limit.per_second)
                .arg(limit.burst)
                .arg(lease);
            let invocation = invocation.invoke_async::<(i64, i64)>(&mut conn);
            match tokio::time::timeout(REDIS_TIMEOUT, invocation).await {
                Ok(Ok((taken, wait_ms))) => {
                    shared.recovered();
                    return if taken >= 1 {
                        // One is this call's; the rest are leased.
                        let rest = u32::try_from(taken - 1).unwrap_or(0);
                        if rest > 0 {
                            shared.add_lease(key, rest);
                        }
                        Ok(())
                    } else {
                        Err(Duration::from_millis(wait_ms.max(1).unsigned_abs()))
                    };
                }
                Ok(Err(error)) => shared.failed(&error.to_string()),
                Err(_) => shared.failed("no answer within 250ms"),
            }
        }
        self.check_local(key, limit)
    }

    fn check_local(&self, key: String, limit: RateLimit) -> Result<(), Duration> {
        let now = Instant::now();
        let mut buckets = self.local.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= LOCAL_BUCKETS_MAX {
            let (read, write) = (self.read, self.write);
            buckets.retain(|_, b| {
                let burst = f64::from(read.burst.max(write.burst));
                let rate = read.per_second.min(write.per_second);
                b.tokens + now.duration_since(b.at).as_secs_f64() * rate < burst
            });
        }
        let bucket = buckets.entry(key).or_insert(Bucket {
            tokens: f64::from(limit.burst),
            at: now,
        });
        let refill = now.duration_since(bucket.at).as_secs_f64() * limit.per_second;
        bucket.tokens = (bucket.tokens + refill).min(f64::from(limit.burst));
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - bucket.tokens) / limit.per_second,
            ))
        }
    }
}

impl Shared {
    /// Takes a leased token of bucket `key`, if one is left and still valid.
    fn spend_lease(&self, key: &str) -> bool {
        let mut leases = self.leases.lock().unwrap_or_else(|e| e.into_inner());
        let Some(lease) = leases.get_mut(key) else {
            return false;
        };
        if lease.tokens == 0 || Instant::now() >= lease.until {
            leases.remove(key);
            return false;
        }
        lease.tokens -= 1;
        true
    }

    fn add_lease(&self, key: String, tokens: u32) {
        let now = Instant::now();
        let mut leases = self.leases.lock().unwrap_or_else(|e| e.into_inner());
        if leases.len() >= LOCAL_BUCKETS_MAX {
            leases.retain(|_, lease| lease.tokens > 0 && now < lease.until);
        }
        let lease = leases.entry(key).or_insert(Lease {
            tokens: 0,
            until: now,
        });
        if now >= lease.until {
            lease.tokens = 0;
        }
        lease.tokens = lease.tokens.saturating_add(tokens);
        lease.until = now + LEASE_TTL;
    }

    /// Whether Redis should be tried now (not within the pause after a failure).
    fn available(&self) -> bool {
        let retry_at = self.retry_at.lock().unwrap_or_else(|e| e.into_inner());
        retry_at.is_none_or(|at| Instant::now() >= at)
    }

    fn failed(&self, reason: &str) {
        *self.retry_at.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(Instant::now() + REDIS_RETRY_AFTER);
        if !self.degraded.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                redis = %self.target,
                %reason,
                "rate limits: Redis is unreachable; using in-process buckets (per replica) until it answers again"
            );
        }
    }

    fn recovered(&self) {
        if self.degraded.swap(false, Ordering::Relaxed) {
            *self.retry_at.lock().unwrap_or_else(|e| e.into_inner()) = None;
            tracing::info!(redis = %self.target, "rate limits: Redis answers again; buckets are shared again");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_buckets_lease_one_token_fast_ones_a_few() {
        let limit = |per_second, burst| RateLimit { per_second, burst };
        assert_eq!(lease_size(limit(0.05, 3)), 1);
        assert_eq!(lease_size(limit(20.0, 40)), 1);
        assert_eq!(lease_size(limit(100.0, 200)), 5);
        assert_eq!(lease_size(limit(1e9, u32::MAX)), LEASE_MAX);
        assert_eq!(lease_size(limit(1e9, 8)), 1);
    }

    #[tokio::test]
    async fn the_in_process_bucket_allows_the_burst_then_the_rate() {
        let limiter = RateLimiter::in_process(
            RateLimit {
                per_second: 10.0,
                burst: 3,
            },
            RateLimit {
                per_second: 1.0,
                burst: 1,
            },
        );
        for _ in 0..3 {
            limiter.check("ann", MethodClass::Read).await.unwrap();
        }
        let wait = limiter.check("ann", MethodClass::Read).await.unwrap_err();
        assert!(wait <= Duration::from_millis(100), "{wait:?}");
        limiter.check("bob", MethodClass::Read).await.unwrap();
        limiter.check("ann", MethodClass::Write).await.unwrap();
        assert!(limiter.check("ann", MethodClass::Write).await.is_err());
        tokio::time::sleep(Duration::from_millis(110)).await;
        limiter.check("ann", MethodClass::Read).await.unwrap();
    }
}
