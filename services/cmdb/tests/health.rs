//! The health report: duplicates, orphans (and exempt locations), stale CIs
//! and missing required attributes counted per class; ListHealthIssues with
//! its filters and pages; the refresh job under its lease.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(missing_debug_implementations)]

#[path = "support/mod.rs"]
mod support;

use std::time::Duration;

use itsm_proto::itsm::cmdb::v1 as pb;
use itsm_testkit::{TestDb, backend_tests};
use prost_types::FieldMask;
use tokio_util::sync::CancellationToken;
use tonic::Code;

use support::{AGENT, CMDB_ADMIN, Harness, as_, bad_fields, ci, start, text};

backend_tests!(
    the_report_counts_every_kind_of_finding,
    the_job_computes_once_per_interval_under_a_lease,
);

const DAY: i64 = 86_400_000_000;

fn server(name: &str, serial: &str, kernel: Option<&str>) -> pb::Ci {
    let mut attributes = vec![("serial_number", text(serial))];
    if let Some(kernel) = kernel {
        attributes.push(("kernel_version", text(kernel)));
    }
    ci("linux_server", name, &attributes)
}

async fn id_of(h: &Harness, ci: &pb::Ci) -> i64 {
    sqlx::query_scalar("SELECT id FROM cis WHERE uid = $1")
        .bind(itsm_cmdb::ci_uid(&ci.name).unwrap())
        .fetch_one(h.db.pool())
        .await
        .unwrap()
}

async fn sql(h: &Harness, statement: &str, a: i64, b: i64) {
    sqlx::query(sqlx::AssertSqlSafe(statement.to_owned()))
        .bind(a)
        .bind(b)
        .execute(h.db.pool())
        .await
        .unwrap();
}

/// Makes `key` of linux servers required (after CIs without it exist).
async fn require(h: &mut Harness, key: &str) {
    let class = h
        .client
        .get_ci_class(as_(
            CMDB_ADMIN,
            pb::GetCiClassRequest {
                name: "classes/linux_server".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let mut attributes = class.attributes.clone();
    for a in &mut attributes {
        if a.key == key {
            a.required = true;
        }
        a.defined_in = String::new();
    }
    let request = pb::UpdateCiClassRequest {
        ci_class: Some(pb::CiClass {
            name: class.name.clone(),
            attributes,
            ..pb::CiClass::default()
        }),
        update_mask: Some(FieldMask {
            paths: vec!["attributes".into()],
        }),
        etag: class.etag.clone(),
    };
    h.client
        .update_ci_class(as_(CMDB_ADMIN, request))
        .await
        .unwrap();
}

async fn issues(h: &mut Harness, filter: &str) -> Vec<pb::HealthIssue> {
    let request = pb::ListHealthIssuesRequest {
        filter: filter.to_owned(),
        page_size: 100,
        ..pb::ListHealthIssuesRequest::default()
    };
    h.client
        .list_health_issues(as_(CMDB_ADMIN, request))
        .await
        .unwrap()
        .into_inner()
        .issues
}

fn pairs(found: &[pb::HealthIssue]) -> Vec<(pb::HealthIssueKind, String)> {
    found.iter().map(|i| (i.kind(), i.ci.clone())).collect()
}

async fn the_report_counts_every_kind_of_finding(db: TestDb) {
    let mut h = start(&db).await;
    let first = h.create(server("web-01", "SN-1", Some("6.1"))).await;
    let second = h.create(server("web-02", "SN-2", Some("6.1"))).await;
    let mut lonely = server("lonely", "SN-3", None);
    lonely.support_group = "unix-team".into();
    let lonely = h.create(lonely).await;
    let paris = h.create(ci("location", "Paris", &[])).await;
    let gone = h.create(server("gone", "SN-4", None)).await;
    h.relate(&first.name, "depends_on", &second.name).await;
    h.client
        .retire_ci(as_(
            CMDB_ADMIN,
            pb::RetireCiRequest {
                name: gone.name.clone(),
                reason: "scrapped".into(),
                etag: gone.etag.clone(),
            },
        ))
        .await
        .unwrap();

    // Two servers with one serial (identification would have refused the
    // second create), one seen long ago, one never seen and created long ago.
    let (first_id, second_id) = (id_of(&h, &first).await, id_of(&h, &second).await);
    sqlx::query(
        "UPDATE ci_attributes SET text_value = 'sn-1 ', norm_value = 'sn-1' \
         WHERE ci_id = $1 AND key = 'serial_number'",
    )
    .bind(second_id)
    .execute(h.db.pool())
    .await
    .unwrap();
    let now = itsm_store::now_micros();
    sql(
        &h,
        "UPDATE cis SET last_seen_at = $1 WHERE id = $2",
        now - 90 * DAY,
        first_id,
    )
    .await;
    sql(
        &h,
        "UPDATE cis SET last_seen_at = 0, created_at = $1 WHERE id = $2",
        now - 90 * DAY,
        second_id,
    )
    .await;
    require(&mut h, "kernel_version").await;

    let report = h
        .client
        .get_health_report(as_(CMDB_ADMIN, pb::GetHealthReportRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(report.name, "healthReport");
    assert_eq!(report.ci_count, 4, "the retired CI is left out");
    assert_eq!(report.duplicate_count, 2);
    assert_eq!(report.orphan_count, 1, "Paris is a location: exempt");
    assert_eq!(report.stale_count, 2);
    assert_eq!(report.missing_required_count, 1);
    let classes: Vec<(&str, i64, [i64; 4])> = report
        .classes
        .iter()
        .map(|c| {
            (
                c.ci_class.as_str(),
                c.ci_count,
                [
                    c.duplicate_count,
                    c.orphan_count,
                    c.stale_count,
                    c.missing_required_count,
                ],
            )
        })
        .collect();
    assert_eq!(
        classes,
        [
            ("classes/linux_server", 3, [2, 1, 2, 1]),
            ("classes/location", 1, [0, 0, 0, 0]),
        ],
        "classes with findings first"
    );
    let events = h.event_names("healthReport").await;
    assert_eq!(events, ["cmdb.health_report.computed"]);

    // The findings, ordered by kind then CI.
    let all = issues(&mut h, "").await;
    let mut dup = vec![first.name.clone(), second.name.clone()];
    dup.sort();
    let mut stale = dup.clone();
    stale.sort();
    let mut expected = vec![
        (pb::HealthIssueKind::Duplicate, dup[0].clone()),
        (pb::HealthIssueKind::Duplicate, dup[1].clone()),
        (pb::HealthIssueKind::Orphan, lonely.name.clone()),
        (pb::HealthIssueKind::Stale, stale[0].clone()),
        (pb::HealthIssueKind::Stale, stale[1].clone()),
        (pb::HealthIssueKind::MissingRequired, lonely.name.clone()),
    ];
    expected.sort_by_key(|(k, c)| (*k as i32, itsm_cmdb::ci_uid(c).unwrap().to_owned()));
    assert_eq!(pairs(&all), expected);
    assert!(all.iter().all(|i| i.ci != paris.name && i.ci != gone.name));
    for issue in all
        .iter()
        .filter(|i| i.kind() == pb::HealthIssueKind::Duplicate)
    {
        let other = if issue.ci == first.name {
            &second.name
        } else {
            &first.name
        };
        assert_eq!(issue.duplicate_cis, std::slice::from_ref(other));
        assert_eq!(issue.matched_rule, ["serial_number"]);
        assert_eq!(issue.ci_class, "classes/linux_server");
    }
    let stale_first = all
        .iter()
        .find(|i| i.kind() == pb::HealthIssueKind::Stale && i.ci == first.name)
        .unwrap();
    assert_eq!(
        stale_first.last_seen_time,
        Some(itsm_store::audit::timestamp(now - 90 * DAY))
    );
    let stale_second = all
        .iter()
        .find(|i| i.kind() == pb::HealthIssueKind::Stale && i.ci == second.name)
        .unwrap();
    assert_eq!(stale_second.last_seen_time, None, "never seen");
    let missing = all
        .iter()
        .find(|i| i.kind() == pb::HealthIssueKind::MissingRequired)
        .unwrap();
    assert_eq!(missing.missing_attributes, ["kernel_version"]);
    assert_eq!(missing.display_name, "lonely");

    // Filters: kind, class with subclasses, support group.
    assert_eq!(issues(&mut h, "kind = DUPLICATE").await.len(), 2);
    assert_eq!(
        issues(&mut h, "kind = STALE OR kind = ORPHAN").await.len(),
        3
    );
    assert_eq!(
        issues(&mut h, "ci_class = \"classes/server\"").await.len(),
        6
    );
    assert_eq!(
        issues(&mut h, "ci_class = \"classes/hardware\" AND kind = ORPHAN")
            .await
            .len(),
        1
    );
    assert!(
        issues(&mut h, "ci_class = \"classes/location\"")
            .await
            .is_empty()
    );
    assert!(
        issues(&mut h, "ci_class != \"classes/server\"")
            .await
            .is_empty()
    );
    let team = issues(&mut h, "support_group = \"unix-team\"").await;
    assert_eq!(
        pairs(&team),
        [
            (pb::HealthIssueKind::Orphan, lonely.name.clone()),
            (pb::HealthIssueKind::MissingRequired, lonely.name.clone()),
        ]
    );
    assert_eq!(
        issues(&mut h, &format!("ci = \"{}\"", lonely.name))
            .await
            .len(),
        2
    );
    for bad in [
        "color = red",
        "kind = BROKEN",
        "ci_class = \"classes/nope\"",
    ] {
        let status = h
            .client
            .list_health_issues(as_(
                CMDB_ADMIN,
                pb::ListHealthIssuesRequest {
                    filter: bad.into(),
                    ..pb::ListHealthIssuesRequest::default()
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(bad_fields(&status), ["filter"], "{bad}");
    }

    // Pages of 4: 4 then 2, the same issues in the same order.
    let request = pb::ListHealthIssuesRequest {
        page_size: 4,
        ..pb::ListHealthIssuesRequest::default()
    };
    let page = h
        .client
        .list_health_issues(as_(CMDB_ADMIN, request.clone()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.issues.len(), 4);
    let rest = h
        .client
        .list_health_issues(as_(
            CMDB_ADMIN,
            pb::ListHealthIssuesRequest {
                page_token: page.next_page_token.clone(),
                ..request
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(rest.next_page_token.is_empty());
    let paged: Vec<_> = page.issues.iter().chain(&rest.issues).cloned().collect();
    assert_eq!(pairs(&paged), pairs(&all));
    let by_class = h
        .client
        .list_health_issues(as_(
            CMDB_ADMIN,
            pb::ListHealthIssuesRequest {
                order_by: "ci_class, kind desc".into(),
                ..pb::ListHealthIssuesRequest::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        by_class.issues[0].kind(),
        pb::HealthIssueKind::MissingRequired
    );

    // The stored report is served until the next computation.
    h.create(server("new-orphan", "SN-9", Some("6.1"))).await;
    let again = h
        .client
        .get_health_report(as_(CMDB_ADMIN, pb::GetHealthReportRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again, report);
    let recomputed = itsm_cmdb::store::health::refresh(&h.db).await.unwrap();
    assert_eq!(recomputed.orphan_count, 2);
    assert_eq!(issues(&mut h, "kind = ORPHAN").await.len(), 2);

    let denied = h
        .client
        .get_health_report(as_(AGENT, pb::GetHealthReportRequest {}))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
}

async fn computed_events(h: &Harness) -> usize {
    h.event_names("healthReport").await.len()
}

async fn the_job_computes_once_per_interval_under_a_lease(db: TestDb) {
    let mut h = start(&db).await;
    h.create(server("web-01", "SN-1", None)).await;
    let run = itsm_cmdb::jobs::refresh_health_once;
    assert!(run(&h.db, "replica-a").await.unwrap(), "none stored yet");
    assert_eq!(computed_events(&h).await, 1);
    assert!(!run(&h.db, "replica-a").await.unwrap(), "fresh");
    assert!(!run(&h.db, "replica-b").await.unwrap(), "a holds the lease");

    // An interval later, the holder recomputes; the other replica still does not.
    sqlx::query(
        "UPDATE cmdb_singletons SET updated_at = updated_at - $1 WHERE name = 'health_report'",
    )
    .bind(2 * 3_600_000_000_i64)
    .execute(h.db.pool())
    .await
    .unwrap();
    assert!(!run(&h.db, "replica-b").await.unwrap());
    assert!(run(&h.db, "replica-a").await.unwrap());
    assert_eq!(computed_events(&h).await, 2);
    let report = h
        .client
        .get_health_report(as_(CMDB_ADMIN, pb::GetHealthReportRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(report.orphan_count, 1);

    // The loop: once the lease is free and the report is due, it computes
    // once, then waits for the next interval; it stops when cancelled.
    sqlx::query("DELETE FROM leases")
        .execute(h.db.pool())
        .await
        .unwrap();
    sqlx::query(
        "UPDATE cmdb_singletons SET updated_at = updated_at - $1 WHERE name = 'health_report'",
    )
    .bind(2 * 3_600_000_000_i64)
    .execute(h.db.pool())
    .await
    .unwrap();
    let cancel = CancellationToken::new();
    let job = tokio::spawn(itsm_cmdb::jobs::run_health(h.db.clone(), cancel.clone()));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while computed_events(&h).await < 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the job never computed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(computed_events(&h).await, 3, "once per interval");
    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(5), job)
        .await
        .expect("the job stops when cancelled")
        .unwrap();
    assert_eq!(h.count("leases").await, 0, "the lease is released");
}
