//! The outbox relay: publishes each service's outbox to the bus, in order.
//!
//! One replica relays at a time, under a lease in the service's database, so
//! events of one resource are published in the order they were committed. A
//! publish that fails (Redis down) leaves the rows unsent and is retried with
//! backoff: writes keep succeeding meanwhile, and every event is delivered once
//! the bus is back. A relay that dies between publishing and marking rows sent
//! publishes them again; consumers drop the duplicates by event id.
//!
//! Each published batch is a producer span linked to its events' traces (see
//! [`send_span`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use itsm_platform::telemetry::propagation;
use itsm_store::{Db, StoreError, idempotency, lease, outbox};
use opentelemetry::propagation::TextMapPropagator as _;
use opentelemetry::trace::TraceContextExt as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use prost::Message as _;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument as _, Span};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::bus::{EventBus, Message};
use crate::error::BusError;
use crate::metrics;

/// Relay settings.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Rows read and published per round trip.
    pub batch_size: usize,
    /// How often to look for rows when nothing woke the relay (rows written
    /// by other replicas of the service wake nobody here).
    pub poll_interval: Duration,
    /// How long the lease lasts; it is renewed every third of that.
    pub lease_ttl: Duration,
    /// Longest pause between retries while the bus is down.
    pub max_backoff: Duration,
    /// This replica's name on the lease (host and process make a good one).
    pub holder: String,
    /// How long published rows (and create request ids) are kept: the window
    /// republished when the bus comes back empty.
    pub retention: Duration,
    /// How often the lease holder deletes what is past retention.
    pub housekeeping_every: Duration,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            batch_size: 500,
            poll_interval: Duration::from_millis(200),
            lease_ttl: Duration::from_secs(15),
            max_backoff: Duration::from_secs(5),
            holder: format!("relay-{}", uuid::Uuid::new_v4().simple()),
            retention: Duration::from_secs(24 * 3600),
            housekeeping_every: Duration::from_secs(60),
        }
    }
}

/// Why a relay round failed; the rows stay unsent and are retried.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("reading or marking the outbox failed: {0}")]
    Store(#[from] StoreError),
    #[error("publishing to the bus failed: {0}")]
    Bus(#[from] BusError),
}

/// Publishes one database's outbox to a bus.
#[derive(Debug, Clone)]
pub struct OutboxRelay {
    db: Db,
    bus: Arc<dyn EventBus>,
    config: RelayConfig,
    wake: Arc<Notify>,
}

const LEASE: &str = "outbox-relay";
/// The bus incarnation the outbox was last published to (platform_state).
const INCARNATION: &str = "outbox-relay.bus-incarnation";

impl OutboxRelay {
    pub fn new(db: Db, bus: Arc<dyn EventBus>, config: RelayConfig) -> Self {
        Self {
            db,
            bus,
            config,
            wake: Arc::new(Notify::new()),
        }
    }

    /// Notify this after committing a change, so its event goes out now rather
    /// than at the next poll.
    pub fn waker(&self) -> Arc<Notify> {
        Arc::clone(&self.wake)
    }

    /// Publishes up to one batch of unsent rows and marks them sent; returns
    /// how many. Does not take the lease: [`OutboxRelay::run`] does.
    pub async fn relay_once(&self) -> Result<usize, RelayError> {
        let mut conn = self.db.pool().acquire().await.map_err(StoreError::from)?;
        let limit = i64::try_from(self.config.batch_size).unwrap_or(i64::MAX);
        let rows = outbox::select_unsent(&mut conn, limit).await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let span = send_span(self.bus.system(), &rows);
        self.send(&mut conn, rows).instrument(span).await
    }

    /// Publishes `rows` (read from the outbox through `conn`) and marks them sent.
    async fn send(
        &self,
        conn: &mut sqlx::AnyConnection,
        rows: Vec<outbox::OutboxRow>,
    ) -> Result<usize, RelayError> {
        // Checked per batch, before publishing: a bus that lost its data gets
        // the retained outbox again, in order, ahead of new events.
        let incarnation = self.bus.incarnation().await?;
        let known = outbox::get_state(&mut *conn, INCARNATION).await?;
        if known.as_deref() != Some(incarnation.as_str()) {
            if known.is_some() {
                let requeued = outbox::requeue_sent_since(&mut *conn, 0).await?;
                metrics::requeued(requeued);
                tracing::warn!(
                    requeued,
                    "the event bus lost its data (Redis restarted empty?); republishing the retained outbox, consumers skip what they already applied"
                );
            }
            outbox::set_state(&mut *conn, INCARNATION, &incarnation).await?;
            if known.is_some() {
                return Box::pin(self.relay_once()).await;
            }
        }
        let messages: Vec<Message> = rows
            .iter()
            .map(|row| Message {
                id: row.event_id.clone(),
                stream: row.stream.clone(),
                key: row.subject.clone(),
                payload: row.payload.clone(),
            })
            .collect();
        self.bus.publish(&messages).await?;
        let ids: Vec<i64> = rows.iter().map(|row| row.id).collect();
        let now = itsm_store::now_micros();
        outbox::mark_sent(&mut *conn, &ids, now).await?;
        metrics::relayed(&rows, now);
        Ok(rows.len())
    }

    /// Relays until `cancel` fires: holds the lease (or waits for it), drains
    /// the outbox in batches, sleeps until woken or the poll interval passes.
    pub async fn run(self, cancel: CancellationToken) {
        let renew_every = self.config.lease_ttl / 3;
        let mut renewed: Option<Instant> = None;
        let mut housekept: Option<Instant> = None;
        let mut backoff = Duration::from_millis(50);
        while !cancel.is_cancelled() {
            if renewed.is_none_or(|at| at.elapsed() >= renew_every) {
                match self.acquire_lease().await {
                    Ok(true) => renewed = Some(Instant::now()),
                    Ok(false) => {
                        renewed = None;
                        if sleep_or_cancel(&cancel, renew_every, None).await {
                            break;
                        }
                        continue;
                    }
                    Err(error) => {
                        tracing::warn!(%error, "outbox relay cannot take its lease; retrying");
                        renewed = None;
                        if sleep_or_cancel(&cancel, backoff, None).await {
                            break;
                        }
                        backoff = (backoff * 2).min(self.config.max_backoff);
                        continue;
                    }
                }
            }
            if housekept.is_none_or(|at| at.elapsed() >= self.config.housekeeping_every) {
                housekept = Some(Instant::now());
                if let Err(error) = self.housekeeping().await {
                    tracing::warn!(%error, "outbox housekeeping failed; will try again");
                }
            }
            match self.relay_once().await {
                Ok(n) if n == self.config.batch_size => {
                    backoff = Duration::from_millis(50);
                }
                Ok(_) => {
                    backoff = Duration::from_millis(50);
                    if sleep_or_cancel(&cancel, self.config.poll_interval, Some(&self.wake)).await {
                        break;
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, retry_in = ?backoff, "outbox relay round failed; events stay queued");
                    if sleep_or_cancel(&cancel, backoff, None).await {
                        break;
                    }
                    backoff = (backoff * 2).min(self.config.max_backoff);
                }
            }
        }
        if renewed.is_some()
            && let Ok(mut conn) = self.db.pool().acquire().await
        {
            let _ = lease::release(&mut conn, LEASE, &self.config.holder).await;
        }
    }

    /// Deletes published rows and create request ids older than the
    /// retention. (The backlog gauge is sampled by the process, per practice.)
    pub async fn housekeeping(&self) -> Result<(), StoreError> {
        let retention = i64::try_from(self.config.retention.as_micros()).unwrap_or(i64::MAX);
        let before = itsm_store::now_micros().saturating_sub(retention);
        let mut conn = self.db.pool().acquire().await?;
        let events = outbox::purge_sent(&mut conn, before).await?;
        let request_ids = idempotency::purge(&mut conn, before).await?;
        if events + request_ids > 0 {
            tracing::info!(
                events,
                request_ids,
                "deleted outbox rows and request ids past retention"
            );
        }
        Ok(())
    }

    async fn acquire_lease(&self) -> Result<bool, StoreError> {
        let mut conn = self.db.pool().acquire().await?;
        lease::try_acquire(&mut conn, LEASE, &self.config.holder, self.config.lease_ttl).await
    }
}

/// The most events one send span links to: enough to follow a batch of a
/// quiet moment back to each change, without a busy relay building hundreds
/// of links per round.
const MAX_LINKS: usize = 32;

/// The producer span of one published batch.
///
/// A batch carries the events of many changes, each in its own trace, and a
/// span has one parent: so the send span is a root, with a link to each
/// event's context (the messaging conventions' batch publish). Consumers do
/// not parent on it: they continue the event's own context, which puts their
/// work directly under the call that made the change, and this span's links
/// tell how and when each event left the outbox.
fn send_span(system: &'static str, rows: &[outbox::OutboxRow]) -> Span {
    let span = tracing::info_span!(
        "send",
        otel.name = tracing::field::Empty,
        otel.kind = "producer",
        messaging.system = system,
        messaging.operation.type = "send",
        messaging.operation.name = "send",
        messaging.destination.name = tracing::field::Empty,
        messaging.batch.message_count = rows.len(),
    );
    let stream = rows.first().map_or("", |row| row.stream.as_str());
    if rows.iter().all(|row| row.stream == stream) {
        span.record(
            "otel.name",
            tracing::field::display(format_args!("send {stream}")),
        );
        span.record("messaging.destination.name", stream);
    } else {
        span.record("otel.name", "send");
    }
    // Without an exporter spans carry no context: nothing to link, and no
    // payload is read for it.
    if propagation::of(&span).is_empty() {
        return span;
    }
    for row in rows.iter().take(MAX_LINKS) {
        let Ok(trace) = TraceOnly::decode(row.payload.as_slice()) else {
            continue;
        };
        let headers = propagation::TraceHeaders {
            traceparent: trace.traceparent,
            tracestate: trace.tracestate,
        };
        let context = TraceContextPropagator::new().extract(&headers);
        span.add_link(context.span().span_context().clone());
    }
    span
}

/// The trace context fields of an `itsm.events.v1.Event`; decoding only them
/// skips the rest of the envelope (the payload) without copying it.
#[derive(Clone, PartialEq, prost::Message)]
struct TraceOnly {
    #[prost(string, tag = "9")]
    traceparent: String,
    #[prost(string, tag = "10")]
    tracestate: String,
}

/// Sleeps for `duration`, or until woken; true when cancelled.
async fn sleep_or_cancel(
    cancel: &CancellationToken,
    duration: Duration,
    wake: Option<&Notify>,
) -> bool {
    let woken = async {
        match wake {
            Some(notify) => notify.notified().await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        () = cancel.cancelled() => true,
        () = tokio::time::sleep(duration) => false,
        () = woken => false,
    }
}
