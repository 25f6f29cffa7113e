//! UpdateCi (masks, etags, attributes one by one, reclassification) and
//! RetireCi, with their events.

use itsm_proto::itsm::cmdb::v1 as pb;
use itsm_testkit::{TestDb, backend_tests};
use tonic::Code;

use crate::support::{CMDB_ADMIN, as_, bad_fields, ci, number, precondition, start, text};
use crate::{choice, try_update};

backend_tests!(
    updates_change_the_masked_fields_at_the_current_etag,
    bad_updates_name_every_field_and_change_nothing,
    reclassifying_checks_attributes_against_the_new_class,
    a_retired_ci_is_read_only,
);

fn named(name: &str) -> pb::Ci {
    pb::Ci {
        name: name.to_owned(),
        ..pb::Ci::default()
    }
}

async fn updates_change_the_masked_fields_at_the_current_etag(db: TestDb) {
    let mut h = start(&db).await;
    let mut planned = ci(
        "linux_server",
        "web-01",
        &[("cpu_count", number(4.0)), ("os_version", text("22.04"))],
    );
    planned.status = pb::CiStatus::Planned as i32;
    let created = h.create(planned).await;
    let mut change = named(&created.name);
    change.support_group = "groups/unix".into();
    change.owner = "ignored: not in the mask".into();
    change.attributes.insert("cpu_count".into(), number(8.0));
    let updated = try_update(
        &mut h,
        change.clone(),
        &[
            "support_group",
            "attributes.cpu_count",
            "attributes.os_version",
        ],
        "v1",
    )
    .await
    .unwrap();
    assert_eq!(updated.etag, "v2");
    assert_eq!(updated.support_group, "groups/unix");
    assert_eq!(updated.owner, "");
    assert_eq!(updated.attributes["cpu_count"], number(8.0));
    assert!(!updated.attributes.contains_key("os_version"), "cleared");
    assert_eq!(
        updated.provenance["attributes.cpu_count"].discovery_source,
        "discoverySources/manual"
    );
    assert_eq!(h.count("ci_attributes").await, 1);

    // The same etag again is stale.
    let stale = try_update(&mut h, change, &["support_group"], "v1")
        .await
        .unwrap_err();
    assert_eq!(stale.code(), Code::Aborted, "{stale:?}");

    let mut status = named(&created.name);
    status.status = pb::CiStatus::Operational as i32;
    let operational = try_update(&mut h, status, &["status"], "v2").await.unwrap();
    assert_eq!(operational.status, pb::CiStatus::Operational as i32);
    assert_eq!(operational.etag, "v3");
    // Nothing differs: no version, no event.
    let mut same = named(&created.name);
    same.status = pb::CiStatus::Operational as i32;
    let unchanged = try_update(&mut h, same, &["status"], "v3").await.unwrap();
    assert_eq!(unchanged.etag, "v3");
    assert_eq!(
        h.event_names(&created.name).await,
        [
            "cmdb.ci.created",
            "cmdb.ci.updated",
            "cmdb.ci.status_changed"
        ]
    );
}

async fn bad_updates_name_every_field_and_change_nothing(db: TestDb) {
    let mut h = start(&db).await;
    let created = h.create(ci("linux_server", "web-01", &[])).await;
    let site = h.create(ci("location", "Paris", &[])).await;
    let _ = site;
    let status = try_update(&mut h, named(&created.name), &["name"], "")
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["update_mask", "etag"]);

    let mut bad = named(&created.name);
    bad.display_name = String::new();
    bad.status = pb::CiStatus::Retired as i32;
    bad.min_members_up = -2;
    bad.location.clone_from(&created.name);
    bad.attributes.insert("cpu_count".into(), text("many"));
    bad.attributes.insert("distribution".into(), choice("dos"));
    let status = try_update(
        &mut h,
        bad,
        &[
            "display_name",
            "status",
            "min_members_up",
            "location",
            "attributes.cpu_count",
            "attributes.distribution",
        ],
        "v1",
    )
    .await
    .unwrap_err();
    let fields = bad_fields(&status);
    for field in [
        "ci.display_name",
        "ci.status",
        "ci.min_members_up",
        "ci.location",
        "ci.attributes.cpu_count",
        "ci.attributes.distribution",
    ] {
        assert!(fields.contains(&field.to_owned()), "{field}: {fields:?}");
    }
    let missing = try_update(
        &mut h,
        named("cis/00000000-0000-4000-8000-000000000000"),
        &["owner"],
        "v1",
    )
    .await
    .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    assert_eq!(h.get(&created.name).await.unwrap().etag, "v1");
    assert_eq!(h.count("ci_versions").await, 2);
}

async fn reclassifying_checks_attributes_against_the_new_class(db: TestDb) {
    let mut h = start(&db).await;
    let created = h
        .create(ci(
            "linux_server",
            "web-01",
            &[
                ("distribution", choice("ubuntu")),
                ("cpu_count", number(4.0)),
            ],
        ))
        .await;
    let mut windows = named(&created.name);
    windows.ci_class = "classes/windows_server".into();
    let status = try_update(&mut h, windows.clone(), &["ci_class"], "v1")
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["ci.attributes.distribution"]);

    windows
        .attributes
        .insert("edition".into(), choice("standard"));
    windows.attributes.insert("cpu_count".into(), number(4.0));
    let moved = try_update(&mut h, windows, &["ci_class", "attributes"], "v1")
        .await
        .unwrap();
    assert_eq!(moved.ci_class, "classes/windows_server");
    assert_eq!(moved.attributes.len(), 2);
    assert_eq!(
        h.event_names(&created.name).await,
        ["cmdb.ci.created", "cmdb.ci.reclassified"]
    );
    let actions: Vec<String> = sqlx::query_scalar("SELECT action FROM ci_history ORDER BY id")
        .fetch_all(h.db.pool())
        .await
        .unwrap();
    assert_eq!(actions, ["create", "reclassify"]);
}

async fn a_retired_ci_is_read_only(db: TestDb) {
    let mut h = start(&db).await;
    let created = h.create(ci("linux_server", "web-01", &[])).await;
    let retire = |reason: &str, etag: &str| pb::RetireCiRequest {
        name: created.name.clone(),
        reason: reason.to_owned(),
        etag: etag.to_owned(),
    };
    let status = h
        .client
        .retire_ci(as_(CMDB_ADMIN, retire(" ", "v1")))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["reason"]);
    let stale = h
        .client
        .retire_ci(as_(CMDB_ADMIN, retire("decommissioned", "v7")))
        .await
        .unwrap_err();
    assert_eq!(stale.code(), Code::Aborted);

    let retired = h
        .client
        .retire_ci(as_(CMDB_ADMIN, retire("decommissioned", "v1")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(retired.status, pb::CiStatus::Retired as i32);
    assert_eq!(retired.retire_reason, "decommissioned");
    assert!(retired.retire_time.is_some());
    assert_eq!(retired.etag, "v2");

    let mut change = named(&created.name);
    change.owner = "ada".into();
    let refused = try_update(&mut h, change, &["owner"], "v2")
        .await
        .unwrap_err();
    assert_eq!(precondition(&refused).1, created.name);
    let again = h
        .client
        .retire_ci(as_(CMDB_ADMIN, retire("twice", "")))
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition);
    assert_eq!(
        h.event_names(&created.name).await,
        ["cmdb.ci.created", "cmdb.ci.retired"]
    );
}
