//! CreateCi: defaults, idempotent retries, validate_only, identification,
//! and every bad field named with nothing written.

use itsm_proto::itsm::cmdb::v1 as pb;
use itsm_testkit::{TestDb, backend_tests};
use tonic::Code;

use crate::support::{CMDB_ADMIN, as_, bad_fields, ci, number, start, text};
use crate::{choice, try_create};

backend_tests!(
    a_new_ci_has_its_defaults_and_a_retry_returns_it,
    validate_only_checks_and_stores_nothing,
    a_ci_the_identification_rules_find_already_exists,
    bad_input_names_every_field_and_writes_nothing,
    references_must_name_existing_cis_of_the_right_class,
);

async fn a_new_ci_has_its_defaults_and_a_retry_returns_it(db: TestDb) {
    let mut h = start(&db).await;
    let mut sent = ci(
        "linux_server",
        "web-01",
        &[("serial_number", text("SN-1")), ("cpu_count", number(8.0))],
    );
    sent.status = 0;
    sent.support_group = "groups/unix".into();
    // Maps encode in no fixed order: a retry must still be recognised.
    for (k, v) in [
        ("env", "prod"),
        ("team", "web"),
        ("tier", "1"),
        ("site", "par"),
    ] {
        sent.labels.insert(k.into(), v.into());
    }
    sent.name = "cis/ignored".into();
    sent.retire_reason = "output only".into();
    let request = pb::CreateCiRequest {
        ci: Some(sent),
        request_id: "3b8f6f0e-1c2d-4e5f-8a9b-0c1d2e3f4a5b".into(),
        validate_only: false,
    };
    let first = h
        .client
        .create_ci(as_(CMDB_ADMIN, request.clone()))
        .await
        .unwrap()
        .into_inner();
    assert!(itsm_cmdb::ci_uid(&first.name).is_some(), "{}", first.name);
    assert_eq!(first.status, pb::CiStatus::Planned as i32);
    assert_eq!(first.etag, "v1");
    assert_eq!(first.retire_reason, "");
    assert_eq!(first.created_by.as_ref().unwrap().subject, "carla");
    assert!(first.create_time.is_some());
    let provenance = &first.provenance["attributes.serial_number"];
    assert_eq!(provenance.discovery_source, "discoverySources/manual");
    assert_eq!(provenance.actor.as_ref().unwrap().subject, "carla");
    assert!(first.provenance.contains_key("support_group"));
    assert_eq!(first.sightings.len(), 1);
    assert_eq!(
        first.sightings[0].discovery_source,
        "discoverySources/manual"
    );

    let retry = h
        .client
        .create_ci(as_(CMDB_ADMIN, request.clone()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(retry.name, first.name);
    assert_eq!(h.count("cis").await, 1);
    assert_eq!(h.count("ci_attributes").await, 2);
    assert_eq!(h.count("ci_versions").await, 1);
    assert_eq!(h.count("ci_history").await, 1);

    // The same request id with other content is refused, not applied.
    let mut other = request;
    other.ci.as_mut().unwrap().display_name = "web-99".into();
    let refused = h
        .client
        .create_ci(as_(CMDB_ADMIN, other))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::AlreadyExists, "{refused:?}");
    assert_eq!(h.count("cis").await, 1);
    assert_eq!(h.event_names(&first.name).await, ["cmdb.ci.created"]);
    // CIs have their history, not the platform audit table.
    assert_eq!(h.count("audit_log").await, 0);
}

async fn validate_only_checks_and_stores_nothing(db: TestDb) {
    let mut h = start(&db).await;
    let request = pb::CreateCiRequest {
        ci: Some(ci("application", "payroll", &[("version", text("2.1"))])),
        request_id: String::new(),
        validate_only: true,
    };
    let checked = h
        .client
        .create_ci(as_(CMDB_ADMIN, request.clone()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(checked.display_name, "payroll");
    assert_eq!(checked.name, "");
    assert_eq!(h.count("cis").await, 0);
    assert_eq!(h.count("outbox").await, 0);

    let mut bad = request;
    bad.ci.as_mut().unwrap().display_name = String::new();
    let status = h.client.create_ci(as_(CMDB_ADMIN, bad)).await.unwrap_err();
    assert_eq!(bad_fields(&status), ["ci.display_name"]);
}

async fn a_ci_the_identification_rules_find_already_exists(db: TestDb) {
    let mut h = start(&db).await;
    let first = h
        .create(ci(
            "linux_server",
            "db-01",
            &[("serial_number", text("SN-42"))],
        ))
        .await;
    let twin = ci(
        "linux_server",
        "db-01b",
        &[("serial_number", text("sn-42 "))],
    );
    let status = try_create(&mut h, twin).await.unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists, "{status:?}");
    assert!(status.message().contains(&first.name), "{status:?}");
    assert_eq!(h.count("cis").await, 1);
}

async fn bad_input_names_every_field_and_writes_nothing(db: TestDb) {
    let mut h = start(&db).await;
    let request = pb::CreateCiRequest {
        ci: None,
        request_id: String::new(),
        validate_only: false,
    };
    let status = h
        .client
        .create_ci(as_(CMDB_ADMIN, request))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["ci"]);

    let mut everything = ci("nope", "", &[]);
    everything.status = pb::CiStatus::Retired as i32;
    everything.criticality = 9;
    everything.min_members_up = -1;
    let status = try_create(&mut h, everything).await.unwrap_err();
    assert_eq!(
        bad_fields(&status),
        [
            "ci.ci_class",
            "ci.display_name",
            "ci.status",
            "ci.criticality",
            "ci.min_members_up"
        ]
    );

    let status = try_create(&mut h, ci("hardware", "abstract", &[]))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["ci.ci_class"]);

    let long = "x".repeat(256);
    let status = try_create(&mut h, ci("linux_server", &long, &[]))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["ci.display_name"]);

    let attributes = ci(
        "linux_server",
        "web-01",
        &[
            ("colour", text("red")),
            ("cpu_count", text("eight")),
            ("distribution", choice("windows")),
            ("memory_gb", number(64.0)),
        ],
    );
    let status = try_create(&mut h, attributes).await.unwrap_err();
    assert_eq!(
        bad_fields(&status),
        [
            "ci.attributes.colour",
            "ci.attributes.cpu_count",
            "ci.attributes.distribution"
        ]
    );

    // A required attribute of a custom class is named when missing.
    let class = pb::CreateCiClassRequest {
        ci_class: Some(pb::CiClass {
            parent: "classes/application".into(),
            display_name: "Payroll application".into(),
            attributes: vec![pb::AttributeDefinition {
                key: "cost_center".into(),
                display_name: "Cost center".into(),
                r#type: pb::AttributeType::String as i32,
                required: true,
                ..pb::AttributeDefinition::default()
            }],
            ..pb::CiClass::default()
        }),
        ci_class_id: "payroll_app".into(),
        request_id: String::new(),
    };
    h.client
        .create_ci_class(as_(CMDB_ADMIN, class))
        .await
        .unwrap();
    let status = try_create(&mut h, ci("payroll_app", "payroll", &[]))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["ci.attributes.cost_center"]);

    assert_eq!(h.count("cis").await, 0);
    assert_eq!(h.count("ci_attributes").await, 0);
    assert_eq!(h.count("ci_history").await, 0);
}

async fn references_must_name_existing_cis_of_the_right_class(db: TestDb) {
    let mut h = start(&db).await;
    let server = h.create(ci("linux_server", "web-01", &[])).await;
    let site = h.create(ci("location", "Paris", &[])).await;

    let mut missing = ci("linux_server", "web-02", &[]);
    missing.location = "cis/00000000-0000-4000-8000-000000000000".into();
    let status = try_create(&mut h, missing).await.unwrap_err();
    assert_eq!(bad_fields(&status), ["ci.location"]);

    let mut not_a_location = ci("linux_server", "web-02", &[]);
    not_a_location.location.clone_from(&server.name);
    let status = try_create(&mut h, not_a_location).await.unwrap_err();
    assert_eq!(bad_fields(&status), ["ci.location"]);

    let mut malformed = ci("linux_server", "web-02", &[]);
    malformed.location = "Paris".into();
    let status = try_create(&mut h, malformed).await.unwrap_err();
    assert_eq!(bad_fields(&status), ["ci.location"]);
    assert_eq!(h.count("cis").await, 2);

    let mut placed = ci("linux_server", "web-02", &[]);
    placed.location.clone_from(&site.name);
    let created = try_create(&mut h, placed).await.unwrap();
    assert_eq!(created.location, site.name);
}
