//! What the reports compute beyond SQL: the time buckets of a compliance
//! report, the tallies of its rows, and where a breached clock's time went.
//!
//! Buckets are cut at local midnight in the report's zone (days; ISO weeks
//! from Monday; months; quarters), so a day of a DST change is 23 or 25
//! hours long and a month is the month a reader of that zone sees.
//!
//! The cause of a breach ([`analyse`]) is read from the task SLA's timeline
//! (which intervals the clock ran, which it was paused) and the ticket's
//! stored events (its state and assignment group at every instant), measured
//! with the task SLA's compiled calendar: the per-state and per-group shares
//! add up to the business time the clock counted since its last reset.

use std::collections::BTreeMap;

use itsm_proto::itsm::sla::v1 as pb;
use itsm_store::query::{FieldKind, Schema};
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use pb::{ClockEffect, TaskSlaState};

use crate::calendar::BusinessCalendar;
use crate::tickets::{self, TicketEvent, TicketSnapshot};

/// The most buckets a compliance report cuts its period into.
pub const MAX_BUCKETS: usize = 1_000;

/// The length of a report's time buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interval {
    Day,
    /// ISO weeks: Monday to Sunday.
    Week,
    Month,
    /// January, April, July and October to the next.
    Quarter,
}

impl Interval {
    /// The interval a request names; `None` for an unknown number.
    /// Unspecified is the default, a month.
    pub fn of(interval: i32) -> Option<Self> {
        match pb::ReportInterval::try_from(interval).ok()? {
            pb::ReportInterval::Unspecified | pb::ReportInterval::Month => Some(Self::Month),
            pb::ReportInterval::Day => Some(Self::Day),
            pb::ReportInterval::Week => Some(Self::Week),
            pb::ReportInterval::Quarter => Some(Self::Quarter),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Day => "day",
            Self::Week => "week",
            Self::Month => "month",
            Self::Quarter => "quarter",
        }
    }

    /// The first date of the bucket `date` is in.
    fn floor(self, date: Date) -> Date {
        match self {
            Self::Day => date,
            Self::Week => {
                let back = i64::from(date.weekday().to_monday_zero_offset());
                date.checked_sub(back.days()).unwrap_or(date)
            }
            Self::Month => date.first_of_month(),
            Self::Quarter => {
                let month = (date.month() - 1) / 3 * 3 + 1;
                Date::new(date.year(), month, 1).unwrap_or(date)
            }
        }
    }

    /// The first date of the bucket after the one starting on `first`.
    fn next(self, first: Date) -> Option<Date> {
        match self {
            Self::Day => first.checked_add(1.day()).ok(),
            Self::Week => first.checked_add(1.week()).ok(),
            Self::Month => first.checked_add(1.month()).ok(),
            Self::Quarter => first.checked_add(3.months()).ok(),
        }
    }
}

/// Why a period cannot be cut into buckets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BucketError {
    /// More than [`MAX_BUCKETS`] of them.
    TooMany { interval: &'static str },
    /// An instant the zone's calendar cannot represent.
    OutOfRange,
}

impl std::fmt::Display for BucketError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TooMany { interval } => write!(
                f,
                "spans more than {MAX_BUCKETS} {interval}s; shorten the period or group by a longer interval"
            ),
            Self::OutOfRange => f.write_str("is outside the range of dates reports can cut"),
        }
    }
}

/// The instant local midnight starts `date` in `tz` (after the gap when
/// midnight does not exist that day; the first one when it repeats).
fn start_of(date: Date, tz: &TimeZone) -> Result<i64, BucketError> {
    let zoned = date
        .to_zoned(tz.clone())
        .map_err(|_| BucketError::OutOfRange)?;
    Ok(zoned.timestamp().as_microsecond())
}

/// The bucket boundaries of [start, end) (microseconds, start < end): start,
/// every local start of an `interval` strictly inside, end. Bucket `i` is
/// `[b[i], b[i + 1])`: the first and last are clipped to the period.
pub fn boundaries(
    start: i64,
    end: i64,
    interval: Interval,
    tz: &TimeZone,
) -> Result<Vec<i64>, BucketError> {
    let first = Timestamp::from_microsecond(start).map_err(|_| BucketError::OutOfRange)?;
    let mut date = interval.floor(first.to_zoned(tz.clone()).date());
    let mut out = vec![start];
    loop {
        date = interval.next(date).ok_or(BucketError::OutOfRange)?;
        let at = start_of(date, tz)?;
        if at >= end {
            break;
        }
        // A zone can (rarely) skip a whole local day; never go backwards.
        if at > *out.last().unwrap_or(&start) {
            out.push(at);
        }
        if out.len() > MAX_BUCKETS {
            return Err(BucketError::TooMany {
                interval: interval.name(),
            });
        }
    }
    out.push(end);
    Ok(out)
}

/// The counts of one compliance row, summed in SQL per group and here over
/// groups.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Tally {
    pub total: i64,
    pub met: i64,
    pub breached: i64,
    /// Sum of elapsed business time, microseconds.
    pub elapsed: f64,
    /// Sum of elapsed / target x 100 over the task SLAs with a target.
    pub percentage: f64,
    /// How many task SLAs have a target (the mean percentage's denominator).
    pub with_target: i64,
}

impl Tally {
    /// Adds another group's counts.
    pub fn add(&mut self, other: &Tally) {
        self.total += other.total;
        self.met += other.met;
        self.breached += other.breached;
        self.elapsed += other.elapsed;
        self.percentage += other.percentage;
        self.with_target += other.with_target;
    }

    /// The counts and means of a row (0 where nothing was counted).
    pub fn fill(&self, row: &mut pb::ComplianceRow) {
        row.total_count = self.total;
        row.met_count = self.met;
        row.breached_count = self.breached;
        row.percentage_met = if self.total > 0 {
            self.met as f64 * 100.0 / self.total as f64
        } else {
            0.0
        };
        let mean_elapsed = if self.total > 0 {
            (self.elapsed / self.total as f64).round() as i64
        } else {
            0
        };
        row.mean_elapsed = Some(crate::clock::duration(mean_elapsed));
        row.mean_percentage = if self.with_target > 0 {
            self.percentage / self.with_target as f64
        } else {
            0.0
        };
    }
}

/// One pause of a breached clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pause {
    pub start: i64,
    /// `None` while it lasts.
    pub end: Option<i64>,
    /// Business time it covered (up to `now` while it lasts).
    pub duration: i64,
    pub condition_expression: String,
    pub ticket_state: String,
    pub hold_reason: String,
}

/// Where a breached clock's time went.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cause {
    /// When the target was reached (since the last reset); `None` if never.
    pub breach_time: Option<i64>,
    /// Ticket state and assignment group while the clock ran into the breach.
    pub ticket_state: String,
    pub assignment_group: String,
    /// Business time counted per value, largest first (ties by value).
    pub time_by_state: Vec<(String, i64)>,
    pub time_by_group: Vec<(String, i64)>,
    /// Oldest first.
    pub pauses: Vec<Pause>,
}

fn effect(entry: &pb::TimelineEntry) -> ClockEffect {
    ClockEffect::try_from(entry.effect).unwrap_or(ClockEffect::Unspecified)
}

fn state_after(entry: &pb::TimelineEntry) -> TaskSlaState {
    TaskSlaState::try_from(entry.state_after).unwrap_or(TaskSlaState::Unspecified)
}

fn entry_time(entry: &pb::TimelineEntry) -> i64 {
    entry.time.as_ref().map_or(0, tickets::micros)
}

/// The entries of the clock's current run: after its last reset (what the
/// target is measured against now).
fn current_run(timeline: &[pb::TimelineEntry]) -> &[pb::TimelineEntry] {
    let from = timeline
        .iter()
        .rposition(|e| effect(e) == ClockEffect::Reset)
        .unwrap_or(0);
    &timeline[from..]
}

/// The instant the clock reached its target in its current run (the last
/// BREACHED timeline entry after the last reset), 0 when it has not: the
/// breach instant of a task SLA, kept through pauses and after the stop.
pub fn breach_instant(timeline: &[pb::TimelineEntry]) -> i64 {
    current_run(timeline)
        .iter()
        .rev()
        .find(|e| effect(e) == ClockEffect::Breached)
        .map_or(0, entry_time)
}

/// The name of an enum field's value in `schema` ("ON_HOLD"); "" for 0 and
/// the number for a value the schema does not list.
fn enum_name(schema: &Schema, field: &str, snapshot: &TicketSnapshot) -> String {
    let value = snapshot.number(field);
    if value == 0 {
        return String::new();
    }
    match schema.field(field).map(|f| f.kind) {
        Some(FieldKind::Enum(values)) => values
            .iter()
            .find(|(_, n)| *n == value)
            .map_or_else(|| value.to_string(), |(name, _)| (*name).to_owned()),
        _ => value.to_string(),
    }
}

/// The ticket's history as replay sees it: sequence order, duplicates
/// dropped, times never going backwards.
fn timed(events: &[TicketEvent]) -> Vec<(i64, &TicketEvent)> {
    let mut sorted: Vec<&TicketEvent> = events.iter().collect();
    sorted.sort_by(|a, b| a.sequence.cmp(&b.sequence).then_with(|| a.id.cmp(&b.id)));
    sorted.dedup_by_key(|e| e.sequence);
    let mut last = i64::MIN;
    sorted
        .into_iter()
        .map(|e| {
            last = last.max(e.time);
            (last, e)
        })
        .collect()
}

/// The snapshot in force at `at` (the last event at or before it; before
/// the first event, the first one's), or just before it with `strictly`.
fn snapshot_at<'e>(
    history: &[(i64, &'e TicketEvent)],
    at: i64,
    strictly: bool,
) -> Option<&'e TicketSnapshot> {
    let n = history.partition_point(|(t, _)| if strictly { *t < at } else { *t <= at });
    history.get(n.saturating_sub(1)).map(|(_, e)| &e.snapshot)
}

/// Adds `micros` to `value`'s share.
fn credit(shares: &mut BTreeMap<String, i64>, value: String, micros: i64) {
    if micros > 0 {
        *shares.entry(value).or_default() += micros;
    }
}

fn largest_first(shares: BTreeMap<String, i64>) -> Vec<(String, i64)> {
    let mut out: Vec<(String, i64)> = shares.into_iter().collect();
    out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    out
}

/// Where `task_sla`'s time went, from its `timeline` and its ticket's
/// `events`, measured with `calendar`; a clock still running or paused is
/// counted up to `now`. `schema` names the ticket's enum values.
pub fn analyse(
    task_sla: &pb::TaskSla,
    timeline: &[pb::TimelineEntry],
    events: &[TicketEvent],
    schema: &Schema,
    calendar: &BusinessCalendar,
    now: i64,
) -> Cause {
    let history = timed(events);
    let run = current_run(timeline);
    let final_state = matches!(
        TaskSlaState::try_from(task_sla.state).unwrap_or(TaskSlaState::Unspecified),
        TaskSlaState::Achieved | TaskSlaState::Breached | TaskSlaState::Canceled
    );
    let open_end = if final_state {
        task_sla.stop_time.as_ref().map_or(now, tickets::micros)
    } else {
        now
    };

    // The intervals the clock ran, and its pauses.
    let mut running: Vec<(i64, i64)> = Vec::new();
    let mut pauses = Vec::new();
    let mut run_from: Option<i64> = None;
    let mut pause_from: Option<(i64, &pb::TimelineEntry)> = None;
    for entry in run {
        let time = entry_time(entry);
        let state = state_after(entry);
        match (run_from, state == TaskSlaState::InProgress) {
            (None, true) => run_from = Some(time),
            (Some(from), false) => {
                running.push((from, time));
                run_from = None;
            }
            _ => {}
        }
        match (pause_from, state == TaskSlaState::Paused) {
            (None, true) => pause_from = Some((time, entry)),
            (Some((from, why)), false) => {
                pauses.push(pause(&history, schema, calendar, from, Some(time), why));
                pause_from = None;
            }
            _ => {}
        }
    }
    if let Some(from) = run_from {
        running.push((from, open_end.max(from)));
    }
    if let Some((from, why)) = pause_from {
        // Still paused (a stop or cancel would have ended it).
        let mut p = pause(&history, schema, calendar, from, None, why);
        p.duration = calendar.measure(from, now);
        pauses.push(p);
    }

    // Each running interval cut where the ticket changed.
    let mut by_state = BTreeMap::new();
    let mut by_group = BTreeMap::new();
    for (from, to) in running {
        let mut at = from;
        while at < to {
            let later = history.partition_point(|(t, _)| *t <= at);
            let next = history.get(later).map_or(to, |(t, _)| (*t).min(to));
            let business = calendar.measure(at, next);
            if let Some(snapshot) = snapshot_at(&history, at, false) {
                credit(
                    &mut by_state,
                    enum_name(schema, "state", snapshot),
                    business,
                );
                credit(
                    &mut by_group,
                    snapshot.text("assignment_group").to_owned(),
                    business,
                );
            }
            at = next;
        }
    }

    let breach = breach_instant(timeline);
    let breach_time = (breach > 0).then_some(breach);
    let at_breach = breach_time.and_then(|b| snapshot_at(&history, b, true));
    Cause {
        breach_time,
        ticket_state: at_breach
            .map(|s| enum_name(schema, "state", s))
            .unwrap_or_default(),
        assignment_group: at_breach
            .map(|s| s.text("assignment_group").to_owned())
            .unwrap_or_default(),
        time_by_state: largest_first(by_state),
        time_by_group: largest_first(by_group),
        pauses,
    }
}

/// The pause that `why` started at `from`, ended at `end`.
fn pause(
    history: &[(i64, &TicketEvent)],
    schema: &Schema,
    calendar: &BusinessCalendar,
    from: i64,
    end: Option<i64>,
    why: &pb::TimelineEntry,
) -> Pause {
    // The event that paused it; a retroactive pause at the start has none.
    let snapshot = history
        .iter()
        .find(|(_, e)| why.event_sequence > 0 && e.sequence == why.event_sequence)
        .map(|(_, e)| &e.snapshot)
        .or_else(|| snapshot_at(history, from, false));
    Pause {
        start: from,
        end,
        duration: end.map_or(0, |end| calendar.measure(from, end)),
        condition_expression: why.condition_expression.clone(),
        ticket_state: snapshot
            .map(|s| enum_name(schema, "state", s))
            .unwrap_or_default(),
        hold_reason: snapshot
            .map(|s| enum_name(schema, "hold_reason", s))
            .unwrap_or_default(),
    }
}

#[cfg(test)]
#[path = "reports/tests.rs"]
mod tests;
