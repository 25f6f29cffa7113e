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
use itsm_store::{Backend, Db, StoreError, Tx};
use pb::{ClockEffect, TaskSlaState};
use prost::Message;
use sqlx::{AnyConnection, Row};
use std::sync::Arc;

use crate::calendar::{BusinessCalendar, CalendarCache};
use crate::clock;
use crate::store::{calendars, decode, definitions};
use crate::tickets::{self, TicketEvent, TicketSnapshot};
use crate::zones::{NoZones, ZoneSource};

mod batch;
mod save;

use save::save;

/// How long a clock's attachment waits for the CMDB to say a CI's zone.
const ZONE_LOOKUP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// The clock engine: what replays need beyond the database. Cheap to clone;
/// every clone shares the compiled calendars.
#[derive(Debug, Clone)]
pub struct Engine {
    zones: Arc<dyn ZoneSource>,
    calendars: Arc<CalendarCache>,
}

impl Default for Engine {
    /// No CMDB: CI_LOCATION definitions count in their own zone.
    fn default() -> Self {
        Self::new(Arc::new(NoZones))
    }
}

impl Engine {
    /// An engine asking `zones` for the zone of a ticket's CI.
    pub fn new(zones: Arc<dyn ZoneSource>) -> Self {
        Self {
            zones,
            calendars: Arc::default(),
        }
    }

    /// The compiled calendars, by (id, version, zone).
    pub fn calendars(&self) -> &CalendarCache {
        &self.calendars
    }

    /// Applies one ticket event in its own transaction (see [`Engine::apply_in`]).
    pub async fn apply_ticket_event(
        &self,
        db: &Db,
        event: &Event,
        now: i64,
    ) -> Result<(), ApiError> {
        let mut tx = db.begin().await?;
        self.apply_in(&mut tx, event, now).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(())
    }

    /// Applies one ticket event inside `conn`'s transaction: stores it (a
    /// duplicate event id or ticket sequence is a no-op), then replays every
    /// clock of the ticket. Events that are not ticket events are ignored.
    pub async fn apply_in(
        &self,
        conn: &mut AnyConnection,
        event: &Event,
        now: i64,
    ) -> Result<(), ApiError> {
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
        self.replay_ticket(
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

    /// The compiled calendar `name` at `version` (0: current) evaluated in
    /// `zone` ("" or an unknown zone: the calendar's own), with the version
    /// used; 24x7 for no calendar.
    pub async fn load_calendar(
        &self,
        conn: &mut AnyConnection,
        name: &str,
        version: i64,
        zone: &str,
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
        let key = (id.to_owned(), wanted, zone.to_owned());
        if let Some(compiled) = self.calendars.get(&key) {
            return Ok((compiled, wanted));
        }
        let c = calendars::select(conn, id, wanted)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("{name} version {wanted}")))?;
        let compiled = BusinessCalendar::compile(&c, zone)
            .or_else(|_| BusinessCalendar::compile(&c, ""))
            .map_err(|_| ApiError::internal(format!("{name} version {wanted} does not compile")))?;
        self.calendars.put(
            (id.to_owned(), c.version, zone.to_owned()),
            compiled.clone(),
        );
        Ok((compiled, c.version))
    }

    /// The zone a new clock of `def` counts in, from the snapshot the
    /// definition attached on (see [`crate::zones`]): the definition's own
    /// (or "" for the calendar's), the caller's, or the CI location's. An
    /// unknown or unusable answer falls back to the definition's.
    async fn resolve_zone(&self, def: &pb::SlaDefinition, attached_on: &TicketSnapshot) -> String {
        let fallback = def.time_zone.clone();
        let known = |zone: &str| !zone.is_empty() && jiff::tz::TimeZone::get(zone).is_ok();
        match pb::TimeZoneSource::try_from(def.time_zone_source) {
            Ok(pb::TimeZoneSource::Caller) => {
                let zone = attached_on.text("caller_time_zone");
                if known(zone) {
                    zone.to_owned()
                } else {
                    fallback
                }
            }
            Ok(pb::TimeZoneSource::CiLocation) => {
                let ci = attached_on.text("configuration_item");
                if ci.is_empty() {
                    return fallback;
                }
                match tokio::time::timeout(ZONE_LOOKUP_TIMEOUT, self.zones.ci_time_zone(ci)).await {
                    Ok(Ok(Some(zone))) if known(&zone) => zone,
                    Ok(Ok(_)) => fallback,
                    Ok(Err(error)) => {
                        tracing::warn!(%error, ci, definition = %def.name, "the CMDB did not say the CI's time zone: the clock counts in the definition's zone");
                        fallback
                    }
                    Err(_) => {
                        tracing::warn!(ci, definition = %def.name, "the CMDB did not say the CI's time zone within 2 s: the clock counts in the definition's zone");
                        fallback
                    }
                }
            }
            _ => fallback,
        }
    }
}

/// Serializes the work on one ticket's clocks across transactions (a
/// PostgreSQL advisory lock held to the end of the transaction; SQLite
/// writers are serialized already). With `wait` false, answers whether the
/// lock was free instead of waiting for it.
pub(crate) async fn lock_ticket(
    conn: &mut AnyConnection,
    ticket: &str,
    wait: bool,
) -> Result<bool, ApiError> {
    if conn.backend_name() != "PostgreSQL" {
        return Ok(true);
    }
    let key = lock_key(ticket);
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

/// The advisory lock key of a ticket: FNV-1a of "sla.ticket.<ticket>", a
/// stable key of its own. Whoever locks several tickets locks them in the
/// order of their keys, so two such transactions never wait on each other
/// in a cycle.
pub(crate) fn lock_key(ticket: &str) -> i64 {
    let key = format!("sla.ticket.{ticket}")
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
        });
    i64::from_ne_bytes(key.to_ne_bytes())
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

/// What a replay of one ticket reads before it computes (read one ticket at
/// a time, or for a batch of tickets by `replay_tickets`).
#[derive(Debug, Default)]
struct TicketState {
    /// The stored history, in sequence order.
    events: Vec<TicketEvent>,
    /// When the oldest stored event arrived.
    oldest_received: Option<i64>,
    /// The ticket's task SLAs with their timelines, by id.
    stored: Vec<Stored>,
}

/// What replays in one transaction share: the enabled definitions of a
/// ticket type, definition versions and the calendars' current versions,
/// each read once.
#[derive(Debug, Default)]
struct Shared {
    enabled: std::collections::HashMap<String, Vec<pb::SlaDefinition>>,
    definitions: std::collections::HashMap<(String, i64), Option<pb::SlaDefinition>>,
    calendar_versions: std::collections::HashMap<String, i64>,
    /// When set, the changes of existing task SLAs are collected here and
    /// written together (`batch::flush`) instead of one by one.
    deferred: Option<Vec<RowUpdate>>,
}

/// The new values of an existing task SLA, written later with others:
/// `values` in the order of `batch::UPDATED` (the id first), and the
/// timeline that replaces the stored one, as (time, doc) of each entry.
#[derive(Debug)]
struct RowUpdate {
    values: Vec<itsm_store::SqlValue>,
    timeline: Vec<(i64, Vec<u8>)>,
}

impl Shared {
    async fn enabled(
        &mut self,
        conn: &mut AnyConnection,
        ticket_type: &str,
    ) -> Result<Vec<pb::SlaDefinition>, ApiError> {
        if let Some(found) = self.enabled.get(ticket_type) {
            return Ok(found.clone());
        }
        let found = enabled_definitions(conn, ticket_type).await?;
        self.enabled.insert(ticket_type.to_owned(), found.clone());
        Ok(found)
    }

    async fn definition(
        &mut self,
        conn: &mut AnyConnection,
        id: &str,
        version: i64,
    ) -> Result<Option<pb::SlaDefinition>, ApiError> {
        let key = (id.to_owned(), version);
        if let Some(found) = self.definitions.get(&key) {
            return Ok(found.clone());
        }
        let found = definitions::select(conn, id, version).await?;
        self.definitions.insert(key, found.clone());
        Ok(found)
    }

    /// The version to load of calendar `name` when `version` is 0 (the
    /// current one); `version` itself otherwise.
    async fn calendar_version(
        &mut self,
        conn: &mut AnyConnection,
        name: &str,
        version: i64,
    ) -> Result<i64, ApiError> {
        if version != 0 || name.is_empty() {
            return Ok(version);
        }
        if let Some(found) = self.calendar_versions.get(name) {
            return Ok(*found);
        }
        let Some(id) = calendars::id_of(name) else {
            return Ok(0);
        };
        let current = calendars::current_version(conn, id).await?.unwrap_or(0);
        self.calendar_versions.insert(name.to_owned(), current);
        Ok(current)
    }
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

/// Which existing clocks a replay moves to the current definition and
/// calendar versions (new clocks always start on them).
#[derive(Debug, Clone, Copy)]
enum Moved<'a> {
    /// None: each replays on the versions it recorded.
    None,
    All,
    /// The task SLAs named ("taskSlas/<uuid>"): what a recomputation selected.
    Only(&'a std::collections::HashSet<String>),
}

impl Moved<'_> {
    fn moves(self, clock: &Stored) -> bool {
        match self {
            Self::None => false,
            Self::All => true,
            Self::Only(names) => names.contains(&clock.doc.name),
        }
    }
}

impl Engine {
    /// Replays every clock of `ticket` at `now` and saves them (unless
    /// `validate_only`); returns the names of the task SLAs whose stored document
    /// changed (ignoring compute/update times).
    pub async fn replay_ticket(
        &self,
        conn: &mut AnyConnection,
        ticket: &str,
        now: i64,
        until: Until,
        latest: bool,
        validate_only: bool,
    ) -> Result<Vec<String>, ApiError> {
        let events = history(conn, ticket).await?;
        let stored = stored_of_ticket(conn, ticket).await?;
        let oldest_received: Option<i64> =
            sqlx::query_scalar("SELECT MIN(received_at) FROM ticket_events WHERE ticket = $1")
                .bind(ticket)
                .fetch_one(&mut *conn)
                .await
                .map_err(StoreError::from)?;
        let state = TicketState {
            events,
            oldest_received,
            stored,
        };
        let mut shared = Shared::default();
        let moved = if latest { Moved::All } else { Moved::None };
        self.replay_state(
            conn,
            ticket,
            state,
            &mut shared,
            now,
            until,
            moved,
            validate_only,
        )
        .await
    }

    /// [`Engine::replay_ticket`] over what was read of the ticket.
    #[allow(clippy::too_many_arguments)]
    async fn replay_state(
        &self,
        conn: &mut AnyConnection,
        ticket: &str,
        state: TicketState,
        shared: &mut Shared,
        now: i64,
        until: Until,
        moved: Moved<'_>,
        validate_only: bool,
    ) -> Result<Vec<String>, ApiError> {
        let TicketState {
            events,
            oldest_received,
            stored,
        } = state;
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
        let current = shared.enabled(conn, ticket_type(ticket)).await?;
        let mut changed = Vec::new();
        // The definitions with a clock already, newest clock per definition.
        let mut def_ids: Vec<String> = current.iter().map(|d| d.name.clone()).collect();
        for s in &stored {
            if !def_ids.contains(&s.doc.sla_definition) {
                def_ids.push(s.doc.sla_definition.clone());
            }
        }
        for def_name in def_ids {
            let Some(def_id) = definitions::id_of(&def_name) else {
                continue;
            };
            // The definition's clocks on this ticket, oldest first: a clock
            // canceled (selection no longer matching, cancel condition) is
            // followed by a new one when the ticket is selected again.
            let runs: Vec<&Stored> = stored
                .iter()
                .filter(|s| s.doc.sla_definition == def_name)
                .collect();
            let mut canceled_at: Option<u64> = None;
            for run in 0.. {
                let existing = runs.get(run).copied();
                let (def, cal_name, cal_version, kept_zone) = match existing {
                    Some(s) if !moved.moves(s) => {
                        let Some(def) = shared
                            .definition(conn, def_id, s.doc.sla_definition_version)
                            .await?
                        else {
                            break;
                        };
                        let zone = s.doc.time_zone.clone();
                        (
                            def,
                            s.doc.calendar.clone(),
                            s.doc.calendar_version,
                            Some(zone),
                        )
                    }
                    _ => {
                        let Some(def) = current.iter().find(|d| d.name == def_name).cloned() else {
                            break;
                        };
                        let cal = def.calendar.clone();
                        (def, cal, 0, None)
                    }
                };
                let Ok(conditions) = clock::compile_conditions(&def) else {
                    break;
                };
                // The first event (in sequence order, whenever it arrived)
                // selected by the definition; after a cancel, the first
                // later one that selects the ticket again.
                let attached_on = match canceled_at {
                    None => events
                        .iter()
                        .find(|e| clock::selects(&conditions, &e.snapshot)),
                    Some(sequence) => events
                        .iter()
                        .filter(|e| e.sequence > sequence)
                        .find(|e| clock::reattaches(&conditions, &e.snapshot)),
                };
                let Some(attached_on) = attached_on else {
                    break;
                };
                let attach_time = attached_on.time;
                let zone = match kept_zone {
                    Some(zone) => zone,
                    None => self.resolve_zone(&def, &attached_on.snapshot).await,
                };
                let cal_version = shared
                    .calendar_version(conn, &cal_name, cal_version)
                    .await?;
                let (calendar, cal_version) = self
                    .load_calendar(conn, &cal_name, cal_version, &zone)
                    .await?;
                let mut r = clock::replay(&def, &conditions, &calendar, &events, attach_time, now)
                    .with_calendar_version(cal_version);
                if gap {
                    // No timer over an incomplete history: the missing events come first.
                    r.next_deadline = None;
                }
                if let Some(stored) = existing {
                    keep_recalculations(&mut r.timeline, stored, &r.task_sla, now);
                }
                canceled_at = (r.task_sla.state == TaskSlaState::Canceled as i32)
                    .then(|| {
                        r.timeline
                            .iter()
                            .rev()
                            .find(|e| e.effect == ClockEffect::Canceled as i32)
                            .map(|e| e.event_sequence)
                    })
                    .flatten()
                    .filter(|sequence| *sequence > 0);
                if let Some(name) = save(
                    conn,
                    ticket,
                    &def,
                    existing,
                    r,
                    now,
                    validate_only,
                    shared.deferred.as_mut(),
                )
                .await?
                {
                    changed.push(name);
                }
                if canceled_at.is_none() {
                    break;
                }
            }
        }
        Ok(changed)
    }
}

/// Carries the RECALCULATED entries of a clock's stored timeline into its
/// replayed one, each at its instant (replay does not produce them: they
/// record the clock's moves to other versions), and adds one at `now` when
/// this replay moves the clock to another definition version
/// (DEFINITION_CHANGE) or calendar version (CALENDAR_CHANGE). A later replay
/// on the same versions carries them unchanged, so replay stays
/// deterministic and the timeline keeps saying why the values changed.
fn keep_recalculations(
    timeline: &mut Vec<pb::TimelineEntry>,
    stored: &Stored,
    replayed: &pb::TaskSla,
    now: i64,
) {
    let recalculated = ClockEffect::Recalculated as i32;
    let mut carried: Vec<pb::TimelineEntry> = stored
        .timeline
        .iter()
        .filter(|e| e.effect == recalculated)
        .cloned()
        .collect();
    let was = &stored.doc;
    let definition_moved = was.sla_definition_version != replayed.sla_definition_version;
    let calendar_moved =
        was.calendar_version != replayed.calendar_version || was.calendar != replayed.calendar;
    if definition_moved || calendar_moved {
        let (trigger, note) = if definition_moved {
            (
                pb::TimelineTrigger::DefinitionChange,
                format!(
                    "recalculated on {} version {} (was version {})",
                    replayed.sla_definition,
                    replayed.sla_definition_version,
                    was.sla_definition_version
                ),
            )
        } else {
            let calendar = if replayed.calendar.is_empty() {
                "24x7"
            } else {
                replayed.calendar.as_str()
            };
            (
                pb::TimelineTrigger::CalendarChange,
                format!(
                    "recalculated on {calendar} version {} (was version {})",
                    replayed.calendar_version, was.calendar_version
                ),
            )
        };
        carried.push(pb::TimelineEntry {
            time: Some(clock::timestamp(now)),
            trigger: trigger as i32,
            condition: pb::ConditionKind::None as i32,
            effect: recalculated,
            state_before: was.state,
            state_after: replayed.state,
            elapsed: replayed.elapsed,
            paused_duration: replayed.paused_duration,
            breach_time: replayed.breach_time,
            sla_definition_version: replayed.sla_definition_version,
            calendar_version: replayed.calendar_version,
            note,
            ..pb::TimelineEntry::default()
        });
    }
    let at = |e: &pb::TimelineEntry| e.time.as_ref().map_or(0, tickets::micros);
    for entry in carried {
        let position = timeline.partition_point(|e| at(e) <= at(&entry));
        timeline.insert(position, entry);
    }
}

impl Engine {
    /// Fires the timers due at `now`: replays up to `limit` IN_PROGRESS task
    /// SLAs whose deadline has come (each claimed once across replicas: `FOR
    /// UPDATE SKIP LOCKED` on PostgreSQL; SQLite writers are serialized), saves
    /// them and emits their warnings and breaches. Returns how many were fired.
    pub async fn fire_due_timers(
        &self,
        db: &Db,
        now: i64,
        limit: usize,
    ) -> Result<usize, ApiError> {
        let mut tx: Tx = db.begin().await?;
        let lock = match db.backend() {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let sql = format!(
            "SELECT id, ticket, next_deadline_at FROM task_slas WHERE state = 1 AND next_deadline_at > 0 AND next_deadline_at <= $1 \
         ORDER BY next_deadline_at LIMIT $2{lock}"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(now)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&mut *tx)
            .await
            .map_err(StoreError::from)?;
        // Due clocks per ticket, with their due instants (for the lateness
        // histogram): one replay fires every timer of the ticket.
        let mut tickets_due: std::collections::BTreeMap<String, Vec<i64>> = Default::default();
        for row in &rows {
            let ticket: String = row.try_get("ticket").map_err(StoreError::from)?;
            let at: i64 = row.try_get("next_deadline_at").map_err(StoreError::from)?;
            tickets_due.entry(ticket).or_default().push(at);
        }
        let mut fired = 0;
        let mut fired_due = Vec::new();
        for (ticket, due) in &tickets_due {
            // Busy: a ticket event or another replica is replaying it right now
            // (and so fires its due timers); never wait while holding row locks.
            if !lock_ticket(&mut tx, ticket, false).await? {
                continue;
            }
            self.replay_ticket(&mut tx, ticket, now, Until::Now, false, false)
                .await?;
            fired += due.len();
            fired_due.extend_from_slice(due);
        }
        tx.commit().await.map_err(StoreError::from)?;
        for due in fired_due {
            crate::gauges::timer_fired(due, now);
        }
        Ok(fired)
    }
}

/// The bus handler: applies incident events to the clocks in the consumer's
/// transaction (idempotent through `processed_events` and `ticket_events`).
#[derive(Debug, Clone, Default)]
pub struct TicketClocks(pub Engine);

#[async_trait]
impl Handler for TicketClocks {
    async fn handle(&self, tx: &mut Tx, event: &Event) -> Result<(), HandlerError> {
        self.0
            .apply_in(tx, event, itsm_store::now_micros())
            .await
            .map_err(|e| HandlerError::Retryable(e.to_string()))
    }
}

/// The consumer of ticket events ("sla.ticket-clocks" on "incidents").
pub fn consumer(db: Db, bus: Arc<dyn EventBus>, engine: Engine) -> Consumer {
    Consumer::new(
        db,
        bus,
        Arc::new(TicketClocks(engine)),
        ConsumerConfig::new("sla.ticket-clocks", &["incidents"]),
    )
}
