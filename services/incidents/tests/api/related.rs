//! Watchers, links, and the trail every change leaves: a field-level audit
//! entry and an event, in the change's transaction.

use itsm_proto::itsm::common::v1::LinkType;
use itsm_proto::itsm::incidents::v1 as pb;
use itsm_testkit::{TestDb, backend_tests};
use prost_types::FieldMask;
use tonic::Code;

use crate::support::{ADA, AGENT, PROBLEM_MANAGER, as_, bad_fields, payload, start};

backend_tests!(
    watchers_and_links_are_added_once_and_removed,
    every_change_leaves_an_audit_entry_and_an_event,
);

async fn watchers_and_links_are_added_once_and_removed(db: TestDb) {
    let mut svc = start(&db).await;
    let name = svc.open("Outage").await.name;
    for _ in 0..2 {
        let request = pb::AddWatcherRequest {
            name: name.clone(),
            watcher: "zed".into(),
        };
        svc.client
            .add_watcher(as_(PROBLEM_MANAGER, request))
            .await
            .unwrap();
    }
    let link = |target: &str, link_type: LinkType| pb::AddLinkRequest {
        name: name.clone(),
        r#type: link_type as i32,
        target: target.to_owned(),
    };
    svc.client
        .add_link(as_(
            PROBLEM_MANAGER,
            link("problems/PRB0000042", LinkType::Problem),
        ))
        .await
        .unwrap();
    let read = svc
        .client
        .add_link(as_(AGENT, link("problems/PRB0000042", LinkType::Problem)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(read.watchers, ["zed"]);
    assert_eq!(read.links.len(), 1);
    assert_eq!(read.links[0].target, "problems/PRB0000042");
    assert_eq!(read.links[0].created_by.as_ref().unwrap().subject, "pam");
    assert_eq!(read.etag, "v3", "repeats change nothing");

    let status = svc
        .client
        .add_link(as_(AGENT, link("changes/CHG0000001", LinkType::Problem)))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["target"]);
    let status = svc
        .client
        .add_link(as_(AGENT, link(&name, LinkType::DuplicateOf)))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["target"]);
    let status = svc
        .client
        .add_link(as_(ADA, link("cis/1", LinkType::AffectedCi)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");

    let request = pb::RemoveLinkRequest {
        name: name.clone(),
        r#type: LinkType::Problem as i32,
        target: "problems/PRB0000042".into(),
    };
    let read = svc
        .client
        .remove_link(as_(AGENT, request))
        .await
        .unwrap()
        .into_inner();
    assert!(read.links.is_empty());
    let request = pb::RemoveWatcherRequest {
        name: name.clone(),
        watcher: "zed".into(),
    };
    let read = svc
        .client
        .remove_watcher(as_(AGENT, request))
        .await
        .unwrap()
        .into_inner();
    assert!(read.watchers.is_empty());
    assert_eq!(read.etag, "v5");
    assert_eq!(
        (
            svc.count("incident_links").await,
            svc.count("incident_watchers").await
        ),
        (0, 0)
    );
}

async fn every_change_leaves_an_audit_entry_and_an_event(db: TestDb) {
    let mut svc = start(&db).await;
    let created = svc.open("Disk full").await;
    let name = created.name.clone();
    let mut changed = created.clone();
    changed.urgency = 1;
    let request = pb::UpdateIncidentRequest {
        incident: Some(changed),
        update_mask: Some(FieldMask {
            paths: vec!["urgency".into()],
        }),
        etag: created.etag.clone(),
    };
    svc.client
        .update_incident(as_(AGENT, request))
        .await
        .unwrap();
    svc.assign(&name, "desk", "carl").await.unwrap();
    let request = pb::AddWatcherRequest {
        name: name.clone(),
        watcher: "ada".into(),
    };
    svc.client.add_watcher(as_(AGENT, request)).await.unwrap();
    svc.resolve(&name).await.unwrap();

    let mut entries = Vec::new();
    let mut token = String::new();
    loop {
        let request = pb::ListAuditEntriesRequest {
            parent: name.clone(),
            page_size: 2,
            page_token: token.clone(),
        };
        let page = svc
            .client
            .list_audit_entries(as_(AGENT, request))
            .await
            .unwrap()
            .into_inner();
        entries.extend(page.entries);
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    let actions: Vec<&str> = entries.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        ["create", "update", "assign", "add_watcher", "resolve"]
    );
    assert!(
        entries
            .iter()
            .all(|e| e.actor.as_ref().unwrap().subject == "bob")
    );
    assert!(
        entries.iter().all(|e| !e.request_id.is_empty()),
        "x-request-id kept"
    );
    assert_eq!(entries[0].name, format!("{name}/audit/1"));
    let changes = |i: usize| -> Vec<(String, String, String)> {
        entries[i]
            .changes
            .iter()
            .map(|c| (c.field.clone(), c.old_value.clone(), c.new_value.clone()))
            .collect()
    };
    let triple = |f: &str, o: &str, n: &str| (f.to_owned(), o.to_owned(), n.to_owned());
    assert_eq!(
        changes(1),
        [
            triple("urgency", "MEDIUM", "HIGH"),
            triple("priority", "MODERATE", "HIGH")
        ]
    );
    assert_eq!(
        changes(2),
        [
            triple("state", "NEW", "IN_PROGRESS"),
            triple("assignment_group", "", "desk"),
            triple("assignee", "", "carl"),
            triple("acknowledge_time", "", &changes(2)[3].2),
        ]
    );
    assert_eq!(changes(3), [triple("watchers", "", "ada")]);
    assert!(changes(4).contains(&triple("resolution_notes", "", "restarted the tunnel")));
    assert!(changes(4).contains(&triple("first_contact_resolution", "", "true")));

    let events = svc.events().await;
    assert_eq!(events.len(), 5);
    for (i, event) in events.iter().enumerate() {
        assert_eq!(
            (event.subject.as_str(), event.source.as_str()),
            (name.as_str(), "itsm.incidents")
        );
        assert_eq!(event.sequence, i as u64 + 1);
        assert_eq!(event.actor.as_ref().unwrap().subject, "bob");
        let carried = payload(event);
        let incident = carried.incident.unwrap();
        assert_eq!(
            incident.etag,
            format!("v{}", i + 1),
            "the incident after the change"
        );
        let audited: Vec<_> = entries[i].changes.iter().map(|c| c.field.clone()).collect();
        let published: Vec<_> = carried.changes.iter().map(|c| c.field.clone()).collect();
        assert_eq!(audited, published);
    }
    let streams: Vec<(String,)> = sqlx::query_as("SELECT DISTINCT stream FROM outbox")
        .fetch_all(svc.db.pool())
        .await
        .unwrap();
    assert_eq!(streams, [("incidents".to_owned(),)]);

    let request = pb::ListAuditEntriesRequest {
        parent: "incidents/INC0000404".into(),
        ..Default::default()
    };
    let status = svc
        .client
        .list_audit_entries(as_(AGENT, request))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
}
