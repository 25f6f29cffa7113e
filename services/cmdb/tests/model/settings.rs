//! Settings (defaults, validation, etags, events) and the audit trail's parents.

use itsm_proto::itsm::cmdb::v1 as pb;
use itsm_testkit::{TestDb, backend_tests};
use tonic::Code;

use crate::support::{AGENT, CMDB_ADMIN, Harness, as_, bad_fields, start};
use crate::{audit_actions, create_class, mask};

backend_tests!(
    settings_start_at_the_defaults_and_change_with_their_etag,
    bad_settings_are_named,
    the_audit_trail_pages_and_knows_its_parents,
);

async fn get(svc: &mut Harness) -> pb::CmdbSettings {
    svc.client
        .get_cmdb_settings(as_(CMDB_ADMIN, pb::GetCmdbSettingsRequest {}))
        .await
        .unwrap()
        .into_inner()
}

async fn update(
    svc: &mut Harness,
    settings: pb::CmdbSettings,
    paths: &[&str],
    etag: &str,
) -> Result<pb::CmdbSettings, tonic::Status> {
    let request = pb::UpdateCmdbSettingsRequest {
        settings: Some(settings),
        update_mask: mask(paths),
        etag: etag.into(),
    };
    svc.client
        .update_cmdb_settings(as_(CMDB_ADMIN, request))
        .await
        .map(tonic::Response::into_inner)
}

fn days(n: i64) -> Option<prost_types::Duration> {
    Some(prost_types::Duration {
        seconds: n * 86_400,
        nanos: 0,
    })
}

async fn settings_start_at_the_defaults_and_change_with_their_etag(db: TestDb) {
    let mut svc = start(&db).await;
    let defaults = get(&mut svc).await;
    assert_eq!(defaults.name, "cmdbSettings");
    assert_eq!(defaults.stale_after, days(60));
    assert_eq!(defaults.health_refresh_interval.unwrap().seconds, 3_600);
    assert_eq!(defaults.default_impact_depth, 10);
    assert_eq!(defaults.orphan_exempt_classes, ["classes/location"]);
    assert_eq!(defaults.etag, "v0");

    let mut changed = defaults.clone();
    changed.stale_after = days(30);
    changed.default_impact_depth = 99; // not in the mask: ignored
    changed.orphan_exempt_classes =
        vec!["classes/location".into(), "classes/business_service".into()];
    let updated = update(
        &mut svc,
        changed,
        &["stale_after", "orphan_exempt_classes"],
        "v0",
    )
    .await
    .unwrap();
    assert_eq!(updated.stale_after, days(30));
    assert_eq!(updated.default_impact_depth, 10);
    assert_eq!(updated.orphan_exempt_classes.len(), 2);
    assert_eq!(updated.etag, "v1");
    assert_eq!(get(&mut svc).await, updated);

    // The etag read before the change is stale now, "v0" included.
    let mut again = updated.clone();
    again.default_impact_depth = 5;
    for stale in ["v0", "v7"] {
        let status = update(&mut svc, again.clone(), &["default_impact_depth"], stale)
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Aborted, "{stale}");
    }
    let status = update(&mut svc, again.clone(), &["default_impact_depth"], "")
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["etag"]);
    let second = update(&mut svc, again, &["default_impact_depth"], "v1")
        .await
        .unwrap();
    assert_eq!(
        (second.default_impact_depth, second.etag.as_str()),
        (5, "v2")
    );

    assert_eq!(
        svc.event_names("cmdbSettings").await,
        ["cmdb.settings.updated", "cmdb.settings.updated"]
    );
    let event = svc.events().await.pop().unwrap();
    let decoded: pb::CmdbSettingsEvent =
        prost::Message::decode(event.payload.unwrap().value.as_slice()).unwrap();
    assert_eq!(decoded.settings.unwrap().default_impact_depth, 5);
    assert_eq!(decoded.changes[0].field, "default_impact_depth");
    assert_eq!(
        (
            decoded.changes[0].old_value.as_str(),
            decoded.changes[0].new_value.as_str()
        ),
        ("10", "5")
    );
    assert_eq!(
        audit_actions(&mut svc, "cmdbSettings").await,
        ["update", "update"]
    );

    // The settings are the CMDB admin's.
    let status = svc
        .client
        .get_cmdb_settings(as_(AGENT, pb::GetCmdbSettingsRequest {}))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
}

async fn bad_settings_are_named(db: TestDb) {
    let mut svc = start(&db).await;
    let bad = pb::CmdbSettings {
        stale_after: Some(prost_types::Duration {
            seconds: 0,
            nanos: 0,
        }),
        health_refresh_interval: Some(prost_types::Duration {
            seconds: 59,
            nanos: 0,
        }),
        default_impact_depth: 51,
        orphan_exempt_classes: vec![
            "classes/location".into(),
            "classes/nope".into(),
            "classes/location".into(),
        ],
        ..pb::CmdbSettings::default()
    };
    let status = update(
        &mut svc,
        bad,
        &[
            "stale_after",
            "health_refresh_interval",
            "default_impact_depth",
            "orphan_exempt_classes",
            "etag",
        ],
        "v0",
    )
    .await
    .unwrap_err();
    assert_eq!(
        bad_fields(&status),
        [
            "update_mask.paths[4]",
            "settings.stale_after",
            "settings.health_refresh_interval",
            "settings.default_impact_depth",
            "settings.orphan_exempt_classes[1]",
            "settings.orphan_exempt_classes[2]",
        ]
    );
    let status = update(
        &mut svc,
        pb::CmdbSettings::default(),
        &["stale_after"],
        "v0",
    )
    .await
    .unwrap_err();
    assert_eq!(bad_fields(&status), ["settings.stale_after"]);
    assert_eq!(get(&mut svc).await.etag, "v0");
    assert_eq!(svc.count("outbox").await, 0);
}

async fn the_audit_trail_pages_and_knows_its_parents(db: TestDb) {
    let mut svc = start(&db).await;
    let class = create_class(&mut svc, "pager", "hardware", Vec::new()).await;
    let mut etag = class.etag.clone();
    for description in ["one", "two", "three"] {
        let request = pb::UpdateCiClassRequest {
            ci_class: Some(pb::CiClass {
                name: class.name.clone(),
                description: description.into(),
                ..pb::CiClass::default()
            }),
            update_mask: mask(&["description"]),
            etag: etag.clone(),
        };
        etag = svc
            .client
            .update_ci_class(as_(CMDB_ADMIN, request))
            .await
            .unwrap()
            .into_inner()
            .etag;
    }
    let mut entries = Vec::new();
    let mut token = String::new();
    loop {
        let request = pb::ListAuditEntriesRequest {
            parent: class.name.clone(),
            page_size: 3,
            page_token: token,
        };
        let page = svc
            .client
            .list_audit_entries(as_(CMDB_ADMIN, request))
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
    assert_eq!(actions, ["create", "update", "update", "update"]);
    let last = entries.last().unwrap();
    assert_eq!(last.changes[0].field, "description");
    assert_eq!(
        (
            last.changes[0].old_value.as_str(),
            last.changes[0].new_value.as_str()
        ),
        ("two", "three")
    );
    assert_eq!(last.actor.as_ref().unwrap().subject, "carla");
    assert!(last.name.starts_with("classes/pager/audit/"));

    // Unknown kinds of parent are not found; known ones without entries are empty.
    for parent in ["cis/abc", "", "tickets/1", "classes/"] {
        let request = pb::ListAuditEntriesRequest {
            parent: parent.into(),
            page_size: 0,
            page_token: String::new(),
        };
        let status = svc
            .client
            .list_audit_entries(as_(CMDB_ADMIN, request))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::NotFound, "{parent}");
    }
    assert!(
        audit_actions(&mut svc, "discoverySources/sccm")
            .await
            .is_empty()
    );
}
