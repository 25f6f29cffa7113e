//! Incidents react to SLA breaches: a consumer of the SLA service's events
//! (stream `sla`, consumer group [`GROUP`]) that escalates an incident still
//! open when one of its task SLAs breaches (`sla.task_sla.breached` about a
//! ticket `incidents/<number>`).
//!
//! An escalation is the incident's own change, written in the consumer's
//! transaction like every other: the row (flag, escalation entry, the
//! assignment group's manager added to the watchers, a new version), an
//! audit entry by `system:sla-escalation` and an `incidents.incident.escalated`
//! event whose `notify` names the manager. What it does to the incident is
//! `domain::escalation`'s rule: one escalation per run of a task SLA, so a
//! redelivered or republished breach changes nothing (the consumer's
//! `processed_events` catches the same event id; the escalation list catches
//! the same breach under another id). Events about other tickets, incidents
//! this database does not have, and incidents already resolved, closed or
//! canceled are acknowledged and ignored.
//!
//! The manager comes from the [`Directory`]. It is asked before the row is
//! locked (no row lock is held across a call to the identity service); when
//! it cannot answer, the incident is still escalated, with nobody to notify,
//! and a warning names the group.

use std::sync::Arc;

use async_trait::async_trait;
use itsm_events::bus::EventBus;
use itsm_events::{Consumer, ConsumerConfig, Handler, HandlerError};
use itsm_proto::itsm::events::v1::Event;
use itsm_proto::itsm::sla::v1 as sla;
use itsm_store::audit::Actor;
use itsm_store::change::{self, Change, Origin};
use itsm_store::{Db, Tx};
use prost::Message as _;

use crate::convert;
use crate::directory::Directory;
use crate::domain::escalation::Breach;
use crate::store::incidents;

/// The consumer group on the `sla` stream.
pub const GROUP: &str = "incidents.sla-escalations";
/// The event type of an escalation (events.proto).
pub const ESCALATED: &str = "incidents.incident.escalated";
/// The stream the SLA service publishes on, and the event handled.
const SLA_STREAM: &str = "sla";
const BREACHED: &str = "sla.task_sla.breached";
const TASK_SLA_EVENT: &str = "type.googleapis.com/itsm.sla.v1.TaskSlaEvent";
/// The bus stream and event source of this practice (as `api::call` writes them).
const STREAM: &str = "incidents";
const SOURCE: &str = "itsm.incidents";
/// Who escalations are by, in the audit trail and the events.
const ACTOR: &str = "sla-escalation";

/// The bus handler: escalates the incident of each breached task SLA.
#[derive(Debug, Clone)]
pub struct Escalations {
    directory: Arc<dyn Directory>,
    /// The backend's row lock (`FOR UPDATE` on PostgreSQL).
    lock: &'static str,
}

impl Escalations {
    /// A handler for the incidents database `db`, asking `directory` for
    /// assignment groups' managers.
    pub fn new(db: &Db, directory: Arc<dyn Directory>) -> Self {
        Self {
            directory,
            lock: db.backend().lock_suffix(),
        }
    }

    /// The manager of `group` to notify, or `None`: no group, no manager, or
    /// a directory that cannot answer (logged: the escalation goes ahead).
    async fn manager_of(&self, group: &str, incident: &str) -> Option<String> {
        if group.is_empty() {
            return None;
        }
        match self.directory.manager(group).await {
            Ok(manager) => manager,
            Err(error) => {
                tracing::warn!(
                    %incident,
                    %group,
                    %error,
                    "the directory cannot name the assignment group's manager; escalating without notifying anyone"
                );
                None
            }
        }
    }
}

/// The breach an SLA event reports and the incident number it is about;
/// `None` for other events and other tickets.
fn breach_of(event: &Event) -> Result<Option<(String, Breach)>, HandlerError> {
    if event.r#type != BREACHED {
        return Ok(None);
    }
    let payload = event
        .payload
        .as_ref()
        .filter(|any| any.type_url == TASK_SLA_EVENT)
        .ok_or_else(|| {
            HandlerError::Permanent(format!(
                "{BREACHED} event {} does not carry an itsm.sla.v1.TaskSlaEvent",
                event.id
            ))
        })?;
    let decoded = sla::TaskSlaEvent::decode(payload.value.as_slice()).map_err(|error| {
        HandlerError::Permanent(format!(
            "{BREACHED} event {}: bad TaskSlaEvent: {error}",
            event.id
        ))
    })?;
    let task_sla = decoded.task_sla.unwrap_or_default();
    let Ok(number) = crate::domain::number_from_name(&task_sla.ticket, "ticket") else {
        tracing::debug!(event = %event.id, ticket = %task_sla.ticket, "SLA breach of another kind of ticket; ignored");
        return Ok(None);
    };
    // The breach instant (the timeline entry's time), else when the event was written.
    let time = decoded
        .timeline_entry
        .and_then(|entry| entry.time)
        .or(event.time)
        .map_or(0, |t| {
            t.seconds
                .saturating_mul(1_000_000)
                .saturating_add(i64::from(t.nanos / 1_000))
        });
    let breach = Breach {
        task_sla: task_sla.name,
        sla_definition: task_sla.sla_definition,
        sla_display_name: task_sla.display_name,
        run: task_sla.reset_count,
        time,
    };
    Ok(Some((number.to_owned(), breach)))
}

#[async_trait]
impl Handler for Escalations {
    async fn handle(&self, tx: &mut Tx, event: &Event) -> Result<(), HandlerError> {
        let Some((number, breach)) = breach_of(event)? else {
            return Ok(());
        };
        let name = crate::domain::name_of(&number);
        let Some(seen) = incidents::select_incident(tx, &number, "").await? else {
            tracing::debug!(incident = %name, task_sla = %breach.task_sla, "SLA breach of an unknown incident; ignored");
            return Ok(());
        };
        if !seen.incident.escalates(&breach) {
            tracing::debug!(incident = %name, state = %seen.incident.state, task_sla = %breach.task_sla, "SLA breach of an incident that is not open or was escalated for it; ignored");
            return Ok(());
        }
        let group = seen.incident.assignment_group;
        let mut manager = self.manager_of(&group, &name).await;

        let Some(stored) = incidents::select_incident(tx, &number, self.lock).await? else {
            return Ok(());
        };
        let (id, mut incident) = (stored.id, stored.incident);
        if incident.assignment_group != group {
            // Reassigned while the directory was asked: the new group's manager.
            manager = self.manager_of(&incident.assignment_group, &name).await;
        }
        let now = itsm_store::now_micros();
        let previous = incident.version;
        let was_watching = manager
            .as_ref()
            .is_some_and(|m| incident.watchers.contains(m));
        // Re-checked under the lock: resolved or escalated since the first read.
        let Some(changes) = incident.escalate(&breach, manager.as_deref(), now) else {
            return Ok(());
        };
        if let Some(manager) = manager.as_deref().filter(|_| !was_watching) {
            incidents::insert_watcher(tx, id, manager, now).await?;
        }
        incidents::update_incident(tx, id, &incident, previous).await?;
        let notify: Vec<String> = manager.iter().cloned().collect();
        let payload = convert::notifying_payload(&incident, &changes, None, notify);
        let actor = Actor::system(ACTOR);
        let origin = Origin {
            stream: STREAM,
            source: SOURCE,
            actor: &actor,
            request_id: &event.request_id,
            traceparent: &event.traceparent,
            tracestate: &event.tracestate,
        };
        let change = Change {
            resource: &name,
            version: incident.version,
            action: "escalate",
            event_type: ESCALATED,
            changes,
            payload,
        };
        change::record(tx, &origin, change, now).await?;
        tracing::info!(
            incident = %name,
            task_sla = %breach.task_sla,
            group = %incident.assignment_group,
            manager = manager.as_deref().unwrap_or(""),
            "incident escalated: an SLA breached"
        );
        Ok(())
    }
}

/// The consumer of SLA events that escalates incidents ([`GROUP`] on the
/// `sla` stream), over the incidents database `db`.
pub fn consumer(db: Db, bus: Arc<dyn EventBus>, directory: Arc<dyn Directory>) -> Consumer {
    let handler = Escalations::new(&db, directory);
    Consumer::new(
        db,
        bus,
        Arc::new(handler),
        ConsumerConfig::new(GROUP, &[SLA_STREAM]),
    )
}
