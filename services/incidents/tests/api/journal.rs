//! The journal: work notes hidden from requesters, requesters commenting
//! only on incidents they see, retried adds, and the caller's reply that
//! resumes an incident awaiting the caller.

use itsm_proto::itsm::common::v1::JournalKind;
use itsm_proto::itsm::incidents::v1 as pb;
use itsm_proto::itsm::incidents::v1::IncidentState as S;
use itsm_testkit::{TestDb, backend_tests};
use tonic::Code;

use crate::support::{ADA, AGENT, EVE, Harness, as_, bad_fields, payload, start};

backend_tests!(
    work_notes_are_hidden_from_requesters,
    a_retried_entry_is_written_once,
    the_callers_reply_resumes_an_incident_awaiting_the_caller,
);

async fn add(
    svc: &mut Harness,
    who: &str,
    parent: &str,
    kind: JournalKind,
    body: &str,
    request_id: &str,
) -> Result<itsm_proto::itsm::common::v1::JournalEntry, tonic::Status> {
    let request = pb::AddJournalEntryRequest {
        parent: parent.to_owned(),
        kind: kind as i32,
        body: body.to_owned(),
        request_id: request_id.to_owned(),
    };
    svc.client
        .add_journal_entry(as_(who, request))
        .await
        .map(tonic::Response::into_inner)
}

async fn bodies(svc: &mut Harness, who: &str, parent: &str, filter: &str) -> Vec<String> {
    let request = pb::ListJournalEntriesRequest {
        parent: parent.to_owned(),
        filter: filter.to_owned(),
        ..Default::default()
    };
    let reply = svc
        .client
        .list_journal_entries(as_(who, request))
        .await
        .unwrap();
    reply
        .into_inner()
        .entries
        .into_iter()
        .map(|e| e.body)
        .collect()
}

async fn work_notes_are_hidden_from_requesters(db: TestDb) {
    let mut svc = start(&db).await;
    let name = svc.open("VPN").await.name;
    let note = add(
        &mut svc,
        AGENT,
        &name,
        JournalKind::WorkNote,
        "suspect the ISP",
        "",
    )
    .await
    .unwrap();
    assert_eq!(note.name, format!("{name}/journal/1"));
    assert_eq!(note.author.unwrap().subject, "bob");
    add(
        &mut svc,
        AGENT,
        &name,
        JournalKind::Comment,
        "we are on it",
        "",
    )
    .await
    .unwrap();
    add(&mut svc, ADA, &name, JournalKind::Comment, "thanks", "")
        .await
        .unwrap();

    assert_eq!(
        bodies(&mut svc, AGENT, &name, "").await,
        ["suspect the ISP", "we are on it", "thanks"]
    );
    assert_eq!(
        bodies(&mut svc, AGENT, &name, "kind = WORK_NOTE").await,
        ["suspect the ISP"]
    );
    assert_eq!(
        bodies(&mut svc, ADA, &name, "").await,
        ["we are on it", "thanks"]
    );
    assert!(
        bodies(&mut svc, ADA, &name, "kind = WORK_NOTE")
            .await
            .is_empty()
    );

    let status = add(&mut svc, ADA, &name, JournalKind::WorkNote, "sneaky", "")
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    let status = add(&mut svc, EVE, &name, JournalKind::Comment, "me too", "")
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    let request = pb::ListJournalEntriesRequest {
        parent: name.clone(),
        ..Default::default()
    };
    let status = svc
        .client
        .list_journal_entries(as_(EVE, request))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    let status = add(&mut svc, AGENT, &name, JournalKind::Unspecified, " ", "")
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["kind", "body"]);

    assert_eq!(svc.count("incident_journal").await, 3);
    let events = svc.events().await;
    let commented: Vec<_> = events
        .iter()
        .filter(|e| e.r#type == "incidents.incident.commented")
        .map(|e| payload(e).journal_entry.unwrap().kind)
        .collect();
    assert_eq!(commented, [1, 2, 2]);
    assert_eq!(
        svc.get(AGENT, &name).await.unwrap().etag,
        "v4",
        "each entry is a change"
    );
}

async fn a_retried_entry_is_written_once(db: TestDb) {
    let mut svc = start(&db).await;
    let name = svc.open("Mail").await.name;
    let id = "0d5c5b2e-3f1a-4f0e-8d6b-9a7c6e5d4c3b";
    let first = add(
        &mut svc,
        AGENT,
        &name,
        JournalKind::Comment,
        "restarting",
        id,
    )
    .await
    .unwrap();
    let again = add(
        &mut svc,
        AGENT,
        &name,
        JournalKind::Comment,
        "restarting",
        id,
    )
    .await
    .unwrap();
    assert_eq!(first, again);
    assert_eq!(svc.count("incident_journal").await, 1);
    let status = add(&mut svc, AGENT, &name, JournalKind::Comment, "other", id)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists, "{status:?}");
}

async fn the_callers_reply_resumes_an_incident_awaiting_the_caller(db: TestDb) {
    let mut svc = start(&db).await;
    let name = svc.open("Printer").await.name;
    svc.assign(&name, "desk", "carl").await.unwrap();
    svc.hold(&name, pb::HoldReason::AwaitingCaller)
        .await
        .unwrap();

    // Others' comments and the caller's work are not a reply.
    add(
        &mut svc,
        AGENT,
        &name,
        JournalKind::Comment,
        "which model?",
        "",
    )
    .await
    .unwrap();
    let read = svc.get(AGENT, &name).await.unwrap();
    assert_eq!(read.state, S::OnHold as i32);

    add(&mut svc, ADA, &name, JournalKind::Comment, "HP 4050", "")
        .await
        .unwrap();
    let read = svc.get(AGENT, &name).await.unwrap();
    assert_eq!((read.state, read.hold_reason), (S::InProgress as i32, 0));
    let events = svc.events().await;
    let reply = events.last().unwrap();
    assert_eq!(reply.r#type, "incidents.incident.commented");
    assert_eq!(reply.actor.as_ref().unwrap().subject, "ada");
    let changes: Vec<(String, String)> = payload(reply)
        .changes
        .into_iter()
        .map(|c| (c.field, c.new_value))
        .collect();
    assert_eq!(
        changes,
        [
            ("comments".to_owned(), "HP 4050".to_owned()),
            ("state".to_owned(), "IN_PROGRESS".to_owned()),
            ("hold_reason".to_owned(), String::new()),
        ]
    );

    // Waiting on a vendor, the caller's comment changes nothing.
    svc.hold(&name, pb::HoldReason::AwaitingVendor)
        .await
        .unwrap();
    add(&mut svc, ADA, &name, JournalKind::Comment, "any news?", "")
        .await
        .unwrap();
    assert_eq!(svc.get(AGENT, &name).await.unwrap().state, S::OnHold as i32);
}
