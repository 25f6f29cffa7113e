//! Assignment rules as data: created idempotently by admins only, listed in
//! evaluation order, updated with a mask and the etag, deleted; conditions
//! checked against the incident list's filter language; the first enabled
//! match deciding a new incident's group.

use itsm_proto::itsm::incidents::v1 as pb;
use itsm_testkit::{TestDb, backend_tests};
use prost_types::FieldMask;
use tonic::Code;

use crate::helpers::{incident, rule, violations};
use crate::support::{ADA, ADMIN, AGENT, as_, payload, start};

use pb::AssignmentStrategy::GroupOnly;

backend_tests!(
    rules_run_in_order_and_the_first_enabled_match_decides,
    rules_are_created_once_listed_in_order_and_changed_with_their_etag,
    bad_rules_name_the_field_and_the_position,
);

async fn rules_run_in_order_and_the_first_enabled_match_decides(db: TestDb) {
    let mut svc = start(&db).await;
    let network = svc
        .create_rule(rule(20, r#"category = "network""#, "network", GroupOnly))
        .await
        .unwrap();
    // Created later, runs earlier: order decides, not creation.
    let urgent = svc
        .create_rule(rule(
            10,
            r#"category = "network" AND priority <= HIGH"#,
            "groups/ops",
            GroupOnly,
        ))
        .await
        .unwrap();
    svc.create_rule(rule(30, "", "desk", GroupOnly))
        .await
        .unwrap();
    let mut disabled = rule(5, "", "network", GroupOnly);
    disabled.enabled = false;
    svc.create_rule(disabled).await.unwrap();

    let mut high = incident("Core switch down", "network");
    high.impact = 1;
    let high = svc.open_incident(high).await;
    assert_eq!(
        (high.assignment_group.as_str(), high.assignee.as_str()),
        ("ops", "")
    );
    let moderate = svc.open_incident(incident("Slow wifi", "network")).await;
    assert_eq!(moderate.assignment_group, "network");
    let other = svc.open_incident(incident("Printer jam", "hardware")).await;
    assert_eq!(
        other.assignment_group, "desk",
        "the catch-all, after the others"
    );
    // Requesters cannot name a group; the rules route theirs too.
    let mine = svc
        .create(ADA, incident("My laptop", "hardware"))
        .await
        .unwrap();
    assert_eq!(mine.assignment_group, "desk");
    // An incident that names its group is left alone.
    let mut given = incident("Router", "network");
    given.assignment_group = "desk".into();
    assert_eq!(svc.open_incident(given).await.assignment_group, "desk");
    assert_eq!(
        (high.etag.as_str(), high.state),
        ("v1", pb::IncidentState::New as i32)
    );

    // The creation's audit entry and event say which rule decided.
    let audit = svc.audit(&high.name).await;
    assert_eq!(audit.len(), 1);
    assert!(audit[0].2.contains(&urgent.name), "{audit:?}");
    let created = svc
        .events()
        .await
        .into_iter()
        .find(|e| e.subject == moderate.name)
        .unwrap();
    assert_eq!(created.r#type, "incidents.incident.created");
    let event = payload(&created);
    assert_eq!(event.incident.unwrap().assignment_group, "network");
    let rule_change = event
        .changes
        .iter()
        .find(|c| c.field == "assignment_rule")
        .unwrap();
    assert_eq!(rule_change.new_value, network.name);
}

async fn rules_are_created_once_listed_in_order_and_changed_with_their_etag(db: TestDb) {
    let mut svc = start(&db).await;
    let create = |r: pb::AssignmentRule, id: &str| pb::CreateAssignmentRuleRequest {
        rule: Some(r),
        request_id: id.to_owned(),
    };
    let status = svc
        .client
        .create_assignment_rule(as_(AGENT, create(rule(1, "", "desk", GroupOnly), "")))
        .await
        .unwrap_err();
    assert_eq!(
        status.code(),
        Code::PermissionDenied,
        "admins only: {status:?}"
    );

    let first = svc
        .client
        .create_assignment_rule(as_(ADMIN, create(rule(50, "", "desk", GroupOnly), "r-1")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.etag, "v1");
    assert!(first.name.starts_with("assignmentRules/"), "{}", first.name);
    let again = svc
        .client
        .create_assignment_rule(as_(ADMIN, create(rule(50, "", "desk", GroupOnly), "r-1")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again, first, "a retry returns the first result");
    let status = svc
        .client
        .create_assignment_rule(as_(ADMIN, create(rule(60, "", "desk", GroupOnly), "r-1")))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists, "{status:?}");
    let second = svc
        .create_rule(rule(10, "", "ops", GroupOnly))
        .await
        .unwrap();
    let third = svc
        .create_rule(rule(50, "", "network", GroupOnly))
        .await
        .unwrap();

    // Evaluation order: order, then creation; a page at a time.
    let names =
        |rules: &[pb::AssignmentRule]| rules.iter().map(|r| r.name.clone()).collect::<Vec<_>>();
    assert_eq!(
        names(&svc.list_rules().await),
        [second.name.clone(), first.name.clone(), third.name.clone()]
    );
    let mut token = String::new();
    let mut paged = Vec::new();
    loop {
        let request = pb::ListAssignmentRulesRequest {
            page_size: 2,
            page_token: token,
        };
        let page = svc
            .client
            .list_assignment_rules(as_(AGENT, request))
            .await
            .unwrap()
            .into_inner();
        paged.extend(page.rules);
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    assert_eq!(names(&paged), names(&svc.list_rules().await));

    // Update: the masked fields only, with the etag last read.
    let update = |name: &str, r: pb::AssignmentRule, paths: &[&str], etag: &str| {
        pb::UpdateAssignmentRuleRequest {
            rule: Some(pb::AssignmentRule {
                name: name.to_owned(),
                ..r
            }),
            update_mask: Some(FieldMask {
                paths: paths.iter().map(|p| (*p).to_owned()).collect(),
            }),
            etag: etag.to_owned(),
        }
    };
    let changed = rule(
        1,
        "priority = CRITICAL",
        "ops",
        pb::AssignmentStrategy::RoundRobin,
    );
    let updated = svc
        .client
        .update_assignment_rule(as_(
            ADMIN,
            update(&first.name, changed.clone(), &["order", "strategy"], "v1"),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (
            updated.order,
            updated.strategy,
            updated.condition.as_str(),
            updated.assignment_group.as_str(),
            updated.etag.as_str()
        ),
        (
            1,
            pb::AssignmentStrategy::RoundRobin as i32,
            "",
            "desk",
            "v2"
        )
    );
    assert_eq!(names(&svc.list_rules().await)[0], first.name, "moved first");
    let status = svc
        .client
        .update_assignment_rule(as_(
            ADMIN,
            update(&first.name, changed.clone(), &["condition"], "v1"),
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Aborted, "stale etag: {status:?}");
    let status = svc
        .client
        .update_assignment_rule(as_(
            ADMIN,
            update(&first.name, changed.clone(), &["name"], "v2"),
        ))
        .await
        .unwrap_err();
    assert_eq!(violations(&status)[0].0, "update_mask.paths[0]");

    // Delete: a stale etag is refused, the current one deletes.
    let delete = |name: &str, etag: &str| pb::DeleteAssignmentRuleRequest {
        name: name.to_owned(),
        etag: etag.to_owned(),
    };
    let status = svc
        .client
        .delete_assignment_rule(as_(ADMIN, delete(&first.name, "v1")))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Aborted, "{status:?}");
    svc.client
        .delete_assignment_rule(as_(ADMIN, delete(&first.name, "v2")))
        .await
        .unwrap();
    let status = svc
        .client
        .delete_assignment_rule(as_(ADMIN, delete(&first.name, "")))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    assert_eq!(names(&svc.list_rules().await), [second.name, third.name]);

    // Each change audited and published.
    let events: Vec<String> = svc
        .events()
        .await
        .into_iter()
        .filter(|e| e.subject == first.name)
        .map(|e| e.r#type)
        .collect();
    assert_eq!(
        events,
        [
            "incidents.assignment_rule.created",
            "incidents.assignment_rule.updated",
            "incidents.assignment_rule.deleted"
        ]
    );
    let actions: Vec<String> = svc
        .audit(&first.name)
        .await
        .into_iter()
        .map(|a| a.0)
        .collect();
    assert_eq!(actions, ["create", "update", "delete"]);
}

async fn bad_rules_name_the_field_and_the_position(db: TestDb) {
    let mut svc = start(&db).await;
    let status = svc
        .create_rule(rule(
            1,
            r#"category = "network" AND colour = red"#,
            "desk",
            GroupOnly,
        ))
        .await
        .unwrap_err();
    let found = violations(&status);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, "rule.condition");
    assert!(found[0].1.starts_with("at position 25:"), "{}", found[0].1);
    let status = svc
        .create_rule(rule(1, "priority = ", "desk", GroupOnly))
        .await
        .unwrap_err();
    let found = violations(&status);
    assert_eq!(found[0].0, "rule.condition");
    assert!(found[0].1.starts_with("at position 11:"), "{}", found[0].1);

    let status = svc
        .create_rule(rule(1, "", "nope", GroupOnly))
        .await
        .unwrap_err();
    assert_eq!(
        violations(&status)[0].0,
        "rule.assignment_group",
        "unknown to the directory"
    );
    let mut both = rule(1, "", "desk", GroupOnly);
    both.use_ci_support_group = true;
    let status = svc.create_rule(both).await.unwrap_err();
    assert_eq!(violations(&status)[0].0, "rule.assignment_group");
    assert!(svc.list_rules().await.is_empty(), "nothing written");
}
