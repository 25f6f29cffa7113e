//! The recurrence rules holiday files use (RFC 5545 section 3.3.10), expanded to dates.
//!
//! Supported: FREQ=YEARLY with INTERVAL, COUNT, UNTIL, BYMONTH, BYMONTHDAY and an ordinal
//! BYDAY ("4TH", "-1MO", with BYMONTH); FREQ=DAILY and FREQ=WEEKLY (BYDAY weekdays) with
//! COUNT or UNTIL. DTSTART is always the first occurrence.

use jiff::civil::{Date, Weekday};

/// At most this many occurrences of one event.
const MAX_OCCURRENCES: usize = 5_000;

/// The dates `rule` gives from `first` (DTSTART's date) up to `until` (inclusive).
pub(super) fn expand(rule: &str, first: Date, until: Date) -> Result<Vec<Date>, String> {
    let mut freq = None;
    let mut interval: i32 = 1;
    let mut count: Option<usize> = None;
    let mut rule_until: Option<Date> = None;
    let mut months: Vec<i8> = Vec::new();
    let mut month_days: Vec<i8> = Vec::new();
    let mut by_day: Vec<(i8, Weekday)> = Vec::new();
    for part in rule.split(';').filter(|p| !p.trim().is_empty()) {
        let (name, value) = part
            .split_once('=')
            .ok_or_else(|| format!("RRULE part {part:?} is not NAME=VALUE"))?;
        let value = value.trim();
        let bad = || format!("RRULE {name}={value} is not valid");
        match name.trim().to_ascii_uppercase().as_str() {
            "FREQ" => freq = Some(value.to_ascii_uppercase()),
            "INTERVAL" => interval = value.parse().ok().filter(|i| *i >= 1).ok_or_else(bad)?,
            "COUNT" => count = Some(value.parse().ok().filter(|c| *c >= 1).ok_or_else(bad)?),
            "UNTIL" => {
                rule_until = Some(
                    value
                        .get(0..8)
                        .and_then(super::parse_date)
                        .ok_or_else(bad)?,
                )
            }
            "BYMONTH" => {
                months = list(value, |m| m.parse().ok().filter(|m| (1..=12).contains(m)))
                    .ok_or_else(bad)?
            }
            "BYMONTHDAY" => {
                month_days = list(value, |d| {
                    d.parse().ok().filter(|d: &i8| (1..=31).contains(&d.abs()))
                })
                .ok_or_else(bad)?
            }
            "BYDAY" => by_day = list(value, weekday).ok_or_else(bad)?,
            "WKST" => {}
            other => return Err(format!("RRULE {other} is not supported")),
        }
    }
    let until = rule_until.map_or(until, |u| u.min(until));
    let freq = freq.ok_or("RRULE without FREQ")?;
    let mut dates = match freq.as_str() {
        "YEARLY" => yearly(first, interval, &months, &month_days, &by_day, until, count)?,
        "DAILY" | "WEEKLY" => {
            if count.is_none() && rule_until.is_none() {
                return Err(format!(
                    "RRULE FREQ={freq} without COUNT or UNTIL is not supported"
                ));
            }
            if !months.is_empty() || !month_days.is_empty() {
                return Err(format!(
                    "RRULE FREQ={freq} with BYMONTH or BYMONTHDAY is not supported"
                ));
            }
            if freq == "DAILY" && !by_day.is_empty() {
                return Err("RRULE FREQ=DAILY with BYDAY is not supported".to_string());
            }
            if by_day.iter().any(|(n, _)| *n != 0) {
                return Err("RRULE FREQ=WEEKLY with an ordinal BYDAY is not valid".to_string());
            }
            let step = if freq == "DAILY" {
                interval
            } else {
                7 * interval
            };
            let weekdays: Vec<Weekday> = if by_day.is_empty() {
                vec![first.weekday()]
            } else {
                by_day.iter().map(|(_, w)| *w).collect()
            };
            periodic(first, step, freq == "WEEKLY", &weekdays, until, count)
        }
        other => return Err(format!("RRULE FREQ={other} is not supported")),
    };
    if dates.len() > MAX_OCCURRENCES {
        return Err(format!(
            "RRULE gives more than {MAX_OCCURRENCES} occurrences"
        ));
    }
    if dates.first() != Some(&first) && first <= until {
        dates.insert(0, first);
        if let Some(count) = count {
            dates.truncate(count);
        }
    }
    Ok(dates)
}

fn list<T>(value: &str, item: impl Fn(&str) -> Option<T>) -> Option<Vec<T>> {
    value.split(',').map(|v| item(v.trim())).collect()
}

/// "MO", "4TH", "-1SU".
fn weekday(value: &str) -> Option<(i8, Weekday)> {
    let split = value.len().checked_sub(2)?;
    let (ordinal, day) = (value.get(..split)?, value.get(split..)?);
    let ordinal = if ordinal.is_empty() {
        0
    } else {
        ordinal.trim_start_matches('+').parse().ok()?
    };
    if !(-5..=5).contains(&ordinal) {
        return None;
    }
    let day = match day.to_ascii_uppercase().as_str() {
        "MO" => Weekday::Monday,
        "TU" => Weekday::Tuesday,
        "WE" => Weekday::Wednesday,
        "TH" => Weekday::Thursday,
        "FR" => Weekday::Friday,
        "SA" => Weekday::Saturday,
        "SU" => Weekday::Sunday,
        _ => return None,
    };
    Some((ordinal, day))
}

fn yearly(
    first: Date,
    interval: i32,
    months: &[i8],
    month_days: &[i8],
    by_day: &[(i8, Weekday)],
    until: Date,
    count: Option<usize>,
) -> Result<Vec<Date>, String> {
    if by_day.iter().any(|(n, _)| *n == 0) {
        return Err("RRULE FREQ=YEARLY with BYDAY without an ordinal is not supported".to_string());
    }
    if !by_day.is_empty() && !month_days.is_empty() {
        return Err(
            "RRULE FREQ=YEARLY with both BYDAY and BYMONTHDAY is not supported".to_string(),
        );
    }
    let months: Vec<i8> = if months.is_empty() {
        vec![first.month()]
    } else {
        months.to_vec()
    };
    let month_days: Vec<i8> = if month_days.is_empty() {
        vec![first.day()]
    } else {
        month_days.to_vec()
    };
    let mut dates = Vec::new();
    let mut year = i32::from(first.year());
    while year <= i32::from(until.year()) {
        let Ok(y) = i16::try_from(year) else { break };
        let mut in_year = Vec::new();
        for &month in &months {
            if by_day.is_empty() {
                for &day in &month_days {
                    // Negative days count from the month's end; invalid dates (Feb 30) are skipped.
                    let Ok(start_of_month) = Date::new(y, month, 1) else {
                        continue;
                    };
                    let day = if day < 0 {
                        start_of_month.days_in_month() + 1 + day
                    } else {
                        day
                    };
                    if let Ok(date) = Date::new(y, month, day) {
                        in_year.push(date);
                    }
                }
            } else {
                for &(nth, weekday) in by_day {
                    if let Ok(date) =
                        Date::new(y, month, 1).and_then(|d| d.nth_weekday_of_month(nth, weekday))
                    {
                        in_year.push(date);
                    }
                }
            }
        }
        in_year.sort_unstable();
        for date in in_year {
            if date < first || date > until {
                continue;
            }
            dates.push(date);
            if count.is_some_and(|c| dates.len() >= c) || dates.len() > MAX_OCCURRENCES {
                return Ok(dates);
            }
        }
        year += interval;
    }
    Ok(dates)
}

/// Every `step` days from `first` (weekly: each of `weekdays` in the week of each step).
fn periodic(
    first: Date,
    step: i32,
    weekly: bool,
    weekdays: &[Weekday],
    until: Date,
    count: Option<usize>,
) -> Vec<Date> {
    let mut dates = Vec::new();
    // The Monday of DTSTART's week for weekly rules.
    let mut anchor = if weekly {
        first
            .checked_sub(jiff::Span::new().days(i64::from(first.weekday().to_monday_zero_offset())))
            .unwrap_or(first)
    } else {
        first
    };
    while anchor <= until {
        let mut candidates: Vec<Date> = if weekly {
            weekdays
                .iter()
                .filter_map(|w| {
                    anchor
                        .checked_add(jiff::Span::new().days(i64::from(w.to_monday_zero_offset())))
                        .ok()
                })
                .collect()
        } else {
            vec![anchor]
        };
        candidates.sort_unstable();
        candidates.dedup();
        for date in candidates {
            if date < first || date > until {
                continue;
            }
            dates.push(date);
            if count.is_some_and(|c| dates.len() >= c) || dates.len() > MAX_OCCURRENCES {
                return dates;
            }
        }
        match anchor.checked_add(jiff::Span::new().days(i64::from(step))) {
            Ok(next) => anchor = next,
            Err(_) => break,
        }
    }
    dates
}
