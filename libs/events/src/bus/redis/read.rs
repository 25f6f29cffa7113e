//! The read side of the Redis bus: claiming abandoned entries, reading new
//! ones, and waiting for them without holding up anyone else.
//!
//! `XREADGROUP ... BLOCK` holds its connection until it returns, so blocking
//! reads never go over the shared multiplexed connection (a publish would
//! queue behind them): each runs on a connection of its own, taken from a
//! small pool and returned only after a clean answer.

use std::time::Duration;

use tokio::time::Instant;

use super::commands as cmd;
use super::{RedisBus, lock};
use crate::bus::Delivery;
use crate::connection::Timeouts;
use crate::error::BusError;

/// Idle blocking-read connections kept for reuse; more are opened when more
/// receivers wait at once, and closed when they come back to a full pool.
const MAX_IDLE_BLOCKING: usize = 16;

impl RedisBus {
    /// Takes over entries of the group idle for longer than the claim timeout.
    async fn claim(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        max: usize,
    ) -> Result<Vec<Delivery>, BusError> {
        let key = self.stream_key(stream);
        let slot = (stream.to_owned(), group.to_owned());
        let start = lock(&self.cursors)
            .get(&slot)
            .cloned()
            .unwrap_or_else(|| "0-0".into());
        let idle = self.config.claim_timeout;
        let reply: ::redis::streams::StreamAutoClaimReply = self
            .query(
                cmd::CLAIM,
                &cmd::autoclaim(&key, group, consumer, idle, &start, max),
            )
            .await?;
        lock(&self.cursors).insert(slot, reply.next_stream_id);
        if reply.claimed.is_empty() {
            return Ok(Vec::new());
        }
        // XAUTOCLAIM does not return the delivery counters it just raised.
        let ids: Vec<&str> = reply.claimed.iter().map(|e| e.id.as_str()).collect();
        let counters: Vec<::redis::streams::StreamPendingCountReply> = self
            .query_pipe(cmd::PENDING, &cmd::pending_each(&key, group, &ids))
            .await?;
        Ok(reply
            .claimed
            .iter()
            .zip(counters)
            .map(|(entry, counter)| {
                let attempt = counter
                    .ids
                    .first()
                    .map_or(2, |p| u32::try_from(p.times_delivered).unwrap_or(u32::MAX));
                cmd::delivery(stream, entry, attempt)
            })
            .collect())
    }

    /// Reads entries the group has not seen; blocks up to `block` if given.
    async fn read_new(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        max: usize,
        block: Option<Duration>,
    ) -> Result<Vec<Delivery>, BusError> {
        let command = cmd::read_group(&self.stream_key(stream), group, consumer, max, block);
        let reply: Option<::redis::streams::StreamReadReply> = match block {
            None => self.query(cmd::READ, &command).await?,
            Some(block) => {
                let mut conn = match lock(&self.blocking).pop() {
                    Some(conn) => conn,
                    None => self.endpoint.manager(self.blocking_timeouts())?,
                };
                let reply = self
                    .endpoint
                    .observe(
                        cmd::READ_BLOCK.command,
                        1,
                        &[],
                        command.query_async(&mut conn),
                    )
                    .await
                    .map_err(|e| {
                        let after = block + self.config.response_timeout;
                        self.endpoint.error(cmd::READ_BLOCK.what, after, e)
                    })?;
                // Only a connection that answered goes back: one that failed
                // or was cancelled mid-block may still owe a late reply.
                let mut pool = lock(&self.blocking);
                if pool.len() < MAX_IDLE_BLOCKING {
                    pool.push(conn);
                }
                reply
            }
        };
        Ok(reply
            .into_iter()
            .flat_map(|r| r.keys)
            .flat_map(|k| k.ids)
            .map(|entry| cmd::delivery(stream, &entry, 1))
            .collect())
    }

    fn blocking_timeouts(&self) -> Timeouts {
        Timeouts {
            connect: self.config.connect_timeout,
            response: self.config.max_block + self.config.response_timeout,
            retries: 1,
        }
    }

    /// One wait: abandoned entries first, then new ones, blocking in pieces
    /// so entries abandoned meanwhile are claimed within about a claim timeout.
    pub(super) async fn receive_until(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        max: usize,
        deadline: Instant,
    ) -> Result<Vec<Delivery>, BusError> {
        let piece = self
            .config
            .max_block
            .min(self.config.claim_timeout)
            .max(Duration::from_millis(10));
        loop {
            let mut out = self.claim(stream, group, consumer, max).await?;
            if out.len() >= max {
                return Ok(out);
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            let block = (out.is_empty() && remaining >= Duration::from_millis(1))
                .then(|| remaining.min(piece));
            let fresh = self
                .read_new(stream, group, consumer, max - out.len(), block)
                .await?;
            out.extend(fresh);
            if !out.is_empty() || block.is_none() {
                return Ok(out);
            }
        }
    }
}
