//! The event bus: ordered streams read by consumer groups, at least once.
//!
//! The relay [`EventBus::publish`]es outbox rows in order; each consumer group
//! sees every message of a stream, from the beginning of the stream the first
//! time the group is created. A consumer [`EventBus::receive`]s a batch, handles
//! each message in a database transaction that records the event id, then
//! [`EventBus::ack`]s. A message received and never acknowledged (the consumer
//! crashed) is delivered again, to any consumer of the group, once it has sat
//! unacknowledged for the claim timeout; consumers therefore dedupe by
//! [`Message::id`]. A message that keeps failing is moved to the group's
//! dead-letter stream with [`EventBus::dead_letter`], where it stays visible.
//!
//! Two implementations with the same contract and the same test suite:
//! [`RedisBus`] (Redis Streams with consumer groups) and [`MemoryBus`] (in-process,
//! for `itsm dev` and tests).

mod memory;
mod redis;

use std::time::Duration;

use async_trait::async_trait;

pub use self::memory::{MemoryBus, MemoryBusConfig};
pub use self::redis::{RedisBus, RedisBusConfig};
use crate::error::BusError;

/// One event on the bus.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The event id (a UUID): what consumers dedupe on.
    pub id: String,
    /// The stream, one per practice, e.g. `incidents`.
    pub stream: String,
    /// The subject, e.g. `incidents/INC0000001`.
    pub key: String,
    /// The encoded `itsm.events.v1.Event` envelope.
    pub payload: Vec<u8>,
}

/// A message handed to one consumer of a group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// The stream it was read from.
    pub stream: String,
    /// What to pass to [`EventBus::ack`] or [`EventBus::dead_letter`]; opaque.
    pub delivery_id: String,
    /// The message.
    pub message: Message,
    /// 1 on the first delivery to the group, then one more each time it is
    /// claimed again after the claim timeout.
    pub attempt: u32,
}

/// A message a consumer group gave up on, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadLetter {
    /// The consumer group that gave up.
    pub group: String,
    /// The message as it was published.
    pub message: Message,
    /// The error the consumer reported.
    pub error: String,
    /// How many times the group had received it.
    pub attempts: u32,
    /// When it was dead-lettered, in milliseconds since the Unix epoch.
    pub time_unix_ms: i64,
}

/// An ordered, at-least-once message bus with consumer groups.
///
/// Object safe: services hold an `Arc<dyn EventBus>` chosen at start-up.
#[async_trait]
pub trait EventBus: Send + Sync + std::fmt::Debug {
    /// Appends `messages` in order (they may belong to different streams).
    /// Either all are appended or an error is returned; the caller then retries
    /// the whole batch, and the duplicates that may cause are harmless.
    async fn publish(&self, messages: &[Message]) -> Result<(), BusError>;

    /// Creates the consumer group if it does not exist (creating the stream
    /// too). A new group starts from the beginning of the stream. Idempotent.
    async fn ensure_group(&self, stream: &str, group: &str) -> Result<(), BusError>;

    /// Up to `max` messages for `consumer` of `group`: first those another
    /// consumer (or this one) received and left unacknowledged for longer than
    /// the claim timeout, with `attempt` one higher, then messages the group has
    /// not seen yet, in stream order. Waits up to `wait` when there are none and
    /// returns as soon as one arrives; an empty result means `wait` passed.
    /// A group that does not exist (e.g. Redis restarted empty) is created.
    ///
    /// Dropping the future mid-wait (shutdown) loses nothing: whatever the
    /// backend handed out meanwhile is pending and comes back after the
    /// claim timeout.
    async fn receive(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Delivery>, BusError>;

    /// Marks deliveries as handled by the group: they are not delivered again.
    /// Acknowledging twice, late (after another consumer took the delivery
    /// over), or for a group that no longer exists is harmless.
    async fn ack(&self, stream: &str, group: &str, delivery_ids: &[String])
    -> Result<(), BusError>;

    /// Appends the delivery to the group's dead-letter stream with `error`,
    /// then acknowledges it, atomically.
    async fn dead_letter(
        &self,
        group: &str,
        delivery: &Delivery,
        error: &str,
    ) -> Result<(), BusError>;

    /// The group's most recent dead letters on `stream`, newest first.
    async fn dead_letters(
        &self,
        stream: &str,
        group: &str,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, BusError>;

    /// Messages the group has not acknowledged yet: received but pending, plus
    /// not yet delivered. For metrics and alerts.
    async fn lag(&self, stream: &str, group: &str) -> Result<u64, BusError>;

    /// An id of the bus's current store of messages, which changes when that
    /// store is lost (a Redis restarted without persistence, a new process for
    /// the in-process bus). The relay compares it with the one it last
    /// published to and, when it changed, publishes the retained outbox again.
    async fn incarnation(&self) -> Result<String, BusError>;

    /// What the `messaging.system` attribute of publish and process spans
    /// says this bus is: `redis`, or `in-process`.
    fn system(&self) -> &'static str;
}

/// When a wait of `wait` from now ends; a wait too long to represent (say
/// `Duration::MAX`, "until something comes") ends in a year.
pub(crate) fn deadline_after(wait: Duration) -> tokio::time::Instant {
    let now = tokio::time::Instant::now();
    now.checked_add(wait)
        .unwrap_or_else(|| now + Duration::from_secs(365 * 86_400))
}
