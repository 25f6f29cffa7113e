//! The data set of the SLA bench: open incidents with their events, and the
//! task SLAs, timelines and stored ticket events the SLA engine keeps for
//! them. Rows are built in Rust with the engine's own replay
//! (`itsm_sla::clock::replay`, once per event as the bus consumer applies
//! them) and written with COPY, so a million clocks take minutes rather than
//! the hours the consumer would need. [`check_against_engine`] proves the rows
//! are the engine's: one ticket goes through `Engine::apply_ticket_event` and
//! its rows are compared with the generated ones.
//!
//! Every ticket is an incident created, then taken into work by its group
//! minutes later; its priority picks one definition (see `sla.rs`), so each
//! ticket has one clock. Creation times go back up to a few days, chosen so
//! that no timer is due within [`MARGIN`] of the generation: the deadlines
//! (the next warning or the breach) spread over the coming days and weeks.

use std::fmt::Write as _;
use std::sync::Arc;

use itsm_proto::itsm::common::v1 as common;
use itsm_proto::itsm::events::v1::Event;
use itsm_proto::itsm::incidents::v1::{Channel, Incident, IncidentEvent, IncidentState};
use itsm_proto::itsm::sla::v1 as pb;
use itsm_sla::calendar::BusinessCalendar;
use itsm_sla::clock::{self, Conditions};
use itsm_sla::tickets::{self, TicketEvent};
use prost::Message as _;
use sqlx::{Connection as _, PgConnection};

pub const SECOND: i64 = 1_000_000;
pub const MINUTE: i64 = 60 * SECOND;
pub const HOUR: i64 = 60 * MINUTE;

/// No generated timer is due sooner than this after the generation.
pub const MARGIN: i64 = 2 * HOUR;

/// Tickets per COPY batch.
const CHUNK: u64 = 10_000;

/// A definition the generated tickets fall under, as the engine sees it.
#[derive(Debug, Clone)]
pub struct Covered {
    /// The stored definition (current version).
    pub def: pb::SlaDefinition,
    pub conditions: Conditions,
    /// Its calendar compiled in the calendar's own zone (24x7 for none).
    pub calendar: BusinessCalendar,
    pub calendar_version: i64,
    /// The incident priority the definition selects.
    pub priority: common::Priority,
    /// How long ago its tickets were created, at most.
    pub max_age: i64,
}

impl Covered {
    pub fn new(
        def: pb::SlaDefinition,
        calendar: Option<&pb::Calendar>,
        priority: common::Priority,
        max_age: i64,
    ) -> Result<Self, Box<dyn std::error::Error>> {
        let conditions = clock::compile_conditions(&def)
            .map_err(|errors| format!("{}: conditions do not compile: {errors:?}", def.name))?;
        let (calendar, calendar_version) = match calendar {
            Some(c) => (
                BusinessCalendar::compile(c, "")
                    .map_err(|errors| format!("{}: does not compile: {errors:?}", c.name))?,
                c.version,
            ),
            None => (BusinessCalendar::always(), 0),
        };
        Ok(Self {
            def,
            conditions,
            calendar,
            calendar_version,
            priority,
            max_age,
        })
    }
}

/// What generation needs: the definitions by priority and the instant the
/// data set is generated at.
#[derive(Debug)]
pub struct Plan {
    /// P2 (HIGH), P3 (MODERATE) and P4 (LOW) resolution.
    pub high: Covered,
    pub moderate: Covered,
    pub low: Covered,
    pub now: i64,
}

impl Plan {
    /// The definition of ticket `k`: one in ten LOW (P4, the service desk
    /// calendar), three in ten HIGH, the rest MODERATE.
    fn covered(&self, k: u64) -> &Covered {
        match k % 10 {
            0 => &self.low,
            1..=3 => &self.high,
            _ => &self.moderate,
        }
    }
}

/// splitmix64: the bench's deterministic randomness.
pub fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A random-looking (version 4) UUID derived from `seed`.
pub fn uuid_of(seed: u64) -> String {
    let high = u128::from(mix(seed)) << 64;
    let low = u128::from(mix(seed ^ 0x5555_5555_5555_5555));
    uuid::Builder::from_random_bytes((high | low).to_be_bytes())
        .into_uuid()
        .to_string()
}

fn below(seed: u64, bound: i64) -> i64 {
    i64::try_from(mix(seed) % u64::try_from(bound.max(1)).unwrap_or(1)).unwrap_or(0)
}

const GROUPS: &[&str] = &[
    "service-desk",
    "network",
    "database",
    "identity",
    "workplace",
    "storage",
    "payments",
    "web",
    "erp",
    "mail",
];

const TITLES: &[&str] = &[
    "VPN drops every few minutes",
    "Invoice run fails with a timeout",
    "Printer on floor 3 jams",
    "Cannot log in to the expense portal",
    "Shared drive is read-only",
    "Mail to external partners bounces",
    "Checkout page loads slowly",
    "Laptop does not see the docking station",
];

/// An incident as the incident service publishes it after a change.
pub fn incident(number: &str, priority: common::Priority, created: i64, seed: u64) -> Incident {
    let (impact, urgency) = match priority {
        common::Priority::Critical => (common::Impact::High, common::Urgency::High),
        common::Priority::High => (common::Impact::High, common::Urgency::Medium),
        common::Priority::Moderate => (common::Impact::Medium, common::Urgency::Medium),
        _ => (common::Impact::Low, common::Urgency::Low),
    };
    let pick =
        |list: &[&'static str], salt: u64| list[(mix(seed ^ salt) % list.len() as u64) as usize];
    Incident {
        name: format!("incidents/{number}"),
        number: number.to_owned(),
        title: pick(TITLES, 1).to_owned(),
        description: format!(
            "{} since this morning; reported by several users.",
            pick(TITLES, 1)
        ),
        state: IncidentState::New as i32,
        impact: impact as i32,
        urgency: urgency as i32,
        priority: priority as i32,
        caller: format!("u-{}", 1_000 + mix(seed ^ 2) % 20_000),
        category: "software".into(),
        assignment_group: pick(GROUPS, 3).to_owned(),
        channel: Channel::Portal as i32,
        created_by: Some(common::Principal {
            subject: "svc-portal".into(),
            display_name: "Self-service portal".into(),
            kind: common::PrincipalKind::ServiceAccount as i32,
        }),
        create_time: Some(clock::timestamp(created)),
        update_time: Some(clock::timestamp(created)),
        etag: "1".into(),
        ..Incident::default()
    }
}

/// The event the incident service publishes for `incident` at its
/// `update_time`, as its `sequence`th change.
pub fn event(
    id: String,
    event_type: &str,
    incident: &Incident,
    changes: Vec<common::FieldChange>,
    sequence: u64,
) -> Event {
    let payload = IncidentEvent {
        incident: Some(incident.clone()),
        changes,
        journal_entry: None,
        notify: Vec::new(),
    };
    Event {
        id,
        r#type: event_type.to_owned(),
        source: "itsm.incidents".into(),
        subject: incident.name.clone(),
        time: incident.update_time,
        actor: incident.created_by.clone(),
        sequence,
        payload: Some(prost_types::Any {
            type_url: "type.googleapis.com/itsm.incidents.v1.IncidentEvent".into(),
            value: payload.encode_to_vec(),
        }),
        ..Event::default()
    }
}

fn change(field: &str, old: &str, new: &str) -> common::FieldChange {
    common::FieldChange {
        field: field.to_owned(),
        old_value: old.to_owned(),
        new_value: new.to_owned(),
    }
}

/// Ticket `k`'s two events (created at `created`, taken into work at
/// `taken`) with the instants the consumer applies them.
pub fn ticket_events(
    k: u64,
    priority: common::Priority,
    created: i64,
    taken: i64,
) -> Vec<(Event, i64)> {
    let number = format!("INC{k:07}");
    let seed = mix(k);
    let mut incident = incident(&number, priority, created, seed);
    let created_event = event(
        uuid_of(seed ^ 11),
        "incidents.incident.created",
        &incident,
        Vec::new(),
        1,
    );
    let assignee = format!("u-{}", 100 + mix(seed ^ 4) % 900);
    incident.state = IncidentState::InProgress as i32;
    incident.assignee.clone_from(&assignee);
    incident.update_time = Some(clock::timestamp(taken));
    incident.acknowledge_time = Some(clock::timestamp(taken));
    incident.etag = "2".into();
    let changes = vec![
        change("state", "NEW", "IN_PROGRESS"),
        change("assignee", "", &assignee),
    ];
    let taken_event = event(
        uuid_of(seed ^ 12),
        "incidents.incident.updated",
        &incident,
        changes,
        2,
    );
    // The consumer applies an event a few milliseconds after its commit.
    let lag = |salt: u64| 2_000 + below(seed ^ salt, 40_000);
    vec![
        (created_event, created + lag(5)),
        (taken_event, taken + lag(6)),
    ]
}

/// One `task_slas` row, in the column order of [`TASK_SLA_COLUMNS`].
#[derive(Debug, Clone, PartialEq)]
pub struct TaskSlaRow {
    pub uid: String,
    pub tenant: String,
    pub ticket: String,
    pub sla_definition_id: String,
    pub sla_definition_version: i64,
    pub calendar_id: String,
    pub calendar_version: i64,
    pub state: i32,
    pub breached: i32,
    pub next_deadline_at: i64,
    pub breach_at: i64,
    pub stop_at: i64,
    pub start_at: i64,
    pub assignment_group: String,
    pub priority: i32,
    pub service: String,
    pub kind: i32,
    pub ticket_sequence: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub version: i64,
    pub doc: Vec<u8>,
    pub elapsed: i64,
    pub target: i64,
}

pub const TASK_SLA_COLUMNS: &str = "uid, tenant, ticket, sla_definition_id, sla_definition_version, \
    calendar_id, calendar_version, state, breached, next_deadline_at, breach_at, stop_at, start_at, \
    assignment_group, priority, service, kind, ticket_sequence, created_at, updated_at, version, doc, \
    elapsed, target";

/// One `ticket_events` row.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct EventRow {
    pub ticket: String,
    pub sequence: i64,
    pub event_id: String,
    pub event_type: String,
    pub time: i64,
    pub received_at: i64,
    pub doc: Vec<u8>,
}

/// A ticket's rows: its stored events, its clock and the clock's timeline
/// (time, doc).
#[derive(Debug, Clone, PartialEq)]
pub struct TicketRows {
    pub events: Vec<EventRow>,
    pub task_sla: Option<TaskSlaRow>,
    pub timeline: Vec<(i64, Vec<u8>)>,
}

fn micros(t: &Option<prost_types::Timestamp>) -> i64 {
    t.as_ref().map_or(0, tickets::micros)
}

fn duration_micros(d: &Option<prost_types::Duration>) -> i64 {
    d.as_ref().map_or(0, |d| {
        d.seconds
            .saturating_mul(1_000_000)
            .saturating_add(i64::from(d.nanos) / 1_000)
    })
}

/// What the engine compares to decide that a clock changed.
fn comparable(t: &pb::TaskSla) -> pb::TaskSla {
    let mut t = t.clone();
    t.compute_time = None;
    t.update_time = None;
    t.wall_elapsed = None;
    t
}

fn same_entry(a: &pb::TimelineEntry, b: &pb::TimelineEntry) -> bool {
    a.time == b.time
        && a.effect == b.effect
        && a.warning_percentage == b.warning_percentage
        && a.event_id == b.event_id
}

/// Whether the engine emits an event for a timeline entry of this effect.
fn announces(effect: i32) -> bool {
    use pb::ClockEffect as E;
    matches!(
        E::try_from(effect),
        Ok(E::Started
            | E::Paused
            | E::Resumed
            | E::Warned
            | E::Breached
            | E::Achieved
            | E::StoppedBreached
            | E::Reset
            | E::Canceled)
    )
}

/// The rows the engine leaves for a ticket whose `events` it applied one by
/// one at their instants: each application replays the history so far up to
/// the last event (timers are the timer job's) and saves the clock when it
/// changed, the row's version advancing by the effects it announces (at
/// least one).
pub fn engine_rows(covered: &Covered, uid: &str, events: &[(Event, i64)]) -> TicketRows {
    let decoded: Vec<TicketEvent> = events
        .iter()
        .filter_map(|(e, _)| tickets::from_event(e))
        .collect();
    let mut rows = TicketRows {
        events: events
            .iter()
            .zip(&decoded)
            .map(|((e, applied), t)| EventRow {
                ticket: t.ticket.clone(),
                sequence: i64::try_from(t.sequence).unwrap_or(i64::MAX),
                event_id: t.id.clone(),
                event_type: t.event_type.clone(),
                time: t.time,
                received_at: *applied,
                doc: e.encode_to_vec(),
            })
            .collect(),
        task_sla: None,
        timeline: Vec::new(),
    };
    let def = &covered.def;
    // (doc, timeline, version, created_at) as last saved.
    let mut stored: Option<(pb::TaskSla, Vec<pb::TimelineEntry>, i64, i64)> = None;
    let mut deadline = 0;
    for (j, (_, now)) in events.iter().enumerate() {
        let now = *now;
        let history = &decoded[..=j];
        let Some(attached_on) = history
            .iter()
            .find(|e| clock::selects(&covered.conditions, &e.snapshot))
        else {
            continue;
        };
        let last_compute = stored
            .as_ref()
            .and_then(|(s, ..)| s.compute_time.as_ref().map(tickets::micros));
        let last = history.iter().map(|e| e.time).max().unwrap_or(now);
        // The engine saves the clock as of this instant (create and update
        // times included), not as of the application.
        let now = last.max(last_compute.unwrap_or(i64::MIN)).min(now);
        let replay = clock::replay(
            def,
            &covered.conditions,
            &covered.calendar,
            history,
            attached_on.time,
            now,
        )
        .with_calendar_version(covered.calendar_version);
        let mut task_sla = replay.task_sla;
        task_sla.name = format!("taskSlas/{uid}");
        task_sla.ticket = history[0].ticket.clone();
        task_sla.create_time = Some(clock::timestamp(
            stored.as_ref().map_or(now, |(.., created)| *created),
        ));
        task_sla.update_time = Some(clock::timestamp(now));
        task_sla.tenant = def.tenant.clone();
        let changed = stored.as_ref().is_none_or(|(doc, timeline, ..)| {
            comparable(doc) != comparable(&task_sla) || *timeline != replay.timeline
        });
        if !changed {
            continue;
        }
        let (previous_version, old, created) = match &stored {
            Some((_, timeline, version, created)) => (*version, timeline.as_slice(), *created),
            None => (0, &[][..], now),
        };
        let announced = replay
            .timeline
            .iter()
            .filter(|e| !old.iter().any(|o| same_entry(o, e)))
            .filter(|e| announces(e.effect))
            .count();
        let version = previous_version + i64::try_from(announced).unwrap_or(i64::MAX).max(1);
        deadline = if task_sla.state == pb::TaskSlaState::InProgress as i32 {
            replay.next_deadline.map_or(0, |d| d.at())
        } else {
            0
        };
        stored = Some((task_sla, replay.timeline, version, created));
    }
    if let Some((doc, timeline, version, created)) = stored {
        rows.task_sla = Some(TaskSlaRow {
            uid: uid.to_owned(),
            tenant: doc.tenant.clone(),
            ticket: doc.ticket.clone(),
            sla_definition_id: doc
                .sla_definition
                .trim_start_matches("slaDefinitions/")
                .to_owned(),
            sla_definition_version: doc.sla_definition_version,
            calendar_id: doc.calendar.trim_start_matches("calendars/").to_owned(),
            calendar_version: doc.calendar_version,
            state: doc.state,
            breached: i32::from(doc.breached),
            next_deadline_at: deadline,
            breach_at: micros(&doc.breach_time),
            stop_at: micros(&doc.stop_time),
            start_at: micros(&doc.start_time),
            assignment_group: doc.assignment_group.clone(),
            priority: doc.priority,
            service: doc.service.clone(),
            kind: doc.kind,
            ticket_sequence: i64::try_from(doc.ticket_sequence).unwrap_or(i64::MAX),
            created_at: created,
            updated_at: micros(&doc.update_time),
            version,
            doc: doc.encode_to_vec(),
            elapsed: duration_micros(&doc.elapsed),
            target: duration_micros(&doc.target),
        });
        rows.timeline = timeline
            .iter()
            .map(|e| (micros(&e.time), e.encode_to_vec()))
            .collect();
    }
    rows
}

/// Ticket `k` of the data set: created up to its definition's `max_age`
/// before the generation (a younger age when a timer would fall due within
/// [`MARGIN`]), taken into work up to 30 minutes later.
pub fn ticket(plan: &Plan, k: u64) -> TicketRows {
    let covered = plan.covered(k);
    let seed = mix(k ^ 0xabcd);
    let mut age = 2 * MINUTE + below(seed, covered.max_age);
    loop {
        let created = plan.now - age;
        let taken = (created + MINUTE + below(seed ^ 1, 30 * MINUTE)).min(plan.now - MINUTE);
        let events = ticket_events(k, covered.priority, created, taken);
        let rows = engine_rows(covered, &uuid_of(seed ^ 2), &events);
        let due = rows.task_sla.as_ref().map_or(0, |r| r.next_deadline_at);
        if due >= plan.now + MARGIN || age <= 4 * MINUTE {
            return rows;
        }
        age /= 2;
    }
}

fn push_bytea(out: &mut String, bytes: &[u8]) {
    out.push_str("\\\\x");
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
}

/// COPY text of the rows of tickets `from..to`: task_slas, ticket_events,
/// and the timeline keyed by task SLA uid (for `bench_timeline`).
fn chunk(plan: &Plan, from: u64, to: u64) -> [String; 3] {
    let mut slas = String::with_capacity(1_200 * CHUNK as usize);
    let mut events = String::with_capacity(2_400 * CHUNK as usize);
    let mut timeline = String::with_capacity(300 * CHUNK as usize);
    for k in from..to {
        let rows = ticket(plan, k);
        for e in &rows.events {
            let _ = write!(
                events,
                "{}\t{}\t{}\t{}\t{}\t{}\t",
                e.ticket, e.sequence, e.event_id, e.event_type, e.time, e.received_at
            );
            push_bytea(&mut events, &e.doc);
            events.push('\n');
        }
        if let Some(r) = &rows.task_sla {
            let _ = write!(
                slas,
                "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t",
                r.uid,
                r.tenant,
                r.ticket,
                r.sla_definition_id,
                r.sla_definition_version,
                r.calendar_id,
                r.calendar_version,
                r.state,
                r.breached,
                r.next_deadline_at,
                r.breach_at,
                r.stop_at,
                r.start_at,
                r.assignment_group,
                r.priority,
                r.service,
                r.kind,
                r.ticket_sequence,
                r.created_at,
                r.updated_at,
                r.version
            );
            push_bytea(&mut slas, &r.doc);
            let _ = writeln!(slas, "\t{}\t{}", r.elapsed, r.target);
            for (seq, (time, doc)) in (1..).zip(&rows.timeline) {
                let _ = write!(timeline, "{}\t{seq}\t{time}\t", r.uid);
                push_bytea(&mut timeline, doc);
                timeline.push('\n');
            }
        }
    }
    [slas, events, timeline]
}

async fn copy(conn: &mut PgConnection, statement: &str, text: String) -> Result<(), sqlx::Error> {
    let mut copy = conn.copy_in_raw(statement).await?;
    copy.send(text.into_bytes()).await?;
    copy.finish().await?;
    Ok(())
}

/// Writes tickets `first..=last` into the database at `url`: built on a
/// blocking thread, copied by two connections as chunks come.
pub async fn generate(
    url: &str,
    plan: Arc<Plan>,
    first: u64,
    last: u64,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut admin = PgConnection::connect(url).await?;
    sqlx::raw_sql(
        "DROP TABLE IF EXISTS bench_timeline; \
         CREATE UNLOGGED TABLE bench_timeline (uid TEXT NOT NULL, seq BIGINT NOT NULL, time BIGINT NOT NULL, doc BYTEA NOT NULL)",
    )
    .execute(&mut admin)
    .await?;
    let (send, receive) = tokio::sync::mpsc::channel::<[String; 3]>(4);
    let producer = tokio::task::spawn_blocking(move || {
        let mut from = first;
        while from <= last {
            let to = (from + CHUNK).min(last + 1);
            if send.blocking_send(chunk(&plan, from, to)).is_err() {
                return;
            }
            from = to;
        }
    });
    let receive = Arc::new(tokio::sync::Mutex::new(receive));
    let mut writers = Vec::new();
    for _ in 0..2 {
        let receive = Arc::clone(&receive);
        let url = url.to_owned();
        writers.push(tokio::spawn(async move {
            let mut conn = PgConnection::connect(&url).await?;
            sqlx::raw_sql("SET synchronous_commit = off").execute(&mut conn).await?;
            loop {
                let next = receive.lock().await.recv().await;
                let Some([slas, events, timeline]) = next else {
                    return Ok::<_, sqlx::Error>(());
                };
                let statement = format!("COPY task_slas ({TASK_SLA_COLUMNS}) FROM STDIN");
                copy(&mut conn, &statement, slas).await?;
                copy(
                    &mut conn,
                    "COPY ticket_events (ticket, sequence, event_id, event_type, time, received_at, doc) FROM STDIN",
                    events,
                )
                .await?;
                copy(&mut conn, "COPY bench_timeline (uid, seq, time, doc) FROM STDIN", timeline).await?;
            }
        }));
    }
    for writer in writers {
        writer.await??;
    }
    producer.await?;
    sqlx::raw_sql(
        "INSERT INTO task_sla_timeline (task_sla_id, seq, time, doc) \
         SELECT s.id, b.seq, b.time, b.doc FROM bench_timeline b JOIN task_slas s ON s.uid = b.uid; \
         DROP TABLE bench_timeline",
    )
    .execute(&mut admin)
    .await?;
    admin.close().await?;
    Ok(())
}

/// The rows the engine stored for `ticket` (its clock and timeline, without
/// the internal id).
pub async fn stored_rows(
    conn: &mut PgConnection,
    ticket: &str,
) -> Result<TicketRows, Box<dyn std::error::Error>> {
    let events: Vec<EventRow> = sqlx::query_as(
        "SELECT ticket, sequence, event_id, event_type, time, received_at, doc FROM ticket_events \
         WHERE ticket = $1 ORDER BY sequence",
    )
    .bind(ticket)
    .fetch_all(&mut *conn)
    .await?;
    let sql = format!("SELECT id, {TASK_SLA_COLUMNS} FROM task_slas WHERE ticket = $1");
    let Some(row) = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(ticket)
        .fetch_optional(&mut *conn)
        .await?
    else {
        return Ok(TicketRows {
            events,
            task_sla: None,
            timeline: Vec::new(),
        });
    };
    use sqlx::Row as _;
    let id: i64 = row.try_get("id")?;
    let task_sla = TaskSlaRow {
        uid: row.try_get("uid")?,
        tenant: row.try_get("tenant")?,
        ticket: row.try_get("ticket")?,
        sla_definition_id: row.try_get("sla_definition_id")?,
        sla_definition_version: row.try_get("sla_definition_version")?,
        calendar_id: row.try_get("calendar_id")?,
        calendar_version: row.try_get("calendar_version")?,
        state: row.try_get("state")?,
        breached: row.try_get("breached")?,
        next_deadline_at: row.try_get("next_deadline_at")?,
        breach_at: row.try_get("breach_at")?,
        stop_at: row.try_get("stop_at")?,
        start_at: row.try_get("start_at")?,
        assignment_group: row.try_get("assignment_group")?,
        priority: row.try_get("priority")?,
        service: row.try_get("service")?,
        kind: row.try_get("kind")?,
        ticket_sequence: row.try_get("ticket_sequence")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        version: row.try_get("version")?,
        doc: row.try_get("doc")?,
        elapsed: row.try_get("elapsed")?,
        target: row.try_get("target")?,
    };
    let timeline: Vec<(i64, Vec<u8>)> = sqlx::query_as(
        "SELECT time, doc FROM task_sla_timeline WHERE task_sla_id = $1 ORDER BY seq",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(TicketRows {
        events,
        task_sla: Some(task_sla),
        timeline,
    })
}

/// Applies ticket `k` through the engine (as the bus consumer does) and
/// checks that [`engine_rows`] gives the same rows, the task SLA's random
/// uid aside. An error names the first difference.
pub async fn check_against_engine(
    db: &itsm_store::Db,
    engine: &itsm_sla::engine::Engine,
    conn: &mut PgConnection,
    plan: &Plan,
    k: u64,
) -> Result<(), Box<dyn std::error::Error>> {
    let covered = plan.covered(k);
    let created = plan.now - 3 * HOUR;
    let events = ticket_events(k, covered.priority, created, created + 20 * MINUTE);
    for (event, applied) in &events {
        engine.apply_ticket_event(db, event, *applied).await?;
    }
    let ticket = format!("incidents/INC{k:07}");
    let stored = stored_rows(conn, &ticket).await?;
    let uid = stored
        .task_sla
        .as_ref()
        .map(|r| r.uid.clone())
        .ok_or_else(|| format!("the engine made no task SLA for {ticket}"))?;
    let generated = engine_rows(covered, &uid, &events);
    if stored.events != generated.events {
        return Err(format!("generated ticket_events of {ticket} differ from the engine's").into());
    }
    if stored.timeline != generated.timeline {
        return Err(format!(
            "generated timeline of {ticket} differs from the engine's:\n{:?}\n{:?}",
            stored.timeline, generated.timeline
        )
        .into());
    }
    if let (Some(s), Some(g)) = (&stored.task_sla, &generated.task_sla)
        && s != g
    {
        let doc_s = pb::TaskSla::decode(s.doc.as_slice())?;
        let doc_g = pb::TaskSla::decode(g.doc.as_slice())?;
        let (mut s, mut g) = (s.clone(), g.clone());
        s.doc.clear();
        g.doc.clear();
        return Err(format!(
            "generated task_slas row of {ticket} differs from the engine's:\nengine:    {s:?}\n{doc_s:?}\ngenerated: {g:?}\n{doc_g:?}"
        )
        .into());
    }
    Ok(())
}
