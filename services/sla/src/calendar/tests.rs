#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use itsm_proto::itsm::common::v1::{Date as PbDate, TimeOfDay};
use itsm_proto::itsm::sla::v1::{DaySpan, Holiday, WeeklySpan};
use proptest::prelude::*;

/// A special day: its date and open spans.
type Special<'a> = ((i32, i32, i32), &'a [Span]);

const HOUR: i64 = 3600 * MICROS_PER_SECOND;
const MINUTE: i64 = 60 * MICROS_PER_SECOND;

fn tod(seconds: i32) -> TimeOfDay {
    TimeOfDay {
        hours: seconds / 3600,
        minutes: seconds / 60 % 60,
        seconds: seconds % 60,
    }
}

fn span(start: i32, end: i32) -> DaySpan {
    DaySpan {
        start: Some(tod(start)),
        end: Some(tod(end)),
    }
}

/// "08:00-12:00" style hours.
fn h(start: f64, end: f64) -> Span {
    ((start * 3600.0) as i32, (end * 3600.0) as i32)
}

fn calendar(zone: &str, days: &[(i32, &[Span])], holidays: &[Special<'_>]) -> Calendar {
    Calendar {
        time_zone: zone.to_string(),
        weekly_spans: days
            .iter()
            .flat_map(|(day, spans)| {
                spans.iter().map(move |&(s, e)| WeeklySpan {
                    day: *day,
                    span: Some(span(s, e)),
                })
            })
            .collect(),
        holidays: holidays
            .iter()
            .map(|&((year, month, day), spans)| Holiday {
                date: Some(PbDate { year, month, day }),
                display_name: "day off".to_string(),
                open_spans: spans.iter().map(|&(s, e)| span(s, e)).collect(),
                origin: String::new(),
            })
            .collect(),
        ..Default::default()
    }
}

/// Mon-Fri 08:00-12:00 and 13:00-17:00.
fn office(zone: &str, holidays: &[Special<'_>]) -> BusinessCalendar {
    let spans: &[Span] = &[h(8.0, 12.0), h(13.0, 17.0)];
    let days: Vec<(i32, &[Span])> = (1..=5).map(|d| (d, spans)).collect();
    BusinessCalendar::compile(&calendar(zone, &days, holidays), "").unwrap()
}

/// Microseconds of an RFC 3339 instant with offset.
fn at(text: &str) -> i64 {
    text.parse::<Timestamp>().unwrap().as_microsecond()
}

#[test]
fn always_is_plain_arithmetic() {
    let always = BusinessCalendar::always();
    assert_eq!(always.zone(), "UTC");
    assert_eq!(always.add(1_000, 5 * HOUR), 1_000 + 5 * HOUR);
    assert_eq!(always.add(1_000, -5), 1_000);
    assert_eq!(always.measure(1_000, 1_000 + HOUR), HOUR);
    assert_eq!(always.measure(5, 1), 0);
    assert_eq!(always.add(i64::MAX - 1, HOUR), i64::MAX);
}

#[test]
fn office_hours_in_berlin() {
    let cal = office("Europe/Berlin", &[]);
    assert_eq!(cal.zone(), "Europe/Berlin");
    // Monday 2024-06-03 .. Monday 2024-06-10: 40 hours.
    assert_eq!(
        cal.measure(
            at("2024-06-03T00:00:00+02:00"),
            at("2024-06-10T00:00:00+02:00")
        ),
        40 * HOUR
    );
    // 1 h from Monday 11:30 crosses lunch.
    assert_eq!(
        cal.add(at("2024-06-03T11:30:00+02:00"), HOUR),
        at("2024-06-03T13:30:00+02:00")
    );
    // Exactly used up at 12:00: the end of the morning, not the start of the afternoon.
    assert_eq!(
        cal.add(at("2024-06-03T11:00:00+02:00"), HOUR),
        at("2024-06-03T12:00:00+02:00")
    );
    // From Friday 16:00, 2 h: Monday 09:00.
    assert_eq!(
        cal.add(at("2024-06-07T16:00:00+02:00"), 2 * HOUR),
        at("2024-06-10T09:00:00+02:00")
    );
    // Starting on a weekend.
    assert_eq!(
        cal.add(at("2024-06-08T10:00:00+02:00"), 30 * MINUTE),
        at("2024-06-10T08:30:00+02:00")
    );
    // Over a year boundary and a whole year: 2024 has 262 weekdays.
    assert_eq!(
        cal.measure(
            at("2024-01-01T00:00:00+01:00"),
            at("2025-01-01T00:00:00+01:00")
        ),
        262 * 8 * HOUR
    );
    let start = at("2023-12-29T16:00:00+01:00");
    assert_eq!(
        cal.add(start, 262 * 8 * HOUR),
        at("2024-12-31T16:00:00+01:00")
    );
}

#[test]
fn berlin_spring_forward_counts_only_existing_time() {
    // Sunday 2024-03-31: 02:00 CET jumps to 03:00 CEST.
    let spans: &[Span] = &[h(1.0, 4.0)];
    let cal =
        BusinessCalendar::compile(&calendar("Europe/Berlin", &[(7, spans)], &[]), "").unwrap();
    let day = (
        at("2024-03-31T00:00:00+01:00"),
        at("2024-04-01T00:00:00+02:00"),
    );
    assert_eq!(cal.measure(day.0, day.1), 2 * HOUR);
    assert_eq!(
        cal.add(at("2024-03-31T01:00:00+01:00"), 90 * MINUTE),
        at("2024-03-31T03:30:00+02:00")
    );
    // A span wholly inside the gap has no time at all.
    let gap: &[Span] = &[h(2.0, 2.5), h(12.0, 13.0)];
    let cal = BusinessCalendar::compile(&calendar("Europe/Berlin", &[(7, gap)], &[]), "").unwrap();
    assert_eq!(cal.measure(day.0, day.1), HOUR);
    // The Sunday before: both spans.
    assert_eq!(
        cal.measure(
            at("2024-03-24T00:00:00+01:00"),
            at("2024-03-25T00:00:00+01:00")
        ),
        90 * MINUTE
    );
}

#[test]
fn berlin_fall_back_counts_the_repeated_hour_twice() {
    // Sunday 2024-10-27: 03:00 CEST goes back to 02:00 CET.
    let spans: &[Span] = &[h(1.0, 4.0)];
    let cal =
        BusinessCalendar::compile(&calendar("Europe/Berlin", &[(7, spans)], &[]), "").unwrap();
    let (start, end) = (
        at("2024-10-27T00:00:00+02:00"),
        at("2024-10-28T00:00:00+01:00"),
    );
    assert_eq!(cal.measure(start, end), 4 * HOUR);
    assert_eq!(
        cal.add(at("2024-10-27T01:00:00+02:00"), 3 * HOUR),
        at("2024-10-27T03:00:00+01:00")
    );
    // 02:00-03:00 covers the repeated hour: two real hours.
    let repeated: &[Span] = &[h(2.0, 3.0)];
    let cal =
        BusinessCalendar::compile(&calendar("Europe/Berlin", &[(7, repeated)], &[]), "").unwrap();
    assert_eq!(cal.measure(start, end), 2 * HOUR);
}

#[test]
fn new_york_dst_days() {
    let spans: &[Span] = &[h(0.0, 24.0)];
    let cal =
        BusinessCalendar::compile(&calendar("America/New_York", &[(7, spans)], &[]), "").unwrap();
    // Sunday 2024-03-10: 23 hours; Sunday 2024-11-03: 25 hours.
    assert_eq!(
        cal.measure(
            at("2024-03-10T00:00:00-05:00"),
            at("2024-03-11T00:00:00-04:00")
        ),
        23 * HOUR
    );
    assert_eq!(
        cal.measure(
            at("2024-11-03T00:00:00-04:00"),
            at("2024-11-04T00:00:00-05:00")
        ),
        25 * HOUR
    );
    // Across a whole week in March only the Sunday counts.
    assert_eq!(
        cal.measure(
            at("2024-03-09T00:00:00-05:00"),
            at("2024-03-16T00:00:00-04:00")
        ),
        23 * HOUR
    );
    assert_eq!(
        cal.add(at("2024-03-10T01:00:00-05:00"), 2 * HOUR),
        at("2024-03-10T04:00:00-04:00")
    );
    // Office hours are unaffected by the change at night: 8 hours on the Monday after.
    let ny = office("America/New_York", &[]);
    assert_eq!(
        ny.measure(
            at("2024-03-11T00:00:00-04:00"),
            at("2024-03-12T00:00:00-04:00")
        ),
        8 * HOUR
    );
}

#[test]
fn holidays_close_days_or_change_their_hours() {
    let cal = office(
        "Europe/Berlin",
        &[((2024, 12, 25), &[]), ((2024, 12, 24), &[h(8.0, 12.0)])],
    );
    // Week of Monday 2024-12-23: 8 + 4 + 0 + 8 + 8.
    let (monday, next) = (
        at("2024-12-23T00:00:00+01:00"),
        at("2024-12-30T00:00:00+01:00"),
    );
    assert_eq!(cal.measure(monday, next), 28 * HOUR);
    // From Tuesday 11:00, 2 h: 1 h on Tuesday, none on Wednesday, Thursday 09:00.
    assert_eq!(
        cal.add(at("2024-12-24T11:00:00+01:00"), 2 * HOUR),
        at("2024-12-26T09:00:00+01:00")
    );
    // A holiday that opens a weekend day.
    let sunday_open = office("Europe/Berlin", &[((2024, 12, 29), &[h(10.0, 11.0)])]);
    assert_eq!(sunday_open.measure(monday, next), 41 * HOUR);
}

#[test]
fn holiday_on_a_dst_day() {
    // Sunday 2024-03-31 opened all day by a special day: 23 real hours.
    let cal = office("Europe/Berlin", &[((2024, 3, 31), &[h(0.0, 24.0)])]);
    assert_eq!(
        cal.measure(
            at("2024-03-31T00:00:00+01:00"),
            at("2024-04-01T00:00:00+02:00")
        ),
        23 * HOUR
    );
    // Closing the Monday after a DST change.
    let cal = office("Europe/Berlin", &[((2024, 4, 1), &[])]);
    assert_eq!(
        cal.add(at("2024-03-29T16:00:00+01:00"), 2 * HOUR),
        at("2024-04-02T09:00:00+02:00")
    );
}

#[test]
fn several_spans_and_a_span_ending_at_midnight() {
    // Friday 20:00-24:00, Saturday 00:00-02:00 and 09:00-10:00.
    let friday: &[Span] = &[h(20.0, 24.0)];
    let saturday: &[Span] = &[h(0.0, 2.0), h(9.0, 10.0)];
    let cal = BusinessCalendar::compile(
        &calendar("Europe/Berlin", &[(5, friday), (6, saturday)], &[]),
        "",
    )
    .unwrap();
    assert_eq!(
        cal.add(at("2024-06-07T23:00:00+02:00"), 2 * HOUR),
        at("2024-06-08T01:00:00+02:00")
    );
    assert_eq!(
        cal.add(at("2024-06-07T23:00:00+02:00"), 3 * HOUR + 30 * MINUTE),
        at("2024-06-08T09:30:00+02:00")
    );
    assert_eq!(
        cal.measure(
            at("2024-06-07T00:00:00+02:00"),
            at("2024-06-09T00:00:00+02:00")
        ),
        7 * HOUR
    );
}

#[test]
fn evaluated_in_another_zone() {
    let mut pb = calendar("Europe/Berlin", &[(1, &[h(8.0, 9.0)])], &[]);
    let cal = BusinessCalendar::compile(&pb, "America/New_York").unwrap();
    assert_eq!(cal.zone(), "America/New_York");
    assert_eq!(
        cal.add(at("2024-06-03T00:00:00-04:00"), 30 * MINUTE),
        at("2024-06-03T08:30:00-04:00")
    );
    let errors = BusinessCalendar::compile(&pb, "Mars/Olympus").unwrap_err();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].field, "time_zone");
    pb.time_zone = "Nowhere/City".to_string();
    let errors = BusinessCalendar::compile(&pb, "").unwrap_err();
    assert_eq!(
        errors.iter().map(|e| e.field.as_str()).collect::<Vec<_>>(),
        ["calendar.time_zone"]
    );
}

#[test]
fn beyond_the_tables() {
    let cal = office("Europe/Berlin", &[]);
    let start = at("2024-06-03T08:00:00+02:00");
    // More business time than there is until 2400.
    assert_eq!(cal.add(start, 400 * 365 * 24 * HOUR), i64::MAX);
    assert_eq!(cal.add(at("2500-01-01T00:00:00Z"), HOUR), i64::MAX);
    // Before 1900 nothing counts; an add starting then begins in 1900 (Monday; CET since 1893).
    assert_eq!(cal.measure(i64::MIN, at("1900-01-01T00:00:00Z")), 0);
    assert_eq!(cal.add(i64::MIN, HOUR), at("1900-01-01T09:00:00+01:00"));
    assert_eq!(
        cal.measure(i64::MIN, i64::MAX),
        cal.measure(at("1900-01-01T00:00:00Z"), at("2400-01-01T00:00:00Z"))
    );
}

#[test]
fn validation_names_each_bad_field() {
    let bad = Calendar {
        time_zone: "Europe/Nowhere".to_string(),
        weekly_spans: vec![
            WeeklySpan {
                day: 1,
                span: Some(span(8 * 3600, 12 * 3600)),
            },
            WeeklySpan {
                day: 1,
                span: Some(span(11 * 3600, 13 * 3600)),
            },
            WeeklySpan {
                day: 0,
                span: Some(span(8 * 3600, 9 * 3600)),
            },
            WeeklySpan {
                day: 2,
                span: Some(DaySpan {
                    start: Some(TimeOfDay {
                        hours: 9,
                        minutes: 60,
                        seconds: 0,
                    }),
                    end: Some(TimeOfDay {
                        hours: 24,
                        minutes: 0,
                        seconds: 1,
                    }),
                }),
            },
            WeeklySpan {
                day: 3,
                span: Some(span(10 * 3600, 9 * 3600)),
            },
            WeeklySpan { day: 4, span: None },
            WeeklySpan {
                day: 9,
                span: Some(span(0, 3600)),
            },
        ],
        holidays: vec![
            Holiday {
                date: Some(PbDate {
                    year: 2024,
                    month: 2,
                    day: 30,
                }),
                ..Default::default()
            },
            Holiday {
                date: Some(PbDate {
                    year: 2024,
                    month: 12,
                    day: 24,
                }),
                open_spans: vec![
                    span(8 * 3600, 12 * 3600),
                    span(9 * 3600, 10 * 3600),
                    span(5, 5),
                ],
                ..Default::default()
            },
            Holiday {
                date: Some(PbDate {
                    year: 2024,
                    month: 12,
                    day: 24,
                }),
                ..Default::default()
            },
            Holiday {
                date: None,
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    let fields: Vec<String> = validate(&bad, "calendar")
        .into_iter()
        .map(|e| e.field)
        .collect();
    let mut expected = vec![
        "calendar.time_zone",
        "calendar.weekly_spans[1]",
        "calendar.weekly_spans[2].day",
        "calendar.weekly_spans[3].span.start",
        "calendar.weekly_spans[3].span.end",
        "calendar.weekly_spans[4].span",
        "calendar.weekly_spans[5].span",
        "calendar.weekly_spans[6].day",
        "calendar.holidays[0].date",
        "calendar.holidays[1].open_spans[1]",
        "calendar.holidays[1].open_spans[2]",
        "calendar.holidays[2].date",
        "calendar.holidays[3].date",
    ];
    let mut fields_sorted = fields.clone();
    fields_sorted.sort();
    expected.sort();
    assert_eq!(fields_sorted, expected, "{fields:?}");
    assert!(BusinessCalendar::compile(&bad, "").is_err());

    // No working time at all.
    let empty = calendar("UTC", &[], &[]);
    let errors = validate(&empty, "calendar");
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].field, "calendar.weekly_spans");
    assert!(BusinessCalendar::compile(&empty, "").is_err());
    // A clean calendar has nothing to say; the prefix is the caller's.
    let good = calendar("Europe/Berlin", &[(1, &[h(8.0, 12.0), h(12.0, 24.0)])], &[]);
    assert!(validate(&good, "calendar").is_empty());
    let errors = validate(
        &calendar("", &[(1, &[h(8.0, 12.0)])], &[]),
        "request.calendar",
    );
    assert_eq!(errors[0].field, "request.calendar.time_zone");
}

/// A random calendar: up to three spans on each day on a 15-minute grid, a zone with DST
/// (one with a 30-minute shift), and random holidays in 2024-2025.
fn arb_calendar() -> impl Strategy<Value = BusinessCalendar> {
    arb_calendar_pb().prop_map(|(_, cal)| cal)
}

/// A random calendar and its compiled form.
fn arb_calendar_pb() -> impl Strategy<Value = (Calendar, BusinessCalendar)> {
    let day = proptest::collection::btree_set(0i32..=96, 0..=6);
    let zone = prop_oneof![
        Just("Europe/Berlin"),
        Just("America/New_York"),
        Just("Australia/Lord_Howe"),
        Just("Asia/Kolkata"),
        Just("UTC"),
    ];
    let holiday = (
        (2024i32..=2025, 1i32..=12, 1i32..=28),
        proptest::collection::btree_set(0i32..=96, 0..=4),
    );
    (
        proptest::collection::vec(day, 7),
        zone,
        proptest::collection::vec(holiday, 0..8),
    )
        .prop_filter_map("a calendar with business time", |(days, zone, holidays)| {
            let pairs = |grid: &std::collections::BTreeSet<i32>| -> Vec<Span> {
                let points: Vec<i32> = grid.iter().map(|q| q * 900).collect();
                points.chunks_exact(2).map(|p| (p[0], p[1])).collect()
            };
            let weekly: Vec<(i32, Vec<Span>)> = days
                .iter()
                .enumerate()
                .map(|(i, grid)| (i as i32 + 1, pairs(grid)))
                .collect();
            let mut seen = std::collections::BTreeSet::new();
            let holidays: Vec<((i32, i32, i32), Vec<Span>)> = holidays
                .iter()
                .filter(|(date, _)| seen.insert(*date))
                .map(|(date, grid)| (*date, pairs(grid)))
                .collect();
            let weekly_refs: Vec<(i32, &[Span])> =
                weekly.iter().map(|(d, s)| (*d, s.as_slice())).collect();
            let holiday_refs: Vec<Special<'_>> =
                holidays.iter().map(|(d, s)| (*d, s.as_slice())).collect();
            let pb = calendar(zone, &weekly_refs, &holiday_refs);
            BusinessCalendar::compile(&pb, "").ok().map(|cal| (pb, cal))
        })
}

fn arb_instant() -> impl Strategy<Value = i64> {
    // 2023-07-01 .. 2026-07-01, to the second.
    (at("2023-07-01T00:00:00Z") / MICROS_PER_SECOND..at("2026-07-01T00:00:00Z") / MICROS_PER_SECOND)
        .prop_map(|s| s * MICROS_PER_SECOND)
}

/// Business time in [start, end) by reading the wall clock every 15 minutes (instants on
/// the 15-minute grid; spans and offsets of the test zones are on it too).
fn reference(pb: &Calendar, start: i64, end: i64) -> i64 {
    let tz = TimeZone::get(&pb.time_zone).unwrap();
    let step = 15 * MINUTE;
    let mut total = 0;
    let mut t = start;
    while t < end {
        let local = tz.to_datetime(Timestamp::from_microsecond(t).unwrap());
        let second = i32::from(local.hour()) * 3600 + i32::from(local.minute()) * 60;
        let date = PbDate {
            year: i32::from(local.year()),
            month: i32::from(local.month()),
            day: i32::from(local.day()),
        };
        let inside = |s: &DaySpan| {
            let bound = |t: &Option<TimeOfDay>| {
                t.map(|t| t.hours * 3600 + t.minutes * 60 + t.seconds)
                    .unwrap()
            };
            bound(&s.start) <= second && second < bound(&s.end)
        };
        let business = match pb.holidays.iter().find(|h| h.date == Some(date)) {
            Some(holiday) => holiday.open_spans.iter().any(inside),
            None => pb.weekly_spans.iter().any(|w| {
                w.day == i32::from(local.weekday().to_monday_one_offset())
                    && inside(w.span.as_ref().unwrap())
            }),
        };
        if business {
            total += step;
        }
        t += step;
    }
    total
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn measure_matches_the_wall_clock(
        (pb, cal) in arb_calendar_pb(),
        // Around the 2024 DST changes of the test zones, on the 15-minute grid.
        around in prop_oneof![
            Just("2024-03-31T00:00:00Z"),
            Just("2024-10-27T00:00:00Z"),
            Just("2024-03-10T06:00:00Z"),
            Just("2024-11-03T06:00:00Z"),
            Just("2024-04-06T15:00:00Z"),
            Just("2024-10-05T15:00:00Z"),
            Just("2024-12-24T00:00:00Z"),
        ],
        from in -(4 * 24 * 4)..(4 * 24 * 4i64),
        length in 0..(4 * 24 * 4i64),
    ) {
        let start = at(around) + from * 15 * MINUTE;
        let end = start + length * 15 * MINUTE;
        prop_assert_eq!(cal.measure(start, end), reference(&pb, start, end));
    }

    #[test]
    fn measure_undoes_add(cal in arb_calendar(), start in arb_instant(), duration in 1i64..(40 * 24 * HOUR)) {
        let end = cal.add(start, duration);
        prop_assert!(end > start);
        prop_assert_eq!(cal.measure(start, end), duration);
        // And nothing earlier reaches it.
        prop_assert!(cal.measure(start, end - 1) < duration);
    }

    #[test]
    fn measure_is_additive_and_bounded(
        cal in arb_calendar(),
        a in arb_instant(),
        b in arb_instant(),
        c in arb_instant(),
    ) {
        let mut points = [a, b, c];
        points.sort_unstable();
        let [a, b, c] = points;
        prop_assert_eq!(cal.measure(a, b) + cal.measure(b, c), cal.measure(a, c));
        prop_assert!(cal.measure(a, c) <= c - a);
        prop_assert!(cal.measure(a, c) >= 0);
        prop_assert_eq!(cal.measure(c, a), 0);
    }

    #[test]
    fn add_is_monotone(
        cal in arb_calendar(),
        a in arb_instant(),
        b in arb_instant(),
        d in 0i64..(30 * 24 * HOUR),
        e in 0i64..(30 * 24 * HOUR),
    ) {
        let (a, b) = (a.min(b), a.max(b));
        let (d, e) = (d.min(e), d.max(e));
        prop_assert!(cal.add(a, d) <= cal.add(b, d));
        prop_assert!(cal.add(a, d) <= cal.add(a, e));
        prop_assert!(cal.add(a, d) >= a);
    }

    #[test]
    fn always_is_identity(a in any::<i64>(), d in any::<i64>()) {
        let always = BusinessCalendar::always();
        prop_assert_eq!(always.add(a, d), if d <= 0 { a } else { a.saturating_add(d) });
        prop_assert_eq!(always.measure(a, a.saturating_add(d.max(0))), a.saturating_add(d.max(0)) - a);
    }
}
