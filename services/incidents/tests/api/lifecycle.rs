//! The lifecycle methods against the transition table: every legal
//! transition, a sample of illegal ones with their precondition details, the
//! fields each transition requires, assignment through the directory, etags.

use itsm_proto::itsm::incidents::v1 as pb;
use itsm_proto::itsm::incidents::v1::IncidentState as S;
use itsm_testkit::{TestDb, backend_tests};
use tonic::Code;

use crate::support::{ADA, AGENT, EVE, as_, bad_fields, payload, precondition, start};

backend_tests!(
    an_incident_walks_every_legal_transition,
    cancel_and_resolve_work_from_every_open_state,
    illegal_transitions_name_the_state_and_what_is_allowed,
    each_transition_names_the_fields_it_requires,
    lifecycle_etags_are_checked_after_the_state,
    requesters_reopen_only_what_they_see,
);

fn state(incident: &pb::Incident) -> S {
    S::try_from(incident.state).unwrap()
}

async fn an_incident_walks_every_legal_transition(db: TestDb) {
    let mut svc = start(&db).await;
    let name = svc.open("VPN drops").await.name;

    let grouped = svc.assign(&name, "desk", "").await.unwrap();
    assert_eq!(state(&grouped), S::New, "a group alone leaves it NEW");
    assert!(grouped.acknowledge_time.is_none());
    let assigned = svc.assign(&name, "", "carl").await.unwrap();
    assert_eq!(state(&assigned), S::InProgress);
    assert_eq!(
        (
            assigned.assignment_group.as_str(),
            assigned.assignee.as_str()
        ),
        ("desk", "carl")
    );
    assert!(assigned.acknowledge_time.is_some());

    let request = pb::HoldIncidentRequest {
        name: name.clone(),
        reason: pb::HoldReason::AwaitingVendor as i32,
        note: "ticket 4711 with the ISP".into(),
        etag: assigned.etag.clone(),
    };
    let held = svc
        .client
        .hold_incident(as_(AGENT, request))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(state(&held), S::OnHold);
    assert_eq!(held.hold_reason, pb::HoldReason::AwaitingVendor as i32);
    let resumed = svc.resume(&name).await.unwrap();
    assert_eq!((state(&resumed), resumed.hold_reason), (S::InProgress, 0));

    let resolved = svc.resolve(&name).await.unwrap();
    assert_eq!(state(&resolved), S::Resolved);
    assert_eq!(resolved.resolution_notes, "restarted the tunnel");
    assert!(resolved.resolve_time.is_some());
    let reopened = svc.reopen(AGENT, &name, "drops again").await.unwrap();
    assert_eq!(
        (state(&reopened), reopened.reopen_count),
        (S::InProgress, 1)
    );
    assert!(reopened.resolve_time.is_none() && reopened.resolution_notes.is_empty());
    svc.resolve(&name).await.unwrap();
    let closed = svc.close(&name).await.unwrap();
    assert_eq!(state(&closed), S::Closed);
    assert!(closed.close_time.is_some());
    assert_eq!(closed.etag, "v9");

    let events = svc.event_types(&name).await;
    let expected = [
        "created",
        "assigned",
        "assigned",
        "state_changed",
        "state_changed",
        "resolved",
        "reopened",
        "resolved",
        "closed",
    ];
    let types: Vec<_> = events
        .iter()
        .map(|(t, _)| t.trim_start_matches("incidents.incident."))
        .collect();
    assert_eq!(types, expected);
    let sequences: Vec<u64> = events.iter().map(|(_, s)| *s).collect();
    assert_eq!(
        sequences,
        (1..=9).collect::<Vec<u64>>(),
        "gap-free per incident"
    );
    // The hold's note is a work note, written with the hold.
    let hold_event = &svc.events().await[3];
    let carried = payload(hold_event);
    assert_eq!(
        carried.journal_entry.unwrap().body,
        "ticket 4711 with the ISP"
    );
    assert!(
        carried
            .changes
            .iter()
            .any(|c| c.field == "state" && c.new_value == "ON_HOLD")
    );
    assert_eq!(
        svc.count("incident_journal").await,
        2,
        "the note and the reopen reason"
    );
}

async fn cancel_and_resolve_work_from_every_open_state(db: TestDb) {
    let mut svc = start(&db).await;
    for end in ["cancel", "resolve"] {
        let new = svc.open("new").await.name;
        let working = svc.open("working").await.name;
        svc.assign(&working, "desk", "dora").await.unwrap();
        let held = svc.open("held").await.name;
        svc.assign(&held, "desk", "dora").await.unwrap();
        svc.hold(&held, pb::HoldReason::AwaitingChange)
            .await
            .unwrap();
        for name in [new, working, held] {
            let done = if end == "cancel" {
                svc.cancel(&name, "raised twice").await.unwrap()
            } else {
                svc.resolve(&name).await.unwrap()
            };
            let wanted = if end == "cancel" {
                S::Canceled
            } else {
                S::Resolved
            };
            assert_eq!(state(&done), wanted, "{name}");
            assert_eq!(done.hold_reason, 0);
        }
    }
}

async fn illegal_transitions_name_the_state_and_what_is_allowed(db: TestDb) {
    let mut svc = start(&db).await;
    let name = svc.open("Disk full").await.name;
    let status = svc
        .hold(&name, pb::HoldReason::AwaitingCaller)
        .await
        .unwrap_err();
    let (kind, subject, description) = precondition(&status);
    assert_eq!((kind.as_str(), subject.as_str()), ("STATE", name.as_str()));
    assert!(
        description.contains(&format!("{name} is NEW")),
        "{description}"
    );
    assert!(
        description.contains("HoldIncident is allowed only from IN_PROGRESS"),
        "{description}"
    );
    assert!(
        description.contains("ResolveIncident (-> RESOLVED)"),
        "{description}"
    );
    let status = svc.resume(&name).await.unwrap_err();
    assert!(
        precondition(&status)
            .2
            .contains("allowed only from ON_HOLD")
    );
    let status = svc.close(&name).await.unwrap_err();
    assert!(
        precondition(&status)
            .2
            .contains("allowed only from RESOLVED")
    );

    svc.resolve(&name).await.unwrap();
    svc.close(&name).await.unwrap();
    let before = svc.count("audit_log").await;
    let status = svc.reopen(AGENT, &name, "again").await.unwrap_err();
    let (_, _, description) = precondition(&status);
    assert!(description.contains("is CLOSED"), "{description}");
    assert!(
        description.contains("nothing, CLOSED is final"),
        "{description}"
    );
    for status in [
        svc.assign(&name, "desk", "carl").await.unwrap_err(),
        svc.cancel(&name, "late").await.unwrap_err(),
        svc.resolve(&name).await.unwrap_err(),
    ] {
        assert!(precondition(&status).2.contains("is CLOSED"));
    }
    assert_eq!(svc.count("audit_log").await, before, "nothing written");
    assert_eq!(svc.get(AGENT, &name).await.unwrap().etag, "v3");
}

async fn each_transition_names_the_fields_it_requires(db: TestDb) {
    let mut svc = start(&db).await;
    let name = svc.open("Mail slow").await.name;
    let status = svc.assign(&name, "", "").await.unwrap_err();
    assert_eq!(bad_fields(&status), ["assignment_group"]);
    svc.assign(&name, "desk", "carl").await.unwrap();

    let status = svc
        .hold(&name, pb::HoldReason::Unspecified)
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["reason"]);
    assert!(
        status
            .message()
            .contains("HoldIncident (IN_PROGRESS -> ON_HOLD)"),
        "{}",
        status.message()
    );
    let request = pb::HoldIncidentRequest {
        name: name.clone(),
        reason: 9,
        ..Default::default()
    };
    let status = svc
        .client
        .hold_incident(as_(AGENT, request))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["reason"]);
    assert!(
        status.message().contains("unknown value 9"),
        "{}",
        status.message()
    );

    let request = pb::ResolveIncidentRequest {
        name: name.clone(),
        ..Default::default()
    };
    let status = svc
        .client
        .resolve_incident(as_(AGENT, request))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["resolution_code", "resolution_notes"]);
    let status = svc.cancel(&name, "  ").await.unwrap_err();
    assert_eq!(bad_fields(&status), ["reason"]);
    svc.resolve(&name).await.unwrap();
    let status = svc.reopen(AGENT, &name, "").await.unwrap_err();
    assert_eq!(bad_fields(&status), ["reason"]);
    let status = svc.reopen(AGENT, "incidents/42", "x").await.unwrap_err();
    assert_eq!(bad_fields(&status), ["name"]);
    let status = svc
        .reopen(AGENT, "incidents/INC0000099", "x")
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
}

async fn lifecycle_etags_are_checked_after_the_state(db: TestDb) {
    let mut svc = start(&db).await;
    let created = svc.open("Teams crashes").await;
    let assigned = svc.assign(&created.name, "desk", "carl").await.unwrap();
    let stale = pb::ResolveIncidentRequest {
        name: created.name.clone(),
        resolution_code: 1,
        resolution_notes: "reinstalled".into(),
        etag: created.etag.clone(),
    };
    let status = svc
        .client
        .resolve_incident(as_(AGENT, stale.clone()))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Aborted, "{status:?}");
    let fresh = pb::ResolveIncidentRequest {
        etag: assigned.etag,
        ..stale.clone()
    };
    svc.client
        .resolve_incident(as_(AGENT, fresh))
        .await
        .unwrap();
    // The state speaks first: resolving again is refused for the state, not the etag.
    let status = svc
        .client
        .resolve_incident(as_(AGENT, stale))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
}

async fn requesters_reopen_only_what_they_see(db: TestDb) {
    let mut svc = start(&db).await;
    let name = svc.open("Printer").await.name;
    svc.resolve(&name).await.unwrap();
    let status = svc.reopen(EVE, &name, "not me").await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    let reopened = svc.reopen(ADA, &name, "still jammed").await.unwrap();
    assert_eq!(reopened.reopen_count, 1);
    let audit: Vec<(String, String)> = sqlx::query_as(
        "SELECT action, actor_subject FROM audit_log WHERE resource = $1 ORDER BY id",
    )
    .bind(&name)
    .fetch_all(svc.db.pool())
    .await
    .unwrap();
    assert_eq!(
        audit.last().unwrap(),
        &("reopen".to_owned(), "ada".to_owned())
    );
}
