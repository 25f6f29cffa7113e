//! The SLA service down while incidents change: the incident events wait on
//! the bus (Redis Streams, the consumer group `sla.ticket-clocks`); when the
//! service returns, its consumer catches up and the timer job fires what fell
//! due meanwhile. The clocks are then exactly what a service that never went
//! down made of the same events (compared with a second database fed live),
//! breach instants included — even with the backlog delivered out of order
//! and with duplicates.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::Duration;

use itsm_events::{EventBus, Message, RedisBus, RedisBusConfig};
use itsm_proto::itsm::incidents::v1::IncidentState;
use itsm_proto::itsm::sla::v1 as pb;
use itsm_sla::engine::{self, Engine};
use itsm_testkit::{TestDb, backend_tests, redis_url, unique_prefix};
use prost::Message as _;

use support::{ADMIN, AGENT, H, Harness, Ticket, as_, micros, seconds, start};

backend_tests!(after_an_outage_the_clocks_are_what_they_would_have_been);

async fn define(svc: &mut Harness) {
    let definition = pb::SlaDefinition {
        display_name: "P1 resolution".into(),
        kind: pb::SlaKind::Sla as i32,
        ticket_type: "incidents".into(),
        selection_condition: "priority = CRITICAL".into(),
        target: Some(seconds(4 * 3600)),
        pause_condition: "state = ON_HOLD AND hold_reason = AWAITING_CALLER".into(),
        stop_condition: "state = RESOLVED".into(),
        enabled: true,
        ..pb::SlaDefinition::default()
    };
    let request = pb::CreateSlaDefinitionRequest {
        sla_definition: Some(definition),
        sla_definition_id: "p1-resolution".into(),
        ..pb::CreateSlaDefinitionRequest::default()
    };
    svc.client
        .create_sla_definition(as_(ADMIN, request))
        .await
        .unwrap();
}

/// The clocks of `svc` as comparable text: each task SLA's figures and its
/// timeline's (time, effect) pairs.
async fn clocks(svc: &mut Harness) -> Vec<(String, String)> {
    let request = pb::ListTaskSlasRequest::default();
    let list = svc
        .client
        .list_task_slas(as_(AGENT, request))
        .await
        .unwrap()
        .into_inner();
    let mut out = Vec::new();
    for t in list.task_slas {
        let timeline = svc
            .client
            .explain_task_sla(as_(
                AGENT,
                pb::ExplainTaskSlaRequest {
                    name: t.name.clone(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        let effects: Vec<(i64, i32)> = timeline
            .entries
            .iter()
            .map(|e| (micros(e.time.as_ref().unwrap()), e.effect))
            .collect();
        let figures = format!(
            "state={} breached={} elapsed={:?} paused={:?} breach={:?} warnings={:?}",
            t.state, t.breached, t.elapsed, t.paused_duration, t.breach_time, t.warnings_reached
        );
        out.push((t.ticket, format!("{figures} timeline={effects:?}")));
    }
    out.sort();
    out
}

async fn after_an_outage_the_clocks_are_what_they_would_have_been(db: TestDb) {
    let live_db = match db.backend() {
        "postgres" => TestDb::postgres().await,
        _ => TestDb::sqlite().await,
    };
    let mut sla = start(&db).await;
    let mut live = start(&live_db).await;
    define(&mut sla).await;
    define(&mut live).await;

    // Six hours of incident life, ending now: a P1 on hold awaiting the
    // caller for an hour, breaching an hour ago (4 h target + 1 h paused);
    // another resolved in time.
    let now = itsm_store::now_micros();
    let t0 = now - 6 * H;
    let mut breaching = Ticket::created("INC0000001", t0, 1, "network");
    breaching.state(t0 + H, IncidentState::OnHold);
    breaching.state(t0 + 2 * H, IncidentState::InProgress);
    let mut achieved = Ticket::created("INC0000002", t0, 1, "network");
    achieved.state(t0 + 3 * H, IncidentState::Resolved);

    // The service that never went down: every event applied when it
    // happened, and the timers fired on time.
    let engine = Engine::default();
    let mut timeline: Vec<_> = breaching.events.iter().chain(&achieved.events).collect();
    timeline.sort_by_key(|e| micros(e.time.as_ref().unwrap()));
    for event in &timeline {
        let at = micros(event.time.as_ref().unwrap());
        engine.fire_due_timers(&live.db, at, 100).await.unwrap();
        engine
            .apply_ticket_event(&live.db, event, at)
            .await
            .unwrap();
    }
    engine.fire_due_timers(&live.db, now, 100).await.unwrap();

    // The service that was down: its consumer group exists (it ran before),
    // then the whole backlog lands on the bus, newest first and with a
    // duplicate, while nothing consumes it.
    let prefix = unique_prefix();
    let config = RedisBusConfig {
        key_prefix: prefix.clone(),
        ..RedisBusConfig::default()
    };
    let bus: Arc<dyn EventBus> = Arc::new(RedisBus::open(&redis_url(), config).await.unwrap());
    let consumer = engine::consumer(sla.db.clone(), Arc::clone(&bus), engine.clone());
    assert!(
        consumer
            .poll_once(Duration::from_millis(10))
            .await
            .unwrap()
            .is_empty()
    );
    drop(consumer);
    let mut backlog: Vec<Message> = timeline
        .iter()
        .rev()
        .map(|event| Message {
            id: event.id.clone(),
            stream: "incidents".into(),
            key: event.subject.clone(),
            payload: event.encode_to_vec(),
        })
        .collect();
    backlog.push(backlog[1].clone());
    bus.publish(&backlog).await.unwrap();

    // Back up: a new consumer of the same group drains the backlog, then the
    // timer job's pass fires what fell due during the outage.
    let consumer = engine::consumer(sla.db.clone(), Arc::clone(&bus), engine.clone());
    let mut handled = 0;
    for _ in 0..20 {
        let outcomes = consumer
            .poll_once(Duration::from_millis(100))
            .await
            .unwrap();
        if outcomes.is_empty() && handled > 0 {
            break;
        }
        handled += outcomes.len();
    }
    assert_eq!(handled, backlog.len());
    engine.fire_due_timers(&sla.db, now, 100).await.unwrap();

    let caught_up = clocks(&mut sla).await;
    assert_eq!(caught_up, clocks(&mut live).await);
    assert_eq!(caught_up.len(), 2);
    // And what it is: breached at exactly 4 business hours plus the hour on
    // hold after creation, not when the service came back.
    let breached = &caught_up[0].1;
    assert!(breached.contains("state=1 breached=true"), "{breached}");
    let at = t0 + 5 * H;
    assert!(
        breached.contains(&format!("({at}, {})", pb::ClockEffect::Breached as i32)),
        "breach at {at} in {breached}"
    );
    assert!(
        caught_up[1].1.contains("state=3 breached=false"),
        "{caught_up:?}"
    );
    support_cleanup(&prefix);
}

/// Removes the test's Redis keys.
fn support_cleanup(prefix: &str) {
    let client = redis::Client::open(redis_url()).unwrap();
    let mut conn = client.get_connection().unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query(&mut conn)
        .unwrap();
    if !keys.is_empty() {
        let _: () = redis::cmd("DEL").arg(keys).query(&mut conn).unwrap();
    }
}
