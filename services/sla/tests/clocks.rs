//! Task SLA clocks driven by incident events (fed to the engine as the bus
//! consumer would), through the real server: an incident on hold awaiting
//! the caller pauses its clock, resumes, and breaches at exactly the instant
//! AddBusinessTime predicts; redelivered and out-of-order events give the
//! same clock; the timeline explains it; lists filter.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/mod.rs"]
mod support;

use itsm_proto::itsm::incidents::v1::IncidentState;
use itsm_proto::itsm::sla::v1 as pb;
use itsm_sla::engine;
use itsm_testkit::{TestDb, backend_tests};
use prost::Message as _;
use tonic::Code;

use support::{
    ADMIN, AGENT, H, Harness, Ticket, as_, bad_fields, mask, micros, monday, office_hours, seconds,
    start, ts,
};

backend_tests!(
    on_hold_awaiting_the_caller_pauses_and_breaches_at_the_predicted_instant,
    events_twice_and_out_of_order_give_the_same_clock,
    task_slas_are_listed_by_filter_and_explained,
    a_ticket_is_recomputed_with_the_latest_or_its_own_versions,
    the_consumer_applies_once_and_racing_timer_workers_fire_once,
);

fn definition(calendar: &str, target_hours: i64) -> pb::SlaDefinition {
    pb::SlaDefinition {
        display_name: "P1 resolution".into(),
        kind: pb::SlaKind::Sla as i32,
        ticket_type: "incidents".into(),
        selection_condition: "priority = CRITICAL".into(),
        target: Some(seconds(target_hours * 3600)),
        calendar: calendar.to_owned(),
        pause_condition: "state = ON_HOLD AND hold_reason = AWAITING_CALLER".into(),
        stop_condition: "state = RESOLVED".into(),
        cancel_condition: "state = CANCELED".into(),
        enabled: true,
        ..pb::SlaDefinition::default()
    }
}

async fn setup(svc: &mut Harness) {
    svc.create_calendar("office", office_hours("Office", "UTC"))
        .await;
    let request = pb::CreateSlaDefinitionRequest {
        sla_definition: Some(definition("calendars/office", 8)),
        sla_definition_id: "p1-resolution".into(),
        request_id: String::new(),
        validate_only: false,
    };
    svc.client
        .create_sla_definition(as_(ADMIN, request))
        .await
        .unwrap();
}

async fn list(svc: &mut Harness, filter: &str) -> Vec<pb::TaskSla> {
    svc.client
        .list_task_slas(as_(
            AGENT,
            pb::ListTaskSlasRequest {
                filter: filter.to_owned(),
                ..pb::ListTaskSlasRequest::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .task_slas
}

async fn explain(svc: &mut Harness, name: &str) -> pb::TaskSlaTimeline {
    svc.client
        .explain_task_sla(as_(AGENT, pb::ExplainTaskSlaRequest { name: name.into() }))
        .await
        .unwrap()
        .into_inner()
}

fn effects(timeline: &pb::TaskSlaTimeline) -> Vec<(i64, pb::ClockEffect)> {
    timeline
        .entries
        .iter()
        .map(|e| {
            (
                micros(e.time.as_ref().unwrap()),
                pb::ClockEffect::try_from(e.effect).unwrap(),
            )
        })
        .collect()
}

async fn on_hold_awaiting_the_caller_pauses_and_breaches_at_the_predicted_instant(db: TestDb) {
    let mut svc = start(&db).await;
    setup(&mut svc).await;
    let m = monday();
    let mut ticket = Ticket::created("INC0000042", m + 10 * H, 1, "network");
    ticket
        .state(m + 12 * H, IncidentState::OnHold)
        .state(m + 34 * H, IncidentState::InProgress);
    for e in &ticket.events {
        let now = micros(e.time.as_ref().unwrap());
        engine::Engine::default()
            .apply_ticket_event(&svc.db, e, now)
            .await
            .unwrap();
    }
    // 2h ran Monday 10:00-12:00; 6h are left from Tuesday 10:00.
    let predicted = svc
        .client
        .add_business_time(as_(
            AGENT,
            pb::AddBusinessTimeRequest {
                calendar: "calendars/office".into(),
                start_time: Some(ts(m + 34 * H)),
                duration: Some(seconds(6 * 3600)),
                ..pb::AddBusinessTimeRequest::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .end_time
        .unwrap();
    let predicted = micros(&predicted);
    assert_eq!(predicted, m + 40 * H, "Tuesday 16:00");

    let slas = list(&mut svc, r#"ticket = "incidents/INC0000042""#).await;
    assert_eq!(slas.len(), 1);
    let sla = &slas[0];
    assert_eq!(sla.sla_definition, "slaDefinitions/p1-resolution");
    assert_eq!(sla.state, pb::TaskSlaState::InProgress as i32);
    assert!(!sla.breached);
    assert_eq!(sla.breach_time.as_ref().map(micros), Some(predicted));
    assert_eq!(sla.calendar_version, 1);

    // Just before the instant the breach has not happened.
    assert_eq!(
        engine::Engine::default()
            .fire_due_timers(&svc.db, predicted - 1, 100)
            .await
            .unwrap(),
        1,
        "the 50% and 75% warnings were due"
    );
    let get = |svc: &mut Harness| {
        let mut client = svc.client.clone();
        let name = sla.name.clone();
        async move {
            client
                .get_task_sla(as_(AGENT, pb::GetTaskSlaRequest { name }))
                .await
                .unwrap()
                .into_inner()
        }
    };
    let before = get(&mut svc).await;
    assert!(!before.breached);
    assert_eq!(before.warnings_reached, vec![50, 75]);
    let breached_events = |names: &[String]| {
        names
            .iter()
            .filter(|n| n.as_str() == "sla.task_sla.breached")
            .count()
    };
    assert_eq!(breached_events(&svc.event_names(&sla.name).await), 0);

    assert_eq!(
        engine::Engine::default()
            .fire_due_timers(&svc.db, predicted, 100)
            .await
            .unwrap(),
        1
    );
    let after = get(&mut svc).await;
    assert!(after.breached);
    assert_eq!(after.breach_time.as_ref().map(micros), Some(predicted));
    assert_eq!(after.warnings_reached, vec![50, 75, 100]);
    let names = svc.event_names(&sla.name).await;
    assert_eq!(
        names,
        [
            "sla.task_sla.started",
            "sla.task_sla.paused",
            "sla.task_sla.resumed",
            "sla.task_sla.warning",
            "sla.task_sla.warning",
            "sla.task_sla.breached",
        ],
        "each effect once"
    );
    let breach = svc
        .events()
        .await
        .into_iter()
        .find(|e| e.r#type == "sla.task_sla.breached")
        .unwrap();
    let payload = pb::TaskSlaEvent::decode(breach.payload.unwrap().value.as_slice()).unwrap();
    assert!(payload.task_sla.unwrap().breached);
    assert_eq!(
        payload.timeline_entry.unwrap().time.as_ref().map(micros),
        Some(predicted)
    );
    // Nothing is due any more: firing again changes nothing.
    assert_eq!(
        engine::Engine::default()
            .fire_due_timers(&svc.db, predicted + H, 100)
            .await
            .unwrap(),
        0
    );
    assert_eq!(breached_events(&svc.event_names(&sla.name).await), 1);
    let sequences: Vec<u64> = svc
        .events()
        .await
        .into_iter()
        .filter(|e| e.subject == sla.name)
        .map(|e| e.sequence)
        .collect();
    assert_eq!(
        sequences,
        [1, 2, 3, 4, 5, 6],
        "one sequence per event, in order"
    );

    // The timeline explains it.
    let timeline = explain(&mut svc, &sla.name).await;
    assert_eq!(
        effects(&timeline),
        vec![
            (m + 10 * H, pb::ClockEffect::Started),
            (m + 12 * H, pb::ClockEffect::Paused),
            (m + 34 * H, pb::ClockEffect::Resumed),
            (m + 36 * H, pb::ClockEffect::Warned),
            (m + 38 * H, pb::ClockEffect::Warned),
            (predicted, pb::ClockEffect::Breached),
        ]
    );
    assert_eq!(timeline.entries[1].event_sequence, 2);
    assert_eq!(
        timeline.entries[1].condition,
        pb::ConditionKind::Pause as i32
    );

    let missing = svc
        .client
        .get_task_sla(as_(
            AGENT,
            pb::GetTaskSlaRequest {
                name: "taskSlas/00000000-0000-4000-8000-000000000000".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
}

/// A task SLA without what differs between two tickets or two writes.
fn comparable(mut sla: pb::TaskSla) -> pb::TaskSla {
    sla.name.clear();
    sla.ticket.clear();
    sla.create_time = None;
    sla.update_time = None;
    sla
}

async fn events_twice_and_out_of_order_give_the_same_clock(db: TestDb) {
    let mut svc = start(&db).await;
    setup(&mut svc).await;
    let m = monday();
    let story = |number: &str| {
        let mut t = Ticket::created(number, m + 10 * H, 1, "network");
        t.state(m + 11 * H, IncidentState::InProgress)
            .state(m + 12 * H, IncidentState::OnHold)
            .state(m + 34 * H, IncidentState::InProgress)
            .state(m + 35 * H, IncidentState::Resolved);
        t.events
    };
    let now = m + 50 * H;
    for e in story("INC0000001") {
        engine::Engine::default()
            .apply_ticket_event(&svc.db, &e, now)
            .await
            .unwrap();
    }
    let shuffled = story("INC0000002");
    for i in [3, 1, 4, 0, 3, 2, 0, 4, 1] {
        engine::Engine::default()
            .apply_ticket_event(&svc.db, &shuffled[i], now)
            .await
            .unwrap();
    }
    assert_eq!(
        svc.count("ticket_events").await,
        10,
        "duplicates not stored"
    );

    let a = list(&mut svc, r#"ticket = "incidents/INC0000001""#).await;
    let b = list(&mut svc, r#"ticket = "incidents/INC0000002""#).await;
    assert_eq!(a.len(), 1);
    assert_eq!(b.len(), 1, "one clock, whatever the order");
    assert_eq!(a[0].state, pb::TaskSlaState::Achieved as i32);
    // Ran 10:00-12:00 Monday and 10:00-11:00 Tuesday.
    assert_eq!(a[0].elapsed, Some(seconds(3 * 3600)));
    assert_eq!(comparable(a[0].clone()), comparable(b[0].clone()));
    let ea = explain(&mut svc, &a[0].name).await;
    let eb = explain(&mut svc, &b[0].name).await;
    assert_eq!(effects(&ea), effects(&eb));
    assert_eq!(
        effects(&ea).into_iter().map(|(_, e)| e).collect::<Vec<_>>(),
        [
            pb::ClockEffect::Started,
            pb::ClockEffect::None,
            pb::ClockEffect::Paused,
            pb::ClockEffect::Resumed,
            pb::ClockEffect::Achieved,
        ]
    );
    let got = svc
        .client
        .get_task_sla(as_(
            AGENT,
            pb::GetTaskSlaRequest {
                name: b[0].name.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        comparable(got),
        comparable(a[0].clone()),
        "a stopped clock reads as stored"
    );

    // Each effect was announced once for each ticket, however often replayed.
    for sla in [&a[0], &b[0]] {
        assert_eq!(
            svc.event_names(&sla.name).await,
            [
                "sla.task_sla.started",
                "sla.task_sla.paused",
                "sla.task_sla.resumed",
                "sla.task_sla.achieved",
            ]
        );
    }

    // Recomputing from the stored history changes nothing.
    let recomputed = svc
        .client
        .recompute_ticket_slas(as_(
            ADMIN,
            pb::RecomputeTicketSlasRequest {
                ticket: "incidents/INC0000002".into(),
                mode: pb::RecomputeMode::KeepVersions as i32,
                ..pb::RecomputeTicketSlasRequest::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(recomputed.task_slas.len(), 1);
    assert_eq!(recomputed.changed, Vec::<String>::new());
}

async fn task_slas_are_listed_by_filter_and_explained(db: TestDb) {
    let mut svc = start(&db).await;
    setup(&mut svc).await;
    let m = monday();
    let now = m + 20 * H;
    // Critical: covered. Low: not selected by the definition.
    let critical = Ticket::created("INC0000010", m + 10 * H, 1, "network");
    let low = Ticket::created("INC0000011", m + 10 * H, 4, "network");
    let mut other = Ticket::created("INC0000012", m + 11 * H, 1, "desktop");
    other.state(m + 12 * H, IncidentState::Resolved);
    for e in critical
        .events
        .iter()
        .chain(&low.events)
        .chain(&other.events)
    {
        engine::Engine::default()
            .apply_ticket_event(&svc.db, e, now)
            .await
            .unwrap();
    }
    assert_eq!(
        list(&mut svc, "").await.len(),
        2,
        "the low one has no clock"
    );
    let network = list(&mut svc, r#"assignment_group = "network""#).await;
    assert_eq!(network.len(), 1);
    assert_eq!(network[0].ticket, "incidents/INC0000010");
    let open = list(&mut svc, "state = IN_PROGRESS").await;
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].ticket, "incidents/INC0000010");
    let done = list(&mut svc, "state = ACHIEVED AND breached = false").await;
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].ticket, "incidents/INC0000012");
    assert_eq!(
        list(
            &mut svc,
            r#"sla_definition = "slaDefinitions/p1-resolution""#
        )
        .await
        .len(),
        2
    );
    let by_breach = svc
        .client
        .list_task_slas(as_(
            AGENT,
            pb::ListTaskSlasRequest {
                order_by: "breach_time".into(),
                page_size: 1,
                ..pb::ListTaskSlasRequest::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(by_breach.task_slas.len(), 1);
    assert!(!by_breach.next_page_token.is_empty());
    let next = svc
        .client
        .list_task_slas(as_(
            AGENT,
            pb::ListTaskSlasRequest {
                order_by: "breach_time".into(),
                page_size: 1,
                page_token: by_breach.next_page_token.clone(),
                ..pb::ListTaskSlasRequest::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(next.task_slas.len(), 1);
    assert_ne!(next.task_slas[0].name, by_breach.task_slas[0].name);
    // The achieved one has no breach instant (0) and sorts first.
    assert_eq!(by_breach.task_slas[0].ticket, "incidents/INC0000012");

    let bad = svc
        .client
        .list_task_slas(as_(
            AGENT,
            pb::ListTaskSlasRequest {
                filter: "colour = red".into(),
                ..pb::ListTaskSlasRequest::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);

    let timeline = explain(&mut svc, &done[0].name).await;
    assert_eq!(
        effects(&timeline),
        vec![
            (m + 11 * H, pb::ClockEffect::Started),
            (m + 12 * H, pb::ClockEffect::Achieved),
        ]
    );
    assert_eq!(
        timeline.task_sla.unwrap().state,
        pb::TaskSlaState::Achieved as i32
    );
}

fn recompute(
    ticket: &str,
    mode: pb::RecomputeMode,
    validate_only: bool,
) -> pb::RecomputeTicketSlasRequest {
    pb::RecomputeTicketSlasRequest {
        ticket: ticket.into(),
        mode: mode as i32,
        validate_only,
        request_id: String::new(),
    }
}

async fn a_ticket_is_recomputed_with_the_latest_or_its_own_versions(db: TestDb) {
    let mut svc = start(&db).await;
    setup(&mut svc).await;
    let m = monday();
    let mut ticket = Ticket::created("INC0000042", m + 10 * H, 1, "network");
    ticket.state(m + 11 * H, IncidentState::Resolved);
    for e in &ticket.events {
        engine::Engine::default()
            .apply_ticket_event(&svc.db, e, m + 11 * H)
            .await
            .unwrap();
    }
    let before = list(&mut svc, "").await;
    assert_eq!(before.len(), 1);
    assert_eq!(before[0].state, pb::TaskSlaState::Achieved as i32);
    assert_eq!(before[0].sla_definition_version, 1);

    // The target drops to 30 minutes: version 2.
    let d = pb::SlaDefinition {
        name: "slaDefinitions/p1-resolution".into(),
        target: Some(seconds(1800)),
        ..pb::SlaDefinition::default()
    };
    svc.client
        .update_sla_definition(as_(
            ADMIN,
            pb::UpdateSlaDefinitionRequest {
                sla_definition: Some(d),
                update_mask: Some(mask(&["target"])),
                etag: "v1".into(),
                recompute_open_task_slas: false,
                validate_only: false,
            },
        ))
        .await
        .unwrap();

    let kept = svc
        .client
        .recompute_ticket_slas(as_(
            ADMIN,
            recompute(
                "incidents/INC0000042",
                pb::RecomputeMode::KeepVersions,
                false,
            ),
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(kept.changed.is_empty(), "same versions, same clock");

    let dry = svc
        .client
        .recompute_ticket_slas(as_(
            ADMIN,
            recompute(
                "incidents/INC0000042",
                pb::RecomputeMode::LatestVersions,
                true,
            ),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(dry.changed, [before[0].name.clone()]);
    let unchanged = list(&mut svc, "").await;
    assert_eq!(
        unchanged[0].sla_definition_version, 1,
        "validate_only stores nothing"
    );
    let events_before = svc.count("outbox").await;

    let latest = svc
        .client
        .recompute_ticket_slas(as_(
            ADMIN,
            recompute(
                "incidents/INC0000042",
                pb::RecomputeMode::LatestVersions,
                false,
            ),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(latest.changed, [before[0].name.clone()]);
    let after = list(&mut svc, "").await;
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].name, before[0].name, "the same task SLA");
    assert_eq!(after[0].sla_definition_version, 2);
    assert_eq!(after[0].state, pb::TaskSlaState::Breached as i32);
    assert!(after[0].breached);
    assert_eq!(
        svc.event_names(&after[0].name)
            .await
            .last()
            .map(String::as_str),
        Some("sla.task_sla.stopped_breached")
    );
    assert!(svc.count("outbox").await > events_before);

    // Bad input and unknown tickets.
    let bad = svc
        .client
        .recompute_ticket_slas(as_(
            ADMIN,
            recompute("INC42", pb::RecomputeMode::LatestVersions, false),
        ))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&bad), ["ticket"]);
    let missing = svc
        .client
        .recompute_ticket_slas(as_(
            ADMIN,
            recompute(
                "incidents/INC0009999",
                pb::RecomputeMode::LatestVersions,
                false,
            ),
        ))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    let denied = svc
        .client
        .recompute_ticket_slas(as_(
            AGENT,
            recompute(
                "incidents/INC0000042",
                pb::RecomputeMode::LatestVersions,
                false,
            ),
        ))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
}

async fn breached_count(svc: &Harness) -> usize {
    svc.events()
        .await
        .iter()
        .filter(|e| e.r#type == "sla.task_sla.breached")
        .count()
}

async fn the_consumer_applies_once_and_racing_timer_workers_fire_once(db: TestDb) {
    use itsm_events::Handler as _;
    let mut svc = start(&db).await;
    setup(&mut svc).await;
    let m = monday();
    // Created long ago: every timer of its clock is due now.
    let ticket = Ticket::created("INC0000042", m + 10 * H, 1, "network");
    for _ in 0..2 {
        let mut tx = svc.db.begin().await.unwrap();
        engine::TicketClocks::default()
            .handle(&mut tx, &ticket.events[0])
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }
    assert_eq!(svc.count("ticket_events").await, 1);
    assert_eq!(svc.count("task_slas").await, 1);
    let sla = list(&mut svc, "").await.remove(0);
    assert!(!sla.breached, "the timers are the worker's");

    let now = itsm_store::now_micros();
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let db = svc.db.clone();
            tokio::spawn(async move {
                engine::Engine::default()
                    .fire_due_timers(&db, now, 100)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut fired = 0;
    for w in workers {
        fired += w.await.unwrap();
    }
    assert_eq!(fired, 1, "one worker fired the clock");
    assert_eq!(breached_count(&svc).await, 1);
    let sla = list(&mut svc, "").await.remove(0);
    assert!(sla.breached);
    assert_eq!(
        sla.breach_time.as_ref().map(micros),
        Some(m + 34 * H),
        "7h Monday, 1h Tuesday: Tuesday 10:00"
    );

    // The job fires a new clock's timers on its own.
    let other = Ticket::created("INC0000043", m + 10 * H, 1, "network");
    engine::Engine::default()
        .apply_ticket_event(&svc.db, &other.events[0], m + 10 * H)
        .await
        .unwrap();
    let cancel = tokio_util::sync::CancellationToken::new();
    let job = tokio::spawn(itsm_sla::jobs::run_timers(
        svc.db.clone(),
        engine::Engine::default(),
        cancel.clone(),
    ));
    let mut waited = 0;
    while breached_count(&svc).await < 2 {
        assert!(waited < 100, "the timer job did not fire within 10 s");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        waited += 1;
    }
    cancel.cancel();
    job.await.unwrap();
    assert_eq!(breached_count(&svc).await, 2);
}
