//! The in-process bus for `itsm dev` and tests: the Redis Streams contract in memory.
//!
//! Each stream is a queue of messages numbered from 0; each group keeps the
//! next number to deliver and its pending entries (delivered, not yet
//! acknowledged). Memory stays bounded: messages every group has acknowledged
//! are dropped, and a stream never holds more than `max_len` messages (the
//! oldest go first, as with Redis `MAXLEN`). Waiting receivers sleep on the
//! stream's [`Notify`] and wake on publish or when a pending entry times out.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::{DeadLetter, Delivery, EventBus, Message};
use crate::error::BusError;
use crate::metrics;

/// Settings of a [`MemoryBus`].
#[derive(Clone, Debug)]
pub struct MemoryBusConfig {
    /// How long a delivery may stay unacknowledged before another consumer of
    /// the group gets it.
    pub claim_timeout: Duration,
    /// Most messages kept per stream, acknowledged or not.
    pub max_len: usize,
    /// Most dead letters kept per stream and group.
    pub dead_letter_max_len: usize,
}

impl Default for MemoryBusConfig {
    fn default() -> Self {
        Self {
            claim_timeout: Duration::from_secs(30),
            max_len: 100_000,
            dead_letter_max_len: 10_000,
        }
    }
}

/// The in-process [`EventBus`]. Cheap to create; share it behind an `Arc`.
#[derive(Debug, Default)]
pub struct MemoryBus {
    config: MemoryBusConfig,
    /// Messages live as long as this value: a new bus is a new incarnation.
    incarnation: String,
    // A std mutex: it is never held across an await, and every critical
    // section is a few map operations.
    streams: Mutex<HashMap<String, Stream>>,
}

#[derive(Debug, Default)]
struct Stream {
    messages: VecDeque<Message>,
    /// The number of `messages[0]`; numbers below it were dropped.
    first: u64,
    groups: HashMap<String, Group>,
    /// Dead letters by group; like the Redis dead-letter streams, they do not
    /// depend on the group existing.
    dead: HashMap<String, VecDeque<DeadLetter>>,
    notify: Arc<Notify>,
}

#[derive(Debug)]
struct Group {
    /// The next number the group has not seen.
    next: u64,
    pending: BTreeMap<u64, Pending>,
}

#[derive(Debug)]
struct Pending {
    delivered_at: Instant,
    attempts: u32,
}

impl MemoryBus {
    /// An empty bus.
    pub fn new(config: MemoryBusConfig) -> Self {
        Self {
            config,
            incarnation: uuid::Uuid::new_v4().to_string(),
            streams: Mutex::default(),
        }
    }

    /// Messages held for `stream`, for tests of the memory bound.
    pub fn retained(&self, stream: &str) -> usize {
        self.lock().get(stream).map_or(0, |s| s.messages.len())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Stream>> {
        // Nothing panics while holding the lock; if something ever did, the
        // maps are still consistent enough to keep serving.
        self.streams.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn no_group(stream: &str, group: &str) -> BusError {
        BusError::NoGroup {
            stream: stream.to_owned(),
            group: group.to_owned(),
        }
    }
}

impl Stream {
    fn end(&self) -> u64 {
        self.first + self.messages.len() as u64
    }

    fn group(&mut self, name: &str) -> &mut Group {
        let first = self.first;
        self.groups.entry(name.to_owned()).or_insert_with(|| Group {
            next: first,
            pending: BTreeMap::new(),
        })
    }

    fn push(&mut self, message: Message, max_len: usize) {
        self.messages.push_back(message);
        while self.messages.len() > max_len.max(1) {
            self.messages.pop_front();
            self.first += 1;
        }
    }

    /// Drops the messages every group is done with. With no group yet, keeps
    /// everything (up to `max_len`): a group created later starts from them.
    fn drop_acknowledged(&mut self) {
        let Some(low) = self
            .groups
            .values()
            .map(|g| g.pending.keys().next().map_or(g.next, |p| (*p).min(g.next)))
            .min()
        else {
            return;
        };
        while self.first < low && self.messages.pop_front().is_some() {
            self.first += 1;
        }
    }

    /// Claims timed-out pending entries, then takes new messages, up to `max`.
    fn take(
        &mut self,
        stream: &str,
        group: &str,
        max: usize,
        now: Instant,
        claim_timeout: Duration,
    ) -> Vec<Delivery> {
        self.group(group);
        let Self {
            messages,
            first,
            groups,
            ..
        } = self;
        let (first, end) = (*first, *first + messages.len() as u64);
        let Some(g) = groups.get_mut(group) else {
            return Vec::new();
        };
        // Entries whose message was dropped by max_len cannot be delivered
        // again; Redis forgets them the same way (XAUTOCLAIM's deleted ids).
        g.pending = g.pending.split_off(&first);
        let message = |seq: u64| {
            usize::try_from(seq - first)
                .ok()
                .and_then(|i| messages.get(i))
                .cloned()
        };
        let mut out = Vec::new();
        for (seq, pending) in &mut g.pending {
            if out.len() >= max {
                break;
            }
            if now.saturating_duration_since(pending.delivered_at) < claim_timeout {
                continue;
            }
            if let Some(message) = message(*seq) {
                pending.delivered_at = now;
                pending.attempts += 1;
                out.push(delivery(stream, *seq, message, pending.attempts));
            }
        }
        let mut seq = g.next.max(first);
        while out.len() < max && seq < end {
            if let Some(message) = message(seq) {
                g.pending.insert(
                    seq,
                    Pending {
                        delivered_at: now,
                        attempts: 1,
                    },
                );
                out.push(delivery(stream, seq, message, 1));
            }
            seq += 1;
        }
        g.next = seq;
        out
    }

    /// When the group's oldest delivery becomes claimable, if it has any.
    fn next_claim(&self, group: &str, claim_timeout: Duration) -> Option<Instant> {
        let g = self.groups.get(group)?;
        g.pending
            .values()
            .filter_map(|p| p.delivered_at.checked_add(claim_timeout))
            .min()
    }
}

fn delivery(stream: &str, seq: u64, message: Message, attempt: u32) -> Delivery {
    Delivery {
        stream: stream.to_owned(),
        delivery_id: seq.to_string(),
        message,
        attempt,
    }
}

fn parse_id(id: &str) -> Result<u64, BusError> {
    id.parse()
        .map_err(|_| BusError::InvalidDeliveryId(id.to_owned()))
}

#[async_trait]
impl EventBus for MemoryBus {
    async fn publish(&self, messages: &[Message]) -> Result<(), BusError> {
        let mut wake = Vec::new();
        {
            let mut streams = self.lock();
            for message in messages {
                let stream = streams.entry(message.stream.clone()).or_default();
                stream.push(message.clone(), self.config.max_len);
                if !wake.iter().any(|n| Arc::ptr_eq(n, &stream.notify)) {
                    wake.push(stream.notify.clone());
                }
            }
        }
        metrics::count_per_stream(metrics::PUBLISHED, messages);
        for notify in wake {
            notify.notify_waiters();
        }
        Ok(())
    }

    async fn ensure_group(&self, stream: &str, group: &str) -> Result<(), BusError> {
        self.lock()
            .entry(stream.to_owned())
            .or_default()
            .group(group);
        Ok(())
    }

    async fn receive(
        &self,
        stream: &str,
        group: &str,
        _consumer: &str,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Delivery>, BusError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let deadline = super::deadline_after(wait);
        let claim_timeout = self.config.claim_timeout;
        let notify = self
            .lock()
            .entry(stream.to_owned())
            .or_default()
            .notify
            .clone();
        loop {
            // Registered before looking, so a publish between the look and
            // the sleep still wakes us.
            let notified = notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let now = Instant::now();
            let (out, next_claim) = {
                let mut streams = self.lock();
                let s = streams.entry(stream.to_owned()).or_default();
                let out = s.take(stream, group, max, now, claim_timeout);
                (out, s.next_claim(group, claim_timeout))
            };
            if !out.is_empty() || now >= deadline {
                metrics::received(stream, group, &out);
                return Ok(out);
            }
            let wake = next_claim.map_or(deadline, |at| at.min(deadline));
            tokio::select! {
                () = &mut notified => {}
                () = tokio::time::sleep_until(wake) => {}
            }
        }
    }

    async fn ack(
        &self,
        stream: &str,
        group: &str,
        delivery_ids: &[String],
    ) -> Result<(), BusError> {
        let seqs = delivery_ids
            .iter()
            .map(|id| parse_id(id))
            .collect::<Result<Vec<_>, _>>()?;
        // Like Redis: acknowledging for a group or stream that does not exist
        // (any more) acknowledges nothing, and is not an error.
        let mut streams = self.lock();
        let Some(s) = streams.get_mut(stream) else {
            return Ok(());
        };
        let Some(g) = s.groups.get_mut(group) else {
            return Ok(());
        };
        let acked = seqs
            .iter()
            .filter(|seq| g.pending.remove(seq).is_some())
            .count();
        s.drop_acknowledged();
        metrics::acked(stream, group, acked);
        Ok(())
    }

    async fn dead_letter(
        &self,
        group: &str,
        delivery: &Delivery,
        error: &str,
    ) -> Result<(), BusError> {
        let seq = parse_id(&delivery.delivery_id)?;
        let stream = delivery.stream.as_str();
        let mut streams = self.lock();
        let s = streams.entry(stream.to_owned()).or_default();
        let dead = s.dead.entry(group.to_owned()).or_default();
        dead.push_back(DeadLetter {
            group: group.to_owned(),
            message: delivery.message.clone(),
            error: error.to_owned(),
            attempts: delivery.attempt,
            time_unix_ms: crate::now_unix_ms(),
        });
        while dead.len() > self.config.dead_letter_max_len.max(1) {
            dead.pop_front();
        }
        if let Some(g) = s.groups.get_mut(group) {
            g.pending.remove(&seq);
        }
        s.drop_acknowledged();
        metrics::dead_lettered(stream, group);
        Ok(())
    }

    async fn dead_letters(
        &self,
        stream: &str,
        group: &str,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, BusError> {
        // Like reading a Redis stream that does not exist: nothing, not an error.
        let streams = self.lock();
        let dead = streams.get(stream).and_then(|s| s.dead.get(group));
        Ok(dead.map_or_else(Vec::new, |dead| {
            dead.iter().rev().take(limit).cloned().collect()
        }))
    }

    async fn lag(&self, stream: &str, group: &str) -> Result<u64, BusError> {
        let streams = self.lock();
        let s = streams
            .get(stream)
            .ok_or_else(|| Self::no_group(stream, group))?;
        let g = s
            .groups
            .get(group)
            .ok_or_else(|| Self::no_group(stream, group))?;
        let undelivered = s.end().saturating_sub(g.next.max(s.first));
        Ok(g.pending.len() as u64 + undelivered)
    }

    async fn incarnation(&self) -> Result<String, BusError> {
        Ok(self.incarnation.clone())
    }

    fn system(&self) -> &'static str {
        "in-process"
    }
}
