//! Checks a calendar as the API receives it, naming every bad field.

use std::collections::HashMap;

use itsm_proto::itsm::common::v1::{Date, DayOfWeek, TimeOfDay};
use itsm_proto::itsm::sla::v1::{Calendar, DaySpan};

use super::{CalendarError, SECONDS_PER_DAY, Span};

/// Checks a calendar as the API receives it (time zone known to the tz database, spans
/// start < end within 00:00..24:00 with minutes/seconds valid, no overlapping spans on a
/// day, at least one business second in the week, holidays with valid dates and their
/// open spans valid and non-overlapping, no duplicate holiday dates). Returns every
/// problem, fields named under `prefix` ("calendar").
pub fn validate(calendar: &Calendar, prefix: &str) -> Vec<CalendarError> {
    let mut errors = Vec::new();
    if calendar.time_zone.is_empty() {
        errors.push(error(format!("{prefix}.time_zone"), "is required"));
    } else if jiff::tz::TimeZone::get(&calendar.time_zone).is_err() {
        errors.push(error(
            format!("{prefix}.time_zone"),
            &format!("unknown time zone {:?}", calendar.time_zone),
        ));
    }

    // Valid spans per weekday (0 = Monday), with the index of the span they came from.
    let mut days: [Vec<(Span, usize)>; 7] = Default::default();
    for (index, weekly) in calendar.weekly_spans.iter().enumerate() {
        let field = format!("{prefix}.weekly_spans[{index}]");
        let day = match DayOfWeek::try_from(weekly.day) {
            Ok(DayOfWeek::Unspecified) | Err(_) => {
                errors.push(error(
                    format!("{field}.day"),
                    "must be a day of the week (MONDAY..SUNDAY)",
                ));
                None
            }
            Ok(day) => Some(day as usize - 1),
        };
        let span = check_span(weekly.span.as_ref(), &format!("{field}.span"), &mut errors);
        if let (Some(day), Some(span)) = (day, span) {
            days[day].push((span, index));
        }
    }
    for spans in &mut days {
        overlaps(spans, &format!("{prefix}.weekly_spans"), &mut errors);
    }
    let weekly_empty = days.iter().all(Vec::is_empty);
    if weekly_empty
        && !errors
            .iter()
            .any(|e| e.field.starts_with(&format!("{prefix}.weekly_spans")))
    {
        errors.push(error(
            format!("{prefix}.weekly_spans"),
            "no business time in the week: give at least one span (or use no calendar for 24x7)",
        ));
    }

    let mut seen: HashMap<jiff::civil::Date, usize> = HashMap::new();
    for (index, holiday) in calendar.holidays.iter().enumerate() {
        let field = format!("{prefix}.holidays[{index}]");
        match holiday.date.as_ref() {
            None => errors.push(error(format!("{field}.date"), "is required")),
            Some(date) => match civil_date(date) {
                None => errors.push(error(
                    format!("{field}.date"),
                    &format!(
                        "{:04}-{:02}-{:02} is not a valid date",
                        date.year, date.month, date.day
                    ),
                )),
                Some(date) => {
                    if let Some(first) = seen.get(&date) {
                        errors.push(error(
                            format!("{field}.date"),
                            &format!("{date} is already {prefix}.holidays[{first}]"),
                        ));
                    } else {
                        seen.insert(date, index);
                    }
                }
            },
        }
        let mut spans = Vec::new();
        for (span_index, span) in holiday.open_spans.iter().enumerate() {
            let span_field = format!("{field}.open_spans[{span_index}]");
            if let Some(span) = check_span(Some(span), &span_field, &mut errors) {
                spans.push((span, span_index));
            }
        }
        overlaps(&mut spans, &format!("{field}.open_spans"), &mut errors);
    }
    errors
}

/// A proto date as a civil date, when it is one (years 1..9999).
pub(super) fn civil_date(date: &Date) -> Option<jiff::civil::Date> {
    if !(1..=9999).contains(&date.year) {
        return None;
    }
    let month = i8::try_from(date.month).ok()?;
    let day = i8::try_from(date.day).ok()?;
    let year = i16::try_from(date.year).ok()?;
    jiff::civil::Date::new(year, month, day).ok()
}

/// Seconds since midnight, when `time` is a valid time of day (24:00:00 allowed).
pub(super) fn seconds_of_day(time: &TimeOfDay) -> Option<i32> {
    let valid = (0..=24).contains(&time.hours)
        && (0..=59).contains(&time.minutes)
        && (0..=59).contains(&time.seconds)
        && (time.hours < 24 || (time.minutes == 0 && time.seconds == 0));
    valid.then(|| time.hours * 3600 + time.minutes * 60 + time.seconds)
}

/// The span as seconds of the day, or its problems pushed to `errors`.
pub(super) fn check_span(
    span: Option<&DaySpan>,
    field: &str,
    errors: &mut Vec<CalendarError>,
) -> Option<Span> {
    let Some(span) = span else {
        errors.push(error(field.to_string(), "is required"));
        return None;
    };
    let mut bound = |time: Option<&TimeOfDay>, name: &str| match time {
        None => {
            errors.push(error(format!("{field}.{name}"), "is required"));
            None
        }
        Some(time) => {
            let seconds = seconds_of_day(time);
            if seconds.is_none() {
                errors.push(error(
                    format!("{field}.{name}"),
                    &format!(
                        "{:02}:{:02}:{:02} is not a time of day (00:00:00..24:00:00)",
                        time.hours, time.minutes, time.seconds
                    ),
                ));
            }
            seconds
        }
    };
    let start = bound(span.start.as_ref(), "start");
    let end = bound(span.end.as_ref(), "end");
    let (start, end) = (start?, end?);
    if start >= end || start >= SECONDS_PER_DAY {
        errors.push(error(
            field.to_string(),
            "start must be before end (a span never crosses midnight: split it)",
        ));
        return None;
    }
    Some((start, end))
}

/// Reports each span that overlaps an earlier one of the same day.
fn overlaps(spans: &mut [(Span, usize)], list: &str, errors: &mut Vec<CalendarError>) {
    spans.sort();
    // The span reaching furthest so far: a later span starting before its end overlaps it.
    let mut reach: Option<(i32, usize)> = None;
    for &((start, end), index) in spans.iter() {
        if let Some((reach_end, reach_index)) = reach {
            if start < reach_end {
                let (a, b) = (reach_index.min(index), reach_index.max(index));
                errors.push(error(
                    format!("{list}[{b}]"),
                    &format!("overlaps {list}[{a}] on the same day"),
                ));
            }
            if end > reach_end {
                reach = Some((end, index));
            }
        } else {
            reach = Some((end, index));
        }
    }
}

fn error(field: String, description: &str) -> CalendarError {
    CalendarError {
        field,
        description: description.to_string(),
    }
}
