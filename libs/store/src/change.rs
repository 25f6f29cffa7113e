//! One change of one resource, as the audit trail and the bus see it: the
//! audit entry and the outbox event every write records in its transaction.

use sqlx::AnyConnection;

use crate::audit::{self, Actor, AuditRecord, FieldChange};
use crate::error::StoreError;
use crate::outbox::{self, NewEvent};

/// Who made a change and what ties it to its call.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    /// The bus stream, the practice's name: `incidents`.
    pub stream: &'a str,
    /// The emitting service: `itsm.incidents`.
    pub source: &'a str,
    pub actor: &'a Actor,
    pub request_id: &'a str,
    /// W3C trace context of the call: what the event carries when the current
    /// span has none (see [`NewEvent::traceparent`]).
    pub traceparent: &'a str,
    pub tracestate: &'a str,
}

/// What changed.
#[derive(Debug)]
pub struct Change<'a> {
    /// The resource's name, `incidents/INC0000042`.
    pub resource: &'a str,
    /// Its version after the change: the event's sequence.
    pub version: i64,
    /// The audit action, `resolve`.
    pub action: &'a str,
    /// The event type, `incidents.incident.resolved`.
    pub event_type: &'a str,
    pub changes: Vec<FieldChange>,
    pub payload: prost_types::Any,
}

/// Writes the audit entry and the event of `change`, in the caller's transaction.
pub async fn record(
    conn: &mut AnyConnection,
    origin: &Origin<'_>,
    change: Change<'_>,
    now: i64,
) -> Result<(), StoreError> {
    let record = AuditRecord {
        resource: change.resource.to_owned(),
        action: change.action.to_owned(),
        actor: origin.actor.clone(),
        time: now,
        changes: change.changes,
        request_id: origin.request_id.to_owned(),
    };
    audit::insert(&mut *conn, &record).await?;
    let event = NewEvent {
        stream: origin.stream,
        source: origin.source,
        event_type: change.event_type,
        subject: change.resource,
        sequence: u64::try_from(change.version).unwrap_or_default(),
        payload: change.payload,
        actor: origin.actor,
        request_id: origin.request_id,
        traceparent: origin.traceparent,
        tracestate: origin.tracestate,
        time: now,
    };
    outbox::insert(conn, &event).await?;
    Ok(())
}
