//! One group's life: open, repeats, resolve, refire; final incidents
//! followed by new linked ones; invalid alerts rejected alone.

use itsm_proto::itsm::common::v1 as common;
use itsm_proto::itsm::incidents::v1 as pb;
use itsm_proto::itsm::incidents::v1::AlertOutcome::{
    Deduplicated, Opened, Rejected, Reopened, Resolved,
};
use itsm_testkit::{TestDb, backend_tests};
use tonic::Code;

use crate::helpers::{
    MONITORING, firing, group, group_events, ingest, last_group_event, one, outcomes, resolved,
};
use crate::support::{ADA, ADMIN, AGENT, as_, bad_fields, start};

backend_tests!(
    a_firing_alert_opens_a_group_and_an_incident,
    repeats_are_counted_and_the_clear_resolves,
    a_refire_reopens_a_resolved_incident,
    a_refire_after_a_final_incident_opens_a_linked_one,
    one_batch_plays_a_group_in_order,
    invalid_alerts_are_rejected_and_the_others_applied,
    only_monitoring_ingests_and_batches_are_bounded,
    alert_incidents_follow_the_assignment_rules,
);

const FP: &str = "c4ca4238a0b92382";

async fn a_firing_alert_opens_a_group_and_an_incident(db: TestDb) {
    let mut svc = start(&db).await;
    let results = ingest(&mut svc, vec![firing(FP, "web-01 is down")]).await;
    assert_eq!(outcomes(&results), [Opened]);
    let result = &results[0];
    assert_eq!(
        (result.fingerprint.as_str(), result.alert_group.as_str()),
        (FP, "alertGroups/c4ca4238a0b92382")
    );
    assert_eq!(result.incident, "incidents/INC0000001");

    let incident = svc.get(AGENT, &result.incident).await.unwrap();
    assert_eq!(incident.title, "web-01 is down");
    assert!(
        incident
            .description
            .starts_with("The node exporter stopped answering.")
    );
    assert!(incident.description.contains("Node: web-01:9100"));
    assert_eq!(incident.channel, pb::Channel::Monitoring as i32);
    assert_eq!(incident.caller, "svc-monitoring");
    assert_eq!(incident.created_by.unwrap().subject, "svc-monitoring");
    assert_eq!(
        (incident.impact, incident.urgency, incident.priority),
        (1, 1, common::Priority::Critical as i32),
        "CRITICAL is HIGH x HIGH"
    );
    assert_eq!(incident.alert_group, result.alert_group);
    assert_eq!(incident.labels.get("team").map(String::as_str), Some("ops"));
    assert_eq!(incident.state, pb::IncidentState::New as i32);

    let group = group(&mut svc, FP).await;
    assert_eq!(group.status, pb::AlertStatus::Firing as i32);
    assert_eq!((group.occurrence_count, group.flap_count), (1, 0));
    assert!(!group.flapping);
    assert_eq!(group.incident, "incidents/INC0000001");
    assert_eq!(group.last_alert.unwrap().summary, "web-01 is down");
    assert_eq!(group.first_seen_time, group.last_seen_time);
    assert_eq!(
        group_events(&svc, FP).await,
        ["incidents.alert_group.opened"]
    );
    let created = svc.event_types("incidents/INC0000001").await;
    assert_eq!(created, [("incidents.incident.created".to_owned(), 1)]);

    // A requester never sees the monitoring account's incident.
    let status = svc.get(ADA, &result.incident).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
}

async fn repeats_are_counted_and_the_clear_resolves(db: TestDb) {
    let mut svc = start(&db).await;
    let (_, name) = one(&mut svc, firing(FP, "web-01 is down")).await;
    let etag = svc.get(AGENT, &name).await.unwrap().etag;
    let repeats = ingest(&mut svc, vec![firing(FP, "web-01 is down"); 8]).await;
    assert_eq!(outcomes(&repeats), [Deduplicated; 8]);
    assert!(repeats.iter().all(|r| r.incident == name));
    assert_eq!(svc.get(AGENT, &name).await.unwrap().etag, etag, "untouched");
    assert_eq!(group(&mut svc, FP).await.occurrence_count, 9);
    assert_eq!(group_events(&svc, FP).await.len(), 1, "no event per repeat");

    // The tenth alert crosses a power of ten: one `deduplicated` event.
    let repeats = ingest(&mut svc, vec![firing(FP, "web-01 is down"); 5]).await;
    assert_eq!(outcomes(&repeats), [Deduplicated; 5]);
    assert_eq!(
        group_events(&svc, FP).await,
        [
            "incidents.alert_group.opened",
            "incidents.alert_group.deduplicated"
        ]
    );
    assert_eq!(last_group_event(&svc, FP).await.occurrence_count, 14);

    assert_eq!(
        one(&mut svc, resolved(FP, "web-01 is down")).await,
        (Resolved, name.clone())
    );
    let incident = svc.get(AGENT, &name).await.unwrap();
    assert_eq!(incident.state, pb::IncidentState::Resolved as i32);
    assert_eq!(
        incident.resolution_code,
        pb::ResolutionCode::AlertCleared as i32
    );
    assert!(
        incident.resolution_notes.contains("web-01 is down")
            && incident
                .resolution_notes
                .contains("alertGroups/c4ca4238a0b92382"),
        "{}",
        incident.resolution_notes
    );
    let group = group(&mut svc, FP).await;
    assert_eq!(group.status, pb::AlertStatus::Resolved as i32);
    assert_eq!(group.occurrence_count, 15);

    // A repeated clear changes nothing more.
    let etag = incident.etag;
    assert_eq!(
        one(&mut svc, resolved(FP, "web-01 is down")).await.0,
        Deduplicated
    );
    assert_eq!(svc.get(AGENT, &name).await.unwrap().etag, etag);
    let types = svc.event_names(&name).await;
    assert_eq!(
        types,
        ["incidents.incident.created", "incidents.incident.resolved"]
    );
    let resolve = svc
        .events()
        .await
        .into_iter()
        .rev()
        .find(|e| e.subject == name);
    assert_eq!(resolve.unwrap().actor.unwrap().subject, "svc-monitoring");
}

async fn a_refire_reopens_a_resolved_incident(db: TestDb) {
    let mut svc = start(&db).await;
    let (_, name) = one(&mut svc, firing(FP, "disk full")).await;
    one(&mut svc, resolved(FP, "disk full")).await;
    assert_eq!(
        one(&mut svc, firing(FP, "disk full")).await,
        (Reopened, name.clone())
    );
    let incident = svc.get(AGENT, &name).await.unwrap();
    assert_eq!(incident.state, pb::IncidentState::InProgress as i32);
    assert_eq!(incident.reopen_count, 1);
    let group = group(&mut svc, FP).await;
    assert_eq!((group.occurrence_count, group.flap_count), (3, 1));
    assert!(!group.flapping, "one refire is not flapping");
    assert_eq!(
        group_events(&svc, FP).await,
        [
            "incidents.alert_group.opened",
            "incidents.alert_group.resolved",
            "incidents.alert_group.opened"
        ]
    );
    let last = svc.event_types(&name).await.pop().unwrap();
    assert_eq!(last, ("incidents.incident.reopened".to_owned(), 3));
    assert_eq!(svc.count("incidents").await, 1);
}

async fn a_refire_after_a_final_incident_opens_a_linked_one(db: TestDb) {
    let mut svc = start(&db).await;
    // Resolved by the alert, then closed: final.
    let (_, first) = one(&mut svc, firing(FP, "disk full")).await;
    one(&mut svc, resolved(FP, "disk full")).await;
    svc.close(&first).await.unwrap();
    let (outcome, second) = one(&mut svc, firing(FP, "disk full")).await;
    assert_eq!(outcome, Opened);
    assert_ne!(second, first);
    let incident = svc.get(AGENT, &second).await.unwrap();
    let links: Vec<_> = incident
        .links
        .iter()
        .map(|l| (l.r#type, l.target.as_str()))
        .collect();
    assert_eq!(links, [(common::LinkType::Related as i32, first.as_str())]);
    assert_eq!(group(&mut svc, FP).await.incident, second);

    // Canceled while firing: the clear leaves it be, the refire opens anew.
    svc.cancel(&second, "monitoring noise").await.unwrap();
    let etag = svc.get(AGENT, &second).await.unwrap().etag;
    assert_eq!(
        one(&mut svc, resolved(FP, "disk full")).await,
        (Resolved, second.clone())
    );
    assert_eq!(svc.get(AGENT, &second).await.unwrap().etag, etag);
    let (outcome, third) = one(&mut svc, firing(FP, "disk full")).await;
    assert_eq!(outcome, Opened);
    let incident = svc.get(AGENT, &third).await.unwrap();
    assert_eq!(incident.links[0].target, second);
    assert_eq!(svc.count("incidents").await, 3);
    assert_eq!(group(&mut svc, FP).await.flap_count, 2);
}

async fn one_batch_plays_a_group_in_order(db: TestDb) {
    let mut svc = start(&db).await;
    let batch = vec![
        resolved(FP, "cpu hot"),
        firing(FP, "cpu hot"),
        firing(FP, "cpu hot"),
        resolved(FP, "cpu hot"),
        firing(FP, "cpu hot"),
    ];
    let results = ingest(&mut svc, batch).await;
    assert_eq!(
        outcomes(&results),
        [Rejected, Opened, Deduplicated, Resolved, Reopened]
    );
    assert!(
        results[0].error.contains("nothing to resolve"),
        "{results:?}"
    );
    let incident = svc.get(AGENT, &results[1].incident).await.unwrap();
    assert_eq!(incident.reopen_count, 1);
    let group = group(&mut svc, FP).await;
    assert_eq!((group.occurrence_count, group.flap_count), (4, 1));
}

async fn invalid_alerts_are_rejected_and_the_others_applied(db: TestDb) {
    let mut svc = start(&db).await;
    let no_summary = pb::Alert {
        summary: "  ".into(),
        ..firing("aaaa", "")
    };
    let bad_status = pb::Alert {
        status: 7,
        ..firing("bbbb", "x")
    };
    let keyless = pb::Alert {
        summary: "who knows".into(),
        status: pb::AlertStatus::Firing as i32,
        ..pb::Alert::default()
    };
    let derived = pb::Alert {
        fingerprint: String::new(),
        ..firing("", "derived key")
    };
    let batch = vec![
        firing("good-1", "ok"),
        no_summary,
        bad_status,
        keyless,
        derived.clone(),
        firing("bad/key", "slash"),
        derived,
    ];
    let results = ingest(&mut svc, batch).await;
    assert_eq!(
        outcomes(&results),
        [
            Opened,
            Rejected,
            Rejected,
            Rejected,
            Opened,
            Rejected,
            Deduplicated
        ]
    );
    assert!(
        results[1].error.starts_with("summary: is required"),
        "{results:?}"
    );
    assert_eq!(results[1].fingerprint, "aaaa");
    assert!(results[2].error.contains("status: unknown value 7"));
    assert!(results[3].error.contains("fingerprint: is required"));
    assert!(results[5].error.starts_with("fingerprint: must be"));
    assert!(
        results
            .iter()
            .filter(|r| r.outcome == Rejected as i32)
            .all(|r| r.incident.is_empty())
    );
    let key = &results[4].fingerprint;
    assert_eq!(key.len(), 64, "SHA-256 of source, node, resource, metric");
    assert_eq!(&results[6].fingerprint, key);
    assert_eq!(svc.count("incidents").await, 2);
    assert_eq!(svc.count("alert_groups").await, 2);
}

async fn only_monitoring_ingests_and_batches_are_bounded(db: TestDb) {
    let mut svc = start(&db).await;
    let request = pb::IngestAlertsRequest {
        alerts: vec![firing(FP, "x")],
    };
    let status = svc
        .client
        .ingest_alerts(as_(AGENT, request))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    let request = pb::IngestAlertsRequest {
        alerts: vec![firing(FP, "x"); 1_001],
    };
    let status = svc
        .client
        .ingest_alerts(as_(MONITORING, request))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["alerts"]);
    assert!(ingest(&mut svc, Vec::new()).await.is_empty());
    assert_eq!(svc.count("alert_groups").await, 0);
}

async fn alert_incidents_follow_the_assignment_rules(db: TestDb) {
    let mut svc = start(&db).await;
    let rule = pb::AssignmentRule {
        order: 1,
        condition: r#"title:"disk""#.into(),
        assignment_group: "network".into(),
        strategy: pb::AssignmentStrategy::GroupOnly as i32,
        enabled: true,
        ..pb::AssignmentRule::default()
    };
    let request = pb::CreateAssignmentRuleRequest {
        rule: Some(rule),
        request_id: String::new(),
    };
    svc.client
        .create_assignment_rule(as_(ADMIN, request))
        .await
        .unwrap();
    let (_, disk) = one(&mut svc, firing("disk", "disk full on db-01")).await;
    let (_, cpu) = one(&mut svc, firing("cpu", "cpu hot on db-01")).await;
    let disk = svc.get(AGENT, &disk).await.unwrap();
    assert_eq!(disk.assignment_group, "network");
    assert_eq!(svc.get(AGENT, &cpu).await.unwrap().assignment_group, "");
}
