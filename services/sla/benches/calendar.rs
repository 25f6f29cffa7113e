//! Business-time arithmetic over a year of a realistic calendar (issue 6: under 2 µs per
//! add/measure): Mon-Fri 08:00-12:00 and 13:00-17:00 in Europe/Berlin with 10 holidays,
//! instants spread over 2025, durations from minutes to weeks.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use itsm_proto::itsm::common::v1::{Date, TimeOfDay};
use itsm_proto::itsm::sla::v1::{Calendar, DaySpan, Holiday, WeeklySpan};
use itsm_sla::calendar::BusinessCalendar;

const SECOND: i64 = 1_000_000;
const HOUR: i64 = 3600 * SECOND;
/// 2025-01-01T00:00:00Z.
const YEAR_START: i64 = 1_735_689_600 * SECOND;
const YEAR: i64 = 365 * 24 * HOUR;

fn span(start: i32, end: i32) -> DaySpan {
    let time = |h: i32| TimeOfDay {
        hours: h,
        minutes: 0,
        seconds: 0,
    };
    DaySpan {
        start: Some(time(start)),
        end: Some(time(end)),
    }
}

fn calendar() -> Calendar {
    let weekly_spans = (1..=5)
        .flat_map(|day| {
            [(8, 12), (13, 17)].map(|(s, e)| WeeklySpan {
                day,
                span: Some(span(s, e)),
            })
        })
        .collect();
    let holidays = [
        (1, 1),
        (4, 18),
        (4, 21),
        (5, 1),
        (5, 29),
        (6, 9),
        (10, 3),
        (12, 24),
        (12, 25),
        (12, 26),
    ]
    .iter()
    .map(|&(month, day)| Holiday {
        date: Some(Date {
            year: 2025,
            month,
            day,
        }),
        display_name: "holiday".to_string(),
        open_spans: if (month, day) == (12, 24) {
            vec![span(8, 12)]
        } else {
            vec![]
        },
        origin: String::new(),
    })
    .collect();
    Calendar {
        time_zone: "Europe/Berlin".to_string(),
        weekly_spans,
        holidays,
        ..Default::default()
    }
}

/// Deterministic pseudo-random numbers (an LCG): the same inputs every run.
fn numbers(count: usize, seed: u64) -> impl Iterator<Item = u64> {
    let mut state = seed;
    (0..count).map(move |_| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        state >> 11
    })
}

fn bench(c: &mut Criterion) {
    let calendar = calendar();
    let cal = BusinessCalendar::compile(&calendar, "").unwrap();
    let starts: Vec<i64> = numbers(4096, 1)
        .map(|n| YEAR_START + (n % (YEAR as u64 / SECOND as u64)) as i64 * SECOND)
        .collect();
    // From one minute to three weeks of business time (120 hours).
    let durations: Vec<i64> = numbers(4096, 2)
        .map(|n| 60 * SECOND + (n % (120 * 3600)) as i64 * SECOND)
        .collect();
    let ends: Vec<i64> = starts
        .iter()
        .zip(numbers(4096, 3))
        .map(|(s, n)| s + (n % (90 * 24 * 3600)) as i64 * SECOND)
        .collect();

    let mut i = 0;
    c.bench_function("add (2025, 1 min .. 120 h)", |b| {
        b.iter(|| {
            i = (i + 1) & 4095;
            black_box(cal.add(black_box(starts[i]), black_box(durations[i])))
        })
    });
    let mut i = 0;
    c.bench_function("measure (2025, up to 90 days)", |b| {
        b.iter(|| {
            i = (i + 1) & 4095;
            black_box(cal.measure(black_box(starts[i]), black_box(ends[i])))
        })
    });
    c.bench_function("measure (a whole year)", |b| {
        b.iter(|| black_box(cal.measure(black_box(YEAR_START), black_box(YEAR_START + YEAR))))
    });
    c.bench_function("add (a whole year of business time, 2,000 h)", |b| {
        b.iter(|| black_box(cal.add(black_box(YEAR_START), black_box(2_000 * HOUR))))
    });
    // What a caller pays when it compiles per request: compile, then the first add builds
    // the year's table.
    c.bench_function("compile + first add (cold)", |b| {
        b.iter(|| {
            let cal = BusinessCalendar::compile(black_box(&calendar), "").unwrap();
            black_box(cal.add(starts[0], durations[0]))
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
