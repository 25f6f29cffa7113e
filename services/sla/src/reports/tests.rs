#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use crate::clock::{self, duration, timestamp};
use itsm_proto::itsm::common::v1::TimeOfDay;
use itsm_proto::itsm::incidents::v1::{HoldReason, Incident, IncidentState};
use itsm_proto::itsm::sla::v1::{Calendar, DaySpan, WeeklySpan};

const H: i64 = 3_600_000_000;
const DAY: i64 = 24 * H;

fn at(rfc3339: &str) -> i64 {
    rfc3339.parse::<Timestamp>().unwrap().as_microsecond()
}

fn zone(name: &str) -> TimeZone {
    TimeZone::get(name).unwrap()
}

#[test]
fn months_are_cut_at_local_midnight_and_clipped_to_the_period() {
    let b = boundaries(
        at("2026-01-15T00:00:00Z"),
        at("2026-03-10T00:00:00Z"),
        Interval::Month,
        &zone("Europe/Berlin"),
    )
    .unwrap();
    assert_eq!(
        b,
        [
            at("2026-01-15T00:00:00Z"),
            at("2026-01-31T23:00:00Z"),
            at("2026-02-28T23:00:00Z"),
            at("2026-03-10T00:00:00Z"),
        ]
    );
}

#[test]
fn a_spring_forward_day_is_23_hours_and_a_fall_back_day_25() {
    let berlin = zone("Europe/Berlin");
    let b = boundaries(
        at("2026-03-28T12:00:00Z"),
        at("2026-03-30T12:00:00Z"),
        Interval::Day,
        &berlin,
    )
    .unwrap();
    assert_eq!(b[1], at("2026-03-28T23:00:00Z"));
    assert_eq!(b[2] - b[1], 23 * H);
    let b = boundaries(
        at("2026-10-24T12:00:00Z"),
        at("2026-10-26T12:00:00Z"),
        Interval::Day,
        &berlin,
    )
    .unwrap();
    assert_eq!(b[1], at("2026-10-24T22:00:00Z"));
    assert_eq!(b[2] - b[1], 25 * H);
}

#[test]
fn a_day_without_midnight_starts_after_the_gap() {
    // São Paulo skipped 00:00-01:00 on 2018-11-04.
    let b = boundaries(
        at("2018-11-03T12:00:00Z"),
        at("2018-11-05T12:00:00Z"),
        Interval::Day,
        &zone("America/Sao_Paulo"),
    )
    .unwrap();
    assert_eq!(b[1], at("2018-11-04T03:00:00Z"), "01:00 at UTC-2");
    assert_eq!(b[2], at("2018-11-05T02:00:00Z"));
}

#[test]
fn weeks_start_on_monday_and_quarters_on_the_first_of_a_quarter() {
    // 2026-01-01 is a Thursday.
    let b = boundaries(
        at("2026-01-01T00:00:00Z"),
        at("2026-01-20T00:00:00Z"),
        Interval::Week,
        &TimeZone::UTC,
    )
    .unwrap();
    assert_eq!(
        b[1..3],
        [at("2026-01-05T00:00:00Z"), at("2026-01-12T00:00:00Z")]
    );
    assert_eq!(b.len(), 5);
    let b = boundaries(
        at("2026-02-10T00:00:00Z"),
        at("2026-12-31T00:00:00Z"),
        Interval::Quarter,
        &zone("America/New_York"),
    )
    .unwrap();
    assert_eq!(
        b[1..4],
        [
            at("2026-04-01T04:00:00Z"),
            at("2026-07-01T04:00:00Z"),
            at("2026-10-01T04:00:00Z"),
        ]
    );
}

#[test]
fn a_period_of_more_than_the_bucket_limit_is_refused() {
    let start = at("2020-01-01T00:00:00Z");
    let ok = boundaries(
        start,
        start + MAX_BUCKETS as i64 * DAY,
        Interval::Day,
        &TimeZone::UTC,
    )
    .unwrap();
    assert_eq!(ok.len(), MAX_BUCKETS + 1, "exactly the limit");
    let error = boundaries(
        start,
        start + (MAX_BUCKETS as i64 + 1) * DAY,
        Interval::Day,
        &TimeZone::UTC,
    )
    .unwrap_err();
    assert_eq!(error, BucketError::TooMany { interval: "day" });
    assert!(error.to_string().contains("more than 1000 days"));
}

#[test]
fn tallies_add_up_and_give_percentages() {
    let mut total = Tally::default();
    total.add(&Tally {
        total: 3,
        met: 2,
        breached: 1,
        elapsed: (3 * H) as f64,
        percentage: 150.0,
        with_target: 3,
    });
    total.add(&Tally {
        total: 1,
        met: 1,
        breached: 0,
        elapsed: H as f64,
        percentage: 10.0,
        with_target: 1,
    });
    let mut row = pb::ComplianceRow::default();
    total.fill(&mut row);
    assert_eq!(
        (row.total_count, row.met_count, row.breached_count),
        (4, 3, 1)
    );
    assert_eq!(row.percentage_met, 75.0);
    assert_eq!(row.mean_elapsed, Some(duration(H)));
    assert_eq!(row.mean_percentage, 40.0);
    let mut empty = pb::ComplianceRow::default();
    Tally::default().fill(&mut empty);
    assert_eq!(empty.percentage_met, 0.0);
}

/// Monday to Friday, 09:00-17:00 UTC.
fn office_hours() -> BusinessCalendar {
    let tod = |hours| TimeOfDay {
        hours,
        minutes: 0,
        seconds: 0,
    };
    let calendar = Calendar {
        time_zone: "UTC".into(),
        weekly_spans: (1..=5)
            .map(|day| WeeklySpan {
                day,
                span: Some(DaySpan {
                    start: Some(tod(9)),
                    end: Some(tod(17)),
                }),
            })
            .collect(),
        ..Calendar::default()
    };
    BusinessCalendar::compile(&calendar, "UTC").unwrap()
}

fn definition() -> pb::SlaDefinition {
    pb::SlaDefinition {
        name: "slaDefinitions/p1-resolution".into(),
        ticket_type: "incidents".into(),
        selection_condition: "priority = CRITICAL".into(),
        target: Some(duration(8 * H)),
        pause_condition: "state = ON_HOLD AND hold_reason = AWAITING_CALLER".into(),
        stop_condition: "state = RESOLVED".into(),
        reset_condition: "reopen_count > 0".into(),
        version: 1,
        enabled: true,
        ..pb::SlaDefinition::default()
    }
}

/// An incident changing over time, one event per change.
struct Ticket {
    incident: Incident,
    events: Vec<TicketEvent>,
}

impl Ticket {
    fn created(time: i64, group: &str) -> Self {
        let mut ticket = Self {
            incident: Incident {
                name: "incidents/INC0000042".into(),
                state: IncidentState::New as i32,
                priority: 1,
                assignment_group: group.into(),
                create_time: Some(timestamp(time)),
                ..Incident::default()
            },
            events: Vec::new(),
        };
        ticket.event(time, |_| {});
        ticket
    }

    fn event(&mut self, time: i64, change: impl FnOnce(&mut Incident)) -> &mut Self {
        change(&mut self.incident);
        let sequence = self.events.len() as u64 + 1;
        self.events.push(TicketEvent {
            ticket: self.incident.name.clone(),
            id: format!("event-{sequence}"),
            event_type: "incidents.incident.updated".into(),
            sequence,
            time,
            snapshot: tickets::incident_snapshot(&self.incident),
            changes: Vec::new(),
        });
        self
    }

    fn state(&mut self, time: i64, state: IncidentState) -> &mut Self {
        self.event(time, |i| {
            i.state = state as i32;
            i.hold_reason = if state == IncidentState::OnHold {
                HoldReason::AwaitingCaller as i32
            } else {
                0
            };
        })
    }

    fn group(&mut self, time: i64, group: &str) -> &mut Self {
        self.event(time, |i| i.assignment_group = group.into())
    }
}

fn replayed(ticket: &Ticket, now: i64) -> clock::Replay {
    let def = definition();
    let conditions = clock::compile_conditions(&def).unwrap();
    let first = ticket.events[0].time;
    clock::replay(
        &def,
        &conditions,
        &office_hours(),
        &ticket.events,
        first,
        now,
    )
}

fn shares(list: &[(String, i64)]) -> Vec<(&str, i64)> {
    list.iter().map(|(v, t)| (v.as_str(), t / H)).collect()
}

/// Monday 2026-01-05T00:00:00Z.
fn monday() -> i64 {
    at("2026-01-05T00:00:00Z")
}

/// Monday 09:00 new with the service desk, 10:00 in progress with network,
/// 12:00 on hold awaiting the caller until Tuesday 10:00 (6 business hours
/// paused), Tuesday 16:00 moved to database, resolved Wednesday 12:00. The
/// 8-hour target is reached Tuesday 15:00, with network, in progress.
fn the_ticket() -> Ticket {
    let m = monday();
    let mut t = Ticket::created(m + 9 * H, "service-desk");
    t.event(m + 10 * H, |i| {
        i.state = IncidentState::InProgress as i32;
        i.assignment_group = "network".into();
    })
    .state(m + 12 * H, IncidentState::OnHold)
    .state(m + DAY + 10 * H, IncidentState::InProgress)
    .group(m + DAY + 16 * H, "database")
    .state(m + 2 * DAY + 12 * H, IncidentState::Resolved);
    t
}

#[test]
fn a_breach_is_explained_by_state_group_and_pause() {
    let m = monday();
    let ticket = the_ticket();
    let r = replayed(&ticket, m + 3 * DAY);
    assert_eq!(r.task_sla.state, TaskSlaState::Breached as i32);
    let cause = analyse(
        &r.task_sla,
        &r.timeline,
        &ticket.events,
        &tickets::INCIDENT,
        &office_hours(),
        m + 3 * DAY,
    );
    assert_eq!(cause.breach_time, Some(m + DAY + 15 * H));
    assert_eq!(breach_instant(&r.timeline), m + DAY + 15 * H);
    assert_eq!(cause.ticket_state, "IN_PROGRESS");
    assert_eq!(cause.assignment_group, "network");
    assert_eq!(
        shares(&cause.time_by_state),
        [("IN_PROGRESS", 12), ("NEW", 1)]
    );
    assert_eq!(
        shares(&cause.time_by_group),
        [("network", 8), ("database", 4), ("service-desk", 1)]
    );
    let counted: i64 = cause.time_by_state.iter().map(|(_, t)| t).sum();
    assert_eq!(Some(duration(counted)), r.task_sla.elapsed, "shares add up");
    assert_eq!(
        cause.pauses,
        [Pause {
            start: m + 12 * H,
            end: Some(m + DAY + 10 * H),
            duration: 6 * H,
            condition_expression: "state = ON_HOLD AND hold_reason = AWAITING_CALLER".into(),
            ticket_state: "ON_HOLD".into(),
            hold_reason: "AWAITING_CALLER".into(),
        }]
    );
}

#[test]
fn a_running_clock_is_counted_to_now_and_an_open_pause_has_no_end() {
    let m = monday();
    let mut ticket = Ticket::created(m + 9 * H, "network");
    ticket
        .state(m + 10 * H, IncidentState::InProgress)
        .state(m + DAY + 12 * H, IncidentState::OnHold);
    // 8 business hours ran by Monday 17:00 (the breach), 3 more Tuesday until the hold.
    let now = m + DAY + 14 * H;
    let r = replayed(&ticket, now);
    assert_eq!(r.task_sla.state, TaskSlaState::Paused as i32);
    assert!(r.task_sla.breached);
    let cause = analyse(
        &r.task_sla,
        &r.timeline,
        &ticket.events,
        &tickets::INCIDENT,
        &office_hours(),
        now,
    );
    assert_eq!(cause.breach_time, Some(m + 17 * H));
    assert_eq!(cause.ticket_state, "IN_PROGRESS");
    assert_eq!(
        shares(&cause.time_by_state),
        [("IN_PROGRESS", 10), ("NEW", 1)]
    );
    assert_eq!(cause.pauses.len(), 1);
    assert_eq!(cause.pauses[0].end, None);
    assert_eq!(cause.pauses[0].duration, 2 * H, "to now");
}

#[test]
fn only_the_run_since_the_last_reset_counts() {
    let m = monday();
    let mut ticket = Ticket::created(m + 9 * H, "network");
    ticket
        .state(m + DAY + 12 * H, IncidentState::Resolved)
        .event(m + 2 * DAY + 9 * H, |i| {
            i.state = IncidentState::InProgress as i32;
            i.reopen_count = 1;
        });
    // Breached Monday 17:00, stopped Tuesday 12:00: no reset (final).
    let r = replayed(&ticket, m + 3 * DAY);
    assert_eq!(breach_instant(&r.timeline), m + 17 * H);

    // A timeline reset after its breach has no breach in its current run.
    let entry = |time: i64, effect: ClockEffect, after: TaskSlaState| pb::TimelineEntry {
        time: Some(timestamp(time)),
        effect: effect as i32,
        state_after: after as i32,
        ..pb::TimelineEntry::default()
    };
    let mut timeline = vec![
        entry(m + 9 * H, ClockEffect::Started, TaskSlaState::InProgress),
        entry(m + 17 * H, ClockEffect::Breached, TaskSlaState::InProgress),
        entry(
            m + DAY + 9 * H,
            ClockEffect::Reset,
            TaskSlaState::InProgress,
        ),
    ];
    assert_eq!(breach_instant(&timeline), 0);
    timeline.push(entry(
        m + 2 * DAY + 9 * H,
        ClockEffect::Breached,
        TaskSlaState::InProgress,
    ));
    assert_eq!(breach_instant(&timeline), m + 2 * DAY + 9 * H);
    let sla = pb::TaskSla {
        state: TaskSlaState::InProgress as i32,
        ..pb::TaskSla::default()
    };
    let cause = analyse(
        &sla,
        &timeline,
        &ticket.events,
        &tickets::INCIDENT,
        &office_hours(),
        m + 2 * DAY + 10 * H,
    );
    // From the reset (Tuesday 09:00) to now (Wednesday 10:00): 9 business hours.
    let counted: i64 = cause.time_by_group.iter().map(|(_, t)| t).sum();
    assert_eq!(counted, 9 * H);
}
