//! Business-hours calendars compiled for fast arithmetic: add a duration of business
//! time to an instant, measure the business time between two instants.
//!
//! A compiled calendar turns the weekly spans and holidays (local wall-clock, in one IANA
//! zone) into sorted business intervals in UTC, one table per UTC year, built lazily on
//! first use and kept with prefix sums: `add` and `measure` are two binary searches within
//! a year and one step per whole year crossed.
//!
//! An instant is business time when the wall clock of the zone then reads a time inside a
//! span of that local date. So a span crossing a DST gap (spring forward) counts only the
//! wall-clock time that exists (01:00-04:00 on a spring-forward day in Europe/Berlin is 2
//! real hours), and the repeated hour of an overlap (fall back) counts twice, as the real
//! time it is (01:00-04:00 on a fall-back day is 4 hours; 02:00-02:30 is 1 hour).
//!
//! The tables cover years 1900..=2399 (UTC): `measure` counts no business time outside
//! them and `add` returns `i64::MAX` when the duration is not used up by 2400.

mod validate;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use itsm_proto::itsm::sla::v1::Calendar;
use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;

pub use validate::validate;

/// A span of one day, [start, end) in seconds since local midnight (end <= 86,400).
type Span = (i32, i32);

const SECONDS_PER_DAY: i32 = 86_400;
const MICROS_PER_SECOND: i64 = 1_000_000;
const MICROS_PER_DAY: i64 = 86_400 * MICROS_PER_SECOND;
/// First and last UTC years with business time.
const FIRST_YEAR: i32 = 1900;
const LAST_YEAR: i32 = 2399;

/// A calendar compiled for fast arithmetic in one IANA zone.
#[derive(Debug, Clone)]
pub struct BusinessCalendar {
    zone: String,
    hours: Option<Arc<Hours>>,
}

/// Why a calendar cannot be used: the field path ("calendar.time_zone",
/// "calendar.weekly_spans[3]", "calendar.holidays[0].open_spans[1]") and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarError {
    pub field: String,
    pub description: String,
}

impl std::fmt::Display for CalendarError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.description)
    }
}

/// The compiled rules, shared by clones (and so is the cache of year tables).
struct Hours {
    tz: TimeZone,
    /// Spans of each weekday, 0 = Monday, sorted.
    weekly: [Vec<Span>; 7],
    /// Spans of special days, by local date, sorted; empty = closed.
    holidays: HashMap<Date, Vec<Span>>,
    /// One table per UTC year FIRST_YEAR..=LAST_YEAR, built on first use.
    years: Box<[OnceLock<Year>]>,
}

impl std::fmt::Debug for Hours {
    // The year tables are a cache: only how many are built.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hours")
            .field("weekly", &self.weekly)
            .field("holidays", &self.holidays.len())
            .field(
                "years_built",
                &self.years.iter().filter(|y| y.get().is_some()).count(),
            )
            .finish_non_exhaustive()
    }
}

/// The business intervals of one UTC year, sorted and disjoint, in microseconds.
#[derive(Debug, Default)]
struct Year {
    starts: Vec<i64>,
    ends: Vec<i64>,
    /// Business time from the start of the year to the end of interval i.
    cumulative: Vec<i64>,
}

impl Year {
    fn total(&self) -> i64 {
        self.cumulative.last().copied().unwrap_or(0)
    }

    /// Business time from the start of the year to `at` (within the year).
    fn elapsed(&self, at: i64) -> i64 {
        let after = self.starts.partition_point(|&start| start <= at);
        if after == 0 {
            return 0;
        }
        let i = after - 1;
        let before = if i == 0 { 0 } else { self.cumulative[i - 1] };
        before + at.min(self.ends[i]) - self.starts[i]
    }

    /// The instant at which `target` (0 < target <= total) of business time is reached.
    fn locate(&self, target: i64) -> i64 {
        let i = self.cumulative.partition_point(|&c| c < target);
        match (self.ends.get(i), self.cumulative.get(i)) {
            (Some(end), Some(cumulative)) => end - (cumulative - target),
            _ => self.ends.last().copied().unwrap_or(i64::MAX),
        }
    }
}

impl BusinessCalendar {
    /// Every instant counts (24x7; no calendar).
    pub fn always() -> Self {
        Self {
            zone: "UTC".to_string(),
            hours: None,
        }
    }

    /// `calendar` evaluated in `zone` (an IANA name; "" means the calendar's own
    /// time_zone). Every problem at once.
    pub fn compile(calendar: &Calendar, zone: &str) -> Result<Self, Vec<CalendarError>> {
        let mut errors = validate(calendar, "calendar");
        let zone = if zone.is_empty() {
            calendar.time_zone.as_str()
        } else {
            zone
        };
        let tz = match TimeZone::get(zone) {
            Ok(tz) => Some(tz),
            Err(_) => {
                if zone != calendar.time_zone {
                    errors.push(CalendarError {
                        field: "time_zone".to_string(),
                        description: format!("unknown time zone {zone:?}"),
                    });
                }
                None
            }
        };
        let Some(tz) = tz.filter(|_| errors.is_empty()) else {
            return Err(errors);
        };
        let mut weekly: [Vec<Span>; 7] = Default::default();
        for span in &calendar.weekly_spans {
            let mut ignored = Vec::new();
            if let Some(s) = validate::check_span(span.span.as_ref(), "", &mut ignored)
                && let Some(day) = usize::try_from(span.day - 1).ok().filter(|d| *d < 7)
            {
                weekly[day].push(s);
            }
        }
        let mut holidays = HashMap::new();
        for holiday in &calendar.holidays {
            let Some(date) = holiday.date.as_ref().and_then(validate::civil_date) else {
                continue;
            };
            let mut ignored = Vec::new();
            let mut spans: Vec<Span> = holiday
                .open_spans
                .iter()
                .filter_map(|s| validate::check_span(Some(s), "", &mut ignored))
                .collect();
            spans.sort_unstable();
            holidays.insert(date, spans);
        }
        for spans in &mut weekly {
            spans.sort_unstable();
        }
        let years = (FIRST_YEAR..=LAST_YEAR).map(|_| OnceLock::new()).collect();
        Ok(Self {
            zone: zone.to_string(),
            hours: Some(Arc::new(Hours {
                tz,
                weekly,
                holidays,
                years,
            })),
        })
    }

    /// The zone it is evaluated in ("UTC" for always()).
    pub fn zone(&self) -> &str {
        &self.zone
    }

    /// The instant (microseconds since the Unix epoch, UTC) when `duration` microseconds of
    /// business time starting at `start` are used up. duration <= 0 returns start. If
    /// business time never runs again (holidays forever), i64::MAX.
    pub fn add(&self, start: i64, duration: i64) -> i64 {
        if duration <= 0 {
            return start;
        }
        let Some(hours) = &self.hours else {
            return start.saturating_add(duration);
        };
        let (mut year, mut offset) = if start < year_start(FIRST_YEAR) {
            (FIRST_YEAR, 0)
        } else {
            let year = year_of(start);
            if year > LAST_YEAR {
                return i64::MAX;
            }
            (year, hours.year(year).elapsed(start))
        };
        let mut remaining = duration;
        while year <= LAST_YEAR {
            let table = hours.year(year);
            let left = table.total() - offset;
            if remaining <= left {
                return table.locate(offset + remaining);
            }
            remaining -= left;
            offset = 0;
            year += 1;
        }
        i64::MAX
    }

    /// Business time in [start, end), microseconds; 0 when end <= start.
    pub fn measure(&self, start: i64, end: i64) -> i64 {
        if end <= start {
            return 0;
        }
        let Some(hours) = &self.hours else {
            return end.saturating_sub(start);
        };
        let (low, high) = (year_start(FIRST_YEAR), year_start(LAST_YEAR + 1) - 1);
        let (start, end) = (start.clamp(low, high), end.clamp(low, high));
        if end <= start {
            return 0;
        }
        let (first, last) = (year_of(start), year_of(end));
        let first_table = hours.year(first);
        if first == last {
            return first_table.elapsed(end) - first_table.elapsed(start);
        }
        let mut total = first_table.total() - first_table.elapsed(start);
        for year in first + 1..last {
            total += hours.year(year).total();
        }
        total + hours.year(last).elapsed(end)
    }
}

impl Hours {
    /// The table of a UTC year in FIRST_YEAR..=LAST_YEAR (an empty one outside).
    fn year(&self, year: i32) -> &Year {
        static EMPTY: Year = Year {
            starts: Vec::new(),
            ends: Vec::new(),
            cumulative: Vec::new(),
        };
        usize::try_from(year - FIRST_YEAR)
            .ok()
            .and_then(|i| self.years.get(i))
            .map_or(&EMPTY, |cell| cell.get_or_init(|| self.build_year(year)))
    }

    /// The business intervals of UTC year `year`: those of every local date that can
    /// reach into it (offsets are within a day), clipped to it.
    fn build_year(&self, year: i32) -> Year {
        let (low, high) = (year_start(year), year_start(year + 1));
        let mut intervals: Vec<(i64, i64)> = Vec::with_capacity(600);
        let (Ok(first), Ok(last)) = (
            i16::try_from(year - 1).map(|y| Date::constant(y, 12, 31)),
            i16::try_from(year + 1).map(|y| Date::constant(y, 1, 1)),
        ) else {
            return Year::default();
        };
        let segments = self.segments(low - 2 * MICROS_PER_DAY, high + 2 * MICROS_PER_DAY);
        let mut date = first;
        while date <= last {
            let spans = self.holidays.get(&date).unwrap_or_else(|| {
                let weekday = usize::try_from(date.weekday().to_monday_zero_offset()).unwrap_or(0);
                &self.weekly[weekday]
            });
            let midnight = days_from_civil(
                i32::from(date.year()),
                i32::from(date.month()),
                i32::from(date.day()),
            ) * MICROS_PER_DAY;
            for &(start, end) in spans {
                // Wall-clock [start, end) read as UTC; in each stretch of constant offset the
                // instants whose wall clock reads inside it.
                let (local_start, local_end) = (
                    midnight + i64::from(start) * MICROS_PER_SECOND,
                    midnight + i64::from(end) * MICROS_PER_SECOND,
                );
                for &(from, to, offset) in &segments {
                    let start = (local_start - offset).max(from).max(low);
                    let end = (local_end - offset).min(to).min(high);
                    if start < end {
                        intervals.push((start, end));
                    }
                }
            }
            match date.tomorrow() {
                Ok(next) => date = next,
                Err(_) => break,
            }
        }
        intervals.sort_unstable();
        let mut table = Year::default();
        for (start, end) in intervals {
            match table.ends.last_mut() {
                // Touching or overlapping (only possible around odd transitions): merge.
                Some(last_end) if start <= *last_end => *last_end = (*last_end).max(end),
                _ => {
                    table.starts.push(start);
                    table.ends.push(end);
                }
            }
        }
        let mut sum = 0;
        for (start, end) in table.starts.iter().zip(&table.ends) {
            sum += end - start;
            table.cumulative.push(sum);
        }
        table
    }

    /// The stretches of constant UTC offset covering [from, to): (start, end, offset), all
    /// in microseconds.
    fn segments(&self, from: i64, to: i64) -> Vec<(i64, i64, i64)> {
        let Ok(at) = Timestamp::from_microsecond(from) else {
            return Vec::new();
        };
        let mut segments = Vec::new();
        let mut start = from;
        let mut offset = offset_micros(self.tz.to_offset(at));
        for transition in self.tz.following(at) {
            let instant = transition.timestamp().as_microsecond();
            if instant >= to {
                break;
            }
            if instant > start {
                segments.push((start, instant, offset));
                start = instant;
            }
            offset = offset_micros(transition.offset());
        }
        segments.push((start, to, offset));
        segments
    }
}

fn offset_micros(offset: jiff::tz::Offset) -> i64 {
    i64::from(offset.seconds()) * MICROS_PER_SECOND
}

/// The instant UTC year `year` starts, microseconds.
fn year_start(year: i32) -> i64 {
    days_from_civil(year, 1, 1) * MICROS_PER_DAY
}

/// The UTC year of an instant.
fn year_of(micros: i64) -> i32 {
    let days = micros.div_euclid(MICROS_PER_DAY);
    // Civil from days (H. Hinnant): the year of a March-based era, then January/February.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let year = year_of_era + era * 400 + i64::from(month_index >= 10);
    i32::try_from(year).unwrap_or(if year < 0 { i32::MIN } else { i32::MAX })
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant).
fn days_from_civil(year: i32, month: i32, day: i32) -> i64 {
    let year = i64::from(year) - i64::from(month <= 2);
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let month = i64::from(month);
    let day_of_year = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// How many compiled calendars a [`CalendarCache`] keeps before it starts over.
const CACHE_CAPACITY: usize = 256;

/// Compiled calendars by (calendar id, version, zone). A version is immutable,
/// so an entry is valid forever; the capacity only bounds the memory.
#[derive(Debug, Default)]
pub struct CalendarCache(Mutex<HashMap<(String, i64, String), BusinessCalendar>>);

impl CalendarCache {
    /// The compiled calendar of `key`, if compiled before.
    pub fn get(&self, key: &(String, i64, String)) -> Option<BusinessCalendar> {
        self.0.lock().ok()?.get(key).cloned()
    }

    /// Keeps `calendar` under `key`.
    pub fn put(&self, key: (String, i64, String), calendar: BusinessCalendar) {
        if let Ok(mut map) = self.0.lock() {
            if map.len() >= CACHE_CAPACITY {
                map.clear();
            }
            map.insert(key, calendar);
        }
    }
}

#[cfg(test)]
mod tests;
