//! The production bus: Redis Streams with consumer groups.
//!
//! Key layout, everything under the configured prefix (default `itsm:`):
//!
//! | key | type | holds |
//! |---|---|---|
//! | `<prefix>stream:<stream>` | stream | one entry per message, fields `id`, `key`, `payload`; the consumer groups |
//! | `<prefix>dead:<stream>:<group>` | stream | the group's dead letters, fields `id`, `key`, `payload`, `error`, `attempts`, `time_ms`, `delivery_id` |
//!
//! A delivery id is the Redis entry id. Streams are capped with `MAXLEN ~`
//! (the cap must exceed the worst backlog a group may fall behind by).
//! Unacknowledged entries are taken over with `XAUTOCLAIM` after the claim
//! timeout; their attempt number is Redis's delivery counter. A blocked
//! `XREADGROUP` occupies its connection, so waits run on connections of their
//! own (pooled) while everything else shares one multiplexed connection.

mod commands;
mod read;

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use ::redis::aio::ConnectionManager;
use ::redis::{Cmd, FromRedisValue, Pipeline};
use async_trait::async_trait;

use self::commands as cmd;
use super::{DeadLetter, Delivery, EventBus, Message};
use crate::connection::{Endpoint, Timeouts};
use crate::error::BusError;
use crate::metrics;

/// The most deliveries one `receive` returns (Redis bounds `COUNT`, and a
/// consumer has no use for more at once).
const MAX_BATCH: usize = 10_000;

/// Settings of a [`RedisBus`].
#[derive(Clone, Debug)]
pub struct RedisBusConfig {
    /// Put in front of every key, e.g. `itsm:`; lets several deployments (or
    /// tests) share one Redis.
    pub key_prefix: String,
    /// Approximate cap on each stream's length (`XADD MAXLEN ~`).
    pub max_len: usize,
    /// Approximate cap on each dead-letter stream.
    pub dead_letter_max_len: usize,
    /// How long a delivery may stay unacknowledged before another consumer of
    /// the group takes it over.
    pub claim_timeout: Duration,
    /// Longest a connection attempt may take.
    pub connect_timeout: Duration,
    /// Longest Redis may take to answer a command.
    pub response_timeout: Duration,
    /// Longest single blocking read; a longer `wait` is cut into such pieces,
    /// checking for abandoned entries between them.
    pub max_block: Duration,
}

impl Default for RedisBusConfig {
    fn default() -> Self {
        Self {
            key_prefix: "itsm:".into(),
            max_len: 1_000_000,
            dead_letter_max_len: 100_000,
            claim_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(1),
            response_timeout: Duration::from_secs(2),
            max_block: Duration::from_secs(5),
        }
    }
}

/// The Redis Streams [`EventBus`]. Reconnects by itself; share it behind an `Arc`.
pub struct RedisBus {
    endpoint: Endpoint,
    config: RedisBusConfig,
    /// Every non-blocking command, multiplexed.
    conn: ConnectionManager,
    /// Idle connections for blocking reads.
    blocking: Mutex<Vec<ConnectionManager>>,
    /// Where the next `XAUTOCLAIM` of each (stream, group) resumes, so a long
    /// pending list is scanned in turn rather than always from its start.
    cursors: Mutex<HashMap<(String, String), String>>,
}

impl RedisBus {
    /// A bus on the Redis at `url` (a secret: it may hold a password). Does
    /// not connect: the first command does, so a service starts while Redis
    /// is down. Fails only on a malformed URL. Call [`RedisBus::ping`] to check.
    pub async fn open(url: &str, config: RedisBusConfig) -> Result<Self, BusError> {
        let endpoint = Endpoint::parse(url)?;
        let conn = endpoint.manager(Timeouts {
            connect: config.connect_timeout,
            response: config.response_timeout,
            retries: 1,
        })?;
        Ok(Self {
            endpoint,
            config,
            conn,
            blocking: Mutex::default(),
            cursors: Mutex::default(),
        })
    }

    /// Checks that Redis answers, for readiness probes and start-up logs.
    pub async fn ping(&self) -> Result<(), BusError> {
        self.query::<String>(cmd::PING, &::redis::cmd("PING"))
            .await
            .map(drop)
    }

    /// The Redis key of `stream`.
    pub fn stream_key(&self, stream: &str) -> String {
        format!("{}stream:{stream}", self.config.key_prefix)
    }

    /// The Redis key of the dead letters of `group` on `stream`.
    pub fn dead_letter_key(&self, stream: &str, group: &str) -> String {
        format!("{}dead:{stream}:{group}", self.config.key_prefix)
    }

    /// Sends `command` over the shared connection, traced as `op`.
    /// `expected` names error codes that are answers, not failures.
    async fn query_expecting<T: FromRedisValue>(
        &self,
        op: cmd::Op,
        expected: &[&str],
        command: &Cmd,
    ) -> Result<T, BusError> {
        let mut conn = self.conn.clone();
        self.endpoint
            .observe(op.command, 1, expected, command.query_async(&mut conn))
            .await
            .map_err(|e| {
                self.endpoint
                    .error(op.what, self.config.response_timeout, e)
            })
    }

    async fn query<T: FromRedisValue>(&self, op: cmd::Op, command: &Cmd) -> Result<T, BusError> {
        self.query_expecting(op, &[], command).await
    }

    async fn query_pipe<T: FromRedisValue>(
        &self,
        op: cmd::Op,
        pipe: &Pipeline,
    ) -> Result<T, BusError> {
        let mut conn = self.conn.clone();
        self.endpoint
            .observe(op.command, pipe.len(), &[], pipe.query_async(&mut conn))
            .await
            .map_err(|e| {
                self.endpoint
                    .error(op.what, self.config.response_timeout, e)
            })
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Nothing panics while these are held; a poisoned lock still holds valid data.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn is_no_group(error: &BusError) -> bool {
    matches!(error, BusError::Redis { source, .. } if source.code() == Some("NOGROUP"))
}

#[async_trait]
impl EventBus for RedisBus {
    async fn publish(&self, messages: &[Message]) -> Result<(), BusError> {
        if messages.is_empty() {
            return Ok(());
        }
        // One MULTI/EXEC round trip per batch: all or nothing, and fast.
        let mut pipe = ::redis::pipe();
        pipe.atomic();
        for message in messages {
            let key = self.stream_key(&message.stream);
            pipe.add_command(cmd::add(&key, self.config.max_len, message))
                .ignore();
        }
        match self.query_pipe::<()>(cmd::PUBLISH, &pipe).await {
            Ok(()) => {
                metrics::count_per_stream(metrics::PUBLISHED, messages);
                Ok(())
            }
            Err(error) => {
                metrics::count_per_stream(metrics::PUBLISH_ERRORS, messages);
                Err(error)
            }
        }
    }

    async fn ensure_group(&self, stream: &str, group: &str) -> Result<(), BusError> {
        let command = cmd::create_group(&self.stream_key(stream), group);
        // BUSYGROUP: the group exists, which is what was asked for.
        match self
            .query_expecting::<()>(cmd::ENSURE_GROUP, &["BUSYGROUP"], &command)
            .await
        {
            Err(BusError::Redis { source, .. }) if source.code() == Some("BUSYGROUP") => Ok(()),
            other => other,
        }
    }

    async fn receive(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Delivery>, BusError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let max = max.min(MAX_BATCH);
        let deadline = super::deadline_after(wait);
        let out = match self
            .receive_until(stream, group, consumer, max, deadline)
            .await
        {
            Err(error) if is_no_group(&error) => {
                // Redis restarted without its data, or was flushed: the group
                // is gone. Recreated from the start of what the stream holds,
                // so nothing still in Redis is skipped.
                tracing::warn!(
                    stream,
                    group,
                    "consumer group missing in redis; recreating it"
                );
                self.ensure_group(stream, group).await?;
                self.receive_until(stream, group, consumer, max, deadline)
                    .await?
            }
            other => other?,
        };
        metrics::received(stream, group, &out);
        Ok(out)
    }

    async fn ack(
        &self,
        stream: &str,
        group: &str,
        delivery_ids: &[String],
    ) -> Result<(), BusError> {
        if delivery_ids.is_empty() {
            return Ok(());
        }
        let command = cmd::ack(&self.stream_key(stream), group, delivery_ids);
        let acked: usize = self.query(cmd::ACK, &command).await?;
        metrics::acked(stream, group, acked);
        Ok(())
    }

    async fn dead_letter(
        &self,
        group: &str,
        delivery: &Delivery,
        error: &str,
    ) -> Result<(), BusError> {
        let mut pipe = ::redis::pipe();
        pipe.atomic()
            .add_command(cmd::add_dead_letter(
                &self.dead_letter_key(&delivery.stream, group),
                self.config.dead_letter_max_len,
                delivery,
                error,
            ))
            .ignore()
            .add_command(cmd::ack(
                &self.stream_key(&delivery.stream),
                group,
                std::slice::from_ref(&delivery.delivery_id),
            ))
            .ignore();
        self.query_pipe::<()>(cmd::DEAD_LETTER, &pipe).await?;
        metrics::dead_lettered(&delivery.stream, group);
        Ok(())
    }

    async fn dead_letters(
        &self,
        stream: &str,
        group: &str,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, BusError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let key = self.dead_letter_key(stream, group);
        let reply: ::redis::streams::StreamRangeReply = self
            .query(cmd::DEAD_LETTERS, &cmd::newest(&key, limit))
            .await?;
        Ok(reply
            .ids
            .iter()
            .map(|entry| cmd::dead_letter(stream, group, entry))
            .collect())
    }

    async fn lag(&self, stream: &str, group: &str) -> Result<u64, BusError> {
        let key = self.stream_key(stream);
        let no_group = || BusError::NoGroup {
            stream: stream.to_owned(),
            group: group.to_owned(),
        };
        let groups: ::redis::streams::StreamInfoGroupsReply =
            match self.query(cmd::LAG_GROUPS, &cmd::info_groups(&key)).await {
                // The stream, hence the group, does not exist.
                Err(BusError::Redis { source, .. })
                    if source.to_string().to_lowercase().contains("no such key") =>
                {
                    return Err(no_group());
                }
                other => other?,
            };
        let info = groups
            .groups
            .into_iter()
            .find(|g| g.name == group)
            .ok_or_else(no_group)?;
        let undelivered = match info.lag {
            Some(lag) => lag,
            // Redis cannot tell right after trimming or deletions; the
            // stream's length is an upper bound until the group reads on.
            None => self.query(cmd::LAG_LEN, &cmd::len(&key)).await?,
        };
        Ok((info.pending + undelivered) as u64)
    }

    async fn incarnation(&self) -> Result<String, BusError> {
        // SET NX then GET in one round trip: the first caller after Redis came
        // up empty names the incarnation, everyone else reads it.
        let key = format!("{}incarnation", self.config.key_prefix);
        let mut pipe = ::redis::pipe();
        pipe.cmd("SET")
            .arg(&key)
            .arg(uuid::Uuid::new_v4().to_string())
            .arg("NX")
            .ignore()
            .cmd("GET")
            .arg(&key);
        let (value,): (String,) = self.query_pipe(cmd::INCARNATION, &pipe).await?;
        Ok(value)
    }

    fn system(&self) -> &'static str {
        "redis"
    }
}

impl std::fmt::Debug for RedisBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBus")
            .field("redis", &self.endpoint.target())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}
