//! The strategies and the neighbours: round-robin takes turns through the
//! group (a cursor kept in the database), least-loaded picks whoever has the
//! fewest open incidents, a rule may take the group from the CMDB, and a
//! CMDB or directory that does not answer degrades the assignment, never
//! the intake.

use std::collections::HashMap;
use std::sync::Arc;

use itsm_proto::itsm::incidents::v1 as pb;
use itsm_testkit::{TestDb, backend_tests};

use crate::helpers::{TableCmdb, incident, rule};
use crate::support::{ADMIN, AGENT, as_, payload, start, start_with_cmdb};

use pb::AssignmentStrategy::{GroupOnly, LeastLoaded, RoundRobin};

backend_tests!(
    round_robin_takes_turns_through_the_group,
    least_loaded_picks_the_member_with_the_fewest_open_incidents,
    the_ci_support_group_comes_from_the_cmdb,
    an_unavailable_cmdb_leaves_the_incident_unassigned_and_says_so,
    an_unavailable_directory_assigns_the_group_only_and_says_so,
    major_incident_rules_see_the_routed_incident,
);

async fn round_robin_takes_turns_through_the_group(db: TestDb) {
    let mut svc = start(&db).await;
    svc.create_rule(rule(1, "", "ops", RoundRobin))
        .await
        .unwrap();
    let mut assignees = Vec::new();
    for n in 0..6 {
        let opened = svc
            .open_incident(incident(&format!("Ticket {n}"), ""))
            .await;
        assert_eq!(opened.assignment_group, "ops");
        assert!(opened.acknowledge_time.is_some(), "assigned to a person");
        assignees.push(opened.assignee);
    }
    assert_eq!(assignees, ["ann", "ben", "cat", "ann", "ben", "cat"]);

    // Concurrent creations take turns too: the cursor is locked while moved.
    let mut calls = Vec::new();
    for n in 0..6 {
        let mut client = svc.client.clone();
        let request = pb::CreateIncidentRequest {
            incident: Some(incident(&format!("Burst {n}"), "")),
            request_id: String::new(),
        };
        calls.push(tokio::spawn(async move {
            client
                .create_incident(as_(AGENT, request))
                .await
                .unwrap()
                .into_inner()
                .assignee
        }));
    }
    let mut burst = Vec::new();
    for call in calls {
        burst.push(call.await.unwrap());
    }
    burst.sort();
    assert_eq!(burst, ["ann", "ann", "ben", "ben", "cat", "cat"]);
}

async fn least_loaded_picks_the_member_with_the_fewest_open_incidents(db: TestDb) {
    let mut svc = start(&db).await;
    // Existing load: ann 2 open, ben 1 open and 1 resolved (not counted), cat none.
    let mut names = Vec::new();
    for who in ["ann", "ann", "ben", "ben"] {
        let mut given = incident("Existing", "");
        given.assignment_group = "ops".into();
        given.assignee = who.into();
        names.push(svc.open_incident(given).await.name);
    }
    svc.resolve(&names[3]).await.unwrap();
    svc.create_rule(rule(1, r#"category = "db""#, "ops", LeastLoaded))
        .await
        .unwrap();

    let first = svc.open_incident(incident("Query slow", "db")).await;
    assert_eq!(first.assignee, "cat", "idle");
    let second = svc.open_incident(incident("Replica lag", "db")).await;
    assert_eq!(
        second.assignee, "ben",
        "ben and cat have one each: the first in order"
    );
    svc.resolve(&names[0]).await.unwrap();
    svc.resolve(&names[1]).await.unwrap();
    let third = svc.open_incident(incident("Backup failed", "db")).await;
    assert_eq!(third.assignee, "ann", "her incidents were resolved");
}

async fn the_ci_support_group_comes_from_the_cmdb(db: TestDb) {
    let cmdb = TableCmdb(HashMap::from([(
        "cis/db-01".to_owned(),
        "groups/network".to_owned(),
    )]));
    let mut svc = start_with_cmdb(&db, Arc::new(cmdb)).await;
    let mut by_ci = rule(1, "", "", GroupOnly);
    by_ci.use_ci_support_group = true;
    svc.create_rule(by_ci).await.unwrap();
    svc.create_rule(rule(2, "", "desk", GroupOnly))
        .await
        .unwrap();

    let mut on_db = incident("DB down", "");
    on_db.configuration_item = "cis/db-01".into();
    assert_eq!(svc.open_incident(on_db).await.assignment_group, "network");
    // No CI, or a CI without a support group: that rule cannot decide, the next one does.
    let no_ci = svc.open_incident(incident("Mouse broken", "")).await;
    assert_eq!(no_ci.assignment_group, "desk");
    let mut unknown = incident("Odd box", "");
    unknown.configuration_item = "cis/unknown".into();
    assert_eq!(svc.open_incident(unknown).await.assignment_group, "desk");
}

async fn an_unavailable_cmdb_leaves_the_incident_unassigned_and_says_so(db: TestDb) {
    let mut svc = start(&db).await;
    let mut by_ci = rule(1, "", "", RoundRobin);
    by_ci.use_ci_support_group = true;
    let by_ci = svc.create_rule(by_ci).await.unwrap();
    svc.create_rule(rule(2, "", "desk", GroupOnly))
        .await
        .unwrap();

    let mut on_web = incident("Web down", "");
    on_web.configuration_item = "cis/web-01".into();
    let opened = svc.open_incident(on_web).await;
    assert_eq!(
        (
            opened.assignment_group.as_str(),
            opened.assignee.as_str(),
            opened.etag.as_str()
        ),
        ("", "", "v1"),
        "created, unassigned: the later rule does not guess"
    );
    assert_eq!(
        svc.event_names(&opened.name).await,
        [
            "incidents.incident.created",
            "incidents.incident.assignment_degraded"
        ]
    );
    let degraded = svc
        .events()
        .await
        .into_iter()
        .find(|e| e.r#type == "incidents.incident.assignment_degraded")
        .unwrap();
    assert_eq!(degraded.sequence, 1, "it changes nothing");
    let changes = payload(&degraded).changes;
    assert_eq!(changes[0].field, "assignment_rule");
    assert_eq!(changes[0].new_value, by_ci.name);
    assert_eq!(changes[1].field, "reason");
    assert!(changes[1].new_value.contains("cis/web-01"), "{changes:?}");
    let actions: Vec<String> = svc
        .audit(&opened.name)
        .await
        .into_iter()
        .map(|a| a.0)
        .collect();
    assert_eq!(actions, ["create", "assignment_degraded"]);
}

async fn an_unavailable_directory_assigns_the_group_only_and_says_so(db: TestDb) {
    let mut svc = start(&db).await;
    svc.create_rule(rule(1, "", "ops", RoundRobin))
        .await
        .unwrap();
    svc.stop_identity().await;
    let opened = svc.open_incident(incident("VPN down", "")).await;
    assert_eq!(
        (opened.assignment_group.as_str(), opened.assignee.as_str()),
        ("ops", "")
    );
    assert!(opened.acknowledge_time.is_none());
    assert_eq!(
        svc.event_names(&opened.name).await,
        [
            "incidents.incident.created",
            "incidents.incident.assignment_degraded"
        ]
    );
}

async fn major_incident_rules_see_the_routed_incident(db: TestDb) {
    let mut svc = start(&db).await;
    svc.create_rule(rule(1, r#"category = "db""#, "ops", RoundRobin))
        .await
        .unwrap();
    for (condition, action) in [
        (r#"assignment_group = "ops""#, pb::MajorRuleAction::Propose),
        ("priority = CRITICAL", pb::MajorRuleAction::Promote),
    ] {
        let request = pb::CreateMajorIncidentRuleRequest {
            rule: Some(pb::MajorIncidentRule {
                condition: condition.to_owned(),
                action: action as i32,
                enabled: true,
                ..pb::MajorIncidentRule::default()
            }),
            request_id: String::new(),
        };
        svc.client
            .create_major_incident_rule(as_(ADMIN, request))
            .await
            .unwrap();
    }

    let proposed = svc.open_incident(incident("DB slow", "db")).await;
    assert_eq!(
        (
            proposed.assignment_group.as_str(),
            proposed.assignee.as_str()
        ),
        ("ops", "ann")
    );
    assert_eq!(proposed.major_state, pb::MajorState::Proposed as i32);
    assert_eq!(proposed.etag, "v2", "the proposal is a change of its own");
    assert_eq!(
        svc.event_names(&proposed.name).await,
        [
            "incidents.incident.created",
            "incidents.incident.major_proposed"
        ]
    );
    assert_eq!(
        svc.get(AGENT, &proposed.name).await.unwrap(),
        proposed,
        "as stored"
    );

    let mut critical = incident("Everything down", "network");
    critical.impact = 1;
    critical.urgency = 1;
    let promoted = svc.open_incident(critical).await;
    assert_eq!(promoted.major_state, pb::MajorState::Accepted as i32);
    assert!(promoted.major_promote_time.is_some());
    assert_eq!(
        promoted.major_promoted_by.unwrap().subject,
        AGENT.split(':').next().unwrap()
    );
    assert_eq!(
        svc.event_names(&promoted.name).await,
        [
            "incidents.incident.created",
            "incidents.incident.major_promoted"
        ]
    );

    let plain = svc.open_incident(incident("Mouse", "hardware")).await;
    assert_eq!(
        (plain.major_state, plain.etag.as_str()),
        (pb::MajorState::None as i32, "v1")
    );
}
