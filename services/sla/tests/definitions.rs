//! SLA definitions over gRPC, through the real guard: create (defaults,
//! idempotent, validate_only), read by version, list with filters, update (a
//! new version each time), delete, versions, audit; every bad condition named
//! with its parse error position and nothing written.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/mod.rs"]
mod support;

use itsm_proto::itsm::sla::v1 as pb;
use itsm_testkit::{TestDb, backend_tests};
use tonic::Code;

use support::{ADMIN, AGENT, as_, bad_fields, mask, office_hours, seconds, start, violations};

backend_tests!(
    a_definition_is_created_read_listed_versioned_and_deleted,
    bad_definitions_name_every_field_and_write_nothing,
    updates_check_the_etag_the_mask_and_the_conditions,
    agents_read_definitions_but_cannot_change_them,
);

fn definition(display_name: &str) -> pb::SlaDefinition {
    pb::SlaDefinition {
        display_name: display_name.to_owned(),
        kind: pb::SlaKind::Sla as i32,
        ticket_type: "incidents".into(),
        selection_condition: "priority = CRITICAL".into(),
        target: Some(seconds(4 * 3600)),
        pause_condition: "state = ON_HOLD AND hold_reason = AWAITING_CALLER".into(),
        stop_condition: "state = RESOLVED".into(),
        cancel_condition: "state = CANCELED".into(),
        enabled: true,
        ..pb::SlaDefinition::default()
    }
}

fn create(id: &str, d: pb::SlaDefinition, request_id: &str) -> pb::CreateSlaDefinitionRequest {
    pb::CreateSlaDefinitionRequest {
        sla_definition: Some(d),
        sla_definition_id: id.to_owned(),
        request_id: request_id.to_owned(),
        validate_only: false,
    }
}

fn update(d: pb::SlaDefinition, paths: &[&str], etag: &str) -> pb::UpdateSlaDefinitionRequest {
    pb::UpdateSlaDefinitionRequest {
        sla_definition: Some(d),
        update_mask: Some(mask(paths)),
        etag: etag.to_owned(),
        recompute_open_task_slas: false,
        validate_only: false,
    }
}

fn list(filter: &str) -> pb::ListSlaDefinitionsRequest {
    pb::ListSlaDefinitionsRequest {
        filter: filter.to_owned(),
        ..pb::ListSlaDefinitionsRequest::default()
    }
}

async fn a_definition_is_created_read_listed_versioned_and_deleted(db: TestDb) {
    let mut svc = start(&db).await;
    let calendar = svc
        .create_calendar("eu", office_hours("EU", "Europe/Berlin"))
        .await;
    let mut sent = definition("P1 resolution");
    sent.calendar = calendar.name.clone();
    // validate_only: checked and returned, nothing stored.
    let mut dry = create("p1-resolution", sent.clone(), "");
    dry.validate_only = true;
    let checked = svc
        .client
        .create_sla_definition(as_(ADMIN, dry))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(checked.name, "slaDefinitions/p1-resolution");
    assert_eq!(svc.count("sla_definitions").await, 0);

    let request = create(
        "p1-resolution",
        sent,
        "2c9d0b8e-3333-4f57-9d0c-1c2d3e4f5a6b",
    );
    let first = svc
        .client
        .create_sla_definition(as_(ADMIN, request.clone()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.version, 1);
    assert_eq!(first.etag, "v1");
    assert_eq!(
        first.warning_percentages,
        [50, 75, 100],
        "the default warnings"
    );
    assert_eq!(first.time_zone_source, pb::TimeZoneSource::Sla as i32);
    assert_eq!(first.created_by.as_ref().unwrap().subject, "root");
    let again = svc
        .client
        .create_sla_definition(as_(ADMIN, request))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again, first, "a retry returns the definition created first");
    let mut ola = definition("Network OLA");
    ola.kind = pb::SlaKind::Ola as i32;
    ola.enabled = false;
    ola.warning_percentages = vec![80, 100];
    let ola = svc
        .client
        .create_sla_definition(as_(ADMIN, create("network-ola", ola, "")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ola.warning_percentages, [80, 100]);

    // Update: a new version, the old one readable; the recomputation of its
    // open task SLAs started.
    let mut changed = first.clone();
    changed.target = Some(seconds(2 * 3600));
    changed.pause_condition = "state = ON_HOLD".into();
    let mut request = update(changed, &["target", "pause_condition"], "v1");
    request.recompute_open_task_slas = true;
    let v2 = svc
        .client
        .update_sla_definition(as_(ADMIN, request))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((v2.version, v2.etag.as_str()), (2, "v2"));
    assert_eq!(v2.target, Some(seconds(7200)));
    assert!(v2.recompute_operation.starts_with("operations/"));
    let v1 = svc
        .client
        .get_sla_definition(as_(
            AGENT,
            pb::GetSlaDefinitionRequest {
                name: first.name.clone(),
                version: 1,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(v1, first);
    let current = svc
        .client
        .get_sla_definition(as_(
            AGENT,
            pb::GetSlaDefinitionRequest {
                name: first.name.clone(),
                version: 0,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(current, v2);
    let versions = svc
        .client
        .list_sla_definition_versions(as_(
            ADMIN,
            pb::ListSlaDefinitionVersionsRequest {
                name: first.name.clone(),
                ..pb::ListSlaDefinitionVersionsRequest::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let numbers: Vec<i64> = versions.sla_definitions.iter().map(|d| d.version).collect();
    assert_eq!(numbers, [2, 1]);

    // Lists and filters.
    let names = |r: pb::ListSlaDefinitionsResponse| -> Vec<String> {
        r.sla_definitions.into_iter().map(|d| d.name).collect()
    };
    let all = svc
        .client
        .list_sla_definitions(as_(AGENT, list("")))
        .await
        .unwrap();
    assert_eq!(
        names(all.into_inner()),
        ["slaDefinitions/network-ola", "slaDefinitions/p1-resolution"]
    );
    let olas = svc
        .client
        .list_sla_definitions(as_(AGENT, list("kind = OLA")))
        .await
        .unwrap();
    assert_eq!(names(olas.into_inner()), ["slaDefinitions/network-ola"]);
    let enabled = svc
        .client
        .list_sla_definitions(as_(
            AGENT,
            list("enabled = true AND ticket_type = \"incidents\""),
        ))
        .await
        .unwrap();
    assert_eq!(
        names(enabled.into_inner()),
        ["slaDefinitions/p1-resolution"]
    );
    let on_calendar = svc
        .client
        .list_sla_definitions(as_(AGENT, list("calendar = \"calendars/eu\"")))
        .await
        .unwrap();
    assert_eq!(
        names(on_calendar.into_inner()),
        ["slaDefinitions/p1-resolution"]
    );
    let page = svc
        .client
        .list_sla_definitions(as_(
            AGENT,
            pb::ListSlaDefinitionsRequest {
                page_size: 1,
                order_by: "display_name desc".into(),
                ..pb::ListSlaDefinitionsRequest::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.sla_definitions[0].display_name, "P1 resolution");
    let next = svc
        .client
        .list_sla_definitions(as_(
            AGENT,
            pb::ListSlaDefinitionsRequest {
                page_size: 1,
                order_by: "display_name desc".into(),
                page_token: page.next_page_token,
                ..pb::ListSlaDefinitionsRequest::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(next.sla_definitions[0].display_name, "Network OLA");
    assert!(next.next_page_token.is_empty());

    // Delete: a stale etag is refused, then it is gone.
    let stale = svc
        .client
        .delete_sla_definition(as_(
            ADMIN,
            pb::DeleteSlaDefinitionRequest {
                name: first.name.clone(),
                etag: "v1".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(stale.code(), Code::Aborted);
    svc.client
        .delete_sla_definition(as_(
            ADMIN,
            pb::DeleteSlaDefinitionRequest {
                name: first.name.clone(),
                etag: "v2".into(),
            },
        ))
        .await
        .unwrap();
    let gone = svc
        .client
        .get_sla_definition(as_(
            AGENT,
            pb::GetSlaDefinitionRequest {
                name: first.name.clone(),
                version: 0,
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(gone.code(), Code::NotFound);
    let reuse = svc
        .client
        .create_sla_definition(as_(ADMIN, create("p1-resolution", definition("P1"), "")))
        .await
        .unwrap_err();
    assert_eq!(reuse.code(), Code::AlreadyExists);
    assert_eq!(
        svc.event_names(&first.name).await,
        [
            "sla.sla_definition.created",
            "sla.sla_definition.updated",
            "sla.sla_definition.deleted"
        ]
    );
    let updated = svc
        .events()
        .await
        .into_iter()
        .find(|e| e.r#type == "sla.sla_definition.updated")
        .unwrap();
    let payload: pb::SlaDefinitionEvent =
        prost::Message::decode(updated.payload.unwrap().value.as_slice()).unwrap();
    assert_eq!(payload.sla_definition.unwrap().version, 2);
    let fields: Vec<String> = payload.changes.iter().map(|c| c.field.clone()).collect();
    assert_eq!(fields, ["target", "pause_condition", "recompute_operation"]);
    let audit = svc
        .client
        .list_audit_entries(as_(
            ADMIN,
            pb::ListAuditEntriesRequest {
                parent: first.name.clone(),
                page_size: 2,
                page_token: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(audit.entries.len(), 2);
    assert_eq!(audit.entries[0].action, "create");
    let rest = svc
        .client
        .list_audit_entries(as_(
            ADMIN,
            pb::ListAuditEntriesRequest {
                parent: first.name.clone(),
                page_size: 2,
                page_token: audit.next_page_token,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rest.entries.len(), 1);
    assert_eq!(rest.entries[0].action, "delete");
}

async fn bad_definitions_name_every_field_and_write_nothing(db: TestDb) {
    let mut svc = start(&db).await;
    let bad = pb::SlaDefinition {
        display_name: " ".into(),
        kind: 0,
        ticket_type: "incidents".into(),
        selection_condition: "priority = CRITICAL".into(),
        target: Some(seconds(0)),
        pause_condition: "state = ON_HOLD AND".into(),
        stop_condition: "colour = RED".into(),
        warning_percentages: vec![75, 50, 150],
        time_zone: "Europe/Nowhere".into(),
        ..pb::SlaDefinition::default()
    };
    let status = svc
        .client
        .create_sla_definition(as_(ADMIN, create("P1 Resolution!", bad, "")))
        .await
        .unwrap_err();
    let found = violations(&status);
    let fields: Vec<&str> = found.iter().map(|(f, _)| f.as_str()).collect();
    for field in [
        "sla_definition_id",
        "sla_definition.display_name",
        "sla_definition.kind",
        "sla_definition.target",
        "sla_definition.time_zone",
        "sla_definition.warning_percentages[1]",
        "sla_definition.warning_percentages[2]",
        "sla_definition.pause_condition",
        "sla_definition.stop_condition",
    ] {
        assert!(fields.contains(&field), "{field} not in {found:?}");
    }
    assert!(
        !fields.contains(&"sla_definition.selection_condition"),
        "{found:?}"
    );
    assert!(
        !fields.contains(&"sla_definition.warning_percentages[0]"),
        "{found:?}"
    );
    let pause = found
        .iter()
        .find(|(f, _)| f == "sla_definition.pause_condition")
        .unwrap();
    assert!(pause.1.starts_with("at position "), "{pause:?}");
    let stop = found
        .iter()
        .find(|(f, _)| f == "sla_definition.stop_condition")
        .unwrap();
    assert!(stop.1.contains("colour"), "{stop:?}");

    // Required fields, an unknown ticket type, a calendar that does not exist.
    let status = svc
        .client
        .create_sla_definition(as_(
            ADMIN,
            create("empty", pb::SlaDefinition::default(), ""),
        ))
        .await
        .unwrap_err();
    let fields = bad_fields(&status);
    for field in [
        "sla_definition.display_name",
        "sla_definition.kind",
        "sla_definition.target",
        "sla_definition.stop_condition",
        "sla_definition.ticket_type",
    ] {
        assert!(
            fields.contains(&field.to_owned()),
            "{field} not in {fields:?}"
        );
    }
    let mut widgets = definition("Widgets");
    widgets.ticket_type = "widgets".into();
    let status = svc
        .client
        .create_sla_definition(as_(ADMIN, create("widgets", widgets, "")))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["sla_definition.ticket_type"]);
    let mut elsewhere = definition("Elsewhere");
    elsewhere.calendar = "calendars/missing".into();
    let status = svc
        .client
        .create_sla_definition(as_(ADMIN, create("elsewhere", elsewhere, "")))
        .await
        .unwrap_err();
    let found = violations(&status);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].0, "sla_definition.calendar");
    assert!(found[0].1.contains("calendars/missing"), "{found:?}");
    assert_eq!(svc.count("sla_definitions").await, 0);
    assert_eq!(svc.count("sla_definition_versions").await, 0);
    assert!(svc.events().await.is_empty());
}

async fn updates_check_the_etag_the_mask_and_the_conditions(db: TestDb) {
    let mut svc = start(&db).await;
    let d = svc
        .client
        .create_sla_definition(as_(ADMIN, create("p2", definition("P2"), "")))
        .await
        .unwrap()
        .into_inner();
    let mut changed = d.clone();
    changed.reset_condition = "assignment_group !=".into();
    let status = svc
        .client
        .update_sla_definition(as_(ADMIN, update(changed, &["reset_condition"], "v1")))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["sla_definition.reset_condition"]);
    let status = svc
        .client
        .update_sla_definition(as_(ADMIN, update(d.clone(), &["version", "etag"], "")))
        .await
        .unwrap_err();
    assert_eq!(
        bad_fields(&status),
        ["update_mask.paths[0]", "update_mask.paths[1]", "etag"]
    );
    let mut changed = d.clone();
    changed.calendar = "calendars/missing".into();
    let status = svc
        .client
        .update_sla_definition(as_(ADMIN, update(changed, &["calendar"], "v1")))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["sla_definition.calendar"]);
    // validate_only: the new content returned, nothing stored.
    let mut changed = d.clone();
    changed.display_name = "P2 resolution".into();
    let mut request = update(changed.clone(), &["display_name"], "v1");
    request.validate_only = true;
    let checked = svc
        .client
        .update_sla_definition(as_(ADMIN, request))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(checked.display_name, "P2 resolution");
    assert_eq!(svc.count("sla_definition_versions").await, 1);
    let v2 = svc
        .client
        .update_sla_definition(as_(ADMIN, update(changed.clone(), &["display_name"], "v1")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(v2.version, 2);
    let stale = svc
        .client
        .update_sla_definition(as_(ADMIN, update(changed, &["display_name"], "v1")))
        .await
        .unwrap_err();
    assert_eq!(stale.code(), Code::Aborted);
    assert_eq!(svc.count("sla_definition_versions").await, 2);
}

async fn agents_read_definitions_but_cannot_change_them(db: TestDb) {
    let mut svc = start(&db).await;
    let status = svc
        .client
        .create_sla_definition(as_(AGENT, create("p3", definition("P3"), "")))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    let d = svc
        .client
        .create_sla_definition(as_(ADMIN, create("p3", definition("P3"), "")))
        .await
        .unwrap()
        .into_inner();
    let read = svc
        .client
        .get_sla_definition(as_(
            AGENT,
            pb::GetSlaDefinitionRequest {
                name: d.name.clone(),
                version: 0,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(read, d);
    let status = svc
        .client
        .update_sla_definition(as_(AGENT, update(d.clone(), &["display_name"], "v1")))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    let status = svc
        .client
        .list_audit_entries(as_(
            AGENT,
            pb::ListAuditEntriesRequest {
                parent: d.name.clone(),
                ..pb::ListAuditEntriesRequest::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
}
