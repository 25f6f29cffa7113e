//! The transactional outbox. A state change writes its event here in the same
//! transaction as the change, so an event exists exactly when its change
//! does; the relay (in `itsm-events`) publishes unsent rows in id order and
//! marks them sent.
//!
//! Order per resource: a change locks the resource row before it inserts its
//! outbox row, so the next change of the same resource can only allocate its
//! outbox id after the previous one committed. Ids, and so publication order,
//! follow the order of changes for every resource.

use itsm_platform::telemetry::propagation;
use prost::Message;
use sqlx::{AnyConnection, Row};

use crate::audit::Actor;
use crate::error::StoreError;

/// An event to record with a change.
#[derive(Debug, Clone)]
pub struct NewEvent<'a> {
    /// The bus stream, the practice's name: `incidents`.
    pub stream: &'a str,
    /// The emitting service, `itsm.incidents`.
    pub source: &'a str,
    /// `incidents.incident.resolved`.
    pub event_type: &'a str,
    /// Resource name, `incidents/INC0000042`.
    pub subject: &'a str,
    /// The subject's version after the change: consumers apply a subject's events in this order.
    pub sequence: u64,
    pub payload: prost_types::Any,
    pub actor: &'a Actor,
    pub request_id: &'a str,
    /// W3C trace context the call carried: what the event keeps when the
    /// current span has no context of its own (no exporter configured).
    /// Otherwise the event carries the current span's context, so the
    /// consumer's work is a child of the span that made the change.
    pub traceparent: &'a str,
    pub tracestate: &'a str,
    /// Microseconds since the epoch: the time of the change.
    pub time: i64,
}

/// Writes the event; returns its id (a time-ordered UUID).
pub async fn insert(conn: &mut AnyConnection, event: &NewEvent<'_>) -> Result<String, StoreError> {
    let id = uuid::Uuid::now_v7().to_string();
    let trace = trace_context(event);
    let envelope = itsm_proto::itsm::events::v1::Event {
        id: id.clone(),
        r#type: event.event_type.to_owned(),
        source: event.source.to_owned(),
        subject: event.subject.to_owned(),
        time: Some(crate::audit::timestamp(event.time)),
        actor: Some(event.actor.to_proto()),
        sequence: event.sequence,
        payload: Some(event.payload.clone()),
        traceparent: trace.traceparent,
        tracestate: trace.tracestate,
        request_id: event.request_id.to_owned(),
        tenant: String::new(),
    };
    sqlx::query(
        "INSERT INTO outbox (event_id, stream, event_type, subject, payload, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&id)
    .bind(event.stream)
    .bind(event.event_type)
    .bind(event.subject)
    .bind(envelope.encode_to_vec())
    .bind(event.time)
    .execute(conn)
    .await?;
    Ok(id)
}

/// The trace context the event carries: the current span's (the RPC or the
/// event handling that made the change), else the one the call carried.
fn trace_context(event: &NewEvent<'_>) -> propagation::TraceHeaders {
    let current = propagation::current();
    if current.is_empty() {
        propagation::TraceHeaders {
            traceparent: event.traceparent.to_owned(),
            tracestate: event.tracestate.to_owned(),
        }
    } else {
        current
    }
}

/// An outbox row waiting to be published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    pub id: i64,
    pub event_id: String,
    pub stream: String,
    pub subject: String,
    /// The encoded `itsm.events.v1.Event`.
    pub payload: Vec<u8>,
    pub created_at: i64,
}

/// The oldest unsent rows, in id order.
pub async fn select_unsent(
    conn: &mut AnyConnection,
    limit: i64,
) -> Result<Vec<OutboxRow>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, event_id, stream, subject, payload, created_at FROM outbox \
         WHERE sent_at IS NULL ORDER BY id LIMIT $1",
    )
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(OutboxRow {
                id: row.try_get("id")?,
                event_id: row.try_get("event_id")?,
                stream: row.try_get("stream")?,
                subject: row.try_get("subject")?,
                payload: row.try_get("payload")?,
                created_at: row.try_get("created_at")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(StoreError::from)
}

/// Marks exactly these rows sent. (Not a range: a row with a lower id can
/// commit after a higher one and must not be marked before it was read.)
pub async fn mark_sent(conn: &mut AnyConnection, ids: &[i64], now: i64) -> Result<(), StoreError> {
    if ids.is_empty() {
        return Ok(());
    }
    let mut sql = itsm_query::SqlBuilder::new("UPDATE outbox SET sent_at = ");
    sql.push_bind(now)
        .push(" WHERE id IN ")
        .push_bind_list(ids.iter().copied());
    crate::db::query(&sql).execute(conn).await?;
    Ok(())
}

/// How many rows wait, and the creation time of the oldest (for the lag metric).
pub async fn backlog(conn: &mut AnyConnection) -> Result<(i64, Option<i64>), StoreError> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM outbox WHERE sent_at IS NULL",
    )
    .fetch_one(conn)
    .await?;
    Ok((row.try_get("n")?, row.try_get("oldest")?))
}

/// Deletes rows sent before `before` (microseconds).
pub async fn purge_sent(conn: &mut AnyConnection, before: i64) -> Result<u64, StoreError> {
    let result = sqlx::query("DELETE FROM outbox WHERE sent_at IS NOT NULL AND sent_at < $1")
        .bind(before)
        .execute(conn)
        .await?;
    Ok(result.rows_affected())
}

/// Marks rows sent since `since` (microseconds) unsent again, so the relay
/// publishes them once more, in id order. For a bus that lost its data (a
/// Redis restarted without persistence): consumers drop what they had already
/// processed, by event id, and receive what they had not. Returns how many.
pub async fn requeue_sent_since(conn: &mut AnyConnection, since: i64) -> Result<u64, StoreError> {
    let result =
        sqlx::query("UPDATE outbox SET sent_at = NULL WHERE sent_at IS NOT NULL AND sent_at >= $1")
            .bind(since)
            .execute(conn)
            .await?;
    Ok(result.rows_affected())
}

/// A named platform value (see the `platform_state` table).
pub async fn get_state(conn: &mut AnyConnection, name: &str) -> Result<Option<String>, StoreError> {
    let value = sqlx::query_scalar("SELECT value FROM platform_state WHERE name = $1")
        .bind(name)
        .fetch_optional(conn)
        .await?;
    Ok(value)
}

/// Sets a named platform value.
pub async fn set_state(
    conn: &mut AnyConnection,
    name: &str,
    value: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO platform_state (name, value) VALUES ($1, $2) \
         ON CONFLICT (name) DO UPDATE SET value = excluded.value",
    )
    .bind(name)
    .bind(value)
    .execute(conn)
    .await?;
    Ok(())
}
