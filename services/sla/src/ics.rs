//! iCalendar (RFC 5545) holiday import: the VEVENTs of a file as calendar holidays.
//!
//! All-day events close their days (a multi-day event one holiday per day). A timed event
//! closes part of a day: it becomes a holiday whose `open_spans` are the whole day
//! (00:00-24:00) minus the event. The parser does not know the calendar's weekly hours, so
//! the importer narrows those spans to the hours of that weekday with
//! [`IcsHolidays::fit_to`] (without it, the rest of the day would count as open).
//! Several events on one date make one holiday (the union of what they close). Recurring
//! events (RRULE FREQ=YEARLY, with BYMONTH, BYMONTHDAY or an ordinal BYDAY such as 4TH;
//! DAILY and WEEKLY with COUNT or UNTIL) are expanded up to `expand_until`, minus EXDATEs.
//! Anything else an event asks for is a warning naming its UID, never an error.

mod lines;
mod rrule;

use std::collections::BTreeMap;

use itsm_proto::itsm::common::v1::{Date, TimeOfDay};
use itsm_proto::itsm::sla::v1::{Calendar, DaySpan, Holiday};
use jiff::civil::{self, DateTime};
use jiff::tz::TimeZone;

use lines::Line;

/// Seconds in a day: spans are [start, end) seconds since local midnight.
const DAY: i32 = 86_400;

/// The holidays an iCalendar file describes, sorted by date, and what was ignored.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IcsHolidays {
    pub holidays: Vec<Holiday>,
    pub warnings: Vec<String>,
}

/// The holidays an iCalendar (RFC 5545) file describes: all-day VEVENTs become closed
/// days (multi-day events one holiday per day), timed VEVENTs a holiday whose open_spans
/// are the day minus the event (see [`IcsHolidays::fit_to`]), RRULE FREQ=YEARLY (and
/// DAILY/WEEKLY with COUNT/UNTIL) expanded up to `expand_until`; origin "ics:<UID>";
/// display_name from SUMMARY. Unsupported or malformed events become warnings
/// ("<UID>: <why>"), never errors; a file that is not iCalendar at all (no
/// BEGIN:VCALENDAR), an invalid `expand_until` or an unknown `calendar_zone` is an Err
/// naming why. Handles line folding, CRLF/LF, TZID parameters and VALUE=DATE.
pub fn parse_holidays(
    content: &[u8],
    expand_until: Date,
    calendar_zone: &str,
) -> Result<IcsHolidays, String> {
    let text = String::from_utf8_lossy(content);
    let lines = lines::lines(&text);
    if !lines
        .iter()
        .any(|l| l.name == "BEGIN" && l.value.trim().eq_ignore_ascii_case("VCALENDAR"))
    {
        return Err("not an iCalendar file: no BEGIN:VCALENDAR".to_string());
    }
    let until = civil::Date::new(
        i16::try_from(expand_until.year).map_err(|_| "expand_until is not a valid date")?,
        i8::try_from(expand_until.month).map_err(|_| "expand_until is not a valid date")?,
        i8::try_from(expand_until.day).map_err(|_| "expand_until is not a valid date")?,
    )
    .map_err(|_| {
        format!(
            "expand_until {:04}-{:02}-{:02} is not a valid date",
            expand_until.year, expand_until.month, expand_until.day
        )
    })?;
    let zone = TimeZone::get(calendar_zone)
        .map_err(|_| format!("unknown calendar time zone {calendar_zone:?}"))?;

    let mut days: BTreeMap<civil::Date, Closed> = BTreeMap::new();
    let mut warnings = Vec::new();
    for (index, event) in events(&lines).into_iter().enumerate() {
        let uid = event
            .iter()
            .find(|l| l.name == "UID")
            .map(|l| l.value.trim().to_string())
            .filter(|uid| !uid.is_empty());
        let Some(uid) = uid else {
            warnings.push(format!("event {}: no UID, ignored", index + 1));
            continue;
        };
        if let Err(why) = add_event(&event, &uid, until, &zone, &mut days) {
            warnings.push(format!("{uid}: {why}"));
        }
    }
    let holidays = days
        .into_iter()
        .map(|(date, closed)| closed.holiday(date))
        .collect();
    Ok(IcsHolidays { holidays, warnings })
}

impl IcsHolidays {
    /// Narrows the open spans of partly closed days (timed events) to the weekly hours
    /// `calendar` has on that weekday: what the event leaves of the day's business hours.
    /// Closed days stay closed.
    pub fn fit_to(&mut self, calendar: &Calendar) {
        for holiday in &mut self.holidays {
            if holiday.open_spans.is_empty() {
                continue;
            }
            let Some(weekday) = holiday.date.as_ref().and_then(|d| {
                let date = civil::Date::new(
                    i16::try_from(d.year).ok()?,
                    i8::try_from(d.month).ok()?,
                    i8::try_from(d.day).ok()?,
                )
                .ok()?;
                Some(i32::from(date.weekday().to_monday_one_offset()))
            }) else {
                continue;
            };
            let weekly: Vec<(i32, i32)> = calendar
                .weekly_spans
                .iter()
                .filter(|w| w.day == weekday)
                .filter_map(|w| w.span.as_ref().and_then(seconds))
                .collect();
            let open: Vec<(i32, i32)> = holiday.open_spans.iter().filter_map(seconds).collect();
            let mut fitted: Vec<(i32, i32)> = Vec::new();
            for &(ws, we) in &weekly {
                for &(os, oe) in &open {
                    let (s, e) = (ws.max(os), we.min(oe));
                    if s < e {
                        fitted.push((s, e));
                    }
                }
            }
            fitted.sort_unstable();
            holiday.open_spans = fitted.into_iter().map(|(s, e)| day_span(s, e)).collect();
        }
    }
}

/// What the events close on one date.
#[derive(Debug, Default)]
struct Closed {
    all_day: bool,
    /// Closed parts, seconds since midnight.
    parts: Vec<(i32, i32)>,
    uid: String,
    names: Vec<String>,
}

impl Closed {
    fn holiday(mut self, date: civil::Date) -> Holiday {
        self.parts.sort_unstable();
        // The open spans: the day minus the union of the closed parts.
        let mut open = Vec::new();
        let mut cursor = 0;
        if !self.all_day {
            for &(start, end) in &self.parts {
                if start > cursor {
                    open.push(day_span(cursor, start));
                }
                cursor = cursor.max(end);
            }
            if cursor < DAY {
                open.push(day_span(cursor, DAY));
            }
            // Closed from midnight to midnight is closed all day.
            if open.is_empty() {
                self.all_day = true;
            }
        }
        Holiday {
            date: Some(Date {
                year: i32::from(date.year()),
                month: i32::from(date.month()),
                day: i32::from(date.day()),
            }),
            display_name: self.names.join(" / "),
            open_spans: if self.all_day { Vec::new() } else { open },
            origin: format!("ics:{}", self.uid),
        }
    }

    fn name(&mut self, uid: &str, summary: &str) {
        if self.uid.is_empty() {
            self.uid = uid.to_string();
        }
        if !summary.is_empty() && !self.names.iter().any(|n| n == summary) {
            self.names.push(summary.to_string());
        }
    }
}

/// The lines of each VEVENT (those of components nested in it, such as VALARM, left out).
fn events(lines: &[Line]) -> Vec<Vec<Line>> {
    let mut events = Vec::new();
    let mut current: Option<Vec<Line>> = None;
    let mut nested = 0usize;
    for line in lines {
        let component = line.value.trim().to_ascii_uppercase();
        match (line.name.as_str(), current.as_mut()) {
            ("BEGIN", None) if component == "VEVENT" => current = Some(Vec::new()),
            ("BEGIN", Some(_)) => nested += 1,
            ("END", Some(_)) if nested > 0 => nested -= 1,
            ("END", Some(_)) if component == "VEVENT" => {
                if let Some(event) = current.take() {
                    events.push(event);
                }
            }
            (_, Some(event)) if nested == 0 => event.push(line.clone()),
            _ => {}
        }
    }
    events
}

/// When an event starts or ends.
#[derive(Debug, Clone, Copy, PartialEq)]
enum When {
    Date(civil::Date),
    /// A local date-time in the event's zone.
    Time(DateTime),
}

/// Adds what one event closes to `days`, or says why it cannot.
fn add_event(
    event: &[Line],
    uid: &str,
    until: civil::Date,
    calendar_zone: &TimeZone,
    days: &mut BTreeMap<civil::Date, Closed>,
) -> Result<(), String> {
    let get = |name: &str| event.iter().find(|l| l.name == name);
    if get("STATUS").is_some_and(|l| l.value.trim().eq_ignore_ascii_case("CANCELLED")) {
        return Err("cancelled, ignored".to_string());
    }
    if get("RECURRENCE-ID").is_some() {
        return Err(
            "overrides of single occurrences (RECURRENCE-ID) are not supported".to_string(),
        );
    }
    let summary = get("SUMMARY")
        .map(|l| lines::text(&l.value))
        .unwrap_or_default();
    let start_line = get("DTSTART").ok_or("no DTSTART")?;
    let (start, zone) = when(start_line, calendar_zone).map_err(|why| format!("DTSTART {why}"))?;
    let end = match get("DTEND") {
        Some(line) => Some(when(line, calendar_zone).map_err(|why| format!("DTEND {why}"))?),
        None => None,
    };
    let duration = match get("DURATION") {
        Some(line) => Some(
            duration_seconds(line.value.trim())
                .ok_or_else(|| format!("DURATION {:?} is not a duration", line.value.trim()))?,
        ),
        None => None,
    };
    // Excluded occurrences: dates, or instants (a date-time in its own zone).
    let exdates: Vec<(When, Option<jiff::Timestamp>)> = event
        .iter()
        .filter(|l| l.name == "EXDATE")
        .flat_map(|l| {
            l.value
                .split(',')
                .filter_map(|v| {
                    let single = Line {
                        name: l.name.clone(),
                        params: l.params.clone(),
                        value: v.to_string(),
                    };
                    when(&single, calendar_zone).ok().map(|(w, zone)| match w {
                        When::Time(local) => (w, zone.to_timestamp(local).ok()),
                        When::Date(_) => (w, None),
                    })
                })
                .collect::<Vec<_>>()
        })
        .collect();
    let rule = get("RRULE").map(|l| l.value.trim().to_string());

    match start {
        When::Date(first) => {
            let length = match (end, duration) {
                (Some((When::Date(end), _)), _) => {
                    let days = first.until(end).map(|s| s.get_days()).unwrap_or(0);
                    if days < 1 {
                        return Err("DTEND is not after DTSTART".to_string());
                    }
                    days
                }
                (Some(_), _) => return Err("DTEND is a date-time but DTSTART a date".to_string()),
                (None, Some(seconds)) => {
                    if seconds <= 0 || seconds % i64::from(DAY) != 0 {
                        return Err(
                            "the DURATION of an all-day event must be whole days".to_string()
                        );
                    }
                    i32::try_from(seconds / i64::from(DAY)).map_err(|_| "DURATION too long")?
                }
                (None, None) => 1,
            };
            if length > 366 {
                return Err(format!("lasts {length} days: more than a year, ignored"));
            }
            let occurrences = match &rule {
                Some(rule) => rrule::expand(rule, first, until)?,
                None => vec![first],
            };
            for date in occurrences {
                if exdates.iter().any(|(w, _)| *w == When::Date(date)) {
                    continue;
                }
                let mut day = date;
                for _ in 0..length {
                    let closed = days.entry(day).or_default();
                    closed.all_day = true;
                    closed.name(uid, &summary);
                    day = day.tomorrow().map_err(|_| "a date out of range")?;
                }
            }
        }
        When::Time(first) => {
            let seconds = match (end, duration) {
                (Some((When::Time(end), end_zone)), _) => {
                    let start_at = zone.to_timestamp(first).map_err(|e| e.to_string())?;
                    let end_at = end_zone.to_timestamp(end).map_err(|e| e.to_string())?;
                    end_at.as_second() - start_at.as_second()
                }
                (Some(_), _) => return Err("DTEND is a date but DTSTART a date-time".to_string()),
                (None, Some(seconds)) => seconds,
                (None, None) => 0,
            };
            if seconds <= 0 {
                return Err("ends before or when it starts: it closes nothing".to_string());
            }
            if seconds > 366 * i64::from(DAY) {
                return Err("lasts more than a year, ignored".to_string());
            }
            let occurrences = match &rule {
                Some(rule) => rrule::expand(rule, first.date(), until)?,
                None => vec![first.date()],
            };
            for date in occurrences {
                let local = date.to_datetime(first.time());
                let start_at = zone.to_timestamp(local).map_err(|e| e.to_string())?;
                if exdates
                    .iter()
                    .any(|(w, at)| *w == When::Date(date) || *at == Some(start_at))
                {
                    continue;
                }
                let end_at = start_at
                    .checked_add(jiff::SignedDuration::from_secs(seconds))
                    .map_err(|e| e.to_string())?;
                close_part(
                    calendar_zone.to_datetime(start_at),
                    calendar_zone.to_datetime(end_at),
                    uid,
                    &summary,
                    days,
                )?;
            }
        }
    }
    Ok(())
}

/// Closes [start, end) (local date-times of the calendar's zone), day by day.
fn close_part(
    start: DateTime,
    end: DateTime,
    uid: &str,
    summary: &str,
    days: &mut BTreeMap<civil::Date, Closed>,
) -> Result<(), String> {
    let mut date = start.date();
    while date <= end.date() {
        let from = if date == start.date() {
            second_of_day(start)
        } else {
            0
        };
        let to = if date == end.date() {
            second_of_day(end)
        } else {
            DAY
        };
        if from < to {
            let closed = days.entry(date).or_default();
            closed.parts.push((from, to));
            closed.name(uid, summary);
        }
        date = date.tomorrow().map_err(|_| "a date out of range")?;
    }
    Ok(())
}

fn second_of_day(at: DateTime) -> i32 {
    i32::from(at.hour()) * 3600 + i32::from(at.minute()) * 60 + i32::from(at.second())
}

/// A DTSTART/DTEND/EXDATE value and the zone its date-time is in: VALUE=DATE or 8 digits
/// is a date; a date-time ending in Z is UTC, with TZID in that zone, else floating (the
/// calendar's zone).
fn when(line: &Line, calendar_zone: &TimeZone) -> Result<(When, TimeZone), String> {
    let value = line.value.trim();
    let is_date = line
        .param("VALUE")
        .is_some_and(|v| v.eq_ignore_ascii_case("DATE"))
        || (value.len() == 8 && value.bytes().all(|b| b.is_ascii_digit()));
    if is_date {
        return parse_date(value)
            .map(|d| (When::Date(d), calendar_zone.clone()))
            .ok_or_else(|| format!("{value:?} is not a date (YYYYMMDD)"));
    }
    let (digits, utc) = match value.strip_suffix(['Z', 'z']) {
        Some(rest) => (rest, true),
        None => (value, false),
    };
    let (date, time) = digits
        .split_once(['T', 't'])
        .ok_or_else(|| format!("{value:?} is not a date-time (YYYYMMDDTHHMMSS)"))?;
    let date = parse_date(date).ok_or_else(|| format!("{value:?} is not a date-time"))?;
    let number = |range: std::ops::Range<usize>| -> Option<i8> { time.get(range)?.parse().ok() };
    let (Some(hour), Some(minute), Some(second)) = (number(0..2), number(2..4), number(4..6))
    else {
        return Err(format!("{value:?} is not a date-time (YYYYMMDDTHHMMSS)"));
    };
    if time.len() != 6 {
        return Err(format!("{value:?} is not a date-time (YYYYMMDDTHHMMSS)"));
    }
    // A leap second (60) is read as the last second of the minute.
    let time = civil::Time::new(hour, minute, second.min(59), 0)
        .map_err(|_| format!("{value:?} is not a valid time"))?;
    let zone = if utc {
        TimeZone::UTC
    } else if let Some(tzid) = line.param("TZID") {
        zone_named(tzid).ok_or_else(|| format!("unknown TZID {tzid:?}"))?
    } else {
        calendar_zone.clone()
    };
    Ok((When::Time(date.to_datetime(time)), zone))
}

/// An IANA zone by name, also when a producer prefixes it ("/mozilla.org/.../Europe/Berlin").
fn zone_named(tzid: &str) -> Option<TimeZone> {
    let tzid = tzid.trim();
    if let Ok(zone) = TimeZone::get(tzid) {
        return Some(zone);
    }
    tzid.match_indices('/')
        .find_map(|(i, _)| TimeZone::get(&tzid[i + 1..]).ok())
}

fn parse_date(value: &str) -> Option<civil::Date> {
    if value.len() != 8 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let year: i16 = value.get(0..4)?.parse().ok()?;
    let month: i8 = value.get(4..6)?.parse().ok()?;
    let day: i8 = value.get(6..8)?.parse().ok()?;
    // Holidays are dated in years 1..9999.
    civil::Date::new(year, month, day)
        .ok()
        .filter(|d| d.year() >= 1)
}

/// An RFC 5545 DURATION ("P1D", "PT4H30M", "-P1W") in seconds.
fn duration_seconds(value: &str) -> Option<i64> {
    let (sign, rest) = match value.as_bytes().first()? {
        b'-' => (-1, &value[1..]),
        b'+' => (1, &value[1..]),
        _ => (1, value),
    };
    let rest = rest.strip_prefix(['P', 'p'])?;
    let mut total: i64 = 0;
    let mut number = String::new();
    let mut in_time = false;
    let mut any = false;
    for c in rest.chars() {
        match c.to_ascii_uppercase() {
            '0'..='9' => number.push(c),
            'T' if number.is_empty() && !in_time => in_time = true,
            unit => {
                let n: i64 = number.parse().ok()?;
                number.clear();
                let scale = match (unit, in_time) {
                    ('W', false) => 7 * 86_400,
                    ('D', false) => 86_400,
                    ('H', true) => 3600,
                    ('M', true) => 60,
                    ('S', true) => 1,
                    _ => return None,
                };
                total = total.checked_add(n.checked_mul(scale)?)?;
                any = true;
            }
        }
    }
    (any && number.is_empty()).then_some(sign * total)
}

fn seconds(span: &DaySpan) -> Option<(i32, i32)> {
    let s = |t: &TimeOfDay| t.hours * 3600 + t.minutes * 60 + t.seconds;
    Some((s(span.start.as_ref()?), s(span.end.as_ref()?)))
}

fn day_span(start: i32, end: i32) -> DaySpan {
    let time = |s: i32| TimeOfDay {
        hours: s / 3600,
        minutes: s / 60 % 60,
        seconds: s % 60,
    };
    DaySpan {
        start: Some(time(start)),
        end: Some(time(end)),
    }
}

#[cfg(test)]
mod tests;
