//! What incidents give to and take from service level management, over a
//! real socket behind the real auth guard, on PostgreSQL and SQLite (the
//! harness of `tests/api.rs`): the caller's time zone, and the escalation an
//! SLA breach event brings (flag, escalation entry, the assignment group's
//! manager watching and notified, audit entry and event), applied once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

// Shared with tests/api.rs, which uses all of it; this binary does not.
#[allow(dead_code)]
#[path = "api/support.rs"]
mod support;

use std::sync::Arc;
use std::time::Duration;

use itsm_events::{Consumer, EventBus as _, MemoryBus, MemoryBusConfig, Message, Outcome};
use itsm_incidents::escalation;
use itsm_proto::itsm::events::v1::Event;
use itsm_proto::itsm::incidents::v1 as pb;
use itsm_proto::itsm::sla::v1 as sla;
use itsm_testkit::{TestDb, backend_tests};
use prost::Message as _;

use support::{AGENT, Harness, as_, bad_fields, create_request, incident, payload, start};

backend_tests!(
    the_caller_time_zone_is_an_iana_zone_stored_and_announced,
    a_breach_escalates_an_open_incident_once_and_notifies_the_manager,
    resolved_canceled_unknown_and_foreign_tickets_are_not_escalated,
    an_identity_outage_still_escalates_without_notifying,
);

/// Seconds of the breach instant the events below report.
const BREACH_AT: i64 = 1_800_000_000;

/// An `sla.task_sla.breached` event (as the SLA service writes it) of task
/// SLA `task_sla` on `ticket`, in its run `reset_count`.
fn breach(id: &str, task_sla: &str, ticket: &str, reset_count: i32) -> Event {
    breach_of_type(id, "sla.task_sla.breached", task_sla, ticket, reset_count)
}

fn breach_of_type(
    id: &str,
    event_type: &str,
    task_sla: &str,
    ticket: &str,
    reset_count: i32,
) -> Event {
    let at = prost_types::Timestamp {
        seconds: BREACH_AT,
        nanos: 0,
    };
    let event = sla::TaskSlaEvent {
        task_sla: Some(sla::TaskSla {
            name: task_sla.to_owned(),
            ticket: ticket.to_owned(),
            sla_definition: "slaDefinitions/p2-resolution".into(),
            sla_definition_version: 1,
            display_name: "P2 resolution".into(),
            breached: true,
            reset_count,
            ..sla::TaskSla::default()
        }),
        timeline_entry: Some(sla::TimelineEntry {
            time: Some(at),
            ..sla::TimelineEntry::default()
        }),
        ..sla::TaskSlaEvent::default()
    };
    Event {
        id: id.to_owned(),
        r#type: event_type.to_owned(),
        source: "itsm.sla".into(),
        subject: task_sla.to_owned(),
        time: Some(prost_types::Timestamp {
            seconds: BREACH_AT + 1,
            nanos: 0,
        }),
        sequence: 3,
        payload: Some(prost_types::Any {
            type_url: "type.googleapis.com/itsm.sla.v1.TaskSlaEvent".into(),
            value: event.encode_to_vec(),
        }),
        ..Event::default()
    }
}

/// The escalation consumer of the harness's database on an in-process bus,
/// asking the harness's identity service for managers.
fn consumer(svc: &Harness) -> (Arc<MemoryBus>, Consumer) {
    let bus = Arc::new(MemoryBus::new(MemoryBusConfig::default()));
    let consumer = escalation::consumer(svc.db.clone(), bus.clone(), Arc::new(svc.directory()));
    (bus, consumer)
}

/// Publishes `event` on the `sla` stream and lets the consumer take it.
async fn deliver(bus: &MemoryBus, consumer: &Consumer, event: &Event) -> Vec<Outcome> {
    let message = Message {
        id: event.id.clone(),
        stream: "sla".into(),
        key: event.subject.clone(),
        payload: event.encode_to_vec(),
    };
    bus.publish(&[message]).await.unwrap();
    consumer.poll_once(Duration::from_millis(50)).await.unwrap()
}

/// Opens an incident assigned to `group`, as an agent.
async fn open_in(svc: &mut Harness, title: &str, group: &str) -> pb::Incident {
    let mut sent = incident(title, 2, 2);
    sent.assignment_group = group.to_owned();
    let request = create_request(sent, "");
    svc.client
        .create_incident(as_(AGENT, request))
        .await
        .unwrap()
        .into_inner()
}

/// The `incidents.incident.escalated` events about `name`.
async fn escalated_events(svc: &Harness, name: &str) -> Vec<Event> {
    svc.events()
        .await
        .into_iter()
        .filter(|e| e.subject == name && e.r#type == "incidents.incident.escalated")
        .collect()
}

async fn update_zone(
    svc: &mut Harness,
    current: &pb::Incident,
    zone: &str,
) -> Result<pb::Incident, tonic::Status> {
    let request = pb::UpdateIncidentRequest {
        incident: Some(pb::Incident {
            name: current.name.clone(),
            caller_time_zone: zone.to_owned(),
            ..pb::Incident::default()
        }),
        update_mask: Some(prost_types::FieldMask {
            paths: vec!["caller_time_zone".into()],
        }),
        etag: current.etag.clone(),
    };
    let reply = svc.client.update_incident(as_(AGENT, request)).await;
    reply.map(tonic::Response::into_inner)
}

async fn the_caller_time_zone_is_an_iana_zone_stored_and_announced(db: TestDb) {
    let mut svc = start(&db).await;
    let mut sent = incident("Laptop will not boot", 2, 2);
    sent.caller_time_zone = "Mars/Olympus_Mons".into();
    let status = svc
        .client
        .create_incident(as_(AGENT, create_request(sent.clone(), "")))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["incident.caller_time_zone"]);
    assert!(
        status.message().contains("Mars/Olympus_Mons"),
        "{}",
        status.message()
    );
    assert_eq!(svc.count("incidents").await, 0, "nothing written");

    // The tz database's spelling is kept, whatever the case sent.
    sent.caller_time_zone = "europe/paris".into();
    let created = svc
        .client
        .create_incident(as_(AGENT, create_request(sent, "")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.caller_time_zone, "Europe/Paris");
    let read = svc.get(AGENT, &created.name).await.unwrap();
    assert_eq!(read.caller_time_zone, "Europe/Paris");
    let events = svc.events().await;
    let snapshot = payload(&events[0]).incident.unwrap();
    assert_eq!(
        snapshot.caller_time_zone, "Europe/Paris",
        "the SLA service reads it there"
    );

    let status = update_zone(&mut svc, &read, "Europe/Atlantis")
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["incident.caller_time_zone"]);
    let moved = update_zone(&mut svc, &read, "America/New_York")
        .await
        .unwrap();
    assert_eq!(moved.caller_time_zone, "America/New_York");
    assert_eq!(moved.etag, "v2");
    let events = svc.events().await;
    let update = payload(events.last().unwrap());
    assert_eq!(
        update.incident.unwrap().caller_time_zone,
        "America/New_York"
    );
    let change = &update.changes[0];
    assert_eq!(
        (
            change.field.as_str(),
            change.old_value.as_str(),
            change.new_value.as_str()
        ),
        ("caller_time_zone", "Europe/Paris", "America/New_York")
    );
    // Cleared with an empty zone: unknown again.
    let cleared = update_zone(&mut svc, &moved, "").await.unwrap();
    assert_eq!(cleared.caller_time_zone, "");
}

async fn a_breach_escalates_an_open_incident_once_and_notifies_the_manager(db: TestDb) {
    let mut svc = start(&db).await;
    svc.create_managed_group("noc", "maya").await;
    let opened = open_in(&mut svc, "Core switch flapping", "noc").await;
    open_in(&mut svc, "Printer offline", "noc").await;
    let name = opened.name.clone();
    let (bus, consumer) = consumer(&svc);

    let event = breach("e-1", "taskSlas/0191", &name, 0);
    assert_eq!(deliver(&bus, &consumer, &event).await, [Outcome::Applied]);
    let escalated = svc.get(AGENT, &name).await.unwrap();
    assert!(escalated.escalated);
    assert_eq!(escalated.etag, "v2");
    assert_eq!(escalated.watchers, ["maya"]);
    let entry = &escalated.escalations[..];
    assert_eq!(entry.len(), 1);
    assert_eq!(entry[0].task_sla, "taskSlas/0191");
    assert_eq!(entry[0].sla_definition, "slaDefinitions/p2-resolution");
    assert_eq!(entry[0].sla_display_name, "P2 resolution");
    assert_eq!(entry[0].percentage, 100);
    assert_eq!(
        entry[0].time.unwrap().seconds,
        BREACH_AT,
        "the breach instant"
    );
    assert_eq!(entry[0].assignment_group, "noc");
    assert_eq!(entry[0].notified, ["maya"]);

    let events = escalated_events(&svc, &name).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].sequence, 2);
    assert_eq!(
        events[0].actor.as_ref().unwrap().subject,
        "system:sla-escalation"
    );
    let announced = payload(&events[0]);
    assert_eq!(announced.notify, ["maya"]);
    let fields: Vec<&str> = announced.changes.iter().map(|c| c.field.as_str()).collect();
    assert_eq!(fields, ["escalated", "escalations", "watchers"]);
    assert!(announced.incident.unwrap().escalated);

    let request = pb::ListAuditEntriesRequest {
        parent: name.clone(),
        page_size: 0,
        page_token: String::new(),
    };
    let trail = svc
        .client
        .list_audit_entries(as_(AGENT, request))
        .await
        .unwrap()
        .into_inner()
        .entries;
    let audit = trail
        .iter()
        .find(|e| e.action == "escalate")
        .expect("an escalate entry");
    assert_eq!(audit.changes.len(), 3);

    // The same event again, and the same breach under another event id
    // (republished): nothing more.
    let again = deliver(&bus, &consumer, &event).await;
    assert!(!again.contains(&Outcome::Applied), "{again:?}");
    let republished = breach("e-2", "taskSlas/0191", &name, 0);
    assert_eq!(
        deliver(&bus, &consumer, &republished).await,
        [Outcome::Applied]
    );
    let same = svc.get(AGENT, &name).await.unwrap();
    assert_eq!(same.etag, "v2");
    assert_eq!(same.escalations.len(), 1);
    assert_eq!(escalated_events(&svc, &name).await.len(), 1);

    // The list finds escalated incidents.
    let titles = svc.titles(AGENT, "escalated = true", "").await;
    assert_eq!(titles, ["Core switch flapping"]);
    let titles = svc.titles(AGENT, "escalated = false", "").await;
    assert_eq!(titles, ["Printer offline"]);

    // The same clock restarted by its reset condition breaches anew: a new
    // escalation, the manager already watching.
    let rerun = breach("e-3", "taskSlas/0191", &name, 1);
    assert_eq!(deliver(&bus, &consumer, &rerun).await, [Outcome::Applied]);
    let twice = svc.get(AGENT, &name).await.unwrap();
    assert_eq!(twice.escalations.len(), 2);
    assert_eq!(twice.watchers, ["maya"]);
    assert_eq!(
        payload(&escalated_events(&svc, &name).await[1]).notify,
        ["maya"]
    );

    // Resolving ends the escalation; its history stays.
    let resolved = svc.resolve(&name).await.unwrap();
    assert!(!resolved.escalated);
    assert_eq!(resolved.escalations.len(), 2);
    let titles = svc.titles(AGENT, "escalated = true", "").await;
    assert!(titles.is_empty(), "{titles:?}");
}

async fn resolved_canceled_unknown_and_foreign_tickets_are_not_escalated(db: TestDb) {
    let mut svc = start(&db).await;
    svc.create_managed_group("noc", "maya").await;
    let resolved = open_in(&mut svc, "Disk full", "noc").await.name;
    svc.resolve(&resolved).await.unwrap();
    let canceled = open_in(&mut svc, "Duplicate call", "noc").await.name;
    svc.cancel(&canceled, "filed twice").await.unwrap();
    let open = open_in(&mut svc, "VPN slow", "noc").await.name;
    let (bus, consumer) = consumer(&svc);
    let events_before = svc.events().await.len();

    for (id, event) in [
        ("e-1", breach("e-1", "taskSlas/a", &resolved, 0)),
        ("e-2", breach("e-2", "taskSlas/b", &canceled, 0)),
        (
            "e-3",
            breach("e-3", "taskSlas/c", "incidents/INC0099999", 0),
        ),
        ("e-4", breach("e-4", "taskSlas/d", "problems/PRB0000001", 0)),
        // Not a breach: a warning, and the start of a clock.
        (
            "e-5",
            breach_of_type("e-5", "sla.task_sla.warning", "taskSlas/e", &open, 0),
        ),
        (
            "e-6",
            breach_of_type("e-6", "sla.task_sla.started", "taskSlas/e", &open, 0),
        ),
    ] {
        assert_eq!(
            deliver(&bus, &consumer, &event).await,
            [Outcome::Applied],
            "{id} acknowledged"
        );
    }
    assert_eq!(svc.events().await.len(), events_before, "nothing announced");
    for name in [&resolved, &canceled, &open] {
        let incident = svc.get(AGENT, name).await.unwrap();
        assert!(!incident.escalated, "{name}");
        assert!(incident.escalations.is_empty(), "{name}");
        assert!(incident.watchers.is_empty(), "{name}");
    }

    // A breach event whose payload is not a TaskSlaEvent cannot be applied, ever.
    let mut broken = breach("e-7", "taskSlas/f", &open, 0);
    broken.payload = Some(prost_types::Any {
        type_url: "type.googleapis.com/itsm.sla.v1.SlaDefinitionEvent".into(),
        value: Vec::new(),
    });
    assert_eq!(
        deliver(&bus, &consumer, &broken).await,
        [Outcome::DeadLettered]
    );
}

async fn an_identity_outage_still_escalates_without_notifying(db: TestDb) {
    let mut svc = start(&db).await;
    svc.create_managed_group("noc", "maya").await;
    let name = open_in(&mut svc, "Core router down", "noc").await.name;
    let (bus, consumer) = consumer(&svc);
    svc.stop_identity().await;

    let event = breach("e-1", "taskSlas/0191", &name, 0);
    assert_eq!(deliver(&bus, &consumer, &event).await, [Outcome::Applied]);
    let escalated = svc.get(AGENT, &name).await.unwrap();
    assert!(escalated.escalated);
    assert!(escalated.watchers.is_empty());
    assert_eq!(escalated.escalations[0].assignment_group, "noc");
    assert!(escalated.escalations[0].notified.is_empty());
    let events = escalated_events(&svc, &name).await;
    assert_eq!(events.len(), 1);
    assert!(payload(&events[0]).notify.is_empty());
}
