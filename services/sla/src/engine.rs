//! The clocks driven by ticket events: each event is stored, the ticket's
//! whole history replayed for every definition that covers it, the task SLAs
//! saved with their timelines and durable deadlines, and one event emitted per
//! new timeline entry. Timers (warnings, breaches) fire from the deadlines in
//! the database ([`fire_due_timers`]).
//!
//! Everything is a pure replay (`clock::replay`), so a redelivered or late
//! event gives the same clock as the in-order history.

use async_trait::async_trait;
use itsm_events::{Consumer, ConsumerConfig, Handler, HandlerError, bus::EventBus};
use itsm_platform::ApiError;
use itsm_proto::itsm::events::v1::Event;
use itsm_proto::itsm::sla::v1 as pb;
use itsm_store::audit::Actor;
use itsm_store::outbox::{self, NewEvent};
use itsm_store::{Backend, Db, StoreError, Tx};
use pb::{ClockEffect, TaskSlaState};
use prost::Message;
use sqlx::{AnyConnection, Row};
use std::sync::Arc;

use crate::calendar::BusinessCalendar;
use crate::clock::{self, Replay};
use crate::store::{calendars, decode, definitions};
use crate::tickets::{self, TicketEvent};

/// The bus stream and source of the events this module writes.
const STREAM: &str = "sla";
const SOURCE: &str = "itsm.sla";

/// Applies one ticket event in its own transaction (see [`apply_in`]).
pub async fn apply_ticket_event(db: &Db, event: &Event, now: i64) -> Result<(), ApiError> {
    let mut tx = db.begin().await?;
    apply_in(&mut tx, event, now).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(())
}

/// Applies one ticket event inside `conn`'s transaction: stores it (a
/// duplicate event id or ticket sequence is a no-op), then replays every
/// clock of the ticket. Events that are not ticket events are ignored.
pub async fn apply_in(conn: &mut AnyConnection, event: &Event, now: i64) -> Result<(), ApiError> {
    let Some(ticket_event) = tickets::from_event(event) else {
        return Ok(());
    };
    lock_ticket(conn, &ticket_event.ticket, true).await?;
    let existing = sqlx::query(
        "SELECT 1 FROM ticket_events WHERE event_id = $1 OR (ticket = $2 AND sequence = $3)",
    )
    .bind(&ticket_event.id)
    .bind(&ticket_event.ticket)
    .bind(seq_i64(ticket_event.sequence))
    .fetch_optional(&mut *conn)
    .await
    .map_err(StoreError::from)?;
    if existing.is_some() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO ticket_events (ticket, sequence, event_id, event_type, time, received_at, doc) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&ticket_event.ticket)
    .bind(seq_i64(ticket_event.sequence))
    .bind(&ticket_event.id)
    .bind(&ticket_event.event_type)
    .bind(ticket_event.time)
    .bind(now)
    .bind(event.encode_to_vec())
    .execute(&mut *conn)
    .await
    .map_err(StoreError::from)?;
    replay_ticket(
        conn,
        &ticket_event.ticket,
        now,
        Until::LastEvent,
        false,
        false,
    )
    .await
    .map(|_| ())
}

/// Serializes the work on one ticket's clocks across transactions (a
/// PostgreSQL advisory lock held to the end of the transaction; SQLite
/// writers are serialized already). With `wait` false, answers whether the
/// lock was free instead of waiting for it.
async fn lock_ticket(conn: &mut AnyConnection, ticket: &str, wait: bool) -> Result<bool, ApiError> {
    if conn.backend_name() != "PostgreSQL" {
        return Ok(true);
    }
    // FNV-1a of the ticket: a stable advisory lock key of its own.
    let key = format!("sla.ticket.{ticket}")
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
        });
    let key = i64::from_ne_bytes(key.to_ne_bytes());
    if wait {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(key)
            .execute(&mut *conn)
            .await
            .map_err(StoreError::from)?;
        return Ok(true);
    }
    let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
        .bind(key)
        .fetch_one(&mut *conn)
        .await
        .map_err(StoreError::from)?;
    Ok(got)
}

/// The ticket type of "incidents/INC0000042".
fn ticket_type(ticket: &str) -> &str {
    ticket.split('/').next().unwrap_or_default()
}

fn seq_i64(sequence: u64) -> i64 {
    i64::try_from(sequence).unwrap_or(i64::MAX)
}

/// The stored history of `ticket`, in sequence order.
pub async fn history(conn: &mut AnyConnection, ticket: &str) -> Result<Vec<TicketEvent>, ApiError> {
    let rows = sqlx::query("SELECT doc FROM ticket_events WHERE ticket = $1 ORDER BY sequence")
        .bind(ticket)
        .fetch_all(&mut *conn)
        .await
        .map_err(StoreError::from)?;
    let mut events = Vec::with_capacity(rows.len());
    for row in rows {
        let doc: Vec<u8> = row.try_get("doc").map_err(StoreError::from)?;
        let event: Event = decode("ticket_events", &doc)?;
        if let Some(e) = tickets::from_event(&event) {
            events.push(e);
        }
    }
    Ok(events)
}

/// A stored task SLA.
#[derive(Debug, Clone)]
pub struct Stored {
    pub id: i64,
    /// The row's version: the sequence of its latest event.
    pub version: i64,
    pub doc: pb::TaskSla,
    pub timeline: Vec<pb::TimelineEntry>,
}

async fn stored_of_ticket(conn: &mut AnyConnection, ticket: &str) -> Result<Vec<Stored>, ApiError> {
    let rows = sqlx::query("SELECT id, version, doc FROM task_slas WHERE ticket = $1 ORDER BY id")
        .bind(ticket)
        .fetch_all(&mut *conn)
        .await
        .map_err(StoreError::from)?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let id: i64 = row.try_get("id").map_err(StoreError::from)?;
        let doc: Vec<u8> = row.try_get("doc").map_err(StoreError::from)?;
        let version: i64 = row.try_get("version").map_err(StoreError::from)?;
        let doc: pb::TaskSla = decode("task_slas", &doc)?;
        let timeline = timeline_of(conn, id).await?;
        out.push(Stored {
            id,
            version,
            doc,
            timeline,
        });
    }
    Ok(out)
}

/// The timeline rows of a task SLA, oldest first.
pub async fn timeline_of(
    conn: &mut AnyConnection,
    id: i64,
) -> Result<Vec<pb::TimelineEntry>, ApiError> {
    let rows = sqlx::query("SELECT doc FROM task_sla_timeline WHERE task_sla_id = $1 ORDER BY seq")
        .bind(id)
        .fetch_all(&mut *conn)
        .await
        .map_err(StoreError::from)?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let doc: Vec<u8> = row.try_get("doc").map_err(StoreError::from)?;
        out.push(decode("task_sla_timeline", &doc)?);
    }
    Ok(out)
}

/// All enabled, current definitions of a ticket type.
async fn enabled_definitions(
    conn: &mut AnyConnection,
    ticket_type: &str,
) -> Result<Vec<pb::SlaDefinition>, ApiError> {
    let rows = sqlx::query(
        "SELECT doc FROM sla_definitions WHERE ticket_type = $1 AND enabled = 1 AND deleted = 0 ORDER BY id",
    )
    .bind(ticket_type)
    .fetch_all(&mut *conn)
    .await
    .map_err(StoreError::from)?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let doc: Vec<u8> = row.try_get("doc").map_err(StoreError::from)?;
        out.push(decode("sla_definitions", &doc)?);
    }
    Ok(out)
}

/// The compiled calendar `name` at `version` (0: current) in the
/// definition's zone, with the version used; 24x7 for no calendar.
pub async fn load_calendar(
    conn: &mut AnyConnection,
    def: &pb::SlaDefinition,
    name: &str,
    version: i64,
) -> Result<(BusinessCalendar, i64), ApiError> {
    if name.is_empty() {
        return Ok((BusinessCalendar::always(), 0));
    }
    let id = calendars::id_of(name).ok_or_else(|| ApiError::not_found(name))?;
    let wanted = if version == 0 {
        calendars::current_version(conn, id).await?.unwrap_or(0)
    } else {
        version
    };
    let c = calendars::select(conn, id, wanted)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("{name} version {wanted}")))?;
    let zone = if def.time_zone.is_empty() {
        ""
    } else {
        def.time_zone.as_str()
    };
    let compiled = BusinessCalendar::compile(&c, zone)
        .or_else(|_| BusinessCalendar::compile(&c, ""))
        .map_err(|_| ApiError::internal(format!("{name} version {wanted} does not compile")))?;
    Ok((compiled, c.version))
}

/// How long a ticket whose first stored event is not its sequence 1 waits for
/// the earlier ones before its clocks start from what is there (a ticket
/// older than this service, or events lost for good).
pub const GAP_GRACE: i64 = 5 * 60 * 1_000_000;

/// What of a ticket's history (sorted by sequence) can be replayed, and the
/// instant to close the replay at. Only the run of consecutive sequences
/// from 1 counts (from the first stored one, once [`GAP_GRACE`] has passed
/// since it arrived); events after a gap wait for the missing ones. With a
/// gap the replay closes at the last usable event (or the previous replay's
/// instant, if later), so no effect is announced that the missing events
/// could take back. `None`: nothing to replay yet.
fn usable_history(
    mut events: Vec<TicketEvent>,
    oldest_received: i64,
    last_compute: Option<i64>,
    now: i64,
) -> Option<(Vec<TicketEvent>, i64)> {
    let first = events.first()?.sequence;
    if first > 1 && now.saturating_sub(oldest_received) < GAP_GRACE {
        return None;
    }
    let run = events
        .iter()
        .enumerate()
        .take_while(|(i, e)| e.sequence == first + *i as u64)
        .count();
    if run == events.len() {
        return Some((events, now));
    }
    events.truncate(run);
    let last_time = events.iter().map(|e| e.time).max().unwrap_or(now);
    let close = last_time.max(last_compute.unwrap_or(i64::MIN)).min(now);
    Some((events, close))
}

/// Where a replay closes the clocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// At `now`: the timers due by then fire (timers, recomputation).
    Now,
    /// At the ticket's last event (or the clocks' previous closing, if
    /// later), never after `now`: what an applied event knows for sure.
    LastEvent,
}

/// Which versions a replay uses for clocks that exist already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Versions {
    /// The versions recorded on each task SLA.
    Keep,
    /// The definitions' and calendars' current versions.
    Latest,
}

/// Replays every clock of `ticket` at `now` and saves them (unless
/// `validate_only`); returns the names of the task SLAs whose stored document
/// changed (ignoring compute/update times).
pub async fn replay_ticket(
    conn: &mut AnyConnection,
    ticket: &str,
    now: i64,
    until: Until,
    latest: bool,
    validate_only: bool,
) -> Result<Vec<String>, ApiError> {
    let versions = if latest {
        Versions::Latest
    } else {
        Versions::Keep
    };
    let events = history(conn, ticket).await?;
    let stored = stored_of_ticket(conn, ticket).await?;
    let oldest_received: Option<i64> =
        sqlx::query_scalar("SELECT MIN(received_at) FROM ticket_events WHERE ticket = $1")
            .bind(ticket)
            .fetch_one(&mut *conn)
            .await
            .map_err(StoreError::from)?;
    let last_compute = stored
        .iter()
        .filter_map(|s| s.doc.compute_time.as_ref().map(tickets::micros))
        .max();
    let Some((events, close_at)) =
        usable_history(events, oldest_received.unwrap_or(now), last_compute, now)
    else {
        return Ok(Vec::new());
    };
    let gap = close_at < now;
    let now = match until {
        Until::Now => close_at,
        // Timers past the last event are fire_due_timers' (a consumer
        // catching up must not announce what a later event takes back).
        Until::LastEvent => {
            let last = events.iter().map(|e| e.time).max().unwrap_or(close_at);
            last.max(last_compute.unwrap_or(i64::MIN)).min(close_at)
        }
    };
    let current = enabled_definitions(conn, ticket_type(ticket)).await?;
    let mut changed = Vec::new();
    // The definitions with a clock already, newest clock per definition.
    let mut def_ids: Vec<String> = current.iter().map(|d| d.name.clone()).collect();
    for s in &stored {
        if !def_ids.contains(&s.doc.sla_definition) {
            def_ids.push(s.doc.sla_definition.clone());
        }
    }
    for def_name in def_ids {
        let existing = stored
            .iter()
            .rev()
            .find(|s| s.doc.sla_definition == def_name);
        let Some(def_id) = definitions::id_of(&def_name) else {
            continue;
        };
        let (def, cal_name, cal_version) = match existing {
            Some(s) if versions == Versions::Keep => {
                let Some(def) =
                    definitions::select(conn, def_id, s.doc.sla_definition_version).await?
                else {
                    continue;
                };
                (def, s.doc.calendar.clone(), s.doc.calendar_version)
            }
            _ => {
                let Some(def) = current.iter().find(|d| d.name == def_name).cloned() else {
                    continue;
                };
                let cal = def.calendar.clone();
                (def, cal, 0)
            }
        };
        let Ok(conditions) = clock::compile_conditions(&def) else {
            continue;
        };
        // The first event (in sequence order, whenever it arrived) selected by the definition.
        let Some(attach_time) = events
            .iter()
            .find(|e| clock::selects(&conditions, &e.snapshot))
            .map(|e| e.time)
        else {
            continue;
        };
        let (calendar, cal_version) = load_calendar(conn, &def, &cal_name, cal_version).await?;
        let mut r = clock::replay(&def, &conditions, &calendar, &events, attach_time, now)
            .with_calendar_version(cal_version);
        if gap {
            // No timer over an incomplete history: the missing events come first.
            r.next_deadline = None;
        }
        if let Some(name) = save(conn, ticket, &def, existing, r, now, validate_only).await? {
            changed.push(name);
        }
    }
    Ok(changed)
}

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
async fn save(
    conn: &mut AnyConnection,
    ticket: &str,
    def: &pb::SlaDefinition,
    existing: Option<&Stored>,
    replay: Replay,
    now: i64,
    validate_only: bool,
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
    let id: i64 = match existing {
        Some(s) => {
            sqlx::query(
                "UPDATE task_slas SET sla_definition_version = $2, calendar_id = $3, calendar_version = $4, \
                 state = $5, breached = $6, next_deadline_at = $7, breach_at = $8, stop_at = $9, start_at = $10, \
                 assignment_group = $11, priority = $12, service = $13, ticket_sequence = $14, updated_at = $15, \
                 version = $17, doc = $16 WHERE id = $1",
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
        None => {
            let row = sqlx::query(
                "INSERT INTO task_slas (uid, tenant, ticket, sla_definition_id, sla_definition_version, calendar_id, \
                 calendar_version, state, breached, next_deadline_at, breach_at, stop_at, start_at, assignment_group, \
                 priority, service, kind, ticket_sequence, created_at, updated_at, version, doc) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $19, $21, $20) \
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
            .fetch_one(&mut *conn)
            .await
            .map_err(StoreError::from)?;
            row.try_get("id").map_err(StoreError::from)?
        }
    };
    for (i, entry) in timeline.iter().enumerate() {
        sqlx::query(
            "INSERT INTO task_sla_timeline (task_sla_id, seq, time, doc) VALUES ($1, $2, $3, $4)",
        )
        .bind(id)
        .bind(i64::try_from(i).unwrap_or(i64::MAX) + 1)
        .bind(ts(&entry.time))
        .bind(entry.encode_to_vec())
        .execute(&mut *conn)
        .await
        .map_err(StoreError::from)?;
    }
    let actor = Actor::system("sla");
    let first = u64::try_from(previous_version).unwrap_or_default() + 1;
    for (sequence, (entry, event_type)) in (first..).zip(announced) {
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

/// Fires the timers due at `now`: replays up to `limit` IN_PROGRESS task
/// SLAs whose deadline has come (each claimed once across replicas: `FOR
/// UPDATE SKIP LOCKED` on PostgreSQL; SQLite writers are serialized), saves
/// them and emits their warnings and breaches. Returns how many were fired.
pub async fn fire_due_timers(db: &Db, now: i64, limit: usize) -> Result<usize, ApiError> {
    let mut tx: Tx = db.begin().await?;
    let lock = match db.backend() {
        Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    let sql = format!(
        "SELECT id, ticket FROM task_slas WHERE state = 1 AND next_deadline_at > 0 AND next_deadline_at <= $1 \
         ORDER BY next_deadline_at LIMIT $2{lock}"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(now)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&mut *tx)
        .await
        .map_err(StoreError::from)?;
    // Due clocks per ticket: one replay fires every timer of the ticket.
    let mut tickets_due: std::collections::BTreeMap<String, usize> = Default::default();
    for row in &rows {
        let ticket: String = row.try_get("ticket").map_err(StoreError::from)?;
        *tickets_due.entry(ticket).or_default() += 1;
    }
    let mut fired = 0;
    for (ticket, due) in &tickets_due {
        // Busy: a ticket event or another replica is replaying it right now
        // (and so fires its due timers); never wait while holding row locks.
        if !lock_ticket(&mut tx, ticket, false).await? {
            continue;
        }
        replay_ticket(&mut tx, ticket, now, Until::Now, false, false).await?;
        fired += due;
    }
    tx.commit().await.map_err(StoreError::from)?;
    Ok(fired)
}

/// The bus handler: applies incident events to the clocks in the consumer's
/// transaction (idempotent through `processed_events` and `ticket_events`).
#[derive(Debug, Clone, Default)]
pub struct TicketClocks;

#[async_trait]
impl Handler for TicketClocks {
    async fn handle(&self, tx: &mut Tx, event: &Event) -> Result<(), HandlerError> {
        apply_in(tx, event, itsm_store::now_micros())
            .await
            .map_err(|e| HandlerError::Retryable(e.to_string()))
    }
}

/// The consumer of ticket events ("sla.ticket-clocks" on "incidents").
pub fn consumer(db: Db, bus: Arc<dyn EventBus>) -> Consumer {
    Consumer::new(
        db,
        bus,
        Arc::new(TicketClocks),
        ConsumerConfig::new("sla.ticket-clocks", &["incidents"]),
    )
}
