//! Reports through the real server, on both backends: compliance counted per
//! definition, group, priority and month buckets of a non-UTC zone (canceled
//! clocks not counted, running breached ones counted); breaches with where
//! their business time went (state, group), their pauses and overrun;
//! filters, orders and pages; every bad input named; who may read them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/mod.rs"]
mod support;

use itsm_proto::itsm::common::v1::{Priority, TimeWindow};
use itsm_proto::itsm::incidents::v1::IncidentState;
use itsm_proto::itsm::sla::v1 as pb;
use itsm_sla::engine::Engine;
use itsm_testkit::{TestDb, backend_tests};
use pb::ComplianceDimension as Dim;
use tonic::Code;

use support::{
    ADMIN, AGENT, AUDITOR, H, Harness, SERVICE, Ticket, as_, at, bad_fields, date, hm, micros,
    office_hours, seconds, start, ts, violations,
};

backend_tests!(
    compliance_is_counted_per_definition_group_priority_and_local_month,
    a_breach_shows_where_its_business_time_went_and_its_pause,
    breaches_are_filtered_ordered_and_paged,
    stopped_and_paused_breaches_are_found_by_their_breach_instant,
    bad_report_requests_name_the_field,
    agents_and_auditors_read_reports_other_services_do_not,
);

const DAY: i64 = 24 * H;

/// What the incidents service would publish, or the timer worker's tick.
enum Step<'a> {
    Event(&'a itsm_proto::itsm::events::v1::Event),
    Timers,
}

/// Applies the tickets' events, and fires the timers at `timer_instants`,
/// all in time order, each at its own instant (as the consumer and the
/// timer worker would have).
async fn replay(svc: &Harness, tickets: &[&Ticket], timer_instants: &[i64]) {
    let mut steps: Vec<(i64, Step<'_>)> = tickets
        .iter()
        .flat_map(|t| t.events.iter())
        .map(|e| (micros(e.time.as_ref().unwrap()), Step::Event(e)))
        .collect();
    steps.extend(timer_instants.iter().map(|t| (*t, Step::Timers)));
    steps.sort_by_key(|(t, _)| *t);
    let engine = Engine::default();
    for (now, step) in steps {
        match step {
            Step::Event(e) => engine.apply_ticket_event(&svc.db, e, now).await.unwrap(),
            Step::Timers => {
                engine.fire_due_timers(&svc.db, now, 100).await.unwrap();
            }
        }
    }
}

fn group(ticket: &mut Ticket, time: i64, group: &str) {
    ticket.incident.assignment_group = group.to_owned();
    ticket.push(time, "incidents.incident.updated");
}

async fn define(svc: &mut Harness, id: &str, definition: pb::SlaDefinition) {
    let request = pb::CreateSlaDefinitionRequest {
        sla_definition: Some(definition),
        sla_definition_id: id.to_owned(),
        request_id: String::new(),
        validate_only: false,
    };
    svc.client
        .create_sla_definition(as_(ADMIN, request))
        .await
        .unwrap();
}

/// A definition on incidents of `priority`: paused on hold awaiting the
/// caller, stopped when resolved, canceled when canceled.
fn definition(
    kind: pb::SlaKind,
    priority: &str,
    calendar: &str,
    target_hours: i64,
) -> pb::SlaDefinition {
    pb::SlaDefinition {
        display_name: format!("{priority} resolution"),
        kind: kind as i32,
        ticket_type: "incidents".into(),
        selection_condition: format!("priority = {priority}"),
        target: Some(seconds(target_hours * 3600)),
        calendar: calendar.to_owned(),
        pause_condition: "state = ON_HOLD AND hold_reason = AWAITING_CALLER".into(),
        stop_condition: "state = RESOLVED".into(),
        cancel_condition: "state = CANCELED".into(),
        enabled: true,
        ..pb::SlaDefinition::default()
    }
}

fn window(start: i64, end: i64) -> TimeWindow {
    TimeWindow {
        start_time: Some(ts(start)),
        end_time: Some(ts(end)),
    }
}

async fn report(
    svc: &mut Harness,
    request: pb::GetComplianceReportRequest,
) -> pb::ComplianceReport {
    svc.client
        .get_compliance_report(as_(AGENT, request))
        .await
        .unwrap()
        .into_inner()
}

/// (total, met, breached) of a row.
fn counts(row: &pb::ComplianceRow) -> (i64, i64, i64) {
    (row.total_count, row.met_count, row.breached_count)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-6
}

/// Two definitions: P1 resolution (SLA, office hours Monday-Friday 09-17
/// UTC, 8 h) and P2 (OLA, 24x7, 4 h). Seven incidents, January and
/// February 2026:
/// - INC1 P1 network: Monday 5 Jan 10:00-14:00, achieved (4 h);
/// - INC2 P1 network: Monday 10:00 to Tuesday 16:00, breached (14 h);
/// - INC3 P2 database: 31 Jan 20:00Z to 1 Feb 03:00Z, breached (7 h): still
///   January in New York, February in UTC;
/// - INC4 P2 database: 2 Feb 10:00-12:00, achieved (2 h);
/// - INC5 P2 network: canceled 3 Feb: never counted;
/// - INC6 P2 network: from 4 Feb 10:00, breached at 14:00 and still running;
/// - INC7 P2 network: from 5 Feb 10:00, running within its target: not counted.
async fn compliance_is_counted_per_definition_group_priority_and_local_month(db: TestDb) {
    let mut svc = start(&db).await;
    svc.create_calendar("office", office_hours("Office", "UTC"))
        .await;
    define(
        &mut svc,
        "p1",
        definition(pb::SlaKind::Sla, "CRITICAL", "calendars/office", 8),
    )
    .await;
    define(&mut svc, "p2", definition(pb::SlaKind::Ola, "HIGH", "", 4)).await;
    let t = |s: &str| micros(&at(s));
    let mut inc1 = Ticket::created("INC1", t("2026-01-05T10:00:00Z"), 1, "network");
    inc1.state(t("2026-01-05T14:00:00Z"), IncidentState::Resolved);
    let mut inc2 = Ticket::created("INC2", t("2026-01-05T10:00:00Z"), 1, "network");
    inc2.state(t("2026-01-06T16:00:00Z"), IncidentState::Resolved);
    let mut inc3 = Ticket::created("INC3", t("2026-01-31T20:00:00Z"), 2, "database");
    inc3.state(t("2026-02-01T03:00:00Z"), IncidentState::Resolved);
    let mut inc4 = Ticket::created("INC4", t("2026-02-02T10:00:00Z"), 2, "database");
    inc4.state(t("2026-02-02T12:00:00Z"), IncidentState::Resolved);
    let mut inc5 = Ticket::created("INC5", t("2026-02-03T10:00:00Z"), 2, "network");
    inc5.state(t("2026-02-03T11:00:00Z"), IncidentState::Canceled);
    let inc6 = Ticket::created("INC6", t("2026-02-04T10:00:00Z"), 2, "network");
    let inc7 = Ticket::created("INC7", t("2026-02-05T10:00:00Z"), 2, "network");
    replay(
        &svc,
        &[&inc1, &inc2, &inc3, &inc4, &inc5, &inc6, &inc7],
        &[t("2026-02-04T14:00:00Z")],
    )
    .await;

    // January and February as New York sees them.
    let period = window(t("2026-01-01T05:00:00Z"), t("2026-03-01T05:00:00Z"));
    let monthly = |zone: &str| pb::GetComplianceReportRequest {
        period: Some(period),
        group_by: vec![Dim::Period as i32],
        interval: pb::ReportInterval::Month as i32,
        time_zone: zone.to_owned(),
        filter: String::new(),
    };
    let ny = report(&mut svc, monthly("America/New_York")).await;
    assert_eq!(ny.rows.len(), 2);
    assert_eq!(
        ny.rows[0].bucket,
        Some(window(t("2026-01-01T05:00:00Z"), t("2026-02-01T05:00:00Z")))
    );
    assert_eq!(counts(&ny.rows[0]), (3, 1, 2), "INC1, INC2 and INC3");
    assert!(close(ny.rows[0].percentage_met, 100.0 / 3.0));
    assert_eq!(
        ny.rows[1].bucket,
        Some(window(t("2026-02-01T05:00:00Z"), t("2026-03-01T05:00:00Z")))
    );
    assert_eq!(
        counts(&ny.rows[1]),
        (2, 1, 1),
        "INC4 and the running INC6; not the canceled INC5 nor INC7 within its target"
    );
    let total = ny.total.as_ref().unwrap();
    assert_eq!(counts(total), (5, 2, 3));
    assert!(close(total.percentage_met, 40.0));
    // 4 + 14 + 7 + 2 + 4 (INC6 as of its breach) hours over 5.
    assert_eq!(total.mean_elapsed, Some(seconds(31 * 3600 / 5)));
    assert!(close(
        total.mean_percentage,
        (50.0 + 175.0 + 175.0 + 50.0 + 100.0) / 5.0
    ));
    assert_eq!(ny.group_by, [Dim::Period as i32]);
    assert_eq!(ny.period, Some(period));

    let utc = report(&mut svc, monthly("")).await;
    let utc_counts: Vec<_> = utc.rows.iter().map(counts).collect();
    assert_eq!(
        utc_counts,
        [(2, 1, 1), (3, 1, 2)],
        "INC3 moves to February in UTC"
    );

    let by = |dims: &[Dim], filter: &str| pb::GetComplianceReportRequest {
        period: Some(period),
        group_by: dims.iter().map(|d| *d as i32).collect(),
        filter: filter.to_owned(),
        ..pb::GetComplianceReportRequest::default()
    };
    let defs = report(&mut svc, by(&[Dim::SlaDefinition], "")).await;
    let summary: Vec<_> = defs
        .rows
        .iter()
        .map(|r| {
            (
                r.sla_definition.as_str(),
                counts(r),
                r.kind,
                r.assignment_group.as_str(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("slaDefinitions/p1", (2, 1, 1), 0, ""),
            ("slaDefinitions/p2", (3, 1, 2), 0, ""),
        ]
    );
    assert!(close(defs.rows[0].percentage_met, 50.0));
    assert_eq!(defs.rows[0].mean_elapsed, Some(seconds(9 * 3600)));
    assert!(close(defs.rows[0].mean_percentage, 112.5));
    assert_eq!(defs.rows[1].mean_elapsed, Some(seconds(13 * 3600 / 3)));
    assert!(close(defs.rows[1].mean_percentage, 325.0 / 3.0));

    let groups = report(&mut svc, by(&[Dim::AssignmentGroup, Dim::Priority], "")).await;
    let summary: Vec<_> = groups
        .rows
        .iter()
        .map(|r| (r.assignment_group.as_str(), r.priority, counts(r)))
        .collect();
    assert_eq!(
        summary,
        [
            ("database", Priority::High as i32, (2, 1, 1)),
            ("network", Priority::Critical as i32, (2, 1, 1)),
            ("network", Priority::High as i32, (1, 0, 1)),
        ]
    );
    let kinds = report(&mut svc, by(&[Dim::Kind], "")).await;
    let summary: Vec<_> = kinds.rows.iter().map(|r| (r.kind, counts(r))).collect();
    assert_eq!(
        summary,
        [
            (pb::SlaKind::Sla as i32, (2, 1, 1)),
            (pb::SlaKind::Ola as i32, (3, 1, 2)),
        ]
    );

    // Filters over task SLA fields.
    let ola = report(&mut svc, by(&[], "kind = OLA")).await;
    assert_eq!(ola.rows.len(), 1, "no dimension: one total row");
    assert_eq!(counts(&ola.rows[0]), (3, 1, 2));
    assert_eq!(ola.rows[0], ola.total.clone().unwrap());
    let one = report(
        &mut svc,
        by(
            &[Dim::Service],
            r#"assignment_group = "network" AND priority = HIGH"#,
        ),
    )
    .await;
    assert_eq!(one.rows.len(), 1);
    assert_eq!(counts(&one.rows[0]), (1, 0, 1), "INC6");
    let none = report(&mut svc, by(&[Dim::SlaDefinition], "kind = UC")).await;
    assert!(none.rows.is_empty());
    assert_eq!(counts(none.total.as_ref().unwrap()), (0, 0, 0));
    assert_eq!(none.total.unwrap().percentage_met, 0.0);

    // A period holding only the canceled and the unbreached clocks counts nothing.
    let quiet = report(
        &mut svc,
        pb::GetComplianceReportRequest {
            period: Some(window(t("2026-02-03T00:00:00Z"), t("2026-02-04T00:00:00Z"))),
            ..pb::GetComplianceReportRequest::default()
        },
    )
    .await;
    assert_eq!(counts(&quiet.rows[0]), (0, 0, 0));
}

/// A calendar open around the clock every day except the holidays, which
/// close whole days.
fn around_the_clock(holidays: &[jiff::civil::Date]) -> pb::Calendar {
    pb::Calendar {
        display_name: "Around the clock".into(),
        time_zone: "UTC".into(),
        weekly_spans: (1..=7)
            .map(|day| pb::WeeklySpan {
                day,
                span: Some(pb::DaySpan {
                    start: Some(hm(0, 0)),
                    end: Some(hm(24, 0)),
                }),
            })
            .collect(),
        holidays: holidays
            .iter()
            .map(|d| pb::Holiday {
                date: Some(date(d.year().into(), d.month().into(), d.day().into())),
                display_name: "Closed".into(),
                open_spans: Vec::new(),
                origin: String::new(),
            })
            .collect(),
        ..pb::Calendar::default()
    }
}

/// Midnight UTC three days ago: day 0 of the breach scenarios, which run on
/// days 0 and 2 of a calendar closed on day 1 and from day 3 (today) on, so
/// their figures stay put however late the test reads them.
async fn breach_setup(svc: &mut Harness) -> i64 {
    let today = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date();
    let day = |n: i64| today.checked_add(jiff::Span::new().days(n - 3)).unwrap();
    let holidays = [day(1), day(3), day(4), day(5)];
    svc.create_calendar("around-the-clock", around_the_clock(&holidays))
        .await;
    define(
        svc,
        "p2-ola",
        definition(pb::SlaKind::Ola, "HIGH", "calendars/around-the-clock", 10),
    )
    .await;
    day(0)
        .to_zoned(jiff::tz::TimeZone::UTC)
        .unwrap()
        .timestamp()
        .as_microsecond()
}

async fn breaches(svc: &mut Harness, request: pb::ListBreachesRequest) -> pb::ListBreachesResponse {
    svc.client
        .list_breaches(as_(AGENT, request))
        .await
        .unwrap()
        .into_inner()
}

fn shares(list: &[pb::TimeShare]) -> Vec<(&str, i64)> {
    list.iter()
        .map(|s| (s.value.as_str(), s.elapsed.as_ref().unwrap().seconds / 3600))
        .collect()
}

/// The main breach: new with the service desk at 18:00 on day 0, in
/// progress with network at 19:00, on hold awaiting the caller 20:00 until
/// 01:00 on day 2 (5 business hours: day 1 is closed), breached at 09:00
/// (2 + 8 hours), moved to database at 20:00 and still running when the
/// calendar closes at midnight: 25 hours counted against a 10-hour target.
fn main_breach(d0: i64) -> Ticket {
    let mut t = Ticket::created("INC0000042", d0 + 18 * H, 2, "service-desk");
    t.incident.state = IncidentState::InProgress as i32;
    group(&mut t, d0 + 19 * H, "network");
    t.state(d0 + 20 * H, IncidentState::OnHold)
        .state(d0 + 2 * DAY + H, IncidentState::InProgress);
    group(&mut t, d0 + 2 * DAY + 20 * H, "database");
    t
}

async fn a_breach_shows_where_its_business_time_went_and_its_pause(db: TestDb) {
    let mut svc = start(&db).await;
    let d0 = breach_setup(&mut svc).await;
    let ticket = main_breach(d0);
    replay(&svc, &[&ticket], &[d0 + 2 * DAY + 9 * H]).await;

    let page = breaches(&mut svc, pb::ListBreachesRequest::default()).await;
    assert_eq!(page.breaches.len(), 1);
    assert!(page.next_page_token.is_empty());
    let b = &page.breaches[0];
    assert!(b.task_sla.starts_with("taskSlas/"));
    assert_eq!(b.ticket, "incidents/INC0000042");
    assert_eq!(b.sla_definition, "slaDefinitions/p2-ola");
    assert_eq!(b.kind, pb::SlaKind::Ola as i32);
    assert_eq!(b.priority, Priority::High as i32);
    assert_eq!(b.breach_time, Some(ts(d0 + 2 * DAY + 9 * H)));
    assert_eq!(b.stop_time, None, "still running");
    assert_eq!(b.overrun, Some(seconds(15 * 3600)));
    assert_eq!(b.ticket_state, "IN_PROGRESS");
    assert_eq!(b.assignment_group, "network", "at the breach");
    assert_eq!(
        shares(&b.time_by_state),
        [("IN_PROGRESS", 24), ("NEW", 1)],
        "19:00-20:00 on day 0 and all of day 2 in progress"
    );
    assert_eq!(
        shares(&b.time_by_group),
        [("network", 20), ("database", 4), ("service-desk", 1)]
    );
    assert_eq!(
        b.pauses,
        [pb::PausePeriod {
            start_time: Some(ts(d0 + 20 * H)),
            end_time: Some(ts(d0 + 2 * DAY + H)),
            duration: Some(seconds(5 * 3600)),
            condition_expression: "state = ON_HOLD AND hold_reason = AWAITING_CALLER".into(),
            ticket_state: "ON_HOLD".into(),
            hold_reason: "AWAITING_CALLER".into(),
        }]
    );
    assert_eq!(b.reset_count, 0);
}

/// Three running breaches: A (the main one: breached day 2 09:00, 11 h over
/// at its last change), B (network, from day 2 00:00: breached 10:00, 0 h
/// over at its breach) and C (database, from day 0 10:00: breached 20:00, 10 h
/// over at its last change on day 2 06:00).
async fn breaches_are_filtered_ordered_and_paged(db: TestDb) {
    let mut svc = start(&db).await;
    let d0 = breach_setup(&mut svc).await;
    let a = main_breach(d0);
    let b = Ticket::created("INC0000043", d0 + 2 * DAY, 2, "network");
    let mut c = Ticket::created("INC0000044", d0 + 10 * H, 2, "database");
    c.state(d0 + 2 * DAY + 6 * H, IncidentState::InProgress);
    // Not breached: within its target.
    let d = Ticket::created("INC0000045", d0 + 2 * DAY + 20 * H, 2, "network");
    let timers = [d0 + 20 * H, d0 + 2 * DAY + 9 * H, d0 + 2 * DAY + 10 * H];
    replay(&svc, &[&a, &b, &c, &d], &timers).await;

    let tickets = |r: &pb::ListBreachesResponse| -> Vec<String> {
        r.breaches
            .iter()
            .map(|b| b.ticket.replace("incidents/", ""))
            .collect()
    };
    let list = |filter: &str, order_by: &str| pb::ListBreachesRequest {
        filter: filter.to_owned(),
        order_by: order_by.to_owned(),
        ..pb::ListBreachesRequest::default()
    };
    let newest = breaches(&mut svc, list("", "")).await;
    assert_eq!(tickets(&newest), ["INC0000043", "INC0000042", "INC0000044"]);
    let oldest = breaches(&mut svc, list("", "breach_time")).await;
    assert_eq!(tickets(&oldest), ["INC0000044", "INC0000042", "INC0000043"]);
    let overrun = breaches(&mut svc, list("", "overrun desc")).await;
    assert_eq!(
        tickets(&overrun),
        ["INC0000042", "INC0000044", "INC0000043"],
        "by the overrun as of each one's last change"
    );
    let overruns: Vec<i64> = overrun
        .breaches
        .iter()
        .map(|b| b.overrun.as_ref().unwrap().seconds / 3600)
        .collect();
    assert_eq!(overruns, [15, 28, 14], "returned as of now");

    let network = breaches(&mut svc, list(r#"assignment_group = "network""#, "")).await;
    assert_eq!(tickets(&network), ["INC0000043"]);
    let database = breaches(&mut svc, list(r#"assignment_group = "database""#, "")).await;
    assert_eq!(
        tickets(&database),
        ["INC0000042", "INC0000044"],
        "as of the latest event"
    );
    assert!(
        breaches(&mut svc, list("kind = SLA", ""))
            .await
            .breaches
            .is_empty()
    );

    let day2 = breaches(
        &mut svc,
        pb::ListBreachesRequest {
            period: Some(window(d0 + 2 * DAY, d0 + 2 * DAY + 10 * H)),
            ..pb::ListBreachesRequest::default()
        },
    )
    .await;
    assert_eq!(tickets(&day2), ["INC0000042"], "end excluded");

    // One per page, then the same list again from the tokens.
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = breaches(
            &mut svc,
            pb::ListBreachesRequest {
                page_size: 1,
                page_token: token.clone(),
                ..pb::ListBreachesRequest::default()
            },
        )
        .await;
        seen.extend(tickets(&page));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen, tickets(&newest));
    let first = breaches(
        &mut svc,
        pb::ListBreachesRequest {
            page_size: 1,
            ..pb::ListBreachesRequest::default()
        },
    )
    .await;
    let other_order = svc
        .client
        .list_breaches(as_(
            AGENT,
            pb::ListBreachesRequest {
                page_size: 1,
                page_token: first.next_page_token,
                order_by: "overrun desc".into(),
                ..pb::ListBreachesRequest::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&other_order), ["page_token"]);
}

async fn bad_report_requests_name_the_field(db: TestDb) {
    let mut svc = start(&db).await;
    let t = |s: &str| micros(&at(s));
    let january = window(t("2026-01-01T00:00:00Z"), t("2026-02-01T00:00:00Z"));
    let ok = pb::GetComplianceReportRequest {
        period: Some(january),
        ..pb::GetComplianceReportRequest::default()
    };
    let cases: Vec<(pb::GetComplianceReportRequest, &str)> = vec![
        (
            pb::GetComplianceReportRequest {
                period: None,
                ..ok.clone()
            },
            "period",
        ),
        (
            pb::GetComplianceReportRequest {
                period: Some(TimeWindow {
                    start_time: january.start_time,
                    end_time: None,
                }),
                ..ok.clone()
            },
            "period",
        ),
        (
            pb::GetComplianceReportRequest {
                period: Some(window(t("2026-02-01T00:00:00Z"), t("2026-01-01T00:00:00Z"))),
                ..ok.clone()
            },
            "period",
        ),
        (
            pb::GetComplianceReportRequest {
                group_by: vec![Dim::Unspecified as i32],
                ..ok.clone()
            },
            "group_by[0]",
        ),
        (
            pb::GetComplianceReportRequest {
                group_by: vec![Dim::Kind as i32, 99],
                ..ok.clone()
            },
            "group_by[1]",
        ),
        (
            pb::GetComplianceReportRequest {
                group_by: vec![Dim::Kind as i32, Dim::Kind as i32],
                ..ok.clone()
            },
            "group_by[1]",
        ),
        (
            pb::GetComplianceReportRequest {
                interval: 42,
                ..ok.clone()
            },
            "interval",
        ),
        (
            pb::GetComplianceReportRequest {
                time_zone: "Mars/Olympus_Mons".into(),
                ..ok.clone()
            },
            "time_zone",
        ),
        (
            pb::GetComplianceReportRequest {
                period: Some(window(t("2020-01-01T00:00:00Z"), t("2026-01-01T00:00:00Z"))),
                group_by: vec![Dim::Period as i32],
                interval: pb::ReportInterval::Day as i32,
                ..ok.clone()
            },
            "period",
        ),
        (
            pb::GetComplianceReportRequest {
                filter: "colour = red".into(),
                ..ok.clone()
            },
            "filter",
        ),
        (
            pb::GetComplianceReportRequest {
                filter: "kind = GOLD".into(),
                ..ok.clone()
            },
            "filter",
        ),
    ];
    for (request, field) in cases {
        let status = svc
            .client
            .get_compliance_report(as_(AGENT, request.clone()))
            .await
            .unwrap_err();
        assert_eq!(bad_fields(&status), [field], "{request:?}: {status:?}");
    }
    // Six years of days: the message says what to do.
    let status = svc
        .client
        .get_compliance_report(as_(
            AGENT,
            pb::GetComplianceReportRequest {
                period: Some(window(t("2020-01-01T00:00:00Z"), t("2026-01-01T00:00:00Z"))),
                group_by: vec![Dim::Period as i32],
                interval: pb::ReportInterval::Day as i32,
                ..ok.clone()
            },
        ))
        .await
        .unwrap_err();
    let (_, why) = &violations(&status)[0];
    assert!(why.contains("more than 1000 days"), "{why}");
    assert!(why.contains("longer interval"), "{why}");
    // Several mistakes at once are all named.
    let status = svc
        .client
        .get_compliance_report(as_(
            AGENT,
            pb::GetComplianceReportRequest {
                period: None,
                group_by: vec![0],
                interval: 42,
                time_zone: "Nowhere".into(),
                filter: String::new(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(
        bad_fields(&status),
        ["period", "group_by[0]", "interval", "time_zone"]
    );
    // The same period by weeks is fine.
    svc.client
        .get_compliance_report(as_(
            AGENT,
            pb::GetComplianceReportRequest {
                period: Some(window(t("2020-01-01T00:00:00Z"), t("2026-01-01T00:00:00Z"))),
                group_by: vec![Dim::Period as i32],
                interval: pb::ReportInterval::Week as i32,
                ..ok.clone()
            },
        ))
        .await
        .unwrap();

    let list_cases: Vec<(pb::ListBreachesRequest, &str)> = vec![
        (
            pb::ListBreachesRequest {
                period: Some(window(t("2026-02-01T00:00:00Z"), t("2026-01-01T00:00:00Z"))),
                ..pb::ListBreachesRequest::default()
            },
            "period",
        ),
        (
            pb::ListBreachesRequest {
                filter: "breached = maybe".into(),
                ..pb::ListBreachesRequest::default()
            },
            "filter",
        ),
        (
            pb::ListBreachesRequest {
                order_by: "state".into(),
                ..pb::ListBreachesRequest::default()
            },
            "order_by",
        ),
        (
            pb::ListBreachesRequest {
                page_size: -1,
                ..pb::ListBreachesRequest::default()
            },
            "page_size",
        ),
        (
            pb::ListBreachesRequest {
                page_token: "garbage".into(),
                ..pb::ListBreachesRequest::default()
            },
            "page_token",
        ),
    ];
    for (request, field) in list_cases {
        let status = svc
            .client
            .list_breaches(as_(AGENT, request.clone()))
            .await
            .unwrap_err();
        assert_eq!(bad_fields(&status), [field], "{request:?}: {status:?}");
    }
}

async fn agents_and_auditors_read_reports_other_services_do_not(db: TestDb) {
    let mut svc = start(&db).await;
    let t = |s: &str| micros(&at(s));
    let request = pb::GetComplianceReportRequest {
        period: Some(window(t("2026-01-01T00:00:00Z"), t("2026-02-01T00:00:00Z"))),
        ..pb::GetComplianceReportRequest::default()
    };
    for who in [AGENT, AUDITOR, ADMIN] {
        svc.client
            .get_compliance_report(as_(who, request.clone()))
            .await
            .unwrap();
        svc.client
            .list_breaches(as_(who, pb::ListBreachesRequest::default()))
            .await
            .unwrap();
    }
    let denied = svc
        .client
        .get_compliance_report(as_(SERVICE, request))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    let denied = svc
        .client
        .list_breaches(as_(SERVICE, pb::ListBreachesRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
}

/// E breaches at 20:00 on day 0 and is resolved at 02:00 on day 2 without
/// the timer having fired (16 h against 10); F breaches at 21:00 (timer),
/// and goes on hold awaiting the caller at 03:00 on day 2 (16 h).
async fn stopped_and_paused_breaches_are_found_by_their_breach_instant(db: TestDb) {
    let mut svc = start(&db).await;
    let d0 = breach_setup(&mut svc).await;
    let mut e = Ticket::created("INC0000046", d0 + 10 * H, 2, "network");
    e.state(d0 + 2 * DAY + 2 * H, IncidentState::Resolved);
    let mut f = Ticket::created("INC0000047", d0 + 11 * H, 2, "network");
    f.state(d0 + 2 * DAY + 3 * H, IncidentState::OnHold);
    replay(&svc, &[&e, &f], &[d0 + 21 * H]).await;

    let page = breaches(&mut svc, pb::ListBreachesRequest::default()).await;
    let summary: Vec<_> = page
        .breaches
        .iter()
        .map(|b| {
            (
                b.ticket.as_str(),
                micros(b.breach_time.as_ref().unwrap()),
                b.stop_time.as_ref().map(micros),
                b.overrun.as_ref().unwrap().seconds / 3600,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("incidents/INC0000047", d0 + 21 * H, None, 6),
            (
                "incidents/INC0000046",
                d0 + 20 * H,
                Some(d0 + 2 * DAY + 2 * H),
                6
            ),
        ]
    );
    let paused = &page.breaches[0];
    assert_eq!(shares(&paused.time_by_state), [("NEW", 16)]);
    assert_eq!(paused.pauses.len(), 1);
    assert_eq!(paused.pauses[0].end_time, None, "still on hold");
    assert_eq!(
        paused.pauses[0].duration,
        Some(seconds(21 * 3600)),
        "until the calendar closed"
    );
    assert_eq!(paused.pauses[0].hold_reason, "AWAITING_CALLER");
    let stopped = &page.breaches[1];
    assert_eq!(shares(&stopped.time_by_state), [("NEW", 16)]);
    assert!(stopped.pauses.is_empty());

    let report = report(
        &mut svc,
        pb::GetComplianceReportRequest {
            period: Some(window(d0, d0 + 3 * DAY)),
            group_by: vec![Dim::AssignmentGroup as i32],
            ..pb::GetComplianceReportRequest::default()
        },
    )
    .await;
    assert_eq!(report.rows.len(), 1);
    assert_eq!(
        counts(&report.rows[0]),
        (2, 0, 2),
        "the stopped one and the paused one"
    );
}
