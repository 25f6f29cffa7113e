//! Major incidents: promotion and demotion by hand, with a reason, its own
//! permission and the etag; trigger rules (created, listed and deleted by
//! admins, their condition in the list filter language) that propose or
//! promote when they match.

use itsm_proto::itsm::incidents::v1 as pb;
use itsm_proto::itsm::incidents::v1::MajorState as M;
use itsm_testkit::{TestDb, backend_tests};
use tonic::{Code, Status};

use crate::calls::{open_with, set_parent};
use crate::support::{ADA, ADMIN, AGENT, Harness, as_, bad_fields, payload, precondition, start};

backend_tests!(
    promotion_and_demotion_take_a_reason_and_record_who_and_when,
    rules_are_created_listed_and_deleted_by_admins,
    a_priority_rule_promotes_a_critical_parent,
    three_children_within_ten_minutes_propose_the_parent,
);

async fn promote(
    svc: &mut Harness,
    who: &str,
    name: &str,
    reason: &str,
    etag: &str,
) -> Result<pb::Incident, Status> {
    let request = pb::PromoteMajorIncidentRequest {
        name: name.to_owned(),
        reason: reason.to_owned(),
        etag: etag.to_owned(),
    };
    let reply = svc.client.promote_major_incident(as_(who, request)).await;
    reply.map(tonic::Response::into_inner)
}

async fn demote(
    svc: &mut Harness,
    name: &str,
    reason: &str,
    etag: &str,
) -> Result<pb::Incident, Status> {
    let request = pb::DemoteMajorIncidentRequest {
        name: name.to_owned(),
        reason: reason.to_owned(),
        etag: etag.to_owned(),
    };
    let reply = svc.client.demote_major_incident(as_(AGENT, request)).await;
    reply.map(tonic::Response::into_inner)
}

fn major(incident: &pb::Incident) -> M {
    M::try_from(incident.major_state).unwrap()
}

async fn promotion_and_demotion_take_a_reason_and_record_who_and_when(db: TestDb) {
    let mut svc = start(&db).await;
    let name = svc.open("Payments down").await.name;
    let status = promote(&mut svc, AGENT, &name, " ", "").await.unwrap_err();
    assert_eq!(bad_fields(&status), ["reason"]);
    let status = promote(&mut svc, ADA, &name, "everyone is affected", "")
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    let status = demote(&mut svc, &name, "not major", "").await.unwrap_err();
    assert_eq!(precondition(&status).0, "MAJOR_STATE");

    let promoted = promote(&mut svc, AGENT, &name, "all card payments fail", "v1")
        .await
        .unwrap();
    assert_eq!(major(&promoted), M::Accepted);
    assert_eq!(promoted.major_promoted_by.as_ref().unwrap().subject, "bob");
    assert!(promoted.major_promote_time.is_some());
    let status = promote(&mut svc, AGENT, &name, "again", "")
        .await
        .unwrap_err();
    assert_eq!(precondition(&status).0, "MAJOR_STATE");
    let stale = demote(&mut svc, &name, "contained", "v1")
        .await
        .unwrap_err();
    assert_eq!(stale.code(), Code::Aborted);

    let demoted = demote(&mut svc, &name, "contained to one shop", &promoted.etag)
        .await
        .unwrap();
    assert_eq!(major(&demoted), M::None);
    assert!(demoted.major_promoted_by.is_none() && demoted.major_promote_time.is_none());

    let events = svc.events().await;
    let mine: Vec<_> = events.iter().filter(|e| e.subject == name).collect();
    let types: Vec<_> = mine.iter().map(|e| e.r#type.as_str()).collect();
    assert_eq!(
        types,
        [
            "incidents.incident.created",
            "incidents.incident.major_promoted",
            "incidents.incident.major_demoted"
        ]
    );
    let promoted_event = payload(mine[1]);
    let reason = promoted_event
        .changes
        .iter()
        .find(|c| c.field == "major_reason")
        .unwrap();
    assert_eq!(reason.new_value, "all card payments fail");
    let note = promoted_event.journal_entry.unwrap();
    assert_eq!(
        note.body,
        "Promoted to major incident: all card payments fail"
    );
}

async fn create_rule(
    svc: &mut Harness,
    who: &str,
    rule: pb::MajorIncidentRule,
) -> Result<pb::MajorIncidentRule, Status> {
    let request = pb::CreateMajorIncidentRuleRequest {
        rule: Some(rule),
        request_id: String::new(),
    };
    let reply = svc
        .client
        .create_major_incident_rule(as_(who, request))
        .await;
    reply.map(tonic::Response::into_inner)
}

fn rule(condition: &str, action: pb::MajorRuleAction) -> pb::MajorIncidentRule {
    pb::MajorIncidentRule {
        condition: condition.to_owned(),
        action: action as i32,
        enabled: true,
        ..pb::MajorIncidentRule::default()
    }
}

async fn rule_names(svc: &mut Harness) -> Vec<String> {
    let request = pb::ListMajorIncidentRulesRequest::default();
    let reply = svc
        .client
        .list_major_incident_rules(as_(AGENT, request))
        .await;
    reply
        .unwrap()
        .into_inner()
        .rules
        .into_iter()
        .map(|r| r.name)
        .collect()
}

async fn rules_are_created_listed_and_deleted_by_admins(db: TestDb) {
    let mut svc = start(&db).await;
    let status = create_rule(
        &mut svc,
        ADMIN,
        rule("priority = URGENT", pb::MajorRuleAction::Promote),
    )
    .await
    .unwrap_err();
    assert_eq!(bad_fields(&status), ["rule.condition"]);
    let status = create_rule(&mut svc, ADMIN, rule("", pb::MajorRuleAction::Unspecified))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["rule.action", "rule.condition"]);
    let status = create_rule(
        &mut svc,
        AGENT,
        rule("priority = CRITICAL", pb::MajorRuleAction::Promote),
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);

    let made = create_rule(
        &mut svc,
        ADMIN,
        rule(
            "priority = CRITICAL AND service != \"\"",
            pb::MajorRuleAction::Promote,
        ),
    )
    .await
    .unwrap();
    assert_eq!(made.name, "majorIncidentRules/1");
    assert_eq!(rule_names(&mut svc).await, ["majorIncidentRules/1"]);
    let delete = |name: &str| pb::DeleteMajorIncidentRuleRequest {
        name: name.to_owned(),
    };
    svc.client
        .delete_major_incident_rule(as_(ADMIN, delete(&made.name)))
        .await
        .unwrap();
    assert!(rule_names(&mut svc).await.is_empty());
    let status = svc
        .client
        .delete_major_incident_rule(as_(ADMIN, delete(&made.name)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let types = svc.event_names(&made.name).await;
    assert_eq!(
        types,
        [
            "incidents.major_incident_rule.created",
            "incidents.major_incident_rule.deleted"
        ]
    );
}

async fn a_priority_rule_promotes_a_critical_parent(db: TestDb) {
    let mut svc = start(&db).await;
    create_rule(
        &mut svc,
        ADMIN,
        rule("priority = CRITICAL", pb::MajorRuleAction::Promote),
    )
    .await
    .unwrap();
    let critical = open_with(&mut svc, "Whole site down", 1, 1).await;
    let moderate = open_with(&mut svc, "One printer down", 2, 2).await;
    for parent in [&critical, &moderate] {
        let child = svc.open("Me too").await.name;
        set_parent(&mut svc, &child, parent).await.unwrap();
    }
    let read = svc.get(AGENT, &critical).await.unwrap();
    assert_eq!(major(&read), M::Accepted);
    assert_eq!(read.major_promoted_by.as_ref().unwrap().subject, "bob");
    let types = svc.event_names(&critical).await;
    assert!(
        types.contains(&"incidents.incident.major_promoted".to_owned()),
        "{types:?}"
    );
    assert_eq!(major(&svc.get(AGENT, &moderate).await.unwrap()), M::None);
}

async fn three_children_within_ten_minutes_propose_the_parent(db: TestDb) {
    let mut svc = start(&db).await;
    let children_rule = pb::MajorIncidentRule {
        min_children: 2,
        children_window: Some(prost_types::Duration {
            seconds: 600,
            nanos: 0,
        }),
        ..rule("", pb::MajorRuleAction::Propose)
    };
    let made = create_rule(&mut svc, ADMIN, children_rule).await.unwrap();
    assert_eq!(
        (made.min_children, made.children_window.unwrap().seconds),
        (2, 600)
    );
    let parent = svc.open("Email down").await.name;
    for n in 1..=3 {
        let child = svc.open("Cannot send mail").await.name;
        set_parent(&mut svc, &child, &parent).await.unwrap();
        let read = svc.get(AGENT, &parent).await.unwrap();
        let wanted = if n < 3 { M::None } else { M::Proposed };
        assert_eq!(major(&read), wanted, "after {n} children");
    }
    let types = svc.event_names(&parent).await;
    assert_eq!(types.last().unwrap(), "incidents.incident.major_proposed");
    // A manager rejects the proposal; more children do not propose it again.
    let rejected = demote(&mut svc, &parent, "one mailbox server, handled", "")
        .await
        .unwrap();
    assert_eq!(major(&rejected), M::Rejected);
    let child = svc.open("Cannot send mail either").await.name;
    set_parent(&mut svc, &child, &parent).await.unwrap();
    assert_eq!(major(&svc.get(AGENT, &parent).await.unwrap()), M::Rejected);
}
