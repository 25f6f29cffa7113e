//! ListCiHistory (entries with source and actor, filters, order, pages) and
//! GetCiAsOf.

use itsm_proto::itsm::cmdb::v1 as pb;
use itsm_testkit::{TestDb, backend_tests};
use tonic::Code;

use crate::support::{AGENT, Harness, as_, bad_fields, ci, number, start};
use crate::try_update;

backend_tests!(
    history_lists_every_change_with_its_source_and_actor,
    as_of_reads_return_the_ci_as_it_was,
);

async fn history(
    h: &mut Harness,
    parent: &str,
    filter: &str,
    order_by: &str,
) -> Vec<pb::CiHistoryEntry> {
    let request = pb::ListCiHistoryRequest {
        parent: parent.to_owned(),
        page_size: 0,
        page_token: String::new(),
        filter: filter.to_owned(),
        order_by: order_by.to_owned(),
    };
    let reply = h.client.list_ci_history(as_(AGENT, request)).await;
    reply
        .unwrap_or_else(|e| panic!("{filter}: {e:?}"))
        .into_inner()
        .entries
}

fn actions(entries: &[pb::CiHistoryEntry]) -> Vec<String> {
    entries
        .iter()
        .map(|e| e.entry.as_ref().unwrap().action.clone())
        .collect()
}

async fn history_lists_every_change_with_its_source_and_actor(db: TestDb) {
    let mut h = start(&db).await;
    let created = h.create(ci("linux_server", "web-01", &[])).await;
    let mut change = pb::Ci {
        name: created.name.clone(),
        support_group: "groups/unix".into(),
        ..pb::Ci::default()
    };
    change.attributes.insert("cpu_count".into(), number(8.0));
    try_update(
        &mut h,
        change,
        &["support_group", "attributes.cpu_count"],
        "v1",
    )
    .await
    .unwrap();

    let all = history(&mut h, &created.name, "", "").await;
    assert_eq!(actions(&all), ["create", "update"]);
    let update = all[1].entry.as_ref().unwrap();
    assert_eq!(all[1].discovery_source, "discoverySources/manual");
    assert_eq!(update.actor.as_ref().unwrap().subject, "carla");
    assert_eq!(update.resource, created.name);
    assert!(
        update
            .name
            .starts_with(&format!("{}/history/", created.name))
    );
    let changes: Vec<(&str, &str, &str)> = update
        .changes
        .iter()
        .map(|c| (c.field.as_str(), c.old_value.as_str(), c.new_value.as_str()))
        .collect();
    assert_eq!(
        changes,
        [
            ("support_group", "", "groups/unix"),
            ("attributes.cpu_count", "", "8")
        ]
    );

    let cpu = history(
        &mut h,
        &created.name,
        r#"field = "attributes.cpu_count""#,
        "",
    )
    .await;
    assert_eq!(actions(&cpu), ["update"]);
    let created_only = history(&mut h, &created.name, r#"action = "create""#, "").await;
    assert_eq!(actions(&created_only), ["create"]);
    let manual = history(
        &mut h,
        &created.name,
        r#"discovery_source = "discoverySources/manual""#,
        "",
    )
    .await;
    assert_eq!(manual.len(), 2);
    let sccm = history(
        &mut h,
        &created.name,
        r#"discovery_source = "discoverySources/sccm""#,
        "",
    )
    .await;
    assert!(sccm.is_empty());
    let newest_first = history(&mut h, &created.name, "", "time desc").await;
    assert_eq!(actions(&newest_first), ["update", "create"]);

    let first_page = pb::ListCiHistoryRequest {
        parent: created.name.clone(),
        page_size: 1,
        ..pb::ListCiHistoryRequest::default()
    };
    let page = h
        .client
        .list_ci_history(as_(AGENT, first_page.clone()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(actions(&page.entries), ["create"]);
    let next = pb::ListCiHistoryRequest {
        page_token: page.next_page_token,
        ..first_page
    };
    let page = h
        .client
        .list_ci_history(as_(AGENT, next))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(actions(&page.entries), ["update"]);
    assert_eq!(page.next_page_token, "");

    let bad = pb::ListCiHistoryRequest {
        parent: created.name.clone(),
        filter: "colour = red".into(),
        ..pb::ListCiHistoryRequest::default()
    };
    let status = h.client.list_ci_history(as_(AGENT, bad)).await.unwrap_err();
    assert_eq!(bad_fields(&status), ["filter"]);
    let missing = pb::ListCiHistoryRequest {
        parent: "cis/00000000-0000-4000-8000-000000000000".into(),
        ..pb::ListCiHistoryRequest::default()
    };
    let status = h
        .client
        .list_ci_history(as_(AGENT, missing))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
}

async fn as_of_reads_return_the_ci_as_it_was(db: TestDb) {
    let mut h = start(&db).await;
    let created = h.create(ci("linux_server", "web-01", &[])).await;
    let change = pb::Ci {
        name: created.name.clone(),
        support_group: "groups/unix".into(),
        ..pb::Ci::default()
    };
    let updated = try_update(&mut h, change, &["support_group"], "v1")
        .await
        .unwrap();
    let as_of = |read_time: Option<prost_types::Timestamp>| pb::GetCiAsOfRequest {
        name: created.name.clone(),
        read_time,
    };
    let at_creation = h
        .client
        .get_ci_as_of(as_(AGENT, as_of(created.create_time)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(at_creation.support_group, "");
    assert_eq!(at_creation.etag, "v1");
    let now = h
        .client
        .get_ci_as_of(as_(AGENT, as_of(updated.update_time)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(now.support_group, "groups/unix");
    assert_eq!(now.etag, "v2");

    let mut before = created.create_time.unwrap();
    before.seconds -= 1;
    let status = h
        .client
        .get_ci_as_of(as_(AGENT, as_of(Some(before))))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let status = h
        .client
        .get_ci_as_of(as_(AGENT, as_of(None)))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["read_time"]);
}
