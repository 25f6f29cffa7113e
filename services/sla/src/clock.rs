//! The deterministic SLA clock: a task SLA replayed from its ticket's events,
//! one definition version and one calendar, closed at `now`.
//!
//! [`replay`] is a pure function of its inputs (it never reads a clock): the
//! same history gives the same task SLA, the same timeline and the same next
//! deadline, however the events arrived (out of order, twice).
//!
//! Per ticket event, in sequence order (duplicates dropped; an event's time
//! is never taken as earlier than its predecessor's), after the timers due at
//! or before the event's instant (a stop at the very breach instant is a
//! breach):
//! 1. not attached yet: the definition attaches at the first event at or after
//!    `attach_time` whose snapshot matches the selection (the last event, at
//!    `attach_time`, when none is that late);
//! 2. the selection no longer matching cancels ("selection_no_longer_matches");
//!    then the cancel condition cancels ("cancel_condition");
//! 3. not started: the start condition (empty: at attachment) starts the clock,
//!    retroactively from `retroactive_start_field` when the definition asks,
//!    counting the periods the pause condition held since then as paused with
//!    `retroactive_pause`;
//! 4. started: stop (ACHIEVED, or BREACHED past the target), reset (when the
//!    reset condition becomes true: elapsed back to zero, warnings re-armed),
//!    pause (when the pause condition becomes true), resume (when the resume
//!    condition holds; when it is empty, when the pause condition turned false).
//!
//! Elapsed is business time (`BusinessCalendar::measure`) while running,
//! paused_duration business time while paused. Warnings and the breach (100%)
//! are placed at their exact instant, `BusinessCalendar::add` from the last
//! running instant; a paused clock never reaches them.

use std::collections::BTreeSet;

use itsm_proto::itsm::sla::v1 as pb;
use itsm_store::query::{Expr, FieldKind, Schema, parse_filter};
use pb::{ClockEffect, ConditionKind, TaskSlaState, TimelineTrigger};

use crate::calendar::BusinessCalendar;
use crate::tickets::{self, TicketEvent, TicketSnapshot};

/// Warning percentages when a definition lists none.
pub const DEFAULT_WARNINGS: [i32; 3] = [50, 75, 100];
/// `cancel_reason` when the ticket stops matching the selection.
pub const SELECTION_NO_LONGER_MATCHES: &str = "selection_no_longer_matches";
/// What `BusinessCalendar::add` answers when business time never runs out
/// (no working time left): no breach instant, no timer.
const NEVER: i64 = i64::MAX;
/// `cancel_reason` when the cancel condition matched.
pub const CANCEL_CONDITION: &str = "cancel_condition";

/// One condition: its text, and its parsed form (`None` when empty).
#[derive(Debug, Clone, PartialEq)]
struct Condition {
    text: String,
    expr: Option<Expr>,
}

impl Condition {
    fn holds(&self, schema: &Schema, snapshot: &TicketSnapshot) -> bool {
        self.expr
            .as_ref()
            .is_none_or(|expr| expr.matches(schema, snapshot))
    }

    fn is_empty(&self) -> bool {
        self.expr.is_none()
    }
}

/// The parsed conditions of one definition version.
#[derive(Debug, Clone, PartialEq)]
pub struct Conditions {
    schema: &'static Schema,
    selection: Condition,
    start: Condition,
    pause: Condition,
    resume: Condition,
    stop: Condition,
    reset: Condition,
    cancel: Condition,
    retroactive_start_field: Option<&'static str>,
}

impl Conditions {
    /// The fields the conditions are evaluated over.
    pub fn schema(&self) -> &'static Schema {
        self.schema
    }
}

/// Parses and checks every condition of `def` against its ticket type's
/// fields. Errors name the definition field ("sla_definition.pause_condition")
/// and the reason, every one at once.
pub fn compile_conditions(def: &pb::SlaDefinition) -> Result<Conditions, Vec<(String, String)>> {
    let mut errors = Vec::new();
    let Some(schema) = tickets::schema(&def.ticket_type) else {
        let reason = if tickets::TICKET_TYPES.contains(&def.ticket_type.as_str()) {
            format!(
                "SLAs on {} are not supported yet (supported: incidents)",
                def.ticket_type
            )
        } else {
            format!(
                "unknown ticket type {:?} (one of: {})",
                def.ticket_type,
                tickets::TICKET_TYPES.join(", ")
            )
        };
        return Err(vec![("sla_definition.ticket_type".to_owned(), reason)]);
    };
    let mut parse = |field: &str, text: &str| -> Condition {
        let expr = match parse_filter(text) {
            Ok(Some(expr)) => match expr.check(schema) {
                Ok(()) => Some(expr),
                Err(error) => {
                    errors.push((format!("sla_definition.{field}"), error.description()));
                    None
                }
            },
            Ok(None) => None,
            Err(error) => {
                errors.push((format!("sla_definition.{field}"), error.description()));
                None
            }
        };
        Condition {
            text: text.trim().to_owned(),
            expr,
        }
    };
    let selection = parse("selection_condition", &def.selection_condition);
    let start = parse("start_condition", &def.start_condition);
    let pause = parse("pause_condition", &def.pause_condition);
    let resume = parse("resume_condition", &def.resume_condition);
    let stop = parse("stop_condition", &def.stop_condition);
    let reset = parse("reset_condition", &def.reset_condition);
    let cancel = parse("cancel_condition", &def.cancel_condition);
    let retroactive_start_field = match def.retroactive_start_field.as_str() {
        "" => None,
        name => match schema.field(name) {
            Some(field) if field.kind == FieldKind::Timestamp => Some(field.name),
            _ => {
                let timestamps: Vec<&str> = schema
                    .fields
                    .iter()
                    .filter(|f| f.kind == FieldKind::Timestamp)
                    .map(|f| f.name)
                    .collect();
                errors.push((
                    "sla_definition.retroactive_start_field".to_owned(),
                    format!(
                        "{name:?} is not a timestamp field of {} (one of: {})",
                        def.ticket_type,
                        timestamps.join(", ")
                    ),
                ));
                None
            }
        },
    };
    if def.retroactive_pause && def.retroactive_start_field.is_empty() {
        errors.push((
            "sla_definition.retroactive_pause".to_owned(),
            "needs a retroactive_start_field to count pauses from".to_owned(),
        ));
    }
    for (i, p) in def.warning_percentages.iter().enumerate() {
        if !(1..=1000).contains(p) {
            errors.push((
                format!("sla_definition.warning_percentages[{i}]"),
                format!("{p} is not a percentage between 1 and 1000"),
            ));
        }
    }
    if errors.is_empty() {
        Ok(Conditions {
            schema,
            selection,
            start,
            pause,
            resume,
            stop,
            reset,
            cancel,
            retroactive_start_field,
        })
    } else {
        Err(errors)
    }
}

/// Whether the definition covers this ticket (an empty selection covers all).
pub fn selects(conditions: &Conditions, snapshot: &TicketSnapshot) -> bool {
    conditions.selection.holds(conditions.schema, snapshot)
}

/// Whether a new clock attaches on this snapshot after the previous clock of
/// the definition was canceled: the ticket is selected again (a priority
/// raised back to P1) and neither the cancel nor the stop condition holds,
/// so a canceled or resolved ticket does not start a clock again.
pub fn reattaches(conditions: &Conditions, snapshot: &TicketSnapshot) -> bool {
    let set_and_holds = |c: &Condition| !c.is_empty() && c.holds(conditions.schema, snapshot);
    selects(conditions, snapshot)
        && !set_and_holds(&conditions.cancel)
        && !set_and_holds(&conditions.stop)
}

/// The next instant a timer must fire for a running clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deadline {
    /// A warning percentage below the breach (or above it, once breached).
    Warning { at: i64, percentage: i32 },
    /// The target (100%).
    Breach { at: i64 },
}

impl Deadline {
    /// When it fires, microseconds since the epoch.
    pub fn at(&self) -> i64 {
        match self {
            Self::Warning { at, .. } | Self::Breach { at } => *at,
        }
    }
}

/// A task SLA recomputed from its history.
#[derive(Debug, Clone, PartialEq)]
pub struct Replay {
    /// The clock at `now` (name, create_time, update_time and tenant are the
    /// caller's to fill; calendar_version through [`Replay::with_calendar_version`]).
    pub task_sla: pb::TaskSla,
    pub timeline: Vec<pb::TimelineEntry>,
    /// While IN_PROGRESS: the next warning or the breach not yet reached.
    pub next_deadline: Option<Deadline>,
}

impl Replay {
    /// Records the calendar version the clock ran under, on the task SLA and
    /// every timeline entry (replay itself knows only the compiled calendar).
    pub fn with_calendar_version(mut self, version: i64) -> Self {
        self.task_sla.calendar_version = version;
        for entry in &mut self.timeline {
            entry.calendar_version = version;
        }
        self
    }
}

/// Replays `events` (any order, duplicates allowed) under `def` and
/// `calendar`, the definition having attached at `attach_time`, and closes the
/// clock at `now` (timers due at or before `now` are included).
pub fn replay(
    def: &pb::SlaDefinition,
    conditions: &Conditions,
    calendar: &BusinessCalendar,
    events: &[TicketEvent],
    attach_time: i64,
    now: i64,
) -> Replay {
    let mut sorted: Vec<&TicketEvent> = events.iter().collect();
    sorted.sort_by(|a, b| a.sequence.cmp(&b.sequence).then_with(|| a.id.cmp(&b.id)));
    sorted.dedup_by_key(|e| e.sequence);

    let mut clock = Clock::new(def, conditions, calendar);
    // Times never go backwards, whatever the producers' clocks said.
    let mut last_time = i64::MIN;
    let timed: Vec<(i64, &TicketEvent)> = sorted
        .into_iter()
        .map(|e| {
            last_time = last_time.max(e.time);
            (last_time, e)
        })
        .collect();
    let attach_index = timed
        .iter()
        .position(|(t, _)| *t >= attach_time)
        .or_else(|| timed.len().checked_sub(1));
    for (i, (time, event)) in timed.iter().enumerate() {
        let Some(first) = attach_index else { break };
        if !clock.attached && i < first {
            continue;
        }
        let time = if i == first {
            (*time).max(attach_time)
        } else {
            *time
        };
        if !clock.attached {
            let history = &timed[..i];
            clock.attach(time, event, history);
        } else {
            clock.on_event(time, event);
        }
    }
    clock.finish(now)
}

/// A stored task SLA's figures carried forward from its `compute_time` to
/// `now` (what a read shows without replaying): running time counts as
/// elapsed, paused time as paused; remaining, percentage and wall_elapsed
/// follow. Final clocks, and `now` before `compute_time`, are returned as is.
/// `breached` and the warnings stay as the timers recorded them.
pub fn project(task_sla: &pb::TaskSla, calendar: &BusinessCalendar, now: i64) -> pb::TaskSla {
    let mut sla = task_sla.clone();
    let from = sla.compute_time.as_ref().map_or(now, tickets::micros);
    let state = TaskSlaState::try_from(sla.state).unwrap_or(TaskSlaState::Unspecified);
    if now <= from || !matches!(state, TaskSlaState::InProgress | TaskSlaState::Paused) {
        return sla;
    }
    let business = calendar.measure(from, now);
    let target = micros_of(sla.target.as_ref());
    let mut elapsed = micros_of(sla.elapsed.as_ref());
    if state == TaskSlaState::InProgress {
        elapsed = elapsed.saturating_add(business);
        sla.elapsed = Some(duration(elapsed));
        sla.remaining = Some(duration(target.saturating_sub(elapsed)));
        sla.percentage = if target > 0 {
            elapsed as f64 * 100.0 / target as f64
        } else {
            0.0
        };
    } else {
        let paused = micros_of(sla.paused_duration.as_ref()).saturating_add(business);
        sla.paused_duration = Some(duration(paused));
    }
    if let Some(start) = sla.start_time.as_ref().map(tickets::micros) {
        sla.wall_elapsed = Some(duration(now.saturating_sub(start).max(0)));
    }
    sla.compute_time = Some(timestamp(now));
    sla
}

/// The replay's running state.
struct Clock<'a> {
    def: &'a pb::SlaDefinition,
    c: &'a Conditions,
    calendar: &'a BusinessCalendar,
    target: i64,
    /// Sorted thresholds (percentages), 100 always included.
    thresholds: Vec<i32>,
    warnings: BTreeSet<i32>,
    attached: bool,
    state: TaskSlaState,
    start_time: Option<i64>,
    stop_time: Option<i64>,
    pause_time: Option<i64>,
    breach_instant: Option<i64>,
    /// Time is counted (elapsed or paused) from here.
    mark: i64,
    elapsed: i64,
    paused: i64,
    breached: bool,
    reached: Vec<i32>,
    reset_count: i32,
    cancel_reason: String,
    pause_held: bool,
    reset_held: bool,
    last: Option<&'a TicketEvent>,
    timeline: Vec<pb::TimelineEntry>,
}

/// What a timeline entry is about, beyond the clock's own figures.
struct Entry<'e> {
    time: i64,
    event: Option<&'e TicketEvent>,
    condition: ConditionKind,
    expression: String,
    effect: ClockEffect,
    warning: i32,
    before: TaskSlaState,
    note: String,
}

fn micros_of(d: Option<&prost_types::Duration>) -> i64 {
    d.map_or(0, |d| {
        d.seconds
            .saturating_mul(1_000_000)
            .saturating_add(i64::from(d.nanos) / 1_000)
    })
}

/// A protobuf duration (seconds and nanos of the same sign).
pub fn duration(micros: i64) -> prost_types::Duration {
    prost_types::Duration {
        seconds: micros / 1_000_000,
        nanos: i32::try_from((micros % 1_000_000) * 1_000).unwrap_or(0),
    }
}

/// A protobuf timestamp (nanos never negative).
pub fn timestamp(micros: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: micros.div_euclid(1_000_000),
        nanos: i32::try_from(micros.rem_euclid(1_000_000) * 1_000).unwrap_or(0),
    }
}

fn state_name(state: TaskSlaState) -> &'static str {
    match state {
        TaskSlaState::Unspecified => "not started",
        TaskSlaState::InProgress => "in progress",
        TaskSlaState::Paused => "paused",
        TaskSlaState::Achieved => "achieved",
        TaskSlaState::Breached => "breached",
        TaskSlaState::Canceled => "canceled",
    }
}

impl<'a> Clock<'a> {
    fn new(def: &'a pb::SlaDefinition, c: &'a Conditions, calendar: &'a BusinessCalendar) -> Self {
        let listed: Vec<i32> = if def.warning_percentages.is_empty() {
            DEFAULT_WARNINGS.to_vec()
        } else {
            def.warning_percentages.clone()
        };
        let warnings: BTreeSet<i32> = listed.into_iter().filter(|p| *p > 0).collect();
        let mut thresholds: BTreeSet<i32> = warnings.clone();
        thresholds.insert(100);
        Self {
            def,
            c,
            calendar,
            target: micros_of(def.target.as_ref()),
            thresholds: thresholds.into_iter().collect(),
            warnings,
            attached: false,
            state: TaskSlaState::Unspecified,
            start_time: None,
            stop_time: None,
            pause_time: None,
            breach_instant: None,
            mark: i64::MIN,
            elapsed: 0,
            paused: 0,
            breached: false,
            reached: Vec::new(),
            reset_count: 0,
            cancel_reason: String::new(),
            pause_held: false,
            reset_held: false,
            last: None,
            timeline: Vec::new(),
        }
    }

    fn is_final(&self) -> bool {
        matches!(
            self.state,
            TaskSlaState::Achieved | TaskSlaState::Breached | TaskSlaState::Canceled
        )
    }

    fn started(&self) -> bool {
        matches!(self.state, TaskSlaState::InProgress | TaskSlaState::Paused)
    }

    /// Business time of threshold `p`.
    fn threshold(&self, p: i32) -> i64 {
        let t = i128::from(self.target) * i128::from(p) / 100;
        i64::try_from(t).unwrap_or(i64::MAX)
    }

    /// The next threshold not reached yet, with its business time.
    fn next_threshold(&self) -> Option<(i32, i64)> {
        if self.target <= 0 {
            return None;
        }
        self.thresholds
            .iter()
            .copied()
            .find(|p| {
                if *p == 100 {
                    !self.breached
                } else {
                    !self.reached.contains(p)
                }
            })
            .map(|p| (p, self.threshold(p)))
    }

    /// The planned breach instant (or the past one), when running.
    fn breach_time(&self) -> Option<i64> {
        if self.state != TaskSlaState::InProgress {
            return None;
        }
        if self.breached {
            return self.breach_instant;
        }
        (self.target > 0)
            .then(|| {
                self.calendar
                    .add(self.mark, self.target.saturating_sub(self.elapsed))
            })
            .filter(|at| *at != NEVER)
    }

    /// Counts time up to `to`, firing the thresholds it crosses at their instant.
    fn advance(&mut self, to: i64) {
        if to <= self.mark {
            return;
        }
        match self.state {
            TaskSlaState::InProgress => {
                while let Some((p, at_elapsed)) = self.next_threshold() {
                    let need = at_elapsed.saturating_sub(self.elapsed);
                    let at = self.calendar.add(self.mark, need);
                    if at > to {
                        break;
                    }
                    self.elapsed = self.elapsed.max(at_elapsed);
                    self.mark = self.mark.max(at);
                    self.fire(p, at);
                }
                self.elapsed = self
                    .elapsed
                    .saturating_add(self.calendar.measure(self.mark, to));
            }
            TaskSlaState::Paused => {
                self.paused = self
                    .paused
                    .saturating_add(self.calendar.measure(self.mark, to));
            }
            _ => {}
        }
        self.mark = to;
    }

    fn fire(&mut self, p: i32, at: i64) {
        let before = self.state;
        let listed = self.warnings.contains(&p);
        if listed {
            self.reached.push(p);
        }
        let (effect, note) = if p == 100 {
            self.breached = true;
            self.breach_instant = Some(at);
            (
                ClockEffect::Breached,
                "breached: the target was reached".to_owned(),
            )
        } else {
            (
                ClockEffect::Warned,
                format!("warning: {p}% of the target reached"),
            )
        };
        self.push(Entry {
            time: at,
            event: None,
            condition: ConditionKind::None,
            expression: String::new(),
            effect,
            warning: if listed || p == 100 { p } else { 0 },
            before,
            note,
        });
    }

    fn push(&mut self, entry: Entry<'_>) {
        let event = entry.event;
        self.timeline.push(pb::TimelineEntry {
            time: Some(timestamp(entry.time)),
            trigger: if event.is_some() {
                TimelineTrigger::TicketEvent
            } else {
                TimelineTrigger::Timer
            } as i32,
            event_id: event.map(|e| e.id.clone()).unwrap_or_default(),
            event_type: event.map(|e| e.event_type.clone()).unwrap_or_default(),
            event_sequence: event.map_or(0, |e| e.sequence),
            ticket_changes: event.map(|e| e.changes.clone()).unwrap_or_default(),
            condition: entry.condition as i32,
            condition_expression: entry.expression,
            effect: entry.effect as i32,
            warning_percentage: entry.warning,
            state_before: entry.before as i32,
            state_after: self.state as i32,
            elapsed: Some(duration(self.elapsed)),
            paused_duration: Some(duration(self.paused)),
            breach_time: self.breach_time().map(timestamp),
            sla_definition_version: self.def.version,
            calendar_version: 0,
            note: entry.note,
        });
    }

    fn holds(&self, condition: &Condition, event: &TicketEvent) -> bool {
        condition.holds(self.c.schema, &event.snapshot)
    }

    /// Attaches at `time` when the selection matches this event's snapshot.
    fn attach(&mut self, time: i64, event: &'a TicketEvent, history: &[(i64, &'a TicketEvent)]) {
        self.last = Some(event);
        if !self.holds(&self.c.selection, event) {
            return;
        }
        self.attached = true;
        self.mark = time;
        self.reset_held = !self.c.reset.is_empty() && self.holds(&self.c.reset, event);
        self.after_selection(time, event, Some(history));
    }

    fn on_event(&mut self, time: i64, event: &'a TicketEvent) {
        self.advance(time);
        if self.is_final() {
            return;
        }
        self.last = Some(event);
        self.after_selection(time, event, None);
    }

    /// Steps 2 to 4 (see the module docs) for one event. `history` is given on
    /// the attaching event: the events before it, for a retroactive start.
    fn after_selection(
        &mut self,
        time: i64,
        event: &'a TicketEvent,
        history: Option<&[(i64, &'a TicketEvent)]>,
    ) {
        let before_count = self.timeline.len();
        let pause_now = !self.c.pause.is_empty() && self.holds(&self.c.pause, event);
        let reset_now = !self.c.reset.is_empty() && self.holds(&self.c.reset, event);
        let entry = |condition, expression: &str, effect, before, note: String| Entry {
            time,
            event: Some(event),
            condition,
            expression: expression.to_owned(),
            effect,
            warning: 0,
            before,
            note,
        };
        if !self.c.selection.is_empty() && !self.holds(&self.c.selection, event) {
            let before = self.cancel(time, SELECTION_NO_LONGER_MATCHES);
            let e = entry(
                ConditionKind::Selection,
                &self.c.selection.text,
                ClockEffect::Canceled,
                before,
                format!(
                    "canceled: the ticket no longer matches {}",
                    self.c.selection.text
                ),
            );
            self.push(e);
            return;
        }
        if !self.c.cancel.is_empty() && self.holds(&self.c.cancel, event) {
            let before = self.cancel(time, CANCEL_CONDITION);
            let e = entry(
                ConditionKind::Cancel,
                &self.c.cancel.text,
                ClockEffect::Canceled,
                before,
                format!("canceled: {} matched", self.c.cancel.text),
            );
            self.push(e);
            return;
        }
        let mut just_started = false;
        if self.state == TaskSlaState::Unspecified && self.holds(&self.c.start, event) {
            just_started = true;
            self.start(time, event, history);
        }
        if !self.started() {
            self.pause_held = pause_now;
            self.reset_held = reset_now;
            self.none_entry(before_count, time, event);
            return;
        }
        if !self.c.stop.is_empty() && self.holds(&self.c.stop, event) {
            let before = self.state;
            self.advance(time);
            self.stop_time = Some(time);
            self.pause_time = None;
            let (effect, note) = if self.breached {
                self.state = TaskSlaState::Breached;
                (
                    ClockEffect::StoppedBreached,
                    format!("stopped after the target: {} matched", self.c.stop.text),
                )
            } else {
                self.state = TaskSlaState::Achieved;
                (
                    ClockEffect::Achieved,
                    format!("achieved: {} matched within the target", self.c.stop.text),
                )
            };
            let e = entry(ConditionKind::Stop, &self.c.stop.text, effect, before, note);
            self.push(e);
            return;
        }
        if !just_started && reset_now && !self.reset_held {
            let before = self.state;
            self.state = TaskSlaState::InProgress;
            self.elapsed = 0;
            self.paused = 0;
            self.breached = false;
            self.breach_instant = None;
            self.reached.clear();
            self.reset_count += 1;
            self.start_time = Some(time);
            self.pause_time = None;
            self.mark = time;
            // The pause condition is looked at afresh on the new run.
            self.pause_held = false;
            let e = entry(
                ConditionKind::Reset,
                &self.c.reset.text,
                ClockEffect::Reset,
                before,
                format!("reset to zero: {} matched", self.c.reset.text),
            );
            self.push(e);
        }
        self.reset_held = reset_now;
        let mut just_paused = false;
        if self.state == TaskSlaState::InProgress && pause_now && !self.pause_held {
            just_paused = true;
            let before = self.state;
            self.state = TaskSlaState::Paused;
            self.pause_time = Some(time);
            let e = entry(
                ConditionKind::Pause,
                &self.c.pause.text,
                ClockEffect::Paused,
                before,
                format!("paused: {} matched", self.c.pause.text),
            );
            self.push(e);
        }
        if self.state == TaskSlaState::Paused && !just_paused {
            let resume = if self.c.resume.is_empty() {
                !pause_now
            } else {
                self.holds(&self.c.resume, event)
            };
            if resume {
                self.resume(time, Some(event));
            }
        }
        self.pause_held = pause_now;
        self.none_entry(before_count, time, event);
    }

    /// An entry saying the event changed nothing, when it did not.
    fn none_entry(&mut self, before_count: usize, time: i64, event: &'a TicketEvent) {
        if self.timeline.len() == before_count {
            let before = self.state;
            self.push(Entry {
                time,
                event: Some(event),
                condition: ConditionKind::None,
                expression: String::new(),
                effect: ClockEffect::None,
                warning: 0,
                before,
                note: format!("no condition changed; {}", state_name(self.state)),
            });
        }
    }

    fn resume(&mut self, time: i64, event: Option<&'a TicketEvent>) {
        let before = self.state;
        self.state = TaskSlaState::InProgress;
        self.pause_time = None;
        let (condition, expression, note) = if self.c.resume.is_empty() {
            (
                ConditionKind::Pause,
                self.c.pause.text.clone(),
                format!("resumed: {} no longer holds", self.c.pause.text),
            )
        } else {
            (
                ConditionKind::Resume,
                self.c.resume.text.clone(),
                format!("resumed: {} matched", self.c.resume.text),
            )
        };
        self.push(Entry {
            time,
            event,
            condition,
            expression,
            effect: ClockEffect::Resumed,
            warning: 0,
            before,
            note,
        });
    }

    fn cancel(&mut self, time: i64, reason: &str) -> TaskSlaState {
        let before = self.state;
        self.advance(time);
        self.state = TaskSlaState::Canceled;
        self.cancel_reason = reason.to_owned();
        self.stop_time = Some(time);
        self.pause_time = None;
        before
    }

    /// Starts the clock on `event` at `time`, or retroactively.
    fn start(
        &mut self,
        time: i64,
        event: &'a TicketEvent,
        history: Option<&[(i64, &'a TicketEvent)]>,
    ) {
        let retro = match (history, self.c.retroactive_start_field) {
            (Some(history), Some(field)) => {
                let at = event.snapshot.number(field);
                (at > 0 && at < time).then_some((field, at, history))
            }
            _ => None,
        };
        let (start_time, condition, expression) = if self.c.start.is_empty() {
            (
                time,
                ConditionKind::Selection,
                self.c.selection.text.clone(),
            )
        } else {
            (time, ConditionKind::Start, self.c.start.text.clone())
        };
        let Some((field, at, history)) = retro else {
            // A pause condition already true when the clock starts pauses it.
            self.pause_held = false;
            self.state = TaskSlaState::InProgress;
            self.start_time = Some(start_time);
            self.mark = start_time;
            let note = if expression.is_empty() {
                "started on attachment".to_owned()
            } else {
                format!("started: {expression} matched")
            };
            self.push(Entry {
                time,
                event: Some(event),
                condition,
                expression,
                effect: ClockEffect::Started,
                warning: 0,
                before: TaskSlaState::Unspecified,
                note,
            });
            return;
        };
        self.state = TaskSlaState::InProgress;
        self.start_time = Some(at);
        self.mark = at;
        self.push(Entry {
            time: at,
            event: Some(event),
            condition,
            expression,
            effect: ClockEffect::Started,
            warning: 0,
            before: TaskSlaState::Unspecified,
            note: format!("started retroactively at the ticket's {field}"),
        });
        if !self.def.retroactive_pause || self.c.pause.is_empty() {
            self.pause_held = false;
            self.advance(time);
            return;
        }
        // The pause condition as it held at the start, then at each later event.
        let held_at_start = history
            .iter()
            .rev()
            .find(|(t, _)| *t <= at)
            .is_some_and(|(_, e)| self.holds(&self.c.pause, e));
        self.pause_held = false;
        self.retro_pause(at, held_at_start, None);
        for (t, e) in history.iter().filter(|(t, _)| *t > at && *t < time) {
            self.advance(*t);
            let held = self.holds(&self.c.pause, e);
            self.retro_pause(*t, held, Some(e));
        }
        self.advance(time);
    }

    /// Retroactive pause bookkeeping for one past event (resumes when the
    /// pause condition turned false: the resume condition is not replayed).
    fn retro_pause(&mut self, time: i64, held: bool, event: Option<&'a TicketEvent>) {
        if self.state == TaskSlaState::InProgress && held && !self.pause_held {
            let before = self.state;
            self.state = TaskSlaState::Paused;
            self.pause_time = Some(time);
            self.push(Entry {
                time,
                event,
                condition: ConditionKind::Pause,
                expression: self.c.pause.text.clone(),
                effect: ClockEffect::Paused,
                warning: 0,
                before,
                note: format!("paused retroactively: {} held", self.c.pause.text),
            });
        } else if self.state == TaskSlaState::Paused && !held {
            self.resume(time, event);
            if let Some(last) = self.timeline.last_mut() {
                last.note = format!(
                    "resumed retroactively: {} no longer held",
                    self.c.pause.text
                );
            }
        }
        self.pause_held = held;
    }

    fn finish(mut self, now: i64) -> Replay {
        if self.attached && !self.is_final() {
            self.advance(now);
        }
        let compute_time = if self.is_final() {
            self.mark
        } else {
            now.max(self.mark)
        };
        let next_deadline = if self.state == TaskSlaState::InProgress {
            self.next_threshold().and_then(|(p, at_elapsed)| {
                let at = self
                    .calendar
                    .add(self.mark, at_elapsed.saturating_sub(self.elapsed));
                (at != NEVER).then_some(if p == 100 {
                    Deadline::Breach { at }
                } else {
                    Deadline::Warning { at, percentage: p }
                })
            })
        } else {
            None
        };
        let percentage = if self.target > 0 {
            self.elapsed as f64 * 100.0 / self.target as f64
        } else {
            0.0
        };
        let wall_end = self.stop_time.unwrap_or(compute_time);
        let snapshot = self.last.map(|e| &e.snapshot);
        let def = self.def;
        let task_sla = pb::TaskSla {
            ticket: self.last.map(|e| e.ticket.clone()).unwrap_or_default(),
            sla_definition: def.name.clone(),
            sla_definition_version: def.version,
            display_name: def.display_name.clone(),
            kind: def.kind,
            calendar: def.calendar.clone(),
            time_zone: self.calendar.zone().to_owned(),
            target: def.target,
            state: self.state as i32,
            breached: self.breached,
            elapsed: Some(duration(self.elapsed)),
            paused_duration: Some(duration(self.paused)),
            remaining: Some(duration(self.target.saturating_sub(self.elapsed))),
            percentage,
            wall_elapsed: self
                .start_time
                .map(|s| duration(wall_end.saturating_sub(s).max(0))),
            start_time: self.start_time.map(timestamp),
            breach_time: self.breach_time().map(timestamp),
            stop_time: self.stop_time.map(timestamp),
            pause_time: self.pause_time.map(timestamp),
            cancel_reason: self.cancel_reason.clone(),
            reset_count: self.reset_count,
            warnings_reached: self.reached.clone(),
            assignment_group: snapshot
                .map(|s| s.text("assignment_group").to_owned())
                .unwrap_or_default(),
            priority: snapshot
                .map(|s| i32::try_from(s.number("priority")).unwrap_or(0))
                .unwrap_or(0),
            service: snapshot
                .map(|s| s.text("service").to_owned())
                .unwrap_or_default(),
            ticket_sequence: self.last.map_or(0, |e| e.sequence),
            compute_time: Some(timestamp(compute_time)),
            ..pb::TaskSla::default()
        };
        Replay {
            task_sla,
            timeline: self.timeline,
            next_deadline,
        }
    }
}

#[cfg(test)]
#[path = "clock/tests.rs"]
mod tests;
