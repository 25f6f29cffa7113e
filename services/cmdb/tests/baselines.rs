//! Baselines: capture now and at a past instant, the diff against the CMDB
//! now, at an instant and against another baseline, the entry filter and
//! paging, relationships held, and bad input refused with nothing written.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(missing_debug_implementations)]

#[path = "support/mod.rs"]
mod support;

use std::time::Duration;

use itsm_proto::itsm::cmdb::v1 as pb;
use itsm_store::audit::timestamp;
use itsm_testkit::{TestDb, backend_tests};
use prost_types::FieldMask;
use tonic::Code;

use support::{AGENT, CHANGE_MANAGER, CMDB_ADMIN, Harness, as_, bad_fields, ci, start, text};

backend_tests!(
    a_diff_against_now_shows_changed_added_and_removed,
    a_baseline_at_a_past_instant_holds_the_earlier_version,
    a_baseline_compares_with_another_baseline,
    diff_entries_filter_and_page,
    relationships_are_held_and_compared,
    bad_baselines_are_refused_and_nothing_is_written,
);

fn server(name: &str, group: &str) -> pb::Ci {
    let mut c = ci(
        "linux_server",
        name,
        &[("serial_number", text(&format!("SN-{name}")))],
    );
    c.support_group = group.to_owned();
    c
}

async fn set_group(h: &mut Harness, current: &pb::Ci, group: &str) -> pb::Ci {
    let request = pb::UpdateCiRequest {
        ci: Some(pb::Ci {
            name: current.name.clone(),
            support_group: group.to_owned(),
            ..pb::Ci::default()
        }),
        update_mask: Some(FieldMask {
            paths: vec!["support_group".into()],
        }),
        etag: current.etag.clone(),
    };
    h.client
        .update_ci(as_(CMDB_ADMIN, request))
        .await
        .unwrap()
        .into_inner()
}

async fn retire(h: &mut Harness, current: &pb::Ci) {
    let request = pb::RetireCiRequest {
        name: current.name.clone(),
        reason: "decommissioned".into(),
        etag: current.etag.clone(),
    };
    h.client.retire_ci(as_(CMDB_ADMIN, request)).await.unwrap();
}

fn baseline(display_name: &str, filter: &str) -> pb::Baseline {
    pb::Baseline {
        display_name: display_name.to_owned(),
        filter: filter.to_owned(),
        ..pb::Baseline::default()
    }
}

async fn capture(h: &mut Harness, b: pb::Baseline) -> pb::Baseline {
    let request = pb::CreateBaselineRequest {
        baseline: Some(b),
        request_id: String::new(),
    };
    h.client
        .create_baseline(as_(CHANGE_MANAGER, request))
        .await
        .unwrap()
        .into_inner()
}

fn diff_request(baseline: &pb::Baseline) -> pb::DiffBaselineRequest {
    pb::DiffBaselineRequest {
        baseline: baseline.name.clone(),
        ..pb::DiffBaselineRequest::default()
    }
}

async fn diff(h: &mut Harness, request: pb::DiffBaselineRequest) -> pb::DiffBaselineResponse {
    h.client
        .diff_baseline(as_(CHANGE_MANAGER, request))
        .await
        .unwrap()
        .into_inner()
}

/// `(resource, kind)` of every entry.
fn kinds(response: &pb::DiffBaselineResponse) -> Vec<(String, pb::DiffKind)> {
    response
        .entries
        .iter()
        .map(|e| (e.resource.clone(), e.kind()))
        .collect()
}

fn sorted(mut pairs: Vec<(String, pb::DiffKind)>) -> Vec<(String, pb::DiffKind)> {
    pairs.sort();
    pairs
}

async fn a_diff_against_now_shows_changed_added_and_removed(db: TestDb) {
    let mut h = start(&db).await;
    let web = h.create(server("web-01", "unix")).await;
    let old = h.create(server("web-02", "unix")).await;
    let steady = h.create(server("db-01", "dba")).await;
    let base = capture(&mut h, baseline("before the change", "")).await;
    assert!(base.name.starts_with("baselines/"));
    assert_eq!(base.ci_count, 3);
    assert_eq!(base.relationship_count, 0);
    assert_eq!(base.created_by.as_ref().unwrap().subject, "cora");
    assert_eq!(h.event_names(&base.name).await, ["cmdb.baseline.created"]);

    set_group(&mut h, &web, "linux-ops").await;
    let new = h.create(server("web-03", "unix")).await;
    retire(&mut h, &old).await;

    let response = diff(&mut h, diff_request(&base)).await;
    let expected = sorted(vec![
        (web.name.clone(), pb::DiffKind::Changed),
        (new.name.clone(), pb::DiffKind::Added),
        (old.name.clone(), pb::DiffKind::Removed),
    ]);
    assert_eq!(kinds(&response), expected, "ordered by resource name");
    assert!(!kinds(&response).iter().any(|(r, _)| *r == steady.name));
    let changed = response
        .entries
        .iter()
        .find(|e| e.resource == web.name)
        .unwrap();
    assert_eq!(changed.display_name, "web-01");
    assert_eq!(changed.ci_class, "classes/linux_server");
    let group = changed
        .changes
        .iter()
        .find(|c| c.field == "support_group")
        .expect("the support group change");
    assert_eq!(
        (group.old_value.as_str(), group.new_value.as_str()),
        ("unix", "linux-ops")
    );
    assert!(changed.changes.iter().all(|c| c.field != "etag"));
    assert_eq!(
        (
            response.added_count,
            response.removed_count,
            response.changed_count
        ),
        (1, 1, 1)
    );
    assert!(response.next_page_token.is_empty());

    // Reads: get and list (newest first).
    let got = h
        .client
        .get_baseline(as_(
            CHANGE_MANAGER,
            pb::GetBaselineRequest {
                name: base.name.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got, base);
    let second = capture(&mut h, baseline("after the change", "")).await;
    assert_eq!(second.ci_count, 3, "web-01, db-01, web-03; web-02 retired");
    let listed = h
        .client
        .list_baselines(as_(CHANGE_MANAGER, pb::ListBaselinesRequest::default()))
        .await
        .unwrap()
        .into_inner();
    let names: Vec<&str> = listed.baselines.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(names, [second.name.as_str(), base.name.as_str()]);
    let page = h
        .client
        .list_baselines(as_(
            CHANGE_MANAGER,
            pb::ListBaselinesRequest {
                page_size: 1,
                ..pb::ListBaselinesRequest::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.baselines.len(), 1);
    let rest = h
        .client
        .list_baselines(as_(
            CHANGE_MANAGER,
            pb::ListBaselinesRequest {
                page_size: 1,
                page_token: page.next_page_token,
                ..pb::ListBaselinesRequest::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rest.baselines[0].name, base.name);
    assert!(rest.next_page_token.is_empty());

    // Not found, and agents may not read baselines.
    let missing = h
        .client
        .get_baseline(as_(
            CHANGE_MANAGER,
            pb::GetBaselineRequest {
                name: "baselines/5f0c8a4e-2a4b-4f57-9d0c-1c2d3e4f5a6b".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    let denied = h
        .client
        .diff_baseline(as_(AGENT, diff_request(&base)))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
}

async fn a_baseline_at_a_past_instant_holds_the_earlier_version(db: TestDb) {
    let mut h = start(&db).await;
    let before_any = itsm_store::now_micros();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let web = h.create(server("web-01", "unix")).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let between = itsm_store::now_micros();
    tokio::time::sleep(Duration::from_millis(20)).await;
    set_group(&mut h, &web, "dba").await;
    let later = h.create(server("web-02", "unix")).await;

    let mut past = baseline("between the changes", "");
    past.snapshot_time = Some(timestamp(between));
    let past = capture(&mut h, past).await;
    assert_eq!(past.ci_count, 1, "web-02 did not exist yet");
    assert_eq!(past.snapshot_time, Some(timestamp(between)));

    // The version held is the earlier one: against now, the group changed.
    let response = diff(&mut h, diff_request(&past)).await;
    assert_eq!(
        kinds(&response),
        sorted(vec![
            (web.name.clone(), pb::DiffKind::Changed),
            (later.name.clone(), pb::DiffKind::Added),
        ])
    );
    let change = &response
        .entries
        .iter()
        .find(|e| e.resource == web.name)
        .unwrap()
        .changes;
    assert!(
        change
            .iter()
            .any(|c| c.field == "support_group" && c.old_value == "unix" && c.new_value == "dba")
    );

    // Against the CMDB at the instant it captured: no difference.
    let mut same = diff_request(&past);
    same.compare_to = Some(pb::diff_baseline_request::CompareTo::CompareTime(
        timestamp(between),
    ));
    let response = diff(&mut h, same).await;
    assert!(response.entries.is_empty(), "{response:?}");

    // Before the first CI: empty; the diff against now adds both.
    let mut empty = baseline("before anything", "");
    empty.snapshot_time = Some(timestamp(before_any));
    let empty = capture(&mut h, empty).await;
    assert_eq!(empty.ci_count, 0);
    let response = diff(&mut h, diff_request(&empty)).await;
    assert_eq!(response.added_count, 2);

    // A filter is applied to the CIs as they were: web-01 was "unix" then.
    let mut unix = baseline("unix then", "support_group = \"unix\"");
    unix.snapshot_time = Some(timestamp(between));
    assert_eq!(capture(&mut h, unix).await.ci_count, 1);
    let unix_now = capture(&mut h, baseline("unix now", "support_group = \"unix\"")).await;
    assert_eq!(unix_now.ci_count, 1, "only web-02 now");
}

async fn a_baseline_compares_with_another_baseline(db: TestDb) {
    let mut h = start(&db).await;
    let web = h.create(server("web-01", "unix")).await;
    let old = h.create(server("web-02", "unix")).await;
    let first = capture(&mut h, baseline("first", "")).await;
    let web = set_group(&mut h, &web, "linux-ops").await;
    retire(&mut h, &old).await;
    let new = h.create(server("web-03", "unix")).await;
    let second = capture(&mut h, baseline("second", "")).await;
    // Later changes do not move either baseline.
    set_group(&mut h, &web, "someone-else").await;

    let mut request = diff_request(&first);
    request.compare_to = Some(pb::diff_baseline_request::CompareTo::OtherBaseline(
        second.name.clone(),
    ));
    let forward = diff(&mut h, request).await;
    assert_eq!(
        kinds(&forward),
        sorted(vec![
            (web.name.clone(), pb::DiffKind::Changed),
            (old.name.clone(), pb::DiffKind::Removed),
            (new.name.clone(), pb::DiffKind::Added),
        ])
    );
    let change = forward
        .entries
        .iter()
        .find(|e| e.resource == web.name)
        .unwrap();
    let group = change
        .changes
        .iter()
        .find(|c| c.field == "support_group")
        .unwrap();
    assert_eq!(
        (group.old_value.as_str(), group.new_value.as_str()),
        ("unix", "linux-ops")
    );

    let mut request = diff_request(&second);
    request.compare_to = Some(pb::diff_baseline_request::CompareTo::OtherBaseline(
        first.name.clone(),
    ));
    let backward = diff(&mut h, request).await;
    let kinds_back: Vec<(String, pb::DiffKind)> = kinds(&backward);
    assert!(kinds_back.contains(&(old.name.clone(), pb::DiffKind::Added)));
    assert!(kinds_back.contains(&(new.name.clone(), pb::DiffKind::Removed)));
    let change = backward
        .entries
        .iter()
        .find(|e| e.resource == web.name)
        .unwrap();
    let group = change
        .changes
        .iter()
        .find(|c| c.field == "support_group")
        .unwrap();
    assert_eq!(
        (group.old_value.as_str(), group.new_value.as_str()),
        ("linux-ops", "unix")
    );

    // A baseline against itself: nothing.
    let mut request = diff_request(&first);
    request.compare_to = Some(pb::diff_baseline_request::CompareTo::OtherBaseline(
        first.name.clone(),
    ));
    assert!(diff(&mut h, request).await.entries.is_empty());

    let mut request = diff_request(&first);
    request.compare_to = Some(pb::diff_baseline_request::CompareTo::OtherBaseline(
        "baselines/5f0c8a4e-2a4b-4f57-9d0c-1c2d3e4f5a6b".into(),
    ));
    let missing = h
        .client
        .diff_baseline(as_(CHANGE_MANAGER, request))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
}

async fn diff_entries_filter_and_page(db: TestDb) {
    let mut h = start(&db).await;
    let base = capture(&mut h, baseline("empty", "")).await;
    let mut linux = Vec::new();
    for i in 0..3 {
        linux.push(h.create(server(&format!("lin-{i}"), "unix")).await.name);
    }
    let mut windows = Vec::new();
    for i in 0..2 {
        let c = ci(
            "windows_server",
            &format!("win-{i}"),
            &[("serial_number", text(&format!("W-{i}")))],
        );
        windows.push(h.create(c).await.name);
    }
    let app = h.create(ci("application", "shop", &[])).await.name;
    let mut all: Vec<String> = linux.iter().chain(&windows).cloned().collect();
    all.push(app.clone());
    all.sort();

    let filtered = |filter: &str| {
        let mut request = diff_request(&base);
        request.filter = filter.to_owned();
        request
    };
    let resources = |r: &pb::DiffBaselineResponse| -> Vec<String> {
        r.entries.iter().map(|e| e.resource.clone()).collect()
    };
    let everything = diff(&mut h, filtered("")).await;
    assert_eq!(resources(&everything), all);

    let servers = diff(&mut h, filtered("ci_class = \"classes/server\"")).await;
    assert_eq!(servers.entries.len(), 5, "the class and its subclasses");
    assert_eq!(servers.added_count, 5);
    let only_linux = diff(&mut h, filtered("ci_class = \"classes/linux_server\"")).await;
    let mut expected = linux.clone();
    expected.sort();
    assert_eq!(resources(&only_linux), expected);
    let not_servers = diff(&mut h, filtered("NOT ci_class = \"classes/server\"")).await;
    assert_eq!(resources(&not_servers), std::slice::from_ref(&app));
    let changed = diff(&mut h, filtered("kind = CHANGED")).await;
    assert!(changed.entries.is_empty());
    assert_eq!(changed.added_count, 0);
    let one = diff(
        &mut h,
        filtered(&format!("kind = ADDED AND resource = \"{app}\"")),
    )
    .await;
    assert_eq!(resources(&one), std::slice::from_ref(&app));

    for bad in [
        "color = red",
        "kind = MOVED",
        "ci_class = \"classes/nope\"",
        "kind >",
    ] {
        let status = h
            .client
            .diff_baseline(as_(CHANGE_MANAGER, filtered(bad)))
            .await
            .unwrap_err();
        assert_eq!(bad_fields(&status), ["filter"], "{bad}");
    }

    // Pages of 2 make up the whole diff; totals count the whole diff on every page.
    let mut seen = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let mut request = filtered("");
        request.page_size = 2;
        request.page_token = token;
        let page = diff(&mut h, request).await;
        assert!(page.entries.len() <= 2);
        assert_eq!(page.added_count, 6);
        seen.extend(resources(&page));
        pages += 1;
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
        // A token is bound to its diff: another filter refuses it.
        let mut other = filtered("kind = ADDED");
        other.page_token = token.clone();
        let status = h
            .client
            .diff_baseline(as_(CHANGE_MANAGER, other))
            .await
            .unwrap_err();
        assert_eq!(bad_fields(&status), ["page_token"]);
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, all);
}

async fn relationships_are_held_and_compared(db: TestDb) {
    let mut h = start(&db).await;
    let host = h.create(server("host-01", "unix")).await;
    let other_host = h.create(server("host-02", "unix")).await;
    let app = h.create(ci("application", "shop", &[])).await;
    let runs = h.relate(&app.name, "runs_on", &host.name).await;
    // Outside a filtered baseline: an edge to a CI it does not hold.
    let mut with = baseline("with edges", "");
    with.include_relationships = true;
    let base = capture(&mut h, with).await;
    assert_eq!(base.ci_count, 3);
    assert_eq!(base.relationship_count, 1);
    let mut narrow = baseline("servers only", "ci_class = \"classes/server\"");
    narrow.include_relationships = true;
    let narrow = capture(&mut h, narrow).await;
    assert_eq!(narrow.ci_count, 2);
    assert_eq!(narrow.relationship_count, 0, "the app is not held");
    let without = capture(&mut h, baseline("without edges", "")).await;
    assert_eq!(without.relationship_count, 0);

    tokio::time::sleep(Duration::from_millis(20)).await;
    let between = itsm_store::now_micros();
    tokio::time::sleep(Duration::from_millis(20)).await;
    h.client
        .delete_relationship(as_(
            CMDB_ADMIN,
            pb::DeleteRelationshipRequest {
                name: runs.name.clone(),
            },
        ))
        .await
        .unwrap();
    let moved = h.relate(&app.name, "runs_on", &other_host.name).await;

    let response = diff(&mut h, diff_request(&base)).await;
    assert_eq!(
        kinds(&response),
        sorted(vec![
            (runs.name.clone(), pb::DiffKind::Removed),
            (moved.name.clone(), pb::DiffKind::Added),
        ])
    );
    let entry = &response.entries[0];
    assert!(entry.display_name.contains("runs_on"), "{entry:?}");
    let relationships_only = {
        let mut request = diff_request(&base);
        request.filter = "resource:\"relationships/\"".into();
        diff(&mut h, request).await
    };
    assert_eq!(relationships_only.entries.len(), 2);

    // A baseline at an instant the deleted relationship was alive holds it.
    let mut past = baseline("while it ran there", "");
    past.include_relationships = true;
    past.snapshot_time = Some(timestamp(between));
    let past = capture(&mut h, past).await;
    assert_eq!(past.relationship_count, 1);
    let mut request = diff_request(&past);
    request.compare_to = Some(pb::diff_baseline_request::CompareTo::OtherBaseline(
        base.name.clone(),
    ));
    assert!(diff(&mut h, request).await.entries.is_empty());

    // Without relationships held, a diff shows none.
    let response = diff(&mut h, diff_request(&without)).await;
    assert!(response.entries.is_empty(), "{response:?}");
}

async fn bad_baselines_are_refused_and_nothing_is_written(db: TestDb) {
    let mut h = start(&db).await;
    h.create(server("web-01", "unix")).await;
    let future = itsm_store::now_micros() + 3_600_000_000;
    let request = pb::CreateBaselineRequest {
        baseline: Some(pb::Baseline {
            display_name: "  ".into(),
            filter: "support_group = ".into(),
            snapshot_time: Some(timestamp(future)),
            ..pb::Baseline::default()
        }),
        request_id: "x".repeat(200),
    };
    let status = h
        .client
        .create_baseline(as_(CHANGE_MANAGER, request))
        .await
        .unwrap_err();
    let mut fields = bad_fields(&status);
    fields.sort();
    assert_eq!(
        fields,
        [
            "baseline.display_name",
            "baseline.filter",
            "baseline.snapshot_time",
            "request_id"
        ]
    );
    let status = h
        .client
        .create_baseline(as_(CHANGE_MANAGER, pb::CreateBaselineRequest::default()))
        .await
        .unwrap_err();
    assert!(bad_fields(&status).contains(&"baseline".to_owned()));
    assert_eq!(h.count("baselines").await, 0);
    assert_eq!(h.count("baseline_cis").await, 0);

    // A retry with the same request id returns the first baseline.
    let request = pb::CreateBaselineRequest {
        baseline: Some(baseline("release 4.2", "")),
        request_id: "5f0c8a4e-2a4b-4f57-9d0c-1c2d3e4f5a6b".into(),
    };
    let first = h
        .client
        .create_baseline(as_(CHANGE_MANAGER, request.clone()))
        .await
        .unwrap()
        .into_inner();
    let again = h
        .client
        .create_baseline(as_(CHANGE_MANAGER, request.clone()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first, again);
    assert_eq!(h.count("baselines").await, 1);
    let mut reused = request;
    reused.baseline.as_mut().unwrap().display_name = "other".into();
    let status = h
        .client
        .create_baseline(as_(CHANGE_MANAGER, reused))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists);

    // Bad diff requests name their fields.
    let request = pb::DiffBaselineRequest {
        baseline: "nope".into(),
        compare_to: Some(pb::diff_baseline_request::CompareTo::CompareTime(
            timestamp(future),
        )),
        page_size: -1,
        ..pb::DiffBaselineRequest::default()
    };
    let status = h
        .client
        .diff_baseline(as_(CHANGE_MANAGER, request))
        .await
        .unwrap_err();
    let mut fields = bad_fields(&status);
    fields.sort();
    assert_eq!(fields, ["baseline", "compare_time", "page_size"]);
}
