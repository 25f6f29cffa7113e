#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use itsm_proto::itsm::common::v1::TimeOfDay;
use itsm_proto::itsm::incidents::v1::{HoldReason, Incident, IncidentState};
use itsm_proto::itsm::sla::v1::{Calendar, DaySpan, WeeklySpan};

const H: i64 = 3_600_000_000;
const MIN: i64 = 60_000_000;
/// Monday 2026-01-05T00:00:00Z.
const MONDAY: i64 = 1_767_571_200_000_000;
const DAY: i64 = 24 * H;

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

fn definition(target: i64) -> pb::SlaDefinition {
    pb::SlaDefinition {
        name: "slaDefinitions/p1-resolution".into(),
        display_name: "P1 resolution".into(),
        ticket_type: "incidents".into(),
        target: Some(duration(target)),
        pause_condition: "state = ON_HOLD AND hold_reason = AWAITING_CALLER".into(),
        stop_condition: "state = RESOLVED OR state = CLOSED".into(),
        cancel_condition: "state = CANCELED".into(),
        version: 3,
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
    fn created(time: i64, change: impl FnOnce(&mut Incident)) -> Self {
        let mut ticket = Self {
            incident: Incident {
                name: "incidents/INC0000042".into(),
                state: IncidentState::New as i32,
                priority: 1,
                assignment_group: "network".into(),
                create_time: Some(timestamp(time)),
                ..Incident::default()
            },
            events: Vec::new(),
        };
        ticket.event(time, change);
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
}

fn run(
    def: &pb::SlaDefinition,
    calendar: &BusinessCalendar,
    events: &[TicketEvent],
    now: i64,
) -> Replay {
    let conditions = compile_conditions(def).unwrap();
    let attach = events.iter().map(|e| e.time).min().unwrap_or(0);
    replay(def, &conditions, calendar, events, attach, now)
}

fn effects(replay: &Replay) -> Vec<(i64, ClockEffect)> {
    replay
        .timeline
        .iter()
        .map(|e| {
            let t = e.time.unwrap();
            (
                t.seconds * 1_000_000 + i64::from(t.nanos / 1_000),
                ClockEffect::try_from(e.effect).unwrap(),
            )
        })
        .collect()
}

fn micros_of_ts(t: Option<prost_types::Timestamp>) -> Option<i64> {
    t.map(|t| t.seconds * 1_000_000 + i64::from(t.nanos / 1_000))
}

fn state(replay: &Replay) -> TaskSlaState {
    TaskSlaState::try_from(replay.task_sla.state).unwrap()
}

#[test]
fn on_hold_awaiting_caller_pauses_resumes_and_breaches_at_the_predicted_instant() {
    let calendar = office_hours();
    let def = definition(8 * H);
    let mut ticket = Ticket::created(MONDAY + 10 * H, |_| {});
    ticket
        .state(MONDAY + 12 * H, IncidentState::OnHold)
        .state(MONDAY + DAY + 10 * H, IncidentState::InProgress);
    // Ran 10:00-12:00 Monday (2h), paused until Tuesday 10:00: 6h left.
    let predicted = calendar.add(MONDAY + DAY + 10 * H, 6 * H);
    assert_eq!(predicted, MONDAY + DAY + 16 * H);

    let before = run(&def, &calendar, &ticket.events, MONDAY + DAY + 11 * H);
    assert_eq!(state(&before), TaskSlaState::InProgress);
    assert_eq!(micros_of_ts(before.task_sla.breach_time), Some(predicted));
    assert_eq!(
        before.next_deadline,
        Some(Deadline::Warning {
            at: MONDAY + DAY + 12 * H,
            percentage: 50
        })
    );
    assert_eq!(before.task_sla.elapsed, Some(duration(3 * H)));
    // Monday 12:00-17:00 and Tuesday 09:00-10:00.
    assert_eq!(before.task_sla.paused_duration, Some(duration(6 * H)));

    let after = run(&def, &calendar, &ticket.events, MONDAY + 2 * DAY + 12 * H);
    assert_eq!(
        effects(&after),
        vec![
            (MONDAY + 10 * H, ClockEffect::Started),
            (MONDAY + 12 * H, ClockEffect::Paused),
            (MONDAY + DAY + 10 * H, ClockEffect::Resumed),
            (MONDAY + DAY + 12 * H, ClockEffect::Warned),
            (MONDAY + DAY + 14 * H, ClockEffect::Warned),
            (predicted, ClockEffect::Breached),
        ]
    );
    let sla = &after.task_sla;
    assert_eq!(
        state(&after),
        TaskSlaState::InProgress,
        "stays running until stopped"
    );
    assert!(sla.breached);
    assert_eq!(sla.warnings_reached, vec![50, 75, 100]);
    assert_eq!(micros_of_ts(sla.breach_time), Some(predicted));
    // 2h Monday + 7h Tuesday + 3h Wednesday.
    assert_eq!(sla.elapsed, Some(duration(12 * H)));
    assert_eq!(sla.remaining, Some(duration(-4 * H)));
    assert!((sla.percentage - 150.0).abs() < 1e-9);
    assert_eq!(sla.wall_elapsed, Some(duration(2 * DAY + 2 * H)));
    assert_eq!(after.next_deadline, None);
    let pause = &after.timeline[1];
    assert_eq!(pause.condition, ConditionKind::Pause as i32);
    assert_eq!(pause.condition_expression, def.pause_condition);
    assert_eq!(pause.state_before, TaskSlaState::InProgress as i32);
    assert_eq!(pause.state_after, TaskSlaState::Paused as i32);
    assert_eq!(pause.event_sequence, 2);
    assert_eq!(pause.sla_definition_version, 3);
    assert_eq!(after.timeline[5].trigger, TimelineTrigger::Timer as i32);
    assert_eq!(after.timeline[5].breach_time, Some(timestamp(predicted)));
    assert!(after.timeline.iter().all(|e| !e.note.is_empty()));

    // Resolved afterwards: BREACHED, and the figures freeze at the stop.
    ticket.state(MONDAY + 2 * DAY + 10 * H, IncidentState::Resolved);
    let stopped = run(&def, &calendar, &ticket.events, MONDAY + 9 * DAY);
    assert_eq!(state(&stopped), TaskSlaState::Breached);
    assert_eq!(
        stopped.timeline.last().unwrap().effect,
        ClockEffect::StoppedBreached as i32
    );
    assert_eq!(stopped.task_sla.elapsed, Some(duration(10 * H)));
    assert_eq!(stopped.task_sla.breach_time, None);
    assert_eq!(stopped.next_deadline, None);
}

#[test]
fn warnings_and_breach_follow_office_hours_across_a_dst_change() {
    // Europe/Berlin, 09:00-17:00 local; clocks go forward on Sunday 2026-03-29.
    let mut calendar = Calendar {
        time_zone: "Europe/Berlin".into(),
        ..Calendar::default()
    };
    calendar.weekly_spans = (1..=5)
        .map(|day| WeeklySpan {
            day,
            span: Some(DaySpan {
                start: Some(TimeOfDay {
                    hours: 9,
                    minutes: 0,
                    seconds: 0,
                }),
                end: Some(TimeOfDay {
                    hours: 17,
                    minutes: 0,
                    seconds: 0,
                }),
            }),
        })
        .collect();
    let calendar = BusinessCalendar::compile(&calendar, "").unwrap();
    let def = definition(2 * H);
    // Friday 2026-03-27 16:00 CET (15:00Z).
    let friday = MONDAY + 81 * DAY;
    let ticket = Ticket::created(friday + 15 * H, |_| {});
    let r = run(&def, &calendar, &ticket.events, friday + 3 * DAY + 12 * H);
    // 1h on Friday; Monday 09:00 CEST is 07:00Z.
    assert_eq!(
        effects(&r),
        vec![
            (friday + 15 * H, ClockEffect::Started),
            (friday + 16 * H, ClockEffect::Warned),
            (friday + 3 * DAY + 7 * H + 30 * MIN, ClockEffect::Warned),
            (friday + 3 * DAY + 8 * H, ClockEffect::Breached),
        ]
    );
    assert_eq!(r.task_sla.time_zone, "Europe/Berlin");
    let r = r.with_calendar_version(4);
    assert_eq!(r.task_sla.calendar_version, 4);
    assert!(r.timeline.iter().all(|e| e.calendar_version == 4));
    let early = run(&def, &calendar, &ticket.events, friday + 15 * H + MIN);
    assert_eq!(
        micros_of_ts(early.task_sla.breach_time),
        Some(friday + 3 * DAY + 8 * H)
    );
}

#[test]
fn other_hold_reasons_do_not_pause() {
    let def = definition(8 * H);
    let mut ticket = Ticket::created(MONDAY, |_| {});
    ticket.event(MONDAY + H, |i| {
        i.state = IncidentState::OnHold as i32;
        i.hold_reason = HoldReason::AwaitingVendor as i32;
    });
    let r = run(
        &def,
        &BusinessCalendar::always(),
        &ticket.events,
        MONDAY + 2 * H,
    );
    assert_eq!(state(&r), TaskSlaState::InProgress);
    assert_eq!(r.timeline[1].effect, ClockEffect::None as i32);
    assert_eq!(r.task_sla.elapsed, Some(duration(2 * H)));
}

#[test]
fn stop_within_the_target_is_achieved() {
    let def = definition(4 * H);
    let mut ticket = Ticket::created(MONDAY, |_| {});
    ticket.state(MONDAY + 150 * MIN, IncidentState::Resolved);
    let r = run(
        &def,
        &BusinessCalendar::always(),
        &ticket.events,
        MONDAY + DAY,
    );
    assert_eq!(state(&r), TaskSlaState::Achieved);
    assert!(!r.task_sla.breached);
    assert_eq!(r.task_sla.warnings_reached, vec![50]);
    assert_eq!(micros_of_ts(r.task_sla.stop_time), Some(MONDAY + 150 * MIN));
    assert_eq!(r.task_sla.wall_elapsed, Some(duration(150 * MIN)));
    assert_eq!(r.task_sla.elapsed, Some(duration(150 * MIN)));
    let last = r.timeline.last().unwrap();
    assert_eq!(
        (last.condition, last.effect),
        (ConditionKind::Stop as i32, ClockEffect::Achieved as i32)
    );
    // Events after a final state change nothing.
    ticket.state(MONDAY + 5 * H, IncidentState::InProgress);
    let later = run(
        &def,
        &BusinessCalendar::always(),
        &ticket.events,
        MONDAY + DAY,
    );
    assert_eq!(later.task_sla.elapsed, r.task_sla.elapsed);
    assert_eq!(later.timeline.len(), r.timeline.len());
}

#[test]
fn start_condition_waits_for_its_event() {
    let mut def = definition(4 * H);
    def.start_condition = "assignee:*".into();
    let mut ticket = Ticket::created(MONDAY, |_| {});
    ticket.event(MONDAY + H, |i| i.title = "more detail".into());
    let waiting = run(
        &def,
        &BusinessCalendar::always(),
        &ticket.events,
        MONDAY + 2 * H,
    );
    assert_eq!(state(&waiting), TaskSlaState::Unspecified);
    assert_eq!(waiting.next_deadline, None);
    assert_eq!(waiting.task_sla.start_time, None);
    ticket.event(MONDAY + 2 * H, |i| i.assignee = "users/ana".into());
    let r = run(
        &def,
        &BusinessCalendar::always(),
        &ticket.events,
        MONDAY + 3 * H,
    );
    assert_eq!(micros_of_ts(r.task_sla.start_time), Some(MONDAY + 2 * H));
    assert_eq!(r.task_sla.elapsed, Some(duration(H)));
    let started = &r.timeline[2];
    assert_eq!(
        (started.condition, started.effect),
        (ConditionKind::Start as i32, ClockEffect::Started as i32)
    );
    assert_eq!(
        r.next_deadline,
        Some(Deadline::Warning {
            at: MONDAY + 4 * H,
            percentage: 50
        })
    );
}

#[test]
fn a_clock_starting_while_the_pause_condition_holds_starts_paused() {
    let mut def = definition(4 * H);
    def.start_condition = "assignee:*".into();
    let mut ticket = Ticket::created(MONDAY, |_| {});
    ticket
        .state(MONDAY + H, IncidentState::OnHold)
        .event(MONDAY + 2 * H, |i| i.assignee = "users/ana".into())
        .state(MONDAY + 3 * H, IncidentState::InProgress);
    let r = run(
        &def,
        &BusinessCalendar::always(),
        &ticket.events,
        MONDAY + 4 * H,
    );
    assert_eq!(
        effects(&r)[2..],
        [
            (MONDAY + 2 * H, ClockEffect::Started),
            (MONDAY + 2 * H, ClockEffect::Paused),
            (MONDAY + 3 * H, ClockEffect::Resumed),
        ]
    );
    assert_eq!(r.task_sla.elapsed, Some(duration(H)));
    assert_eq!(r.task_sla.paused_duration, Some(duration(H)));
}

#[test]
fn resume_condition_is_needed_to_resume_when_set() {
    let mut def = definition(4 * H);
    def.pause_condition = "state = ON_HOLD".into();
    def.resume_condition = "state = IN_PROGRESS".into();
    let mut ticket = Ticket::created(MONDAY, |_| {});
    ticket
        .state(MONDAY + H, IncidentState::OnHold)
        .state(MONDAY + 2 * H, IncidentState::New);
    let r = run(
        &def,
        &BusinessCalendar::always(),
        &ticket.events,
        MONDAY + 3 * H,
    );
    assert_eq!(state(&r), TaskSlaState::Paused);
    assert_eq!(micros_of_ts(r.task_sla.pause_time), Some(MONDAY + H));
    assert_eq!(r.task_sla.breach_time, None, "unset while paused");
    assert_eq!(r.next_deadline, None);
    ticket.state(MONDAY + 3 * H, IncidentState::InProgress);
    let r = run(
        &def,
        &BusinessCalendar::always(),
        &ticket.events,
        MONDAY + 4 * H,
    );
    assert_eq!(state(&r), TaskSlaState::InProgress);
    let resumed = &r.timeline[3];
    assert_eq!(
        (resumed.condition, resumed.effect),
        (ConditionKind::Resume as i32, ClockEffect::Resumed as i32)
    );
    assert_eq!(r.task_sla.elapsed, Some(duration(2 * H)));
    assert_eq!(r.task_sla.paused_duration, Some(duration(2 * H)));
}

#[test]
fn a_paused_clock_never_breaches() {
    let def = definition(2 * H);
    let mut ticket = Ticket::created(MONDAY, |_| {});
    ticket.state(MONDAY + 30 * MIN, IncidentState::OnHold);
    let r = run(
        &def,
        &BusinessCalendar::always(),
        &ticket.events,
        MONDAY + 30 * DAY,
    );
    assert_eq!(state(&r), TaskSlaState::Paused);
    assert!(!r.task_sla.breached);
    assert_eq!(r.task_sla.elapsed, Some(duration(30 * MIN)));
    assert!(
        r.timeline
            .iter()
            .all(|e| e.effect != ClockEffect::Breached as i32)
    );
}

#[test]
fn reset_restarts_from_zero_when_its_condition_becomes_true() {
    let mut def = definition(4 * H);
    def.reset_condition = "assignment_group = escalation".into();
    let mut ticket = Ticket::created(MONDAY, |_| {});
    ticket
        .event(MONDAY + 3 * H, |i| i.assignment_group = "escalation".into())
        .event(MONDAY + 4 * H, |i| i.title = "still escalated".into());
    let r = run(
        &def,
        &BusinessCalendar::always(),
        &ticket.events,
        MONDAY + 5 * H,
    );
    assert_eq!(r.task_sla.reset_count, 1, "only on becoming true");
    assert_eq!(r.task_sla.elapsed, Some(duration(2 * H)));
    assert!(!r.task_sla.breached);
    assert_eq!(micros_of_ts(r.task_sla.start_time), Some(MONDAY + 3 * H));
    assert_eq!(r.task_sla.warnings_reached, vec![50]);
    assert!(
        effects(&r).contains(&(MONDAY + 3 * H, ClockEffect::Reset)),
        "{:?}",
        effects(&r)
    );
    // The old run stays in the timeline, its warning included.
    assert!(effects(&r).contains(&(MONDAY + 2 * H, ClockEffect::Warned)));
    assert_eq!(
        r.next_deadline,
        Some(Deadline::Warning {
            at: MONDAY + 6 * H,
            percentage: 75
        })
    );
}

#[test]
fn cancel_condition_and_selection_cancel() {
    let def = definition(4 * H);
    let mut ticket = Ticket::created(MONDAY, |_| {});
    ticket.state(MONDAY + H, IncidentState::Canceled);
    let r = run(
        &def,
        &BusinessCalendar::always(),
        &ticket.events,
        MONDAY + DAY,
    );
    assert_eq!(state(&r), TaskSlaState::Canceled);
    assert_eq!(r.task_sla.cancel_reason, CANCEL_CONDITION);
    assert_eq!(r.timeline[1].condition, ConditionKind::Cancel as i32);

    let mut def = definition(4 * H);
    def.selection_condition = "priority = CRITICAL".into();
    let mut ticket = Ticket::created(MONDAY, |_| {});
    ticket.event(MONDAY + H, |i| i.priority = 3);
    let r = run(
        &def,
        &BusinessCalendar::always(),
        &ticket.events,
        MONDAY + DAY,
    );
    assert_eq!(state(&r), TaskSlaState::Canceled);
    assert_eq!(r.task_sla.cancel_reason, SELECTION_NO_LONGER_MATCHES);
    assert_eq!(r.timeline[1].condition, ConditionKind::Selection as i32);
    assert_eq!(r.task_sla.elapsed, Some(duration(H)));
    assert!(selects(
        &compile_conditions(&def).unwrap(),
        &ticket.events[0].snapshot
    ));
    assert!(!selects(
        &compile_conditions(&def).unwrap(),
        &ticket.events[1].snapshot
    ));
}

#[test]
fn retroactive_start_and_pause() {
    let mut def = definition(8 * H);
    def.selection_condition = "priority = CRITICAL".into();
    def.retroactive_start_field = "create_time".into();
    let mut ticket = Ticket::created(MONDAY + 9 * H, |i| i.priority = 3);
    ticket
        .state(MONDAY + 10 * H, IncidentState::OnHold)
        .state(MONDAY + 11 * H, IncidentState::InProgress)
        .event(MONDAY + 13 * H, |i| i.priority = 1);
    let conditions = compile_conditions(&def).unwrap();
    let calendar = office_hours();
    let attach = MONDAY + 13 * H;
    let now = MONDAY + 14 * H;

    let r = replay(&def, &conditions, &calendar, &ticket.events, attach, now);
    assert_eq!(micros_of_ts(r.task_sla.start_time), Some(MONDAY + 9 * H));
    assert_eq!(r.task_sla.elapsed, Some(duration(5 * H)));
    assert_eq!(r.task_sla.paused_duration, Some(duration(0)));

    def.retroactive_pause = true;
    let conditions = compile_conditions(&def).unwrap();
    let r = replay(&def, &conditions, &calendar, &ticket.events, attach, now);
    assert_eq!(r.task_sla.elapsed, Some(duration(4 * H)));
    assert_eq!(r.task_sla.paused_duration, Some(duration(H)));
    assert_eq!(
        effects(&r),
        vec![
            (MONDAY + 9 * H, ClockEffect::Started),
            (MONDAY + 10 * H, ClockEffect::Paused),
            (MONDAY + 11 * H, ClockEffect::Resumed),
            (MONDAY + 14 * H, ClockEffect::Warned),
        ]
    );
    // 4h used by 14:00; 4h left: 16:00 Monday... plus 1h Tuesday.
    assert_eq!(
        micros_of_ts(r.task_sla.breach_time),
        Some(MONDAY + DAY + 10 * H)
    );
}

#[test]
fn duplicates_and_out_of_order_events_give_the_same_replay() {
    let def = definition(8 * H);
    let calendar = office_hours();
    let mut ticket = Ticket::created(MONDAY + 8 * H, |_| {});
    ticket
        .state(MONDAY + 12 * H, IncidentState::OnHold)
        .state(MONDAY + 15 * H, IncidentState::InProgress)
        .event(MONDAY + DAY + 9 * H, |i| i.assignee = "users/ana".into())
        .state(MONDAY + DAY + 11 * H, IncidentState::OnHold)
        .state(MONDAY + 3 * DAY + 10 * H, IncidentState::InProgress)
        .state(MONDAY + 4 * DAY + 16 * H, IncidentState::Resolved);
    let conditions = compile_conditions(&def).unwrap();
    let attach = MONDAY + 8 * H;
    let now = MONDAY + 5 * DAY;
    let sorted = replay(&def, &conditions, &calendar, &ticket.events, attach, now);

    let mut reversed: Vec<TicketEvent> = ticket.events.iter().rev().cloned().collect();
    reversed.extend(ticket.events.iter().cloned());
    assert_eq!(
        replay(&def, &conditions, &calendar, &reversed, attach, now),
        sorted
    );

    // Property: any shuffle with any duplicates (a small deterministic PRNG).
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..200 {
        let mut events = ticket.events.clone();
        for _ in 0..(next() % 6) {
            let i = (next() % events.len() as u64) as usize;
            events.push(events[i].clone());
        }
        for i in (1..events.len()).rev() {
            let j = (next() % (i as u64 + 1)) as usize;
            events.swap(i, j);
        }
        assert_eq!(
            replay(&def, &conditions, &calendar, &events, attach, now),
            sorted
        );
    }
}

#[test]
fn replays_at_successive_instants_agree_with_one_replay() {
    // Closing at `now` and continuing gives what one longer replay gives.
    let def = definition(8 * H);
    let calendar = office_hours();
    let mut ticket = Ticket::created(MONDAY + 10 * H, |_| {});
    ticket.state(MONDAY + 12 * H, IncidentState::OnHold);
    let partial = run(&def, &calendar, &ticket.events[..1], MONDAY + 11 * H);
    assert_eq!(partial.task_sla.elapsed, Some(duration(H)));
    // The next deadline is where the warning is placed later.
    let Some(Deadline::Warning { at, percentage: 50 }) = partial.next_deadline else {
        panic!("{:?}", partial.next_deadline)
    };
    let later = run(&def, &calendar, &ticket.events[..1], at + MIN);
    assert!(effects(&later).contains(&(at, ClockEffect::Warned)));
}

#[test]
fn conditions_are_checked_and_every_bad_one_named() {
    let mut def = definition(H);
    def.pause_condition = "state = PAUSED".into();
    def.stop_condition = "state =".into();
    def.reset_condition = "bogus = 1".into();
    def.retroactive_start_field = "title".into();
    def.warning_percentages = vec![50, 0];
    let errors = compile_conditions(&def).unwrap_err();
    let fields: Vec<&str> = errors.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(
        fields,
        vec![
            "sla_definition.pause_condition",
            "sla_definition.stop_condition",
            "sla_definition.reset_condition",
            "sla_definition.retroactive_start_field",
            "sla_definition.warning_percentages[1]",
        ]
    );
    assert!(errors[0].1.contains("ON_HOLD"), "{}", errors[0].1);
    def = definition(H);
    def.ticket_type = "problems".into();
    let errors = compile_conditions(&def).unwrap_err();
    assert_eq!(errors[0].0, "sla_definition.ticket_type");
    assert!(errors[0].1.contains("not supported yet"));
    def.ticket_type = "bogus".into();
    assert!(
        compile_conditions(&def).unwrap_err()[0]
            .1
            .contains("unknown ticket type")
    );
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    const STATES: [IncidentState; 6] = [
        IncidentState::New,
        IncidentState::InProgress,
        IncidentState::OnHold,
        IncidentState::Resolved,
        IncidentState::Canceled,
        IncidentState::InProgress,
    ];

    /// A history: minutes between changes, and what each change does
    /// (a state, or a reassignment to the group that resets the clock).
    fn history(steps: &[(u16, u8)]) -> Vec<TicketEvent> {
        let mut ticket = Ticket::created(MONDAY, |_| {});
        let mut time = MONDAY;
        for (gap, what) in steps {
            time += i64::from(*gap) * MIN;
            match usize::from(*what) {
                w if w < STATES.len() => {
                    ticket.state(time, STATES[w]);
                }
                w => {
                    let group = if w % 2 == 0 { "escalation" } else { "network" };
                    ticket.event(time, |i| i.assignment_group = group.into());
                }
            }
        }
        ticket.events
    }

    fn definition_under_test() -> pb::SlaDefinition {
        let mut def = definition(6 * H);
        def.reset_condition = "assignment_group = escalation".into();
        def.warning_percentages = vec![25, 50, 100, 150];
        def
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn shuffled_duplicated_events_replay_as_the_sorted_ones(
            steps in prop::collection::vec((0u16..600, 0u8..8), 0..14),
            duplicates in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
            shuffle_seed in any::<u64>(),
            now_after in 0i64..(5 * 24 * 60),
            office in any::<bool>(),
        ) {
            let def = definition_under_test();
            let conditions = compile_conditions(&def).unwrap();
            let calendar = if office { office_hours() } else { BusinessCalendar::always() };
            let events = history(&steps);
            let now = events.last().unwrap().time + now_after * MIN;
            let sorted = replay(&def, &conditions, &calendar, &events, MONDAY, now);

            let mut mixed = events.clone();
            for index in &duplicates {
                mixed.push(index.get(&events).clone());
            }
            let mut seed = shuffle_seed | 1;
            for i in (1..mixed.len()).rev() {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                mixed.swap(i, (seed % (i as u64 + 1)) as usize);
            }
            let shuffled = replay(&def, &conditions, &calendar, &mixed, MONDAY, now);
            prop_assert_eq!(&shuffled, &sorted);

            // The figures are consistent with each other.
            let sla = &sorted.task_sla;
            let elapsed = micros_of(sla.elapsed.as_ref());
            let paused = micros_of(sla.paused_duration.as_ref());
            prop_assert_eq!(sla.breached, elapsed >= 6 * H, "breached iff target reached");
            if !office {
                // 24x7: running plus paused time is the wall time of the run.
                let wall = micros_of(sla.wall_elapsed.as_ref());
                prop_assert_eq!(elapsed + paused, wall);
            }
            // Timeline times never go backwards.
            let times: Vec<i64> = sorted.timeline.iter().map(|e| micros_of_ts(e.time).unwrap()).collect();
            prop_assert!(times.windows(2).all(|w| w[0] <= w[1]), "{:?}", times);
            // The next deadline is after now, and only for a running clock.
            match sorted.next_deadline {
                Some(deadline) => {
                    prop_assert_eq!(state(&sorted), TaskSlaState::InProgress);
                    prop_assert!(deadline.at() > now);
                }
                None => prop_assert!(state(&sorted) != TaskSlaState::InProgress || sla.warnings_reached.contains(&150)),
            }
        }
    }
}

#[test]
fn a_target_business_time_never_reaches_has_no_breach_instant_nor_timer() {
    let mut def = definition(H);
    def.target = Some(prost_types::Duration {
        seconds: i64::MAX / 1_000_000,
        nanos: 0,
    });
    def.warning_percentages = vec![100];
    let ticket = Ticket::created(MONDAY, |_| {});
    let r = run(
        &def,
        &BusinessCalendar::always(),
        &ticket.events,
        MONDAY + H,
    );
    assert_eq!(state(&r), TaskSlaState::InProgress);
    assert_eq!(r.task_sla.breach_time, None);
    assert_eq!(r.next_deadline, None);
    assert_eq!(r.task_sla.elapsed, Some(duration(H)));
}

#[test]
fn projecting_a_stored_clock_matches_replaying_to_the_later_instant() {
    let calendar = office_hours();
    let def = definition(8 * H);
    let mut ticket = Ticket::created(MONDAY + 10 * H, |_| {});
    ticket.state(MONDAY + 12 * H, IncidentState::OnHold);
    let conditions = compile_conditions(&def).unwrap();
    let attach = MONDAY + 10 * H;
    let running = replay(
        &def,
        &conditions,
        &calendar,
        &ticket.events[..1],
        attach,
        MONDAY + 11 * H,
    );
    let later = MONDAY + 15 * H;
    let replayed = replay(
        &def,
        &conditions,
        &calendar,
        &ticket.events[..1],
        attach,
        later,
    );
    let projected = project(&running.task_sla, &calendar, later);
    assert_eq!(projected.elapsed, replayed.task_sla.elapsed);
    assert_eq!(projected.remaining, replayed.task_sla.remaining);
    assert_eq!(projected.percentage, replayed.task_sla.percentage);
    assert_eq!(projected.wall_elapsed, replayed.task_sla.wall_elapsed);
    assert_eq!(projected.compute_time, Some(timestamp(later)));

    let paused = replay(
        &def,
        &conditions,
        &calendar,
        &ticket.events,
        attach,
        MONDAY + 13 * H,
    );
    let replayed = replay(
        &def,
        &conditions,
        &calendar,
        &ticket.events,
        attach,
        MONDAY + DAY + 10 * H,
    );
    let projected = project(&paused.task_sla, &calendar, MONDAY + DAY + 10 * H);
    assert_eq!(projected.elapsed, Some(duration(2 * H)));
    assert_eq!(projected.paused_duration, replayed.task_sla.paused_duration);
    assert_eq!(projected.paused_duration, Some(duration(6 * H)));
    // Before the compute time: unchanged.
    assert_eq!(
        project(&paused.task_sla, &calendar, MONDAY),
        paused.task_sla
    );
}
