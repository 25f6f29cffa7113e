//! Metric names of the bus and the cache, in one place, and the helpers that record them.
//!
//! Labels stay bounded: stream and group names only (a handful per
//! deployment), never keys, event ids or consumer names, which change with
//! every resource or pod. Recorded through the `metrics` facade; the process
//! chooses the exporter.

use ::metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};

use crate::bus::{Delivery, EventBus, Message};
use crate::error::BusError;

/// Counter `{stream}`: messages appended to a stream.
pub const PUBLISHED: &str = "itsm_events_published_total";
/// Counter `{stream}`: messages whose publish failed (the relay retries them).
pub const PUBLISH_ERRORS: &str = "itsm_events_publish_errors_total";
/// Counter `{stream, group}`: deliveries handed to consumers, redeliveries included.
pub const RECEIVED: &str = "itsm_events_received_total";
/// Counter `{stream, group}`: deliveries with `attempt > 1`, claimed from a consumer that never acknowledged.
pub const REDELIVERED: &str = "itsm_events_redelivered_total";
/// Counter `{stream, group}`: deliveries acknowledged.
pub const ACKED: &str = "itsm_events_acked_total";
/// Counter `{stream, group}`: messages moved to a dead-letter stream.
pub const DEAD_LETTERS: &str = "itsm_events_dead_letters_total";
/// Gauge `{stream, group}`: messages not yet acknowledged by the group; set by [`record_lag`].
pub const CONSUMER_LAG: &str = "itsm_events_consumer_lag";
/// Counter: cache reads answered from the cache.
pub const CACHE_HITS: &str = "itsm_cache_hits_total";
/// Counter: cache reads that went to the source (absent, expired, or the cache is down).
pub const CACHE_MISSES: &str = "itsm_cache_misses_total";
/// Counter: cache operations that failed (Redis down or slow); each also counts as a miss when a read.
pub const CACHE_ERRORS: &str = "itsm_cache_errors_total";

/// Counter `{stream}`: outbox rows the relay published and marked sent.
pub const OUTBOX_RELAYED: &str = "itsm_outbox_relayed_total";
/// Histogram `{stream}`: seconds from a change's commit to its event's publication.
pub const OUTBOX_LAG: &str = "itsm_outbox_lag_seconds";
/// Counter: outbox rows requeued because the bus lost its data.
pub const OUTBOX_REQUEUED: &str = "itsm_outbox_requeued_total";
/// Counter `{stream, group}`: handler failures that were retried.
pub const CONSUMER_RETRIES: &str = "itsm_events_consumer_retries_total";
/// Histogram `{stream, group, outcome}`: seconds one try at handling an event
/// took, its transaction and acknowledgement included; `outcome` is `ok`
/// (applied, or a duplicate acknowledged), `retry` (failed, tried again) or
/// `dead_letter` (given up).
pub const EVENT_HANDLE_DURATION: &str = "itsm_event_handle_duration_seconds";

/// Histogram `{command}`: seconds from sending a Redis command (or pipeline)
/// to its answer, from the bus and the cache; `command` is `XADD`, `GET`, ...
pub const REDIS_COMMAND_DURATION: &str = "itsm_redis_command_duration_seconds";
/// Counter `{command}`: Redis commands that failed (no answer in time, the
/// connection dropped, or an error reply the caller did not expect).
pub const REDIS_ERRORS: &str = "itsm_redis_errors_total";

/// The label naming the stream.
pub const LABEL_STREAM: &str = "stream";
/// The label naming the consumer group.
pub const LABEL_GROUP: &str = "group";
/// The label of [`EVENT_HANDLE_DURATION`]: `ok`, `retry` or `dead_letter`.
pub const LABEL_OUTCOME: &str = "outcome";
/// The label naming the Redis command.
pub const LABEL_COMMAND: &str = "command";

/// Describes every metric above to the installed recorder; call once at start-up.
pub fn describe() {
    describe_counter!(PUBLISHED, "messages appended to a stream");
    describe_counter!(PUBLISH_ERRORS, "messages whose publish failed");
    describe_counter!(RECEIVED, "deliveries handed to consumers");
    describe_counter!(REDELIVERED, "deliveries claimed after the claim timeout");
    describe_counter!(ACKED, "deliveries acknowledged");
    describe_counter!(DEAD_LETTERS, "messages moved to a dead-letter stream");
    describe_gauge!(CONSUMER_LAG, "messages not yet acknowledged by the group");
    describe_counter!(CACHE_HITS, "cache reads answered from the cache");
    describe_counter!(CACHE_MISSES, "cache reads that went to the source");
    describe_counter!(CACHE_ERRORS, "cache operations that failed");
    describe_counter!(OUTBOX_RELAYED, "outbox rows published and marked sent");
    describe_histogram!(OUTBOX_LAG, "seconds from commit to publication");
    describe_counter!(
        OUTBOX_REQUEUED,
        "outbox rows requeued after the bus lost its data"
    );
    describe_counter!(CONSUMER_RETRIES, "event handler failures that were retried");
    describe_histogram!(
        EVENT_HANDLE_DURATION,
        ::metrics::Unit::Seconds,
        "one try at handling an event, by outcome (ok, retry, dead_letter)"
    );
    describe_histogram!(
        REDIS_COMMAND_DURATION,
        ::metrics::Unit::Seconds,
        "Redis commands from the bus and the cache, send to answer"
    );
    describe_counter!(REDIS_ERRORS, "Redis commands that failed");
    // Counters of failures appear at zero, so a first failure is a rate
    // (`rate()` needs two samples) and a missing series means a missing process.
    counter!(CACHE_ERRORS).absolute(0);
}

/// Makes the failure counters of one consumer group appear at zero (see
/// [`describe`]); a consumer calls it as it starts.
pub(crate) fn consumer_started(streams: &[String], group: &str) {
    for stream in streams {
        let labels = [
            (LABEL_STREAM, stream.clone()),
            (LABEL_GROUP, group.to_owned()),
        ];
        counter!(DEAD_LETTERS, &labels).absolute(0);
        counter!(CONSUMER_RETRIES, &labels).absolute(0);
    }
}

/// The lag hook: reads the group's lag from the bus, sets [`CONSUMER_LAG`] and
/// returns it. Consumers call it periodically (every few seconds is plenty).
pub async fn record_lag(bus: &dyn EventBus, stream: &str, group: &str) -> Result<u64, BusError> {
    let lag = bus.lag(stream, group).await?;
    #[allow(clippy::cast_precision_loss)] // a lag beyond 2^53 is not a concern
    gauge!(CONSUMER_LAG, LABEL_STREAM => stream.to_owned(), LABEL_GROUP => group.to_owned())
        .set(lag as f64);
    Ok(lag)
}

/// Counts `messages` per stream under `name`; a batch is usually one stream, so
/// this walks runs instead of building a map.
pub(crate) fn count_per_stream(name: &'static str, messages: &[Message]) {
    let mut rest = messages;
    while let Some(first) = rest.first() {
        let run = rest.iter().take_while(|m| m.stream == first.stream).count();
        counter!(name, LABEL_STREAM => first.stream.clone()).increment(run as u64);
        rest = &rest[run..];
    }
}

pub(crate) fn received(stream: &str, group: &str, deliveries: &[Delivery]) {
    if deliveries.is_empty() {
        return;
    }
    let labels = [
        (LABEL_STREAM, stream.to_owned()),
        (LABEL_GROUP, group.to_owned()),
    ];
    counter!(RECEIVED, &labels).increment(deliveries.len() as u64);
    let again = deliveries.iter().filter(|d| d.attempt > 1).count();
    if again > 0 {
        counter!(REDELIVERED, &labels).increment(again as u64);
    }
}

pub(crate) fn acked(stream: &str, group: &str, count: usize) {
    counter!(ACKED, LABEL_STREAM => stream.to_owned(), LABEL_GROUP => group.to_owned())
        .increment(count as u64);
}

pub(crate) fn dead_lettered(stream: &str, group: &str) {
    counter!(DEAD_LETTERS, LABEL_STREAM => stream.to_owned(), LABEL_GROUP => group.to_owned())
        .increment(1);
}

pub(crate) fn cache_hit() {
    counter!(CACHE_HITS).increment(1);
}

pub(crate) fn cache_miss() {
    counter!(CACHE_MISSES).increment(1);
}

pub(crate) fn cache_error() {
    counter!(CACHE_ERRORS).increment(1);
}

/// Records relayed outbox rows: a count per stream and each row's lag.
pub(crate) fn relayed(rows: &[itsm_store::outbox::OutboxRow], now_micros: i64) {
    for row in rows {
        counter!(OUTBOX_RELAYED, LABEL_STREAM => row.stream.clone()).increment(1);
        #[allow(clippy::cast_precision_loss)] // microsecond lags fit f64 exactly enough
        let seconds = (now_micros - row.created_at).max(0) as f64 / 1_000_000.0;
        histogram!(OUTBOX_LAG, LABEL_STREAM => row.stream.clone()).record(seconds);
    }
}

pub(crate) fn requeued(count: u64) {
    counter!(OUTBOX_REQUEUED).increment(count);
}

pub(crate) fn consumer_retry(stream: &str, group: &str) {
    counter!(CONSUMER_RETRIES, LABEL_STREAM => stream.to_owned(), LABEL_GROUP => group.to_owned())
        .increment(1);
}

/// How one try at handling an event ended, for [`EVENT_HANDLE_DURATION`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HandleOutcome {
    Ok,
    Retry,
    DeadLetter,
}

impl HandleOutcome {
    fn label(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Retry => "retry",
            Self::DeadLetter => "dead_letter",
        }
    }
}

pub(crate) fn event_handled(
    stream: &str,
    group: &str,
    outcome: HandleOutcome,
    took: std::time::Duration,
) {
    histogram!(
        EVENT_HANDLE_DURATION,
        LABEL_STREAM => stream.to_owned(),
        LABEL_GROUP => group.to_owned(),
        LABEL_OUTCOME => outcome.label()
    )
    .record(took.as_secs_f64());
}

/// Records one Redis command; `command` is static, so the hot path (a cache
/// read) allocates no label.
pub(crate) fn redis_command(command: &'static str, took: std::time::Duration, failed: bool) {
    histogram!(REDIS_COMMAND_DURATION, LABEL_COMMAND => command).record(took.as_secs_f64());
    if failed {
        counter!(REDIS_ERRORS, LABEL_COMMAND => command).increment(1);
    }
}
