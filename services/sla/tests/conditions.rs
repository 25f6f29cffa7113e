//! Every condition of a definition, through the real server: incident events
//! are applied as the bus consumer applies them, and the task SLAs are read
//! back over the API (ListTaskSlas returns each clock as of its last event;
//! ExplainTaskSla names the condition that matched). 24x7 clocks, so every
//! figure is plain wall time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/mod.rs"]
mod support;

use itsm_proto::itsm::incidents::v1::{HoldReason, IncidentState};
use itsm_proto::itsm::sla::v1 as pb;
use itsm_sla::engine::Engine;
use itsm_testkit::{TestDb, backend_tests};

use support::{ADMIN, AGENT, H, Harness, Ticket, as_, micros, monday, seconds, start};

backend_tests!(
    selection_picks_the_tickets_and_start_waits_for_its_condition,
    pause_holds_until_the_resume_condition,
    without_a_resume_condition_the_clock_resumes_when_the_pause_ends,
    stop_achieves_within_the_target_and_breaches_after_it,
    reset_restarts_the_clock_from_zero,
    cancel_condition_cancels_for_good,
    a_ticket_selected_again_gets_a_new_clock,
);

/// A 4-hour 24x7 definition on incidents with `change` applied.
async fn define(svc: &mut Harness, id: &str, change: impl FnOnce(&mut pb::SlaDefinition)) {
    let mut definition = pb::SlaDefinition {
        display_name: id.into(),
        kind: pb::SlaKind::Sla as i32,
        ticket_type: "incidents".into(),
        target: Some(seconds(4 * 3600)),
        stop_condition: "state = RESOLVED".into(),
        enabled: true,
        ..pb::SlaDefinition::default()
    };
    change(&mut definition);
    let request = pb::CreateSlaDefinitionRequest {
        sla_definition: Some(definition),
        sla_definition_id: id.into(),
        ..pb::CreateSlaDefinitionRequest::default()
    };
    svc.client
        .create_sla_definition(as_(ADMIN, request))
        .await
        .unwrap();
}

/// Applies every event of `ticket` not applied yet (duplicates are no-ops).
async fn apply(svc: &Harness, ticket: &Ticket) {
    let engine = Engine::default();
    for event in &ticket.events {
        let time = micros(event.time.as_ref().unwrap());
        engine
            .apply_ticket_event(&svc.db, event, time)
            .await
            .unwrap();
    }
}

/// A change to the incident that no condition looks at, at `time`.
fn touch(ticket: &mut Ticket, time: i64) {
    ticket.incident.title = format!("checked at {time}");
    ticket.push(time, "incidents.incident.updated");
}

/// The task SLAs of `ticket`, oldest first, as of their last event.
async fn clocks(svc: &mut Harness, number: &str) -> Vec<pb::TaskSla> {
    let request = pb::ListTaskSlasRequest {
        filter: format!("ticket = \"incidents/{number}\""),
        ..pb::ListTaskSlasRequest::default()
    };
    svc.client
        .list_task_slas(as_(AGENT, request))
        .await
        .unwrap()
        .into_inner()
        .task_slas
}

async fn only_clock(svc: &mut Harness, number: &str) -> pb::TaskSla {
    let mut all = clocks(svc, number).await;
    assert_eq!(all.len(), 1, "{all:#?}");
    all.remove(0)
}

fn hours(d: Option<&prost_types::Duration>) -> f64 {
    d.map_or(0.0, |d| d.seconds as f64 / 3600.0)
}

fn state(t: &pb::TaskSla) -> pb::TaskSlaState {
    pb::TaskSlaState::try_from(t.state).unwrap()
}

/// (condition, effect) of every timeline entry that did something.
async fn explained(svc: &mut Harness, name: &str) -> Vec<(pb::ConditionKind, pb::ClockEffect)> {
    let request = pb::ExplainTaskSlaRequest { name: name.into() };
    let timeline = svc
        .client
        .explain_task_sla(as_(AGENT, request))
        .await
        .unwrap()
        .into_inner();
    timeline
        .entries
        .iter()
        .map(|e| {
            (
                pb::ConditionKind::try_from(e.condition).unwrap(),
                pb::ClockEffect::try_from(e.effect).unwrap(),
            )
        })
        .filter(|(_, effect)| *effect != pb::ClockEffect::None)
        .collect()
}

async fn selection_picks_the_tickets_and_start_waits_for_its_condition(db: TestDb) {
    let mut svc = start(&db).await;
    define(&mut svc, "p1", |d| {
        d.selection_condition = "priority = CRITICAL".into();
        d.start_condition = "state = IN_PROGRESS".into();
    })
    .await;
    let m = monday();
    let mut p1 = Ticket::created("INC0000001", m, 1, "network");
    let mut p3 = Ticket::created("INC0000002", m, 3, "network");
    touch(&mut p1, m + H);
    apply(&svc, &p1).await;
    apply(&svc, &p3).await;
    // Selected, not started: no time counts yet.
    let waiting = only_clock(&mut svc, "INC0000001").await;
    assert_eq!(waiting.start_time, None);
    assert_eq!(hours(waiting.elapsed.as_ref()), 0.0);
    assert!(clocks(&mut svc, "INC0000002").await.is_empty());

    p1.state(m + 2 * H, IncidentState::InProgress);
    touch(&mut p1, m + 5 * H);
    apply(&svc, &p1).await;
    let running = only_clock(&mut svc, "INC0000001").await;
    assert_eq!(micros(running.start_time.as_ref().unwrap()), m + 2 * H);
    assert_eq!(hours(running.elapsed.as_ref()), 3.0);
    assert_eq!(state(&running), pb::TaskSlaState::InProgress);
    assert_eq!(
        micros(running.breach_time.as_ref().unwrap()),
        m + 6 * H,
        "started at +2h with a 4h target"
    );
    assert!(
        explained(&mut svc, &running.name)
            .await
            .contains(&(pb::ConditionKind::Start, pb::ClockEffect::Started))
    );
    // The other priority never attaches, whatever happens to it.
    p3.state(m + 2 * H, IncidentState::InProgress);
    apply(&svc, &p3).await;
    assert!(clocks(&mut svc, "INC0000002").await.is_empty());
}

async fn pause_holds_until_the_resume_condition(db: TestDb) {
    let mut svc = start(&db).await;
    define(&mut svc, "pausing", |d| {
        d.pause_condition = "state = ON_HOLD AND hold_reason = AWAITING_CALLER".into();
        d.resume_condition = "state = IN_PROGRESS".into();
    })
    .await;
    let m = monday();
    let mut t = Ticket::created("INC0000001", m, 3, "network");
    t.state(m + H, IncidentState::OnHold);
    // The pause condition stops holding, but the resume condition does not yet.
    t.incident.hold_reason = HoldReason::AwaitingVendor as i32;
    t.push(m + 2 * H, "incidents.incident.updated");
    apply(&svc, &t).await;
    let paused = only_clock(&mut svc, "INC0000001").await;
    assert_eq!(state(&paused), pb::TaskSlaState::Paused);
    assert_eq!(micros(paused.pause_time.as_ref().unwrap()), m + H);
    assert_eq!(
        paused.breach_time, None,
        "a paused clock has no breach instant"
    );

    t.state(m + 4 * H, IncidentState::InProgress);
    touch(&mut t, m + 5 * H);
    apply(&svc, &t).await;
    let resumed = only_clock(&mut svc, "INC0000001").await;
    assert_eq!(state(&resumed), pb::TaskSlaState::InProgress);
    assert_eq!(hours(resumed.elapsed.as_ref()), 2.0);
    assert_eq!(hours(resumed.paused_duration.as_ref()), 3.0);
    assert_eq!(micros(resumed.breach_time.as_ref().unwrap()), m + 7 * H);
    let effects = explained(&mut svc, &resumed.name).await;
    assert!(effects.contains(&(pb::ConditionKind::Pause, pb::ClockEffect::Paused)));
    assert!(effects.contains(&(pb::ConditionKind::Resume, pb::ClockEffect::Resumed)));
    let names = svc.event_names(&resumed.name).await;
    for wanted in [
        "sla.task_sla.started",
        "sla.task_sla.paused",
        "sla.task_sla.resumed",
    ] {
        assert!(names.iter().any(|n| n == wanted), "{wanted} in {names:?}");
    }
}

async fn without_a_resume_condition_the_clock_resumes_when_the_pause_ends(db: TestDb) {
    let mut svc = start(&db).await;
    define(&mut svc, "pausing", |d| {
        d.pause_condition = "state = ON_HOLD AND hold_reason = AWAITING_CALLER".into();
    })
    .await;
    let m = monday();
    let mut t = Ticket::created("INC0000001", m, 3, "network");
    t.state(m + H, IncidentState::OnHold);
    t.incident.hold_reason = HoldReason::AwaitingVendor as i32;
    t.push(m + 2 * H, "incidents.incident.updated");
    touch(&mut t, m + 3 * H);
    apply(&svc, &t).await;
    let clock = only_clock(&mut svc, "INC0000001").await;
    assert_eq!(state(&clock), pb::TaskSlaState::InProgress);
    assert_eq!(hours(clock.elapsed.as_ref()), 2.0);
    assert_eq!(hours(clock.paused_duration.as_ref()), 1.0);
}

async fn stop_achieves_within_the_target_and_breaches_after_it(db: TestDb) {
    let mut svc = start(&db).await;
    define(&mut svc, "resolution", |_| {}).await;
    let m = monday();
    let mut quick = Ticket::created("INC0000001", m, 3, "network");
    quick.state(m + 3 * H, IncidentState::Resolved);
    let mut slow = Ticket::created("INC0000002", m, 3, "network");
    slow.state(m + 5 * H, IncidentState::Resolved);
    apply(&svc, &quick).await;
    apply(&svc, &slow).await;

    let achieved = only_clock(&mut svc, "INC0000001").await;
    assert_eq!(state(&achieved), pb::TaskSlaState::Achieved);
    assert!(!achieved.breached);
    assert_eq!(hours(achieved.elapsed.as_ref()), 3.0);
    assert_eq!(micros(achieved.stop_time.as_ref().unwrap()), m + 3 * H);

    let breached = only_clock(&mut svc, "INC0000002").await;
    assert_eq!(state(&breached), pb::TaskSlaState::Breached);
    assert!(breached.breached);
    assert_eq!(hours(breached.elapsed.as_ref()), 5.0);
    assert_eq!(hours(breached.remaining.as_ref()), -1.0);
    let effects = explained(&mut svc, &breached.name).await;
    assert!(effects.contains(&(pb::ConditionKind::Stop, pb::ClockEffect::StoppedBreached)));
    let names = svc.event_names(&breached.name).await;
    assert!(
        names.iter().any(|n| n == "sla.task_sla.breached"),
        "{names:?}"
    );
    assert!(
        names.iter().any(|n| n == "sla.task_sla.stopped_breached"),
        "{names:?}"
    );

    // A stopped clock is final: a reopen does not restart it.
    quick.state(m + 6 * H, IncidentState::InProgress);
    apply(&svc, &quick).await;
    assert_eq!(
        state(&only_clock(&mut svc, "INC0000001").await),
        pb::TaskSlaState::Achieved
    );
}

async fn reset_restarts_the_clock_from_zero(db: TestDb) {
    let mut svc = start(&db).await;
    define(&mut svc, "response", |d| {
        d.reset_condition = "assignment_group = \"tier2\"".into();
    })
    .await;
    let m = monday();
    let mut t = Ticket::created("INC0000001", m, 3, "network");
    t.incident.assignment_group = "tier2".into();
    t.push(m + 2 * H, "incidents.incident.assigned");
    touch(&mut t, m + 3 * H);
    apply(&svc, &t).await;
    let clock = only_clock(&mut svc, "INC0000001").await;
    assert_eq!(clock.reset_count, 1);
    assert_eq!(hours(clock.elapsed.as_ref()), 1.0);
    assert_eq!(micros(clock.breach_time.as_ref().unwrap()), m + 6 * H);
    assert!(
        explained(&mut svc, &clock.name)
            .await
            .contains(&(pb::ConditionKind::Reset, pb::ClockEffect::Reset))
    );
}

async fn cancel_condition_cancels_for_good(db: TestDb) {
    let mut svc = start(&db).await;
    define(&mut svc, "resolution", |d| {
        d.cancel_condition = "state = CANCELED".into();
    })
    .await;
    let m = monday();
    let mut t = Ticket::created("INC0000001", m, 3, "network");
    t.state(m + H, IncidentState::Canceled);
    touch(&mut t, m + 9 * H);
    apply(&svc, &t).await;
    let clock = only_clock(&mut svc, "INC0000001").await;
    assert_eq!(state(&clock), pb::TaskSlaState::Canceled);
    assert_eq!(clock.cancel_reason, "cancel_condition");
    assert!(!clock.breached, "a canceled clock never breaches");
    assert_eq!(hours(clock.elapsed.as_ref()), 1.0);
    assert!(
        explained(&mut svc, &clock.name)
            .await
            .contains(&(pb::ConditionKind::Cancel, pb::ClockEffect::Canceled))
    );
}

async fn a_ticket_selected_again_gets_a_new_clock(db: TestDb) {
    let mut svc = start(&db).await;
    define(&mut svc, "p1", |d| {
        d.selection_condition = "priority = CRITICAL".into();
        d.cancel_condition = "state = CANCELED".into();
    })
    .await;
    let m = monday();
    let mut t = Ticket::created("INC0000001", m, 1, "network");
    t.incident.priority = 3;
    t.push(m + H, "incidents.incident.priority_changed");
    apply(&svc, &t).await;
    let first = only_clock(&mut svc, "INC0000001").await;
    assert_eq!(state(&first), pb::TaskSlaState::Canceled);
    assert_eq!(first.cancel_reason, "selection_no_longer_matches");

    // Raised back to P1: a new clock from then; the first stays canceled.
    t.incident.priority = 1;
    t.push(m + 2 * H, "incidents.incident.priority_changed");
    touch(&mut t, m + 3 * H);
    apply(&svc, &t).await;
    let all = clocks(&mut svc, "INC0000001").await;
    assert_eq!(all.len(), 2, "{all:#?}");
    assert_eq!(all[0].name, first.name);
    assert_eq!(state(&all[0]), pb::TaskSlaState::Canceled);
    assert_eq!(state(&all[1]), pb::TaskSlaState::InProgress);
    assert_eq!(micros(all[1].start_time.as_ref().unwrap()), m + 2 * H);
    assert_eq!(hours(all[1].elapsed.as_ref()), 1.0);

    // Canceled while P1: no third clock, even on later P1 events.
    t.state(m + 4 * H, IncidentState::Canceled);
    touch(&mut t, m + 5 * H);
    apply(&svc, &t).await;
    let all = clocks(&mut svc, "INC0000001").await;
    assert_eq!(all.len(), 2, "{all:#?}");
    assert_eq!(state(&all[1]), pb::TaskSlaState::Canceled);
    assert_eq!(all[1].cancel_reason, "cancel_condition");
}
