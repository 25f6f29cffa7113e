//! UpdateIncident: the mask, the etag (stale is ABORTED, concurrent writers
//! queue and one wins), the priority recomputed, and what each writes.

use itsm_proto::itsm::common::v1::Priority;
use itsm_proto::itsm::incidents::v1 as pb;
use itsm_testkit::{TestDb, backend_tests};
use prost_types::FieldMask;
use tokio::task::JoinSet;
use tonic::Code;

use crate::support::{AGENT, as_, bad_fields, payload, precondition, start};

backend_tests!(
    masked_fields_change_and_impact_recomputes_priority,
    stale_or_missing_etags_are_refused,
    of_concurrent_updates_with_one_etag_exactly_one_wins,
    final_incidents_cannot_be_updated,
);

fn update(incident: pb::Incident, paths: &[&str], etag: &str) -> pb::UpdateIncidentRequest {
    pb::UpdateIncidentRequest {
        incident: Some(incident),
        update_mask: Some(FieldMask {
            paths: paths.iter().map(|p| (*p).to_owned()).collect(),
        }),
        etag: etag.to_owned(),
    }
}

async fn masked_fields_change_and_impact_recomputes_priority(db: TestDb) {
    let mut svc = start(&db).await;
    let created = svc.open("VPN slow").await;
    assert_eq!(created.priority, Priority::Moderate as i32);
    let mut changed = created.clone();
    changed.title = "VPN down for the whole floor".into();
    changed.description = "not in the mask".into();
    changed.impact = 1;
    changed.service = "cis/vpn".into();
    let request = update(changed, &["title", "impact", "service"], &created.etag);
    let updated = svc
        .client
        .update_incident(as_(AGENT, request))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.title, "VPN down for the whole floor");
    assert_eq!(updated.description, "");
    assert_eq!(updated.priority, Priority::High as i32);
    assert_eq!(updated.service, "cis/vpn");
    assert_eq!(updated.etag, "v2");

    let mut retitled = updated.clone();
    retitled.title = "VPN down (floor 3)".into();
    let request = update(retitled, &["title"], &updated.etag);
    svc.client
        .update_incident(as_(AGENT, request))
        .await
        .unwrap();

    let events = svc.events().await;
    let types: Vec<&str> = events.iter().map(|e| e.r#type.as_str()).collect();
    assert_eq!(
        types,
        [
            "incidents.incident.created",
            "incidents.incident.priority_changed",
            "incidents.incident.updated"
        ]
    );
    let changes: Vec<(String, String, String)> = payload(&events[1])
        .changes
        .into_iter()
        .map(|c| (c.field, c.old_value, c.new_value))
        .collect();
    let expected = [
        ("title", "VPN slow", "VPN down for the whole floor"),
        ("impact", "MEDIUM", "HIGH"),
        ("priority", "MODERATE", "HIGH"),
        ("service", "", "cis/vpn"),
    ]
    .map(|(f, o, n)| (f.to_owned(), o.to_owned(), n.to_owned()));
    assert_eq!(changes, expected);

    let mut bad = updated;
    bad.urgency = 8;
    let request = update(bad, &["urgency", "state", "assignee"], "v3");
    let status = svc
        .client
        .update_incident(as_(AGENT, request))
        .await
        .unwrap_err();
    assert_eq!(
        bad_fields(&status),
        [
            "update_mask.paths[1]",
            "update_mask.paths[2]",
            "incident.urgency"
        ]
    );
}

async fn stale_or_missing_etags_are_refused(db: TestDb) {
    let mut svc = start(&db).await;
    let created = svc.open("Laptop").await;
    let mut changed = created.clone();
    changed.category = "hardware".into();
    let status = svc
        .client
        .update_incident(as_(AGENT, update(changed.clone(), &["category"], "")))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["etag"]);
    svc.client
        .update_incident(as_(AGENT, update(changed.clone(), &["category"], "v1")))
        .await
        .unwrap();
    let status = svc
        .client
        .update_incident(as_(AGENT, update(changed, &["category"], "v1")))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Aborted, "{status:?}");
    assert_eq!(svc.count("outbox").await, 2);
}

async fn of_concurrent_updates_with_one_etag_exactly_one_wins(db: TestDb) {
    let svc = start(&db).await;
    let mut client = svc.client().await;
    let created = client
        .create_incident(as_(
            AGENT,
            crate::support::create_request(crate::support::incident("Race", 2, 2), ""),
        ))
        .await
        .unwrap()
        .into_inner();
    let mut tasks = JoinSet::new();
    for i in 0..8 {
        let mut client = svc.client().await;
        let mut changed = created.clone();
        changed.title = format!("writer {i}");
        let request = update(changed, &["title"], &created.etag);
        tasks.spawn(async move { client.update_incident(as_(AGENT, request)).await });
    }
    let results = tasks.join_all().await;
    let won: Vec<_> = results.iter().filter(|r| r.is_ok()).collect();
    assert_eq!(won.len(), 1, "{results:?}");
    for lost in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!(lost.code(), Code::Aborted, "{lost:?}");
    }
    let winner = won[0].as_ref().unwrap().get_ref().title.clone();
    let mut client = svc.client().await;
    let read = client
        .get_incident(as_(AGENT, pb::GetIncidentRequest { name: created.name }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((read.title, read.etag.as_str()), (winner, "v2"));
}

async fn final_incidents_cannot_be_updated(db: TestDb) {
    let mut svc = start(&db).await;
    let created = svc.open("Old").await;
    let canceled = svc.cancel(&created.name, "duplicate").await.unwrap();
    let mut changed = canceled.clone();
    changed.title = "New".into();
    let status = svc
        .client
        .update_incident(as_(AGENT, update(changed, &["title"], &canceled.etag)))
        .await
        .unwrap_err();
    assert!(precondition(&status).2.contains("is CANCELED"));
}
