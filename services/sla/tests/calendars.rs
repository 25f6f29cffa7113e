//! Calendars over gRPC, through the real guard: create (idempotent), read by
//! version, list, update (a new version each time), delete, holiday import,
//! business-time arithmetic (a DST day, a holiday, a zone override), and
//! every bad input refused with the reason and nothing written.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/mod.rs"]
mod support;

use itsm_proto::itsm::sla::v1 as pb;
use itsm_testkit::{TestDb, backend_tests};
use tonic::Code;

use support::{
    ADMIN, AGENT, SERVICE, as_, at, bad_fields, date, hm, holiday, mask, office_hours,
    precondition, seconds, start, violations, weekly,
};

backend_tests!(
    a_calendar_is_created_once_read_listed_versioned_and_deleted,
    bad_calendars_are_refused_with_every_reason_and_nothing_written,
    updates_need_the_current_etag_and_a_valid_mask,
    a_calendar_in_use_by_an_enabled_definition_cannot_be_deleted,
    holidays_import_from_ics_in_each_mode,
    business_time_is_added_and_measured_over_grpc,
    bad_business_time_requests_name_the_field,
    agents_read_and_compute_but_cannot_change_calendars,
    racing_writers_make_one_calendar_and_one_version_per_etag,
);

fn create(id: &str, calendar: pb::Calendar, request_id: &str) -> pb::CreateCalendarRequest {
    pb::CreateCalendarRequest {
        calendar: Some(calendar),
        calendar_id: id.to_owned(),
        request_id: request_id.to_owned(),
    }
}

fn get(name: &str, version: i64) -> pb::GetCalendarRequest {
    pb::GetCalendarRequest {
        name: name.to_owned(),
        version,
    }
}

async fn a_calendar_is_created_once_read_listed_versioned_and_deleted(db: TestDb) {
    let mut svc = start(&db).await;
    let request = create(
        "eu-business-hours",
        office_hours("EU business hours", "Europe/Berlin"),
        "9b1c6f1e-1111-4f57-9d0c-1c2d3e4f5a6b",
    );
    let first = svc
        .client
        .create_calendar(as_(ADMIN, request.clone()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.name, "calendars/eu-business-hours");
    assert_eq!(first.version, 1);
    assert_eq!(first.etag, "v1");
    assert_eq!(first.created_by.as_ref().unwrap().subject, "root");
    assert_eq!(first.weekly_spans.len(), 5);
    let again = svc
        .client
        .create_calendar(as_(ADMIN, request))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again, first, "a retry returns the calendar created first");
    assert_eq!(svc.count("calendars").await, 1);
    let duplicate = svc
        .client
        .create_calendar(as_(
            ADMIN,
            create("eu-business-hours", office_hours("Other", "UTC"), ""),
        ))
        .await
        .unwrap_err();
    assert_eq!(duplicate.code(), Code::AlreadyExists);
    svc.create_calendar("us-east", office_hours("US east", "America/New_York"))
        .await;
    svc.create_calendar("apac", office_hours("APAC", "Asia/Singapore"))
        .await;

    // Update: a new version; the old one stays readable.
    let mut changed = first.clone();
    changed.display_name = "EU office hours".into();
    changed.weekly_spans.push(weekly(6, 10, 14));
    let v2 = svc
        .client
        .update_calendar(as_(
            ADMIN,
            pb::UpdateCalendarRequest {
                calendar: Some(changed),
                update_mask: Some(mask(&["display_name", "weekly_spans"])),
                etag: first.etag.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((v2.version, v2.etag.as_str()), (2, "v2"));
    assert_eq!(v2.display_name, "EU office hours");
    assert_eq!(v2.weekly_spans.len(), 6);
    assert!(
        v2.recompute_operation.starts_with("operations/"),
        "new hours recompute the open task SLAs on the calendar"
    );
    let current = svc
        .client
        .get_calendar(as_(AGENT, get(&first.name, 0)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(current, v2);
    let old = svc
        .client
        .get_calendar(as_(AGENT, get(&first.name, 1)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(old, first);
    let missing = svc
        .client
        .get_calendar(as_(AGENT, get(&first.name, 3)))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);

    let versions = svc
        .client
        .list_calendar_versions(as_(
            ADMIN,
            pb::ListCalendarVersionsRequest {
                name: first.name.clone(),
                page_size: 1,
                page_token: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(versions.calendars.len(), 1);
    assert_eq!(versions.calendars[0].version, 2, "newest first");
    let rest = svc
        .client
        .list_calendar_versions(as_(
            ADMIN,
            pb::ListCalendarVersionsRequest {
                name: first.name.clone(),
                page_size: 1,
                page_token: versions.next_page_token,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rest.calendars[0].version, 1);
    assert!(rest.next_page_token.is_empty());

    // List: keyset pages in name order, filters.
    let mut names = Vec::new();
    let mut token = String::new();
    loop {
        let page = svc
            .client
            .list_calendars(as_(
                AGENT,
                pb::ListCalendarsRequest {
                    page_size: 2,
                    page_token: token,
                    filter: String::new(),
                    order_by: String::new(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        names.extend(page.calendars.into_iter().map(|c| c.name));
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    assert_eq!(
        names,
        [
            "calendars/apac",
            "calendars/eu-business-hours",
            "calendars/us-east"
        ]
    );
    let berlin = svc
        .client
        .list_calendars(as_(
            AGENT,
            pb::ListCalendarsRequest {
                filter: "time_zone = \"Europe/Berlin\"".into(),
                ..pb::ListCalendarsRequest::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(berlin.calendars.len(), 1);
    assert_eq!(berlin.calendars[0].display_name, "EU office hours");
    let by_name = svc
        .client
        .list_calendars(as_(
            AGENT,
            pb::ListCalendarsRequest {
                filter: "display_name : \"us\"".into(),
                ..pb::ListCalendarsRequest::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(by_name.calendars.len(), 1);
    assert_eq!(by_name.calendars[0].name, "calendars/us-east");
    let bad_filter = svc
        .client
        .list_calendars(as_(
            AGENT,
            pb::ListCalendarsRequest {
                filter: "colour = \"red\"".into(),
                ..pb::ListCalendarsRequest::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(bad_filter.code(), Code::InvalidArgument);

    // Delete: gone from reads and lists; its versions are kept.
    svc.client
        .delete_calendar(as_(
            ADMIN,
            pb::DeleteCalendarRequest {
                name: first.name.clone(),
                etag: "v2".into(),
            },
        ))
        .await
        .unwrap();
    let gone = svc
        .client
        .get_calendar(as_(AGENT, get(&first.name, 0)))
        .await
        .unwrap_err();
    assert_eq!(gone.code(), Code::NotFound);
    assert_eq!(svc.count("calendar_versions").await, 4);
    assert_eq!(
        svc.event_names(&first.name).await,
        [
            "sla.calendar.created",
            "sla.calendar.updated",
            "sla.calendar.deleted"
        ]
    );
    let updated = svc
        .events()
        .await
        .into_iter()
        .find(|e| e.r#type == "sla.calendar.updated")
        .unwrap();
    let payload: pb::CalendarEvent =
        prost::Message::decode(updated.payload.unwrap().value.as_slice()).unwrap();
    assert_eq!(payload.calendar.unwrap().version, 2);
    let fields: Vec<String> = payload.changes.iter().map(|c| c.field.clone()).collect();
    assert_eq!(fields, ["display_name", "weekly_spans"]);
    let audit = svc
        .client
        .list_audit_entries(as_(
            ADMIN,
            pb::ListAuditEntriesRequest {
                parent: first.name.clone(),
                page_size: 0,
                page_token: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let actions: Vec<String> = audit.entries.iter().map(|e| e.action.clone()).collect();
    assert_eq!(actions, ["create", "update", "delete"]);
}

async fn bad_calendars_are_refused_with_every_reason_and_nothing_written(db: TestDb) {
    let mut svc = start(&db).await;
    let mut overlapping = office_hours("", "Mars/Olympus_Mons");
    overlapping.weekly_spans = vec![
        weekly(1, 9, 12),
        weekly(1, 11, 14),
        pb::WeeklySpan {
            day: 2,
            span: Some(pb::DaySpan {
                start: Some(hm(9, 0)),
                end: Some(hm(25, 0)),
            }),
        },
    ];
    let status = svc
        .client
        .create_calendar(as_(ADMIN, create("EU Hours", overlapping, "")))
        .await
        .unwrap_err();
    let found = violations(&status);
    let fields: Vec<&str> = found.iter().map(|(f, _)| f.as_str()).collect();
    assert!(fields.contains(&"calendar_id"), "{found:?}");
    assert!(fields.contains(&"calendar.display_name"), "{found:?}");
    let zone = found
        .iter()
        .find(|(f, _)| f == "calendar.time_zone")
        .expect("the unknown zone is named");
    assert!(zone.1.contains("Mars/Olympus_Mons"), "{zone:?}");
    assert!(
        found
            .iter()
            .any(|(f, d)| f.starts_with("calendar.weekly_spans[1]") && d.contains("overlaps")),
        "{found:?}"
    );
    assert!(
        found
            .iter()
            .any(|(f, d)| f.starts_with("calendar.weekly_spans[2]") && d.contains("25:00")),
        "{found:?}"
    );

    let mut never = office_hours("Never open", "Europe/Paris");
    never.weekly_spans.clear();
    let status = svc
        .client
        .create_calendar(as_(ADMIN, create("never", never, "")))
        .await
        .unwrap_err();
    let found = violations(&status);
    assert!(
        found
            .iter()
            .any(|(f, d)| f == "calendar.weekly_spans" && d.contains("no business time")),
        "{found:?}"
    );
    let status = svc
        .client
        .create_calendar(as_(ADMIN, create("", office_hours("No id", "UTC"), "")))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["calendar_id"]);
    assert_eq!(svc.count("calendars").await, 0);
    assert_eq!(svc.count("calendar_versions").await, 0);
    assert!(svc.events().await.is_empty());
}

async fn updates_need_the_current_etag_and_a_valid_mask(db: TestDb) {
    let mut svc = start(&db).await;
    let c = svc
        .create_calendar("ops", office_hours("Ops", "Europe/London"))
        .await;
    let update = |calendar: pb::Calendar, paths: &[&str], etag: &str| pb::UpdateCalendarRequest {
        calendar: Some(calendar),
        update_mask: Some(mask(paths)),
        etag: etag.to_owned(),
    };
    let mut changed = c.clone();
    changed.time_zone = "Europe/Lisbon".into();
    let v2 = svc
        .client
        .update_calendar(as_(ADMIN, update(changed.clone(), &["time_zone"], "v1")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((v2.version, v2.time_zone.as_str()), (2, "Europe/Lisbon"));
    let stale = svc
        .client
        .update_calendar(as_(ADMIN, update(changed.clone(), &["time_zone"], "v1")))
        .await
        .unwrap_err();
    assert_eq!(stale.code(), Code::Aborted);
    let status = svc
        .client
        .update_calendar(as_(
            ADMIN,
            update(changed.clone(), &["name", "version"], ""),
        ))
        .await
        .unwrap_err();
    assert_eq!(
        bad_fields(&status),
        ["update_mask.paths[0]", "update_mask.paths[1]", "etag"]
    );
    let mut bad = c.clone();
    bad.time_zone = "Europe/Atlantis".into();
    let status = svc
        .client
        .update_calendar(as_(ADMIN, update(bad, &["time_zone"], "v2")))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["calendar.time_zone"]);
    // Holidays by hand: a new version.
    let mut with_holiday = c.clone();
    with_holiday.holidays = vec![holiday(2025, 12, 25, "Christmas")];
    let v3 = svc
        .client
        .update_calendar(as_(ADMIN, update(with_holiday, &["holidays"], "v2")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(v3.version, 3);
    assert_eq!(v3.time_zone, "Europe/Lisbon", "only masked fields change");
    assert_eq!(v3.holidays[0].display_name, "Christmas");
    let missing = svc
        .client
        .update_calendar(as_(
            ADMIN,
            update(
                pb::Calendar {
                    name: "calendars/nope".into(),
                    ..office_hours("x", "UTC")
                },
                &["display_name"],
                "v1",
            ),
        ))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    assert_eq!(svc.count("calendar_versions").await, 3);
}

fn definition(calendar: &str) -> pb::SlaDefinition {
    pb::SlaDefinition {
        display_name: "P1 resolution".into(),
        kind: pb::SlaKind::Sla as i32,
        ticket_type: "incidents".into(),
        target: Some(seconds(4 * 3600)),
        calendar: calendar.to_owned(),
        stop_condition: "state = RESOLVED".into(),
        enabled: true,
        ..pb::SlaDefinition::default()
    }
}

async fn a_calendar_in_use_by_an_enabled_definition_cannot_be_deleted(db: TestDb) {
    let mut svc = start(&db).await;
    let c = svc
        .create_calendar("eu", office_hours("EU", "Europe/Berlin"))
        .await;
    let d = svc
        .client
        .create_sla_definition(as_(
            ADMIN,
            pb::CreateSlaDefinitionRequest {
                sla_definition: Some(definition(&c.name)),
                sla_definition_id: "p1-resolution".into(),
                request_id: String::new(),
                validate_only: false,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let delete = pb::DeleteCalendarRequest {
        name: c.name.clone(),
        etag: String::new(),
    };
    let status = svc
        .client
        .delete_calendar(as_(ADMIN, delete.clone()))
        .await
        .unwrap_err();
    let (kind, subject, description) = precondition(&status);
    assert_eq!(kind, "CALENDAR_IN_USE");
    assert_eq!(subject, c.name);
    assert!(
        description.contains("slaDefinitions/p1-resolution"),
        "{description}"
    );
    let mut disabled = d.clone();
    disabled.enabled = false;
    svc.client
        .update_sla_definition(as_(
            ADMIN,
            pb::UpdateSlaDefinitionRequest {
                sla_definition: Some(disabled),
                update_mask: Some(mask(&["enabled"])),
                etag: d.etag.clone(),
                recompute_open_task_slas: false,
                validate_only: false,
            },
        ))
        .await
        .unwrap();
    svc.client
        .delete_calendar(as_(ADMIN, delete))
        .await
        .unwrap();
    // Its calendar gone, the definition cannot be enabled again.
    let mut enabled = d.clone();
    enabled.enabled = true;
    let status = svc
        .client
        .update_sla_definition(as_(
            ADMIN,
            pb::UpdateSlaDefinitionRequest {
                sla_definition: Some(enabled),
                update_mask: Some(mask(&["enabled"])),
                etag: "v2".into(),
                recompute_open_task_slas: false,
                validate_only: false,
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["sla_definition.calendar"]);
}

const ICS: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n\
BEGIN:VEVENT\r\nUID:xmas-2025\r\nDTSTART;VALUE=DATE:20251225\r\nSUMMARY:Christmas Day\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:boxing-2025\r\nDTSTART;VALUE=DATE:20251226\r\nSUMMARY:Boxing Day\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:broken\r\nSUMMARY:No start\r\nEND:VEVENT\r\n\
END:VCALENDAR\r\n";

async fn holidays_import_from_ics_in_each_mode(db: TestDb) {
    let mut svc = start(&db).await;
    let mut calendar = office_hours("UK", "Europe/London");
    calendar.holidays = vec![
        holiday(2025, 12, 24, "Christmas Eve"),
        holiday(2025, 12, 31, "New Year's Eve"),
        holiday(2026, 1, 1, "New Year"),
    ];
    let c = svc.create_calendar("uk", calendar).await;
    let import =
        |mode: pb::HolidayImportMode, validate_only: bool| pb::ImportCalendarHolidaysRequest {
            name: "calendars/uk".into(),
            ics_content: ICS.as_bytes().to_vec(),
            mode: mode as i32,
            expand_until: Some(date(2030, 1, 1)),
            validate_only,
            etag: String::new(),
        };
    // validate_only: counts, stores nothing.
    let dry = svc
        .client
        .import_calendar_holidays(as_(ADMIN, import(pb::HolidayImportMode::Merge, true)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (dry.added_count, dry.updated_count, dry.removed_count),
        (2, 0, 0)
    );
    assert_eq!(dry.calendar.as_ref().unwrap().version, 1);
    assert_eq!(dry.warnings.len(), 1, "{:?}", dry.warnings);
    assert!(dry.warnings[0].contains("broken"), "{:?}", dry.warnings);
    assert_eq!(svc.count("calendar_versions").await, 1);

    let merged = svc
        .client
        .import_calendar_holidays(as_(ADMIN, import(pb::HolidayImportMode::Merge, false)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (
            merged.added_count,
            merged.updated_count,
            merged.removed_count
        ),
        (2, 0, 0)
    );
    let v2 = merged.calendar.unwrap();
    assert_eq!(v2.version, 2);
    let dates: Vec<(i32, i32)> = v2
        .holidays
        .iter()
        .map(|h| {
            let d = h.date.unwrap();
            (d.month, d.day)
        })
        .collect();
    assert_eq!(dates, [(12, 24), (12, 25), (12, 26), (12, 31), (1, 1)]);
    let xmas = &v2.holidays[1];
    assert_eq!(xmas.origin, "ics:xmas-2025");
    assert_eq!(xmas.display_name, "Christmas Day");
    // The same file again changes nothing: no new version.
    let again = svc
        .client
        .import_calendar_holidays(as_(ADMIN, import(pb::HolidayImportMode::Merge, false)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (again.added_count, again.updated_count, again.removed_count),
        (0, 0, 0)
    );
    assert_eq!(again.calendar.unwrap().version, 2);

    // REPLACE_RANGE: the file covers 12-25..12-26; the days around stay.
    let mut by_hand = v2.clone();
    by_hand.holidays = vec![
        holiday(2025, 12, 24, "Christmas Eve"),
        holiday(2025, 12, 25, "Hand-made"),
        holiday(2025, 12, 31, "New Year's Eve"),
        holiday(2026, 1, 1, "New Year"),
    ];
    svc.client
        .update_calendar(as_(
            ADMIN,
            pb::UpdateCalendarRequest {
                calendar: Some(by_hand),
                update_mask: Some(mask(&["holidays"])),
                etag: "v2".into(),
            },
        ))
        .await
        .unwrap();
    let replaced = svc
        .client
        .import_calendar_holidays(as_(
            ADMIN,
            import(pb::HolidayImportMode::ReplaceRange, false),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (
            replaced.added_count,
            replaced.updated_count,
            replaced.removed_count
        ),
        (1, 1, 0)
    );
    let v4 = replaced.calendar.unwrap();
    assert_eq!(v4.version, 4);
    let names: Vec<&str> = v4
        .holidays
        .iter()
        .map(|h| h.display_name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "Christmas Eve",
            "Christmas Day",
            "Boxing Day",
            "New Year's Eve",
            "New Year"
        ]
    );

    // REPLACE_ALL: only the file's holidays remain.
    let all = svc
        .client
        .import_calendar_holidays(as_(ADMIN, import(pb::HolidayImportMode::ReplaceAll, false)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (all.added_count, all.updated_count, all.removed_count),
        (0, 0, 3)
    );
    let v5 = all.calendar.unwrap();
    assert_eq!(v5.version, 5);
    assert_eq!(v5.holidays.len(), 2);
    assert_eq!(
        svc.event_names(&c.name).await,
        [
            "sla.calendar.created",
            "sla.calendar.holidays_imported",
            "sla.calendar.updated",
            "sla.calendar.holidays_imported",
            "sla.calendar.holidays_imported"
        ]
    );

    // Refused: too large, not iCalendar, stale etag.
    let mut huge = import(pb::HolidayImportMode::Merge, false);
    huge.ics_content = vec![b'x'; 1024 * 1024 + 1];
    let status = svc
        .client
        .import_calendar_holidays(as_(ADMIN, huge))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["ics_content"]);
    let mut junk = import(pb::HolidayImportMode::Merge, false);
    junk.ics_content = b"hello".to_vec();
    let status = svc
        .client
        .import_calendar_holidays(as_(ADMIN, junk))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["ics_content"]);
    let mut stale = import(pb::HolidayImportMode::ReplaceAll, false);
    stale.etag = "v1".into();
    let status = svc
        .client
        .import_calendar_holidays(as_(ADMIN, stale))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Aborted);
    assert_eq!(svc.count("calendar_versions").await, 5);
}

fn add(
    calendar: &str,
    version: i64,
    zone: &str,
    from: &str,
    secs: i64,
) -> pb::AddBusinessTimeRequest {
    pb::AddBusinessTimeRequest {
        calendar: calendar.to_owned(),
        calendar_version: version,
        time_zone: zone.to_owned(),
        start_time: Some(at(from)),
        duration: Some(seconds(secs)),
    }
}

fn measure(
    calendar: &str,
    version: i64,
    zone: &str,
    from: &str,
    to: &str,
) -> pb::MeasureBusinessTimeRequest {
    pb::MeasureBusinessTimeRequest {
        calendar: calendar.to_owned(),
        calendar_version: version,
        time_zone: zone.to_owned(),
        start_time: Some(at(from)),
        end_time: Some(at(to)),
    }
}

async fn business_time_is_added_and_measured_over_grpc(db: TestDb) {
    let mut svc = start(&db).await;
    // 24x7 without a calendar.
    let r = svc
        .client
        .add_business_time(as_(SERVICE, add("", 0, "", "2025-03-03T10:00:00Z", 5400)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.end_time.unwrap(), at("2025-03-03T11:30:00Z"));
    assert_eq!(r.calendar_version, 0);

    // A DST day: Sundays all day in Berlin; 2025-03-30 has 23 hours.
    let mut sundays = office_hours("Sundays", "Europe/Berlin");
    sundays.weekly_spans = vec![weekly(7, 0, 24)];
    svc.create_calendar("sundays", sundays).await;
    let r = svc
        .client
        .measure_business_time(as_(
            SERVICE,
            measure(
                "calendars/sundays",
                0,
                "",
                "2025-03-29T23:00:00Z",
                "2025-03-30T22:00:00Z",
            ),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.duration.unwrap(), seconds(23 * 3600));
    assert_eq!(r.time_zone, "Europe/Berlin");
    assert_eq!(r.calendar_version, 1);
    // 3 business hours from local midnight: 00:00-02:00 CET, then 03:00-04:00 CEST.
    let r = svc
        .client
        .add_business_time(as_(
            SERVICE,
            add("calendars/sundays", 0, "", "2025-03-29T23:00:00Z", 3 * 3600),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.end_time.unwrap(), at("2025-03-30T02:00:00Z"));

    // A holiday added in version 2: version 1 still computes without it.
    let c = svc
        .create_calendar("eu", office_hours("EU", "Europe/Berlin"))
        .await;
    // Computed (and cached) before the holiday exists.
    let r = svc
        .client
        .add_business_time(as_(
            AGENT,
            add("calendars/eu", 0, "", "2025-12-24T16:00:00Z", 8 * 3600),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.end_time.unwrap(), at("2025-12-25T16:00:00Z"));
    let mut with_holiday = c.clone();
    with_holiday.holidays = vec![holiday(2025, 12, 25, "Christmas")];
    svc.client
        .update_calendar(as_(
            ADMIN,
            pb::UpdateCalendarRequest {
                calendar: Some(with_holiday),
                update_mask: Some(mask(&["holidays"])),
                etag: "v1".into(),
            },
        ))
        .await
        .unwrap();
    // 8 business hours from Wednesday 24th 17:00 CET: Thursday is closed, Friday 09-17.
    let r = svc
        .client
        .add_business_time(as_(
            AGENT,
            add("calendars/eu", 0, "", "2025-12-24T16:00:00Z", 8 * 3600),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.end_time.unwrap(), at("2025-12-26T16:00:00Z"));
    assert_eq!(r.calendar_version, 2);
    let r = svc
        .client
        .add_business_time(as_(
            AGENT,
            add("calendars/eu", 1, "", "2025-12-24T16:00:00Z", 8 * 3600),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.end_time.unwrap(), at("2025-12-25T16:00:00Z"));
    assert_eq!(r.calendar_version, 1);
    let r = svc
        .client
        .measure_business_time(as_(
            AGENT,
            measure(
                "calendars/eu",
                0,
                "",
                "2025-12-24T08:00:00Z",
                "2025-12-27T00:00:00Z",
            ),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.duration.unwrap(), seconds(16 * 3600));
    // Zone override: the same hours in New York are not yet open at 12:00Z.
    let r = svc
        .client
        .measure_business_time(as_(
            AGENT,
            measure(
                "calendars/eu",
                0,
                "",
                "2025-12-22T00:00:00Z",
                "2025-12-22T12:00:00Z",
            ),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.duration.unwrap(), seconds(4 * 3600));
    let r = svc
        .client
        .measure_business_time(as_(
            AGENT,
            measure(
                "calendars/eu",
                0,
                "America/New_York",
                "2025-12-22T00:00:00Z",
                "2025-12-22T12:00:00Z",
            ),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.duration.unwrap(), seconds(0));
    assert_eq!(r.time_zone, "America/New_York");
}

async fn bad_business_time_requests_name_the_field(db: TestDb) {
    let mut svc = start(&db).await;
    svc.create_calendar("eu", office_hours("EU", "Europe/Berlin"))
        .await;
    let status = svc
        .client
        .add_business_time(as_(
            AGENT,
            add("calendars/eu", 0, "Mars/Base", "2025-01-01T00:00:00Z", 60),
        ))
        .await
        .unwrap_err();
    let found = violations(&status);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, "time_zone");
    assert!(found[0].1.contains("Mars/Base"), "{found:?}");
    let status = svc
        .client
        .add_business_time(as_(
            AGENT,
            add("", 0, "Mars/Base", "2025-01-01T00:00:00Z", 60),
        ))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["time_zone"]);
    let status = svc
        .client
        .add_business_time(as_(
            AGENT,
            add("calendars/eu", 0, "", "2025-01-01T00:00:00Z", -1),
        ))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["duration"]);
    let status = svc
        .client
        .measure_business_time(as_(
            AGENT,
            measure(
                "calendars/eu",
                0,
                "",
                "2025-01-02T00:00:00Z",
                "2025-01-01T00:00:00Z",
            ),
        ))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["end_time"]);
    let status = svc
        .client
        .measure_business_time(as_(
            AGENT,
            pb::MeasureBusinessTimeRequest {
                calendar: "calendars/eu".into(),
                ..pb::MeasureBusinessTimeRequest::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["start_time", "end_time"]);
    let status = svc
        .client
        .add_business_time(as_(
            AGENT,
            add("calendars/nope", 0, "", "2025-01-01T00:00:00Z", 60),
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let status = svc
        .client
        .add_business_time(as_(AGENT, add("eu", 0, "", "2025-01-01T00:00:00Z", 60)))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["calendar"]);
    let status = svc
        .client
        .add_business_time(as_(
            AGENT,
            add("calendars/eu", 7, "", "2025-01-01T00:00:00Z", 60),
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
}

async fn agents_read_and_compute_but_cannot_change_calendars(db: TestDb) {
    let mut svc = start(&db).await;
    let status = svc
        .client
        .create_calendar(as_(
            AGENT,
            create("eu", office_hours("EU", "Europe/Berlin"), ""),
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(svc.count("calendars").await, 0);
    let c = svc
        .create_calendar("eu", office_hours("EU", "Europe/Berlin"))
        .await;
    svc.client
        .get_calendar(as_(AGENT, get(&c.name, 0)))
        .await
        .unwrap();
    let status = svc
        .client
        .delete_calendar(as_(
            AGENT,
            pb::DeleteCalendarRequest {
                name: c.name.clone(),
                etag: String::new(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    let status = svc
        .client
        .list_calendar_versions(as_(
            AGENT,
            pb::ListCalendarVersionsRequest {
                name: c.name.clone(),
                ..pb::ListCalendarVersionsRequest::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    // Every RPC is built: a request the admin may send is judged on its merits.
    let judged = svc
        .client
        .get_compliance_report(as_(ADMIN, pb::GetComplianceReportRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&judged), ["period"]);
}

async fn racing_writers_make_one_calendar_and_one_version_per_etag(db: TestDb) {
    let svc = start(&db).await;
    // The same request retried concurrently: one calendar, every caller gets it.
    let mut racers = tokio::task::JoinSet::new();
    for _ in 0..6 {
        let mut client = svc.client().await;
        racers.spawn(async move {
            let request = create(
                "race",
                office_hours("Race", "Europe/Madrid"),
                "0d4b3c2a-5555-4f57-9d0c-1c2d3e4f5a6b",
            );
            client
                .create_calendar(as_(ADMIN, request))
                .await
                .map(tonic::Response::into_inner)
        });
    }
    let results: Vec<_> = racers.join_all().await;
    let first = results[0].as_ref().unwrap().clone();
    for result in &results {
        assert_eq!(result.as_ref().unwrap(), &first);
    }
    // Different requests for one id: one wins, the others are told it exists.
    let mut racers = tokio::task::JoinSet::new();
    for i in 0..6 {
        let mut client = svc.client().await;
        racers.spawn(async move {
            let request = create("contested", office_hours(&format!("C{i}"), "UTC"), "");
            client
                .create_calendar(as_(ADMIN, request))
                .await
                .map(|_| ())
        });
    }
    let results: Vec<_> = racers.join_all().await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    for result in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!(result.code(), Code::AlreadyExists, "{result:?}");
    }
    // Concurrent updates from one etag: one new version, the others ABORTED.
    let mut racers = tokio::task::JoinSet::new();
    for i in 0..6 {
        let mut client = svc.client().await;
        let mut changed = first.clone();
        changed.display_name = format!("Race {i}");
        racers.spawn(async move {
            let request = pb::UpdateCalendarRequest {
                calendar: Some(changed),
                update_mask: Some(mask(&["display_name"])),
                etag: "v1".into(),
            };
            client
                .update_calendar(as_(ADMIN, request))
                .await
                .map(|_| ())
        });
    }
    let results: Vec<_> = racers.join_all().await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    for result in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!(result.code(), Code::Aborted, "{result:?}");
    }
    assert_eq!(svc.count("calendars").await, 2);
    assert_eq!(svc.count("calendar_versions").await, 3);
}
