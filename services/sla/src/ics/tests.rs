#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use itsm_proto::itsm::sla::v1::WeeklySpan;

fn date(year: i32, month: i32, day: i32) -> Date {
    Date { year, month, day }
}

fn until() -> Date {
    date(2026, 12, 31)
}

fn ics(events: &str) -> Vec<u8> {
    format!("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n{events}END:VCALENDAR\r\n")
        .into_bytes()
}

fn span(start: (i32, i32), end: (i32, i32)) -> DaySpan {
    DaySpan {
        start: Some(TimeOfDay {
            hours: start.0,
            minutes: start.1,
            seconds: 0,
        }),
        end: Some(TimeOfDay {
            hours: end.0,
            minutes: end.1,
            seconds: 0,
        }),
    }
}

fn dates(parsed: &IcsHolidays) -> Vec<(i32, i32, i32)> {
    parsed
        .holidays
        .iter()
        .map(|h| {
            let d = h.date.unwrap();
            (d.year, d.month, d.day)
        })
        .collect()
}

#[test]
fn all_day_event_closes_its_day() {
    let parsed = parse_holidays(
        &ics("BEGIN:VEVENT\r\nUID:xmas-2024@example.com\r\nDTSTART;VALUE=DATE:20241225\r\nDTEND;VALUE=DATE:20241226\r\nSUMMARY:Christmas Day\r\nEND:VEVENT\r\n"),
        until(),
        "Europe/Berlin",
    )
    .unwrap();
    assert_eq!(parsed.warnings, Vec::<String>::new());
    assert_eq!(
        parsed.holidays,
        vec![Holiday {
            date: Some(date(2024, 12, 25)),
            display_name: "Christmas Day".to_string(),
            open_spans: vec![],
            origin: "ics:xmas-2024@example.com".to_string(),
        }]
    );
}

#[test]
fn multi_day_events_make_one_holiday_per_day() {
    let parsed = parse_holidays(
        &ics("BEGIN:VEVENT\nUID:break\nDTSTART;VALUE=DATE:20241230\nDTEND;VALUE=DATE:20250102\nSUMMARY:Year-end break\nEND:VEVENT\nBEGIN:VEVENT\nUID:week\nDTSTART:20250414\nDURATION:P1W\nSUMMARY:Easter week\nEND:VEVENT\n"),
        until(),
        "Europe/Berlin",
    )
    .unwrap();
    assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
    assert_eq!(
        dates(&parsed),
        [
            (2024, 12, 30),
            (2024, 12, 31),
            (2025, 1, 1),
            (2025, 4, 14),
            (2025, 4, 15),
            (2025, 4, 16),
            (2025, 4, 17),
            (2025, 4, 18),
            (2025, 4, 19),
            (2025, 4, 20),
        ]
    );
    assert!(parsed.holidays.iter().all(|h| h.open_spans.is_empty()));
    assert_eq!(parsed.holidays[0].origin, "ics:break");
    assert_eq!(parsed.holidays[3].display_name, "Easter week");
}

#[test]
fn timed_events_close_part_of_the_day() {
    // Christmas Eve from noon (Berlin), and a UTC event 10:00-11:00Z (11:00-12:00 local):
    // one holiday open 00:00-11:00.
    let parsed = parse_holidays(
        &ics("BEGIN:VEVENT\r\nUID:eve\r\nDTSTART;TZID=Europe/Berlin:20241224T120000\r\nDTEND;TZID=Europe/Berlin:20241225T000000\r\nSUMMARY:Christmas Eve afternoon\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\nUID:party\r\nDTSTART:20241224T100000Z\r\nDURATION:PT1H\r\nSUMMARY:Party\r\nEND:VEVENT\r\n"),
        until(),
        "Europe/Berlin",
    )
    .unwrap();
    assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
    assert_eq!(parsed.holidays.len(), 1);
    let eve = &parsed.holidays[0];
    assert_eq!(eve.date, Some(date(2024, 12, 24)));
    assert_eq!(eve.open_spans, vec![span((0, 0), (11, 0))]);
    assert_eq!(eve.display_name, "Christmas Eve afternoon / Party");
    assert_eq!(eve.origin, "ics:eve");

    // Narrowed to the calendar's Tuesday hours 08:00-12:00 and 13:00-17:00.
    let calendar = Calendar {
        time_zone: "Europe/Berlin".to_string(),
        weekly_spans: [((8, 0), (12, 0)), ((13, 0), (17, 0))]
            .iter()
            .map(|&(s, e)| WeeklySpan {
                day: 2,
                span: Some(span(s, e)),
            })
            .collect(),
        ..Default::default()
    };
    let mut fitted = parsed.clone();
    fitted.fit_to(&calendar);
    assert_eq!(fitted.holidays[0].open_spans, vec![span((8, 0), (11, 0))]);

    // A timed event in another zone lands on the calendar's local dates: 23:00-02:00
    // New York time is 05:00-08:00 in Berlin the next day.
    let parsed = parse_holidays(
        &ics("BEGIN:VEVENT\nUID:ny\nDTSTART;TZID=America/New_York:20240610T230000\nDTEND;TZID=America/New_York:20240611T020000\nEND:VEVENT\n"),
        until(),
        "Europe/Berlin",
    )
    .unwrap();
    assert_eq!(dates(&parsed), [(2024, 6, 11)]);
    assert_eq!(
        parsed.holidays[0].open_spans,
        vec![span((0, 0), (5, 0)), span((8, 0), (24, 0))]
    );
    // An event closing a whole day is a closed day; one crossing midnight closes two parts.
    let parsed = parse_holidays(
        &ics(
            "BEGIN:VEVENT\nUID:night\nDTSTART:20240610T220000\nDTEND:20240612T020000\nEND:VEVENT\n",
        ),
        until(),
        "Europe/Berlin",
    )
    .unwrap();
    assert_eq!(
        dates(&parsed),
        [(2024, 6, 10), (2024, 6, 11), (2024, 6, 12)]
    );
    assert_eq!(parsed.holidays[0].open_spans, vec![span((0, 0), (22, 0))]);
    assert!(parsed.holidays[1].open_spans.is_empty());
    assert_eq!(parsed.holidays[2].open_spans, vec![span((2, 0), (24, 0))]);
}

#[test]
fn yearly_rules_expand_up_to_expand_until() {
    let parsed = parse_holidays(
        &ics("BEGIN:VEVENT\nUID:newyear\nDTSTART;VALUE=DATE:20240101\nRRULE:FREQ=YEARLY\nSUMMARY:New Year\nEND:VEVENT\nBEGIN:VEVENT\nUID:thanks\nDTSTART;VALUE=DATE:20241128\nRRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=4TH\nSUMMARY:Thanksgiving\nEND:VEVENT\nBEGIN:VEVENT\nUID:memorial\nDTSTART;VALUE=DATE:20240527\nRRULE:FREQ=YEARLY;BYMONTH=5;BYDAY=-1MO;COUNT=2\nEXDATE;VALUE=DATE:20250526\nEND:VEVENT\n"),
        date(2026, 6, 30),
        "America/New_York",
    )
    .unwrap();
    assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
    assert_eq!(
        dates(&parsed),
        [
            (2024, 1, 1),
            (2024, 5, 27),
            (2024, 11, 28),
            (2025, 1, 1),
            (2025, 11, 27),
            (2026, 1, 1),
        ]
    );
    assert_eq!(parsed.holidays[4].display_name, "Thanksgiving");
    assert_eq!(parsed.holidays[4].origin, "ics:thanks");

    // Weekly with COUNT, daily with UNTIL.
    let parsed = parse_holidays(
        &ics("BEGIN:VEVENT\nUID:fridays\nDTSTART;VALUE=DATE:20240607\nRRULE:FREQ=WEEKLY;COUNT=3\nEND:VEVENT\nBEGIN:VEVENT\nUID:daily\nDTSTART;VALUE=DATE:20240801\nRRULE:FREQ=DAILY;INTERVAL=2;UNTIL=20240805\nEND:VEVENT\n"),
        until(),
        "UTC",
    )
    .unwrap();
    assert_eq!(
        dates(&parsed),
        [
            (2024, 6, 7),
            (2024, 6, 14),
            (2024, 6, 21),
            (2024, 8, 1),
            (2024, 8, 3),
            (2024, 8, 5)
        ]
    );
}

#[test]
fn timed_rules_skip_their_exdates() {
    // A weekly stand-down Friday 15:00-17:00 Berlin, three times, the second excluded by
    // its UTC instant; 15:00 Berlin is 13:00Z in summer.
    let parsed = parse_holidays(
        &ics("BEGIN:VEVENT\nUID:stand-down\nDTSTART;TZID=Europe/Berlin:20240607T150000\nDTEND;TZID=Europe/Berlin:20240607T170000\nRRULE:FREQ=WEEKLY;COUNT=3\nEXDATE:20240614T130000Z\nEND:VEVENT\n"),
        until(),
        "Europe/Berlin",
    )
    .unwrap();
    assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
    assert_eq!(dates(&parsed), [(2024, 6, 7), (2024, 6, 21)]);
    assert_eq!(
        parsed.holidays[1].open_spans,
        vec![span((0, 0), (15, 0)), span((17, 0), (24, 0))]
    );
}

#[test]
fn folded_lines_and_escapes() {
    let parsed = parse_holidays(
        b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:long-uid-\r\n that-continues\r\nSUMMARY:Tag der Deutschen\r\n\t Einheit\\, national\r\nDTSTART;VALUE=DATE:\r\n 20241003\r\nBEGIN:VALARM\r\nTRIGGER:-PT15M\r\nDTSTART:20200101T000000\r\nEND:VALARM\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
        until(),
        "Europe/Berlin",
    )
    .unwrap();
    assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
    assert_eq!(dates(&parsed), [(2024, 10, 3)]);
    assert_eq!(parsed.holidays[0].origin, "ics:long-uid-that-continues");
    assert_eq!(
        parsed.holidays[0].display_name,
        "Tag der Deutschen Einheit, national"
    );
}

#[test]
fn malformed_events_are_warnings() {
    let parsed = parse_holidays(
        &ics(concat!(
            "BEGIN:VEVENT\nUID:good\nDTSTART;VALUE=DATE:20240501\nEND:VEVENT\n",
            "BEGIN:VEVENT\nUID:nostart\nSUMMARY:x\nEND:VEVENT\n",
            "BEGIN:VEVENT\nUID:baddate\nDTSTART;VALUE=DATE:20240231\nEND:VEVENT\n",
            "BEGIN:VEVENT\nUID:monthly\nDTSTART;VALUE=DATE:20240101\nRRULE:FREQ=MONTHLY\nEND:VEVENT\n",
            "BEGIN:VEVENT\nUID:endless\nDTSTART;VALUE=DATE:20240101\nRRULE:FREQ=DAILY\nEND:VEVENT\n",
            "BEGIN:VEVENT\nUID:zone\nDTSTART;TZID=Mars/Base:20240101T100000\nDURATION:PT1H\nEND:VEVENT\n",
            "BEGIN:VEVENT\nUID:backwards\nDTSTART:20240101T100000\nDTEND:20240101T090000\nEND:VEVENT\n",
            "BEGIN:VEVENT\nUID:cancelled\nSTATUS:CANCELLED\nDTSTART;VALUE=DATE:20240102\nEND:VEVENT\n",
            "BEGIN:VEVENT\nDTSTART;VALUE=DATE:20240103\nEND:VEVENT\n",
        )),
        until(),
        "Europe/Berlin",
    )
    .unwrap();
    assert_eq!(dates(&parsed), [(2024, 5, 1)]);
    let prefixes: Vec<&str> = parsed
        .warnings
        .iter()
        .map(|w| w.split(':').next().unwrap())
        .collect();
    assert_eq!(
        prefixes,
        [
            "nostart",
            "baddate",
            "monthly",
            "endless",
            "zone",
            "backwards",
            "cancelled",
            "event 9"
        ],
        "{:?}",
        parsed.warnings
    );
    assert!(
        parsed.warnings[2].contains("MONTHLY"),
        "{}",
        parsed.warnings[2]
    );
}

#[test]
fn not_icalendar_is_an_error() {
    assert!(
        parse_holidays(b"hello, world", until(), "UTC")
            .unwrap_err()
            .contains("BEGIN:VCALENDAR")
    );
    assert!(parse_holidays(b"", until(), "UTC").is_err());
    assert!(parse_holidays(&ics(""), date(2024, 2, 30), "UTC").is_err());
    assert!(parse_holidays(&ics(""), until(), "Nowhere/Zone").is_err());
    // An empty calendar is fine: nothing to import.
    assert_eq!(
        parse_holidays(&ics(""), until(), "UTC").unwrap(),
        IcsHolidays::default()
    );
}

#[test]
fn imported_holidays_validate() {
    let parsed = parse_holidays(
        &ics("BEGIN:VEVENT\nUID:a\nDTSTART;VALUE=DATE:20240101\nRRULE:FREQ=YEARLY\nEND:VEVENT\nBEGIN:VEVENT\nUID:b\nDTSTART:20240101T100000\nDURATION:PT2H\nEND:VEVENT\nBEGIN:VEVENT\nUID:c\nDTSTART:20240102T100000\nDURATION:PT2H\nEND:VEVENT\n"),
        until(),
        "Europe/Berlin",
    )
    .unwrap();
    let calendar = Calendar {
        time_zone: "Europe/Berlin".to_string(),
        weekly_spans: vec![WeeklySpan {
            day: 2,
            span: Some(span((8, 0), (17, 0))),
        }],
        holidays: parsed.holidays.clone(),
        ..Default::default()
    };
    // The same date from two events is one holiday; all of it validates.
    assert_eq!(
        dates(&parsed),
        [(2024, 1, 1), (2024, 1, 2), (2025, 1, 1), (2026, 1, 1)]
    );
    assert!(parsed.holidays[0].open_spans.is_empty());
    assert_eq!(crate::calendar::validate(&calendar, "calendar"), vec![]);
}
