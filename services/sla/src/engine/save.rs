//! Writing a replayed clock: its row (inserted, updated now or deferred to
//! the batch's multi-row write), its timeline, its durable deadline, and one
//! event per timeline entry not stored before.

use itsm_platform::ApiError;
use itsm_proto::itsm::sla::v1 as pb;
use itsm_store::StoreError;
use itsm_store::audit::Actor;
use itsm_store::outbox::{self, NewEvent};
use pb::{ClockEffect, TaskSlaState};
use prost::Message;
use sqlx::{AnyConnection, Row};

use super::{RowUpdate, Stored, seq_i64};
use crate::api::call::{SOURCE, STREAM};
use crate::clock::{self, Replay};
use crate::store::{calendars, definitions};
use crate::tickets;

fn comparable(t: &pb::TaskSla) -> pb::TaskSla {
    let mut t = t.clone();
    t.compute_time = None;
    t.update_time = None;
    t.wall_elapsed = None;
    t
}

fn effect_event_type(entry: &pb::TimelineEntry) -> Option<&'static str> {
    let effect = ClockEffect::try_from(entry.effect).unwrap_or(ClockEffect::Unspecified);
    Some(match effect {
        ClockEffect::Started => "sla.task_sla.started",
        ClockEffect::Paused => "sla.task_sla.paused",
        ClockEffect::Resumed => "sla.task_sla.resumed",
        ClockEffect::Warned => "sla.task_sla.warning",
        ClockEffect::Breached => "sla.task_sla.breached",
        ClockEffect::Achieved => "sla.task_sla.achieved",
        ClockEffect::StoppedBreached => "sla.task_sla.stopped_breached",
        ClockEffect::Reset => "sla.task_sla.reset",
        ClockEffect::Canceled => "sla.task_sla.canceled",
        _ => return None,
    })
}

/// Saves a replayed clock (insert or update, timeline replaced, deadline
/// set) and writes one event per timeline entry not stored before. Returns
/// the task SLA's name when its document changed.
#[allow(clippy::too_many_arguments)]
pub(super) async fn save(
    conn: &mut AnyConnection,
    ticket: &str,
    def: &pb::SlaDefinition,
    existing: Option<&Stored>,
    replay: Replay,
    now: i64,
    validate_only: bool,
    deferred: Option<&mut Vec<RowUpdate>>,
) -> Result<Option<String>, ApiError> {
    let Replay {
        mut task_sla,
        timeline,
        next_deadline,
    } = replay;
    let (name, created) = match existing {
        Some(s) => (s.doc.name.clone(), s.doc.create_time),
        None => (
            format!("taskSlas/{}", uuid::Uuid::new_v4()),
            Some(clock::timestamp(now)),
        ),
    };
    task_sla.name = name.clone();
    task_sla.ticket = ticket.to_owned();
    task_sla.create_time = created;
    task_sla.update_time = Some(clock::timestamp(now));
    task_sla.tenant = def.tenant.clone();
    let changed = existing
        .is_none_or(|s| comparable(&s.doc) != comparable(&task_sla) || s.timeline != timeline);
    if !changed || validate_only {
        return Ok(changed.then_some(name));
    }
    let state = task_sla.state;
    let deadline = if state == TaskSlaState::InProgress as i32 {
        next_deadline.map_or(0, |d| d.at())
    } else {
        0
    };
    let ts = |t: &Option<prost_types::Timestamp>| t.as_ref().map_or(0, tickets::micros);
    let micros = |d: &Option<prost_types::Duration>| {
        d.as_ref().map_or(0, |d| {
            d.seconds
                .saturating_mul(1_000_000)
                .saturating_add(i64::from(d.nanos) / 1_000)
        })
    };
    let (elapsed, target) = (micros(&task_sla.elapsed), micros(&task_sla.target));
    // The instant the target was reached, kept through pauses and the stop
    // (breach_at is only the planned instant of a running clock).
    let breached_at = crate::reports::breach_instant(&timeline);
    // One event per entry that was not in the stored timeline; each takes
    // the next version of the row as its sequence.
    let old = existing.map(|s| s.timeline.as_slice()).unwrap_or_default();
    let announced: Vec<(&pb::TimelineEntry, &'static str)> = timeline
        .iter()
        .filter(|e| !old.iter().any(|o| same_entry(o, e)))
        .filter_map(|e| effect_event_type(e).map(|t| (e, t)))
        .collect();
    let previous_version = existing.map_or(0, |s| s.version);
    let version = previous_version + i64::try_from(announced.len()).unwrap_or(i64::MAX).max(1);
    let doc = task_sla.encode_to_vec();
    let uid = name.trim_start_matches("taskSlas/").to_owned();
    let calendar_id = calendars::id_of(&task_sla.calendar)
        .unwrap_or_default()
        .to_owned();
    let def_id = definitions::id_of(&task_sla.sla_definition)
        .unwrap_or_default()
        .to_owned();
    let defer = existing.is_some() && deferred.is_some();
    let id: i64 = match (existing, deferred) {
        (Some(s), Some(deferred)) => {
            deferred.push(RowUpdate {
                values: vec![
                    s.id.into(),
                    task_sla.sla_definition_version.into(),
                    calendar_id.clone().into(),
                    task_sla.calendar_version.into(),
                    i64::from(state).into(),
                    i64::from(task_sla.breached).into(),
                    deadline.into(),
                    ts(&task_sla.breach_time).into(),
                    ts(&task_sla.stop_time).into(),
                    ts(&task_sla.start_time).into(),
                    task_sla.assignment_group.clone().into(),
                    i64::from(task_sla.priority).into(),
                    task_sla.service.clone().into(),
                    seq_i64(task_sla.ticket_sequence).into(),
                    now.into(),
                    doc.clone().into(),
                    version.into(),
                    elapsed.into(),
                    target.into(),
                    breached_at.into(),
                ],
                timeline: timeline
                    .iter()
                    .map(|e| (ts(&e.time), e.encode_to_vec()))
                    .collect(),
            });
            s.id
        }
        (Some(s), None) => {
            sqlx::query(
                "UPDATE task_slas SET sla_definition_version = $2, calendar_id = $3, calendar_version = $4, \
                 state = $5, breached = $6, next_deadline_at = $7, breach_at = $8, stop_at = $9, start_at = $10, \
                 assignment_group = $11, priority = $12, service = $13, ticket_sequence = $14, updated_at = $15, \
                 version = $17, doc = $16, elapsed = $18, target = $19, breached_at = $20 WHERE id = $1",
            )
            .bind(s.id)
            .bind(task_sla.sla_definition_version)
            .bind(&calendar_id)
            .bind(task_sla.calendar_version)
            .bind(state)
            .bind(i32::from(task_sla.breached))
            .bind(deadline)
            .bind(ts(&task_sla.breach_time))
            .bind(ts(&task_sla.stop_time))
            .bind(ts(&task_sla.start_time))
            .bind(&task_sla.assignment_group)
            .bind(task_sla.priority)
            .bind(&task_sla.service)
            .bind(seq_i64(task_sla.ticket_sequence))
            .bind(now)
            .bind(&doc)
            .bind(version)
            .bind(elapsed)
            .bind(target)
            .bind(breached_at)
            .execute(&mut *conn)
            .await
            .map_err(StoreError::from)?;
            sqlx::query("DELETE FROM task_sla_timeline WHERE task_sla_id = $1")
                .bind(s.id)
                .execute(&mut *conn)
                .await
                .map_err(StoreError::from)?;
            s.id
        }
        (None, _) => {
            let row = sqlx::query(
                "INSERT INTO task_slas (uid, tenant, ticket, sla_definition_id, sla_definition_version, calendar_id, \
                 calendar_version, state, breached, next_deadline_at, breach_at, stop_at, start_at, assignment_group, \
                 priority, service, kind, ticket_sequence, created_at, updated_at, version, doc, elapsed, target, breached_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $19, $21, $20, $22, $23, $24) \
                 RETURNING id",
            )
            .bind(&uid)
            .bind(&task_sla.tenant)
            .bind(ticket)
            .bind(&def_id)
            .bind(task_sla.sla_definition_version)
            .bind(&calendar_id)
            .bind(task_sla.calendar_version)
            .bind(state)
            .bind(i32::from(task_sla.breached))
            .bind(deadline)
            .bind(ts(&task_sla.breach_time))
            .bind(ts(&task_sla.stop_time))
            .bind(ts(&task_sla.start_time))
            .bind(&task_sla.assignment_group)
            .bind(task_sla.priority)
            .bind(&task_sla.service)
            .bind(task_sla.kind)
            .bind(seq_i64(task_sla.ticket_sequence))
            .bind(now)
            .bind(&doc)
            .bind(version)
            .bind(elapsed)
            .bind(target)
            .bind(breached_at)
            .fetch_one(&mut *conn)
            .await
            .map_err(StoreError::from)?;
            row.try_get("id").map_err(StoreError::from)?
        }
    };
    // The timeline in one statement per 200 entries (4 values each).
    let mut seq = 0_i64;
    let written_now = if defer { &[][..] } else { &timeline[..] };
    for chunk in written_now.chunks(200) {
        let mut sql = itsm_store::SqlBuilder::new(
            "INSERT INTO task_sla_timeline (task_sla_id, seq, time, doc) VALUES ",
        );
        for (i, entry) in chunk.iter().enumerate() {
            seq += 1;
            sql.push(if i == 0 { "(" } else { ", (" });
            sql.push_bind(id).push(", ").push_bind(seq).push(", ");
            sql.push_bind(ts(&entry.time)).push(", ");
            sql.push_bind(entry.encode_to_vec()).push(")");
        }
        itsm_store::db::query(&sql)
            .execute(&mut *conn)
            .await
            .map_err(StoreError::from)?;
    }
    let actor = Actor::system("sla");
    let first = u64::try_from(previous_version).unwrap_or_default() + 1;
    for (sequence, (entry, event_type)) in (first..).zip(announced) {
        // Counted as written: a transaction that rolls back and is replayed
        // counts its breach again, so the counter may run high, never low.
        if entry.effect == ClockEffect::Breached as i32 {
            crate::gauges::breached(task_sla.kind);
        }
        let payload = pb::TaskSlaEvent {
            task_sla: Some(task_sla.clone()),
            changes: Vec::new(),
            warning_percentage: entry.warning_percentage,
            timeline_entry: Some(entry.clone()),
        };
        outbox::insert(
            &mut *conn,
            &NewEvent {
                stream: STREAM,
                source: SOURCE,
                event_type,
                subject: &name,
                sequence,
                payload: crate::api::call::payload("TaskSlaEvent", &payload),
                actor: &actor,
                request_id: "",
                traceparent: "",
                tracestate: "",
                time: now,
            },
        )
        .await?;
    }
    Ok(Some(name))
}

/// Whether two timeline entries record the same effect at the same instant.
fn same_entry(a: &pb::TimelineEntry, b: &pb::TimelineEntry) -> bool {
    a.time == b.time
        && a.effect == b.effect
        && a.warning_percentage == b.warning_percentage
        && a.event_id == b.event_id
}
