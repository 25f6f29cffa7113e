//! CreateIncident: defaults, idempotent retries, gap-free numbers under
//! concurrency, every bad field named with nothing written, and the
//! requester's and the directory's rules.

use std::collections::BTreeSet;

use itsm_proto::itsm::incidents::v1 as pb;
use itsm_testkit::{TestDb, backend_tests};
use tokio::task::JoinSet;
use tonic::{Code, Request};

use crate::support::{ADA, AGENT, EVE, as_, bad_fields, create_request, incident, start};

backend_tests!(
    a_new_incident_has_its_defaults_and_a_retry_returns_it,
    numbers_stay_gap_free_under_concurrent_creates,
    racing_retries_create_one_incident,
    bad_input_names_every_field_and_writes_nothing,
    requesters_open_incidents_for_themselves_only,
    an_assignee_given_at_creation_must_belong_to_the_group,
    anonymous_and_unpermitted_callers_are_refused,
);

async fn a_new_incident_has_its_defaults_and_a_retry_returns_it(db: TestDb) {
    let mut svc = start(&db).await;
    let mut sent = incident("VPN drops every 10 minutes", 2, 1);
    sent.caller = String::new();
    sent.labels.insert("site".into(), "paris".into());
    // Several labels: a retry must hash the same whatever order a map iterates in.
    for key in ["floor", "team", "vendor", "rack", "zone", "shift"] {
        sent.labels.insert(key.into(), format!("{key}-1"));
    }
    sent.state = pb::IncidentState::Closed as i32; // output only: ignored
    let request = create_request(sent, "5f0c8a4e-2a4b-4f57-9d0c-1c2d3e4f5a6b");
    let first = svc
        .client
        .create_incident(as_(ADA, request.clone()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.number, "INC0000001");
    assert_eq!(first.name, "incidents/INC0000001");
    assert_eq!(first.state, pb::IncidentState::New as i32);
    assert_eq!(
        first.priority,
        itsm_proto::itsm::common::v1::Priority::High as i32
    );
    assert_eq!(first.caller, "ada", "defaults to the principal");
    assert_eq!(first.major_state, pb::MajorState::None as i32);
    assert_eq!(first.etag, "v1");
    assert_eq!(first.created_by.as_ref().unwrap().subject, "ada");
    assert_eq!(first.labels["site"], "paris");
    assert!(first.create_time.is_some() && first.acknowledge_time.is_none());

    let again = svc
        .client
        .create_incident(as_(ADA, request.clone()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again, first, "a retry returns the first incident");
    assert_eq!(svc.count("incidents").await, 1);
    assert_eq!(svc.count("outbox").await, 1);

    let mut other = request;
    other.incident.as_mut().unwrap().title = "something else".into();
    let reused = svc
        .client
        .create_incident(as_(ADA, other))
        .await
        .unwrap_err();
    assert_eq!(reused.code(), Code::AlreadyExists, "{reused:?}");
    assert_eq!(svc.count("incidents").await, 1);
}

async fn numbers_stay_gap_free_under_concurrent_creates(db: TestDb) {
    let svc = start(&db).await;
    let mut tasks = JoinSet::new();
    for i in 0..20 {
        let mut client = svc.client().await;
        tasks.spawn(async move {
            let request = create_request(incident(&format!("storm {i}"), 1, 1), "");
            client
                .create_incident(as_(AGENT, request))
                .await
                .unwrap()
                .into_inner()
                .number
        });
    }
    let numbers: BTreeSet<String> = tasks.join_all().await.into_iter().collect();
    let expected: BTreeSet<String> = (1..=20).map(|n| format!("INC{n:07}")).collect();
    assert_eq!(numbers, expected);
    assert_eq!(svc.count("audit_log").await, 20);
}

async fn racing_retries_create_one_incident(db: TestDb) {
    let svc = start(&db).await;
    let request = create_request(
        incident("Storm", 1, 1),
        "b7e3c9a0-0f4e-4c1d-9a57-2f3e4d5c6b7a",
    );
    let mut tasks = JoinSet::new();
    for _ in 0..6 {
        let mut client = svc.client().await;
        let request = request.clone();
        tasks.spawn(async move {
            let reply = client.create_incident(as_(AGENT, request)).await;
            reply.unwrap().into_inner().number
        });
    }
    let numbers: BTreeSet<String> = tasks.join_all().await.into_iter().collect();
    assert_eq!(numbers, BTreeSet::from(["INC0000001".to_owned()]));
    assert_eq!(svc.count("incidents").await, 1);
    assert_eq!(svc.count("outbox").await, 1);
}

async fn bad_input_names_every_field_and_writes_nothing(db: TestDb) {
    let mut svc = start(&db).await;
    let mut bad = incident("", 0, 7);
    bad.description = "d".repeat(32_001);
    bad.channel = 42;
    bad.configuration_item = "web-01".into();
    bad.assignee = "carl".into();
    for i in 0..65 {
        bad.labels.insert(format!("k{i}"), "v".into());
    }
    let status = svc
        .client
        .create_incident(as_(AGENT, create_request(bad, "retry-1")))
        .await
        .unwrap_err();
    assert_eq!(
        bad_fields(&status),
        [
            "incident.title",
            "incident.description",
            "incident.impact",
            "incident.urgency",
            "incident.configuration_item",
            "incident.channel",
            "incident.labels",
            "incident.assignee",
        ]
    );
    assert!(
        status
            .message()
            .contains("unknown value 7; allowed: HIGH, MEDIUM, LOW"),
        "{}",
        status.message()
    );

    let long = incident(&"t".repeat(161), 1, 1);
    let status = svc
        .client
        .create_incident(as_(AGENT, create_request(long, "")))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["incident.title"]);
    assert!(status.message().contains("at most 160 characters, is 161"));

    for table in [
        "incidents",
        "audit_log",
        "outbox",
        "idempotency_keys",
        "counters",
    ] {
        assert_eq!(svc.count(table).await, 0, "{table}");
    }
}

async fn requesters_open_incidents_for_themselves_only(db: TestDb) {
    let mut svc = start(&db).await;
    let mut for_bob = incident("Printer", 3, 3);
    for_bob.caller = "bob".into();
    let status = svc
        .client
        .create_incident(as_(EVE, create_request(for_bob, "")))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");

    let mut assigned = incident("Printer", 3, 3);
    assigned.caller = "eve".into();
    assigned.assignment_group = "desk".into();
    let status = svc
        .client
        .create_incident(as_(EVE, create_request(assigned, "")))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert_eq!(svc.count("incidents").await, 0);

    let mut own = incident("Printer", 3, 3);
    own.caller = "eve".into();
    let created = svc
        .client
        .create_incident(as_(EVE, create_request(own, "")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.caller, "eve");
    assert_eq!(
        created.priority,
        itsm_proto::itsm::common::v1::Priority::Planning as i32
    );
}

async fn an_assignee_given_at_creation_must_belong_to_the_group(db: TestDb) {
    let mut svc = start(&db).await;
    let mut unknown = incident("Switch down", 1, 1);
    unknown.assignment_group = "groups/nope".into();
    let status = svc
        .client
        .create_incident(as_(AGENT, create_request(unknown, "")))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["incident.assignment_group"]);

    let mut stranger = incident("Switch down", 1, 1);
    stranger.assignment_group = "network".into();
    stranger.assignee = "carl".into();
    let status = svc
        .client
        .create_incident(as_(AGENT, create_request(stranger, "")))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["incident.assignee"]);
    assert_eq!(svc.count("incidents").await, 0);

    let mut member = incident("Switch down", 1, 1);
    member.assignment_group = "groups/network".into();
    member.assignee = "nina".into();
    let created = svc
        .client
        .create_incident(as_(AGENT, create_request(member, "")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.assignment_group, "network", "stored by id");
    assert_eq!(created.assignee, "nina");
    assert_eq!(created.state, pb::IncidentState::New as i32);
    assert_eq!(created.acknowledge_time, created.create_time);
}

async fn anonymous_and_unpermitted_callers_are_refused(db: TestDb) {
    let mut svc = start(&db).await;
    let anonymous = Request::new(create_request(incident("x", 1, 1), ""));
    let status = svc.client.create_incident(anonymous).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    let created = svc.open("VPN").await;
    let update = pb::UpdateIncidentRequest {
        incident: Some(created),
        update_mask: None,
        etag: "v1".into(),
    };
    let status = svc
        .client
        .update_incident(as_(ADA, update))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert!(
        status.message().contains("incidents.incident.update"),
        "{}",
        status.message()
    );
}
