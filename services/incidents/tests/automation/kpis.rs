//! KPIs on a crafted data set, with exact expected values: the backlog by
//! priority now, and for the incidents opened in a period (of a group or
//! all) the counts, mean times to acknowledge and resolve, reopen rate and
//! first-contact resolution rate.

use itsm_proto::itsm::common::v1 as common;
use itsm_proto::itsm::incidents::v1 as pb;
use itsm_testkit::{TestDb, backend_tests};
use prost_types::{Duration, Timestamp};
use tonic::Code;

use crate::helpers::{incident, violations};
use crate::support::{AGENT, Harness, as_, start};

backend_tests!(
    kpis_are_exact_on_a_crafted_data_set,
    a_period_must_end_after_it_starts,
);

/// 2026-01-01T00:00:00Z, in seconds.
const T0: i64 = 1_767_225_600;
const MINUTE: i64 = 60;
const HOUR: i64 = 3_600;

/// Opens an incident in `group` (assigned to `assignee` when not empty).
async fn open(svc: &mut Harness, group: &str, assignee: &str, impact: i32, urgency: i32) -> String {
    let mut given = incident("Crafted", "");
    given.assignment_group = group.into();
    given.assignee = assignee.into();
    given.impact = impact;
    given.urgency = urgency;
    svc.open_incident(given).await.name
}

/// Moves the incident's creation, acknowledgement and resolution (seconds
/// since the epoch; 0 for never) to these times.
async fn times(svc: &Harness, name: &str, created: i64, acknowledged: i64, resolved: i64) {
    let us = |s: i64| s * 1_000_000;
    svc.execute(
        "UPDATE incidents SET created_at = $1, acknowledged_at = $2, resolved_at = $3 \
         WHERE number = $4",
        &[us(created), us(acknowledged), us(resolved)],
        name.trim_start_matches("incidents/"),
    )
    .await;
}

async fn kpis(svc: &mut Harness, start: i64, end: i64, group: &str) -> pb::IncidentKpis {
    let request = pb::GetIncidentKpisRequest {
        period: Some(common::TimeWindow {
            start_time: Some(Timestamp {
                seconds: start,
                nanos: 0,
            }),
            end_time: Some(Timestamp {
                seconds: end,
                nanos: 0,
            }),
        }),
        assignment_group: group.to_owned(),
    };
    svc.client
        .get_incident_kpis(as_(AGENT, request))
        .await
        .unwrap()
        .into_inner()
}

fn minutes(m: i64) -> Option<Duration> {
    Some(Duration {
        seconds: m * MINUTE,
        nanos: 0,
    })
}

/// Open counts from CRITICAL to PLANNING.
fn open_counts(k: &pb::IncidentKpis) -> Vec<(i32, i64)> {
    k.open_by_priority
        .iter()
        .map(|p| (p.priority, p.count))
        .collect()
}

async fn kpis_are_exact_on_a_crafted_data_set(db: TestDb) {
    let mut svc = start(&db).await;
    // ops: resolved on first contact, 10 min to acknowledge, 60 to resolve.
    let first = open(&mut svc, "ops", "ann", 2, 2).await;
    svc.resolve(&first).await.unwrap();
    times(&svc, &first, T0, T0 + 10 * MINUTE, T0 + 60 * MINUTE).await;
    // ops: reopened, then resolved again; 20 and 120 min.
    let second = open(&mut svc, "ops", "ann", 2, 2).await;
    svc.resolve(&second).await.unwrap();
    svc.reopen(AGENT, &second, "back again").await.unwrap();
    svc.resolve(&second).await.unwrap();
    times(
        &svc,
        &second,
        T0 + HOUR,
        T0 + HOUR + 20 * MINUTE,
        T0 + HOUR + 120 * MINUTE,
    )
    .await;
    // ops: open, CRITICAL, acknowledged after 30 min.
    let third = open(&mut svc, "ops", "ben", 1, 1).await;
    times(&svc, &third, T0 + 2 * HOUR, T0 + 2 * HOUR + 30 * MINUTE, 0).await;
    // desk: open, PLANNING, never acknowledged.
    let fourth = open(&mut svc, "desk", "", 3, 3).await;
    times(&svc, &fourth, T0 + 3 * HOUR, 0, 0).await;
    // ops: opened the day before, still open, MODERATE.
    let before = open(&mut svc, "ops", "", 2, 2).await;
    times(&svc, &before, T0 - 24 * HOUR, 0, 0).await;
    // ops: canceled: opened, neither open nor resolved.
    let canceled = open(&mut svc, "ops", "", 2, 2).await;
    svc.cancel(&canceled, "duplicate").await.unwrap();
    times(&svc, &canceled, T0 + 4 * HOUR, 0, 0).await;

    let day = (T0, T0 + 24 * HOUR);
    let ops = kpis(&mut svc, day.0, day.1, "ops").await;
    assert_eq!(open_counts(&ops), [(1, 1), (2, 0), (3, 1), (4, 0), (5, 0)]);
    assert_eq!((ops.opened_count, ops.resolved_count), (4, 2));
    assert_eq!(ops.mean_time_to_acknowledge, minutes(20));
    assert_eq!(ops.mean_time_to_resolve, minutes(90));
    assert_eq!(ops.reopen_rate, 0.5);
    assert_eq!(ops.first_contact_resolution_rate, 0.5);
    assert_eq!(kpis(&mut svc, day.0, day.1, "groups/ops").await, ops);

    let all = kpis(&mut svc, day.0, day.1, "").await;
    assert_eq!(open_counts(&all), [(1, 1), (2, 0), (3, 1), (4, 0), (5, 1)]);
    assert_eq!((all.opened_count, all.resolved_count), (5, 2));
    assert_eq!(all.mean_time_to_acknowledge, minutes(20));
    assert_eq!(all.mean_time_to_resolve, minutes(90));

    // The second hour holds only the reopened incident.
    let hour = kpis(&mut svc, T0 + HOUR, T0 + 2 * HOUR, "ops").await;
    assert_eq!((hour.opened_count, hour.resolved_count), (1, 1));
    assert_eq!(hour.mean_time_to_acknowledge, minutes(20));
    assert_eq!(hour.mean_time_to_resolve, minutes(120));
    assert_eq!(hour.reopen_rate, 1.0);
    assert_eq!(hour.first_contact_resolution_rate, 0.0);

    // A period with nothing in it: zeros, and no means.
    let empty = kpis(&mut svc, T0 - 48 * HOUR, T0 - 47 * HOUR, "desk").await;
    assert_eq!((empty.opened_count, empty.resolved_count), (0, 0));
    assert_eq!(
        (empty.mean_time_to_acknowledge, empty.mean_time_to_resolve),
        (None, None)
    );
    assert_eq!(
        (empty.reopen_rate, empty.first_contact_resolution_rate),
        (0.0, 0.0)
    );
}

async fn a_period_must_end_after_it_starts(db: TestDb) {
    let mut svc = start(&db).await;
    let request = pb::GetIncidentKpisRequest {
        period: Some(common::TimeWindow {
            start_time: Some(Timestamp {
                seconds: T0,
                nanos: 0,
            }),
            end_time: Some(Timestamp {
                seconds: T0,
                nanos: 0,
            }),
        }),
        assignment_group: "bad group".into(),
    };
    let status = svc
        .client
        .get_incident_kpis(as_(AGENT, request))
        .await
        .unwrap_err();
    let fields: Vec<String> = violations(&status).into_iter().map(|v| v.0).collect();
    assert_eq!(fields, ["period.end_time", "assignment_group"]);
    let status = svc
        .client
        .get_incident_kpis(as_(
            crate::support::ADA,
            pb::GetIncidentKpisRequest::default(),
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
}
