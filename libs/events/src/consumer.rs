//! Idempotent consumers: the effect of an event happens once, however often
//! the bus delivers it.
//!
//! For each delivery the consumer opens a transaction, records the event id
//! for its group (a second delivery of the same event finds it and is only
//! acknowledged), runs the handler in the same transaction, commits, and only
//! then acknowledges. A crash anywhere before the commit leaves nothing behind
//! and the bus delivers the event again; a crash after it, and the redelivery
//! is recognised. A failing handler is retried with backoff; an event that
//! still fails, or cannot be decoded, goes to the group's dead-letter stream
//! with the error, where it stays visible.
//!
//! Each delivery is handled in a consumer span whose parent is the span that
//! wrote the event (its `traceparent`): the handler's statements and calls
//! join the trace of the request that made the change. Each try's duration
//! and outcome is recorded in `itsm_event_handle_duration_seconds`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use itsm_platform::telemetry::propagation;
use itsm_proto::itsm::events::v1::Event;
use itsm_store::{Db, StoreError, Tx};
use prost::Message as _;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument as _, Span};

use crate::bus::{Delivery, EventBus};
use crate::error::BusError;
use crate::metrics::{self, HandleOutcome};

/// Why a handler could not apply an event.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// Worth trying again (a dependency was down, a lock timed out).
    #[error("{0}")]
    Retryable(String),
    /// Will fail the same way every time: dead-letter it at once.
    #[error("{0}")]
    Permanent(String),
}

impl From<StoreError> for HandlerError {
    fn from(error: StoreError) -> Self {
        Self::Retryable(error.to_string())
    }
}

/// What a consumer does with each event.
#[async_trait]
pub trait Handler: Send + Sync {
    /// Applies `event` inside `tx`. The consumer commits the transaction,
    /// together with the record that the event was processed, when this
    /// returns `Ok`, and rolls it back otherwise.
    async fn handle(&self, tx: &mut Tx, event: &Event) -> Result<(), HandlerError>;
}

/// Consumer settings.
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// The consumer group: one per (service, purpose), e.g. `sla.ticket-clocks`.
    pub group: String,
    /// This replica's name within the group.
    pub consumer: String,
    /// The streams to read, e.g. `["incidents"]`.
    pub streams: Vec<String>,
    pub batch_size: usize,
    /// How long one receive waits for messages.
    pub wait: Duration,
    /// Tries per delivery before it is dead-lettered.
    pub max_attempts: u32,
    /// First pause between tries; doubles each time.
    pub backoff: Duration,
    /// How long processed event ids are remembered: longer than any
    /// redelivery, including the relay's republication window (24 h).
    pub remember: Duration,
}

impl ConsumerConfig {
    pub fn new(group: &str, streams: &[&str]) -> Self {
        Self {
            group: group.to_owned(),
            consumer: format!("consumer-{}", uuid::Uuid::new_v4().simple()),
            streams: streams.iter().map(|s| (*s).to_owned()).collect(),
            batch_size: 100,
            wait: Duration::from_millis(500),
            max_attempts: 5,
            backoff: Duration::from_millis(100),
            remember: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// What happened to one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The handler's effect was committed.
    Applied,
    /// The event had been processed before; only acknowledged.
    Duplicate,
    /// Moved to the dead-letter stream.
    DeadLettered,
}

/// Reads a group's streams and applies each event once.
pub struct Consumer {
    db: Db,
    bus: Arc<dyn EventBus>,
    handler: Arc<dyn Handler>,
    config: ConsumerConfig,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Consumer {
    pub fn new(
        db: Db,
        bus: Arc<dyn EventBus>,
        handler: Arc<dyn Handler>,
        config: ConsumerConfig,
    ) -> Self {
        Self {
            db,
            bus,
            handler,
            config,
        }
    }

    /// Receives one batch from each stream and processes it; returns what
    /// happened to each delivery.
    pub async fn poll_once(&self, wait: Duration) -> Result<Vec<Outcome>, BusError> {
        let mut outcomes = Vec::new();
        for stream in &self.config.streams {
            self.bus.ensure_group(stream, &self.config.group).await?;
            let deliveries = self
                .bus
                .receive(
                    stream,
                    &self.config.group,
                    &self.config.consumer,
                    self.config.batch_size,
                    wait,
                )
                .await?;
            for delivery in deliveries {
                outcomes.push(self.process(&delivery).await?);
            }
        }
        Ok(outcomes)
    }

    /// Consumes until `cancel` fires. Bus errors (Redis down) are retried with backoff.
    pub async fn run(self, cancel: CancellationToken) {
        let mut backoff = self.config.backoff;
        let mut forgot: Option<std::time::Instant> = None;
        let mut measured: Option<std::time::Instant> = None;
        metrics::consumer_started(&self.config.streams, &self.config.group);
        while !cancel.is_cancelled() {
            if measured.is_none_or(|at| at.elapsed() >= Duration::from_secs(10)) {
                measured = Some(std::time::Instant::now());
                for stream in &self.config.streams {
                    // Before the group exists there is no lag to report.
                    let _ =
                        metrics::record_lag(self.bus.as_ref(), stream, &self.config.group).await;
                }
            }
            if forgot.is_none_or(|at| at.elapsed() >= Duration::from_secs(3600)) {
                forgot = Some(std::time::Instant::now());
                if let Err(error) = self.forget_old().await {
                    tracing::warn!(group = %self.config.group, %error, "cannot delete old processed event ids");
                }
            }
            let polled = tokio::select! {
                () = cancel.cancelled() => break,
                polled = self.poll_once(self.config.wait) => polled,
            };
            match polled {
                Ok(_) => backoff = self.config.backoff,
                Err(error) => {
                    tracing::warn!(group = %self.config.group, %error, retry_in = ?backoff, "consumer cannot read the bus");
                    tokio::select! {
                        () = cancel.cancelled() => break,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// Deletes this group's processed event ids older than `remember`.
    pub async fn forget_old(&self) -> Result<u64, StoreError> {
        let remember = i64::try_from(self.config.remember.as_micros()).unwrap_or(i64::MAX);
        let result = sqlx::query(
            "DELETE FROM processed_events WHERE consumer_group = $1 AND processed_at < $2",
        )
        .bind(&self.config.group)
        .bind(itsm_store::now_micros().saturating_sub(remember))
        .execute(self.db.pool())
        .await?;
        Ok(result.rows_affected())
    }

    /// Applies one delivery (retrying the handler), then acknowledges it or
    /// dead-letters it, in a consumer span continuing the event's trace.
    pub async fn process(&self, delivery: &Delivery) -> Result<Outcome, BusError> {
        let event = Event::decode(delivery.message.payload.as_slice());
        let span = self.span(delivery, event.as_ref().ok());
        self.process_decoded(delivery, event).instrument(span).await
    }

    /// The span of one delivery, named and attributed as the OpenTelemetry
    /// messaging conventions name a consumer's processing. Its parent is the
    /// span that made the event's change (the event's `traceparent`, written
    /// by the outbox), so the handler's SQL and outgoing calls join the
    /// producer's trace; an event without one starts a trace of its own.
    fn span(&self, delivery: &Delivery, event: Option<&Event>) -> Span {
        let span = tracing::info_span!(
            "process",
            otel.name = %format_args!("process {}", delivery.stream),
            otel.kind = "consumer",
            otel.status_code = tracing::field::Empty,
            messaging.system = self.bus.system(),
            messaging.operation.type = "process",
            messaging.operation.name = "process",
            messaging.destination.name = %delivery.stream,
            messaging.consumer.group.name = %self.config.group,
            messaging.message.id = %delivery.message.id,
            messaging.message.delivery_count = delivery.attempt,
            cloudevents.event_type = tracing::field::Empty,
            cloudevents.event_subject = %delivery.message.key,
            error.type = tracing::field::Empty,
        );
        if let Some(event) = event {
            span.record("cloudevents.event_type", event.r#type.as_str());
            propagation::set_parent(&span, &event.traceparent, &event.tracestate);
        }
        span
    }

    async fn process_decoded(
        &self,
        delivery: &Delivery,
        event: Result<Event, prost::DecodeError>,
    ) -> Result<Outcome, BusError> {
        let group = &self.config.group;
        let event = match event {
            Ok(event) => event,
            Err(error) => {
                let reason = format!("not an itsm.events.v1.Event: {error}");
                let started = Instant::now();
                let outcome = self.dead_letter(delivery, &reason).await;
                self.handled(delivery, HandleOutcome::DeadLetter, started);
                return outcome;
            }
        };
        let mut pause = self.config.backoff;
        let mut attempt = 1;
        loop {
            let started = Instant::now();
            match self.apply(&event).await {
                Ok(outcome) => {
                    self.bus
                        .ack(
                            &delivery.stream,
                            group,
                            std::slice::from_ref(&delivery.delivery_id),
                        )
                        .await?;
                    self.handled(delivery, HandleOutcome::Ok, started);
                    return Ok(outcome);
                }
                Err(HandlerError::Permanent(reason)) => {
                    let outcome = self.dead_letter(delivery, &reason).await;
                    self.handled(delivery, HandleOutcome::DeadLetter, started);
                    return outcome;
                }
                Err(HandlerError::Retryable(reason)) if attempt >= self.config.max_attempts => {
                    let outcome = self.dead_letter(delivery, &reason).await;
                    self.handled(delivery, HandleOutcome::DeadLetter, started);
                    return outcome;
                }
                Err(HandlerError::Retryable(reason)) => {
                    self.handled(delivery, HandleOutcome::Retry, started);
                    metrics::consumer_retry(&delivery.stream, group);
                    tracing::warn!(%group, event = %event.id, attempt, %reason, "event handler failed; retrying");
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                    attempt += 1;
                }
            }
        }
    }

    /// Records one try's duration and outcome.
    fn handled(&self, delivery: &Delivery, outcome: HandleOutcome, started: Instant) {
        metrics::event_handled(
            &delivery.stream,
            &self.config.group,
            outcome,
            started.elapsed(),
        );
    }

    /// One try: record the id and run the handler in one transaction.
    async fn apply(&self, event: &Event) -> Result<Outcome, HandlerError> {
        let mut tx = self.db.begin().await?;
        let first_time = sqlx::query(
            "INSERT INTO processed_events (consumer_group, event_id, processed_at) VALUES ($1, $2, $3) \
             ON CONFLICT (consumer_group, event_id) DO NOTHING",
        )
        .bind(&self.config.group)
        .bind(&event.id)
        .bind(itsm_store::now_micros())
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from)?
        .rows_affected()
            == 1;
        if !first_time {
            return Ok(Outcome::Duplicate);
        }
        self.handler.handle(&mut tx, event).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(Outcome::Applied)
    }

    async fn dead_letter(&self, delivery: &Delivery, reason: &str) -> Result<Outcome, BusError> {
        let span = Span::current();
        span.record("otel.status_code", "ERROR");
        span.record("error.type", "dead_letter");
        tracing::error!(
            group = %self.config.group,
            stream = %delivery.stream,
            event = %delivery.message.id,
            %reason,
            "event moved to the dead-letter stream"
        );
        self.bus
            .dead_letter(&self.config.group, delivery, reason)
            .await?;
        Ok(Outcome::DeadLettered)
    }
}
