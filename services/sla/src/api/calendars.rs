//! Business-hours calendars: create, read, list, update, delete, their
//! versions, and iCalendar holiday import. Every change is a new version row,
//! an audit entry and a `CalendarEvent`, in one transaction.

use std::collections::BTreeMap;

use itsm_platform::{ApiError, ErrorCode, Violations};
use itsm_proto::itsm::common::v1 as common;
use itsm_proto::itsm::sla::v1 as pb;
use itsm_store::audit::FieldChange;
use itsm_store::idempotency::{self, Claim};
use itsm_store::list::ListRequest;
use itsm_store::query::SqlValue;
use itsm_store::{StoreError, etag, page};
use prost::Message as _;

use super::SlaApi;
use super::call::{self, Call, Change};
use crate::calendar;
use crate::ics;
use crate::operations;
use crate::store::{self, calendars as rows, versioned};

const CREATED: &str = "sla.calendar.created";
const UPDATED: &str = "sla.calendar.updated";
const HOLIDAYS_IMPORTED: &str = "sla.calendar.holidays_imported";
const DELETED: &str = "sla.calendar.deleted";

/// What UpdateCalendar may change.
const EDITABLE: &[&str] = &[
    "display_name",
    "description",
    "time_zone",
    "weekly_spans",
    "holidays",
];

/// The largest .ics file ImportCalendarHolidays accepts.
const MAX_ICS_BYTES: usize = 1024 * 1024;

/// The id of a calendar name sent in `field`.
pub(super) fn id_of<'a>(name: &'a str, field: &str) -> Result<&'a str, ApiError> {
    rows::id_of(name).ok_or_else(|| {
        ApiError::invalid_field(
            field,
            format!("\"{name}\" is not a calendar name; expected \"calendars/<id>\""),
        )
    })
}

fn event(c: &pb::Calendar, changes: &[FieldChange]) -> prost_types::Any {
    let event = pb::CalendarEvent {
        calendar: Some(c.clone()),
        changes: call::field_changes(changes),
    };
    call::payload("CalendarEvent", &event)
}

/// Checks a calendar's content, naming every bad field under "calendar".
fn check(c: &pb::Calendar, v: &mut Violations) {
    if c.display_name.trim().is_empty() {
        v.add(
            "calendar.display_name",
            "is required, e.g. \"EU business hours\"",
        );
    }
    for error in calendar::validate(c, "calendar") {
        v.add(error.field, error.description);
    }
}

fn time_of_day(t: Option<&common::TimeOfDay>) -> String {
    let t = t.copied().unwrap_or_default();
    if t.seconds == 0 {
        format!("{:02}:{:02}", t.hours, t.minutes)
    } else {
        format!("{:02}:{:02}:{:02}", t.hours, t.minutes, t.seconds)
    }
}

fn span_text(s: &pb::DaySpan) -> String {
    format!(
        "{}-{}",
        time_of_day(s.start.as_ref()),
        time_of_day(s.end.as_ref())
    )
}

fn date_text(d: Option<&common::Date>) -> String {
    let d = d.copied().unwrap_or_default();
    format!("{:04}-{:02}-{:02}", d.year, d.month, d.day)
}

/// The weekly spans as one line: "MONDAY 09:00-17:00, TUESDAY ...".
fn weekly_text(spans: &[pb::WeeklySpan]) -> String {
    spans
        .iter()
        .map(|w| {
            let day = common::DayOfWeek::try_from(w.day)
                .unwrap_or_default()
                .as_str_name()
                .trim_start_matches("DAY_OF_WEEK_")
                .to_owned();
            format!(
                "{day} {}",
                w.span.as_ref().map(span_text).unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The holidays as one line: "2025-12-25 closed, 2025-12-24 09:00-12:00".
fn holidays_text(holidays: &[pb::Holiday]) -> String {
    holidays
        .iter()
        .map(|h| {
            let hours = if h.open_spans.is_empty() {
                "closed".to_owned()
            } else {
                h.open_spans
                    .iter()
                    .map(span_text)
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            format!("{} {hours}", date_text(h.date.as_ref()))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The audit changes from `before` to `after`.
fn changes(before: &pb::Calendar, after: &pb::Calendar) -> Vec<FieldChange> {
    let mut changes = Vec::new();
    let mut field = |name: &str, old: String, new: String| {
        if old != new {
            changes.push(FieldChange::new(name, old, new));
        }
    };
    field(
        "display_name",
        before.display_name.clone(),
        after.display_name.clone(),
    );
    field(
        "description",
        before.description.clone(),
        after.description.clone(),
    );
    field(
        "time_zone",
        before.time_zone.clone(),
        after.time_zone.clone(),
    );
    field(
        "weekly_spans",
        weekly_text(&before.weekly_spans),
        weekly_text(&after.weekly_spans),
    );
    field(
        "holidays",
        holidays_text(&before.holidays),
        holidays_text(&after.holidays),
    );
    changes
}

/// `c` as the next version, made by `call` at `now`.
fn next_version(c: &mut pb::Calendar, call: &Call, now: i64) {
    c.version += 1;
    c.etag = etag::from_version(c.version);
    c.updated_by = Some(call::principal(call));
    c.update_time = Some(itsm_store::audit::timestamp(now));
    // The recomputation of open task SLAs a change starts is not built yet.
    c.recompute_operation.clear();
}

fn date_key(d: Option<&common::Date>) -> (i32, i32, i32) {
    let d = d.copied().unwrap_or_default();
    (d.year, d.month, d.day)
}

/// What an import does to the holidays: the new list and the counts
/// (added, updated, removed). A date the mode removed that the file brings
/// back counts as updated (or not at all when it is the same holiday).
fn merge_holidays(
    existing: &[pb::Holiday],
    imported: Vec<pb::Holiday>,
    mode: pb::HolidayImportMode,
) -> (Vec<pb::Holiday>, i32, i32, i32) {
    let count = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
    let first = imported.iter().map(|h| date_key(h.date.as_ref())).min();
    let last = imported.iter().map(|h| date_key(h.date.as_ref())).max();
    let mut kept: BTreeMap<(i32, i32, i32), pb::Holiday> = BTreeMap::new();
    let mut removed: BTreeMap<(i32, i32, i32), pb::Holiday> = BTreeMap::new();
    for h in existing {
        let key = date_key(h.date.as_ref());
        let replaced = match mode {
            pb::HolidayImportMode::ReplaceAll => true,
            pb::HolidayImportMode::ReplaceRange => {
                matches!((first, last), (Some(f), Some(l)) if f <= key && key <= l)
            }
            _ => false,
        };
        if replaced {
            removed.insert(key, h.clone());
        } else {
            kept.insert(key, h.clone());
        }
    }
    let (mut added, mut updated) = (0, 0);
    for h in imported {
        let key = date_key(h.date.as_ref());
        let before = removed.remove(&key).or_else(|| kept.get(&key).cloned());
        match before {
            Some(old) if old == h => {}
            Some(_) => updated += 1,
            None => added += 1,
        }
        kept.insert(key, h);
    }
    (
        kept.into_values().collect(),
        count(added),
        count(updated),
        count(removed.len()),
    )
}

impl SlaApi {
    pub(super) async fn create_calendar(
        &self,
        call: &Call,
        request: pb::CreateCalendarRequest,
    ) -> Result<pb::Calendar, ApiError> {
        let id = request.calendar_id.clone();
        let sent = request.calendar.clone().unwrap_or_default();
        let mut v = Violations::new();
        call::check_id(&id, "calendar_id", "eu-business-hours", &mut v);
        let now = itsm_store::now_micros();
        let time = itsm_store::audit::timestamp(now);
        let name = format!("calendars/{id}");
        let c = pb::Calendar {
            name: name.clone(),
            display_name: sent.display_name.trim().to_owned(),
            description: sent.description,
            time_zone: sent.time_zone.trim().to_owned(),
            weekly_spans: sent.weekly_spans,
            holidays: sent.holidays,
            version: 1,
            recompute_operation: String::new(),
            created_by: Some(call::principal(call)),
            create_time: Some(time),
            updated_by: Some(call::principal(call)),
            update_time: Some(time),
            etag: etag::from_version(1),
            tenant: String::new(),
        };
        check(&c, &mut v);
        v.into_result()?;

        let mut tx = self.db.begin().await?;
        if !request.request_id.is_empty() {
            let mut unkeyed = request.clone();
            unkeyed.request_id.clear();
            let hash = idempotency::hash_request(&unkeyed.encode_to_vec());
            let claim =
                idempotency::claim(&mut tx, "CreateCalendar", &request.request_id, &hash).await?;
            if let Claim::Replay { resource } = claim {
                let first =
                    rows::select(&mut tx, rows::id_of(&resource).unwrap_or_default(), 0).await?;
                return first.ok_or_else(|| ApiError::not_found(resource));
            }
        }
        let lock = self.db.backend().lock_suffix();
        if let Some((deleted, _)) = rows::select_for_write(&mut tx, &id, lock).await? {
            return Err(call::already_exists(&name, deleted));
        }
        rows::insert(&mut tx, &id, &c, now).await.map_err(|e| {
            if e.is_unique_violation() {
                call::already_exists(&name, false)
            } else {
                e.into()
            }
        })?;
        let changes = changes(&pb::Calendar::default(), &c);
        let change = Change {
            resource: &name,
            version: 1,
            action: "create",
            event_type: CREATED,
            payload: event(&c, &changes),
            changes,
        };
        call::record(&mut tx, call, change, now).await?;
        if !request.request_id.is_empty() {
            idempotency::complete(&mut tx, "CreateCalendar", &request.request_id, &name).await?;
        }
        tx.commit().await.map_err(StoreError::from)?;
        Ok(c)
    }

    pub(super) async fn get_calendar(
        &self,
        _call: &Call,
        request: pb::GetCalendarRequest,
    ) -> Result<pb::Calendar, ApiError> {
        let id = id_of(&request.name, "name")?;
        if request.version < 0 {
            return Err(ApiError::invalid_field(
                "version",
                "must be a version number (1, 2, ...) or 0 for the current one",
            ));
        }
        let mut conn = self.db.pool().acquire().await.map_err(StoreError::from)?;
        let found = rows::select(&mut conn, id, request.version).await?;
        found.ok_or_else(|| match request.version {
            0 => ApiError::not_found(&request.name),
            v => ApiError::not_found(format!("{} version {v}", request.name)),
        })
    }

    pub(super) async fn list_calendars(
        &self,
        _call: &Call,
        request: pb::ListCalendarsRequest,
    ) -> Result<pb::ListCalendarsResponse, ApiError> {
        let tokens = self.tokens().await?;
        let list = ListRequest {
            page_size: request.page_size,
            page_token: &request.page_token,
            filter: &request.filter,
            order_by: &request.order_by,
        };
        let (docs, next_page_token) =
            store::select_text_keyed_page(&self.db, rows::SELECT, &rows::SCHEMA, "", &list, tokens)
                .await?;
        let calendars = docs
            .iter()
            .map(|d| store::decode("calendars", d))
            .collect::<Result<_, _>>()?;
        Ok(pb::ListCalendarsResponse {
            calendars,
            next_page_token,
        })
    }

    pub(super) async fn update_calendar(
        &self,
        call: &Call,
        request: pb::UpdateCalendarRequest,
    ) -> Result<pb::Calendar, ApiError> {
        let sent = request.calendar.unwrap_or_default();
        let paths = request.update_mask.map(|m| m.paths).unwrap_or_default();
        let mut v = Violations::new();
        let id = match id_of(&sent.name, "calendar.name") {
            Ok(id) => id.to_owned(),
            Err(e) => {
                v.add("calendar.name", e.message());
                String::new()
            }
        };
        let fields = call::mask_fields(&paths, EDITABLE, &mut v);
        v.check(
            !request.etag.is_empty(),
            "etag",
            "is required: the etag of the calendar as last read",
        );
        v.into_result()?;

        let now = itsm_store::now_micros();
        let mut tx = self.db.begin().await?;
        let lock = self.db.backend().lock_suffix();
        let before = rows::select_for_write(&mut tx, &id, lock)
            .await?
            .filter(|(deleted, _)| !deleted)
            .map(|(_, c)| c)
            .ok_or_else(|| ApiError::not_found(&sent.name))?;
        etag::check(&sent.name, &request.etag, before.version, true)?;
        let mut c = before.clone();
        for field in &fields {
            match *field {
                "display_name" => c.display_name = sent.display_name.trim().to_owned(),
                "description" => c.description.clone_from(&sent.description),
                "time_zone" => c.time_zone = sent.time_zone.trim().to_owned(),
                "weekly_spans" => c.weekly_spans.clone_from(&sent.weekly_spans),
                _ => c.holidays.clone_from(&sent.holidays),
            }
        }
        let mut v = Violations::new();
        check(&c, &mut v);
        v.into_result()?;
        let changes = changes(&before, &c);
        if changes.is_empty() {
            return Ok(before);
        }
        next_version(&mut c, call, now);
        if operations::calendar_counts_differently(&before, &c) {
            c.recompute_operation =
                operations::after_calendar_change(&mut tx, &c, call::principal(call), now).await?;
        }
        rows::update(&mut tx, &id, &c, now).await?;
        let change = Change {
            resource: &sent.name,
            version: c.version,
            action: "update",
            event_type: UPDATED,
            payload: event(&c, &changes),
            changes,
        };
        call::record(&mut tx, call, change, now).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(c)
    }

    pub(super) async fn delete_calendar(
        &self,
        call: &Call,
        request: pb::DeleteCalendarRequest,
    ) -> Result<pb::DeleteCalendarResponse, ApiError> {
        let name = request.name.clone();
        let id = id_of(&name, "name")?.to_owned();
        let now = itsm_store::now_micros();
        let mut tx = self.db.begin().await?;
        let lock = self.db.backend().lock_suffix();
        let c = rows::select_for_write(&mut tx, &id, lock)
            .await?
            .filter(|(deleted, _)| !deleted)
            .map(|(_, c)| c)
            .ok_or_else(|| ApiError::not_found(&name))?;
        etag::check(&name, &request.etag, c.version, false)?;
        let users = rows::used_by(&mut tx, &id).await?;
        if !users.is_empty() {
            return Err(ApiError::failed_precondition(
                "CALENDAR_IN_USE",
                &name,
                format!(
                    "{name} is used by enabled definitions ({}): point them at another calendar \
                     or disable them first",
                    users.join(", ")
                ),
            ));
        }
        versioned::mark_deleted(&mut tx, rows::TABLES, &id, now).await?;
        let change = Change {
            resource: &name,
            version: c.version + 1,
            action: "delete",
            event_type: DELETED,
            payload: event(&c, &[]),
            changes: Vec::new(),
        };
        call::record(&mut tx, call, change, now).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(pb::DeleteCalendarResponse {})
    }

    pub(super) async fn list_calendar_versions(
        &self,
        _call: &Call,
        request: pb::ListCalendarVersionsRequest,
    ) -> Result<pb::ListCalendarVersionsResponse, ApiError> {
        let id = id_of(&request.name, "name")?;
        let limit = page::page_size(request.page_size)?;
        let tokens = self.tokens().await?;
        let mut conn = self.db.pool().acquire().await.map_err(StoreError::from)?;
        if rows::select(&mut conn, id, 0).await?.is_none() {
            return Err(ApiError::not_found(&request.name));
        }
        let (docs, next_page_token) = versions_page(
            &mut conn,
            rows::TABLES,
            id,
            limit,
            &request.page_token,
            tokens,
        )
        .await?;
        let calendars = docs
            .iter()
            .map(|d| store::decode("calendar_versions", d))
            .collect::<Result<_, _>>()?;
        Ok(pb::ListCalendarVersionsResponse {
            calendars,
            next_page_token,
        })
    }

    pub(super) async fn import_calendar_holidays(
        &self,
        call: &Call,
        request: pb::ImportCalendarHolidaysRequest,
    ) -> Result<pb::ImportCalendarHolidaysResponse, ApiError> {
        let name = request.name.clone();
        let mut v = Violations::new();
        let id = match id_of(&name, "name") {
            Ok(id) => id.to_owned(),
            Err(e) => {
                v.add("name", e.message());
                String::new()
            }
        };
        if request.ics_content.is_empty() {
            v.add(
                "ics_content",
                "is required: the content of an iCalendar (.ics) file",
            );
        } else if request.ics_content.len() > MAX_ICS_BYTES {
            v.add(
                "ics_content",
                format!(
                    "is {} bytes; at most {MAX_ICS_BYTES} (1 MiB) are accepted",
                    request.ics_content.len()
                ),
            );
        }
        let mode = match pb::HolidayImportMode::try_from(request.mode) {
            Ok(pb::HolidayImportMode::Unspecified) => pb::HolidayImportMode::Merge,
            Ok(mode) => mode,
            Err(_) => {
                v.add("mode", "must be MERGE, REPLACE_RANGE or REPLACE_ALL");
                pb::HolidayImportMode::Merge
            }
        };
        v.into_result()?;

        let now = itsm_store::now_micros();
        let expand_until = match request.expand_until {
            Some(d) => d,
            None => {
                let today = jiff::Timestamp::from_microsecond(now)
                    .map(|t| t.to_zoned(jiff::tz::TimeZone::UTC).date())
                    .unwrap_or_default();
                common::Date {
                    year: i32::from(today.year()) + 5,
                    month: i32::from(today.month()),
                    day: i32::from(today.day().min(28)),
                }
            }
        };
        let mut tx = self.db.begin().await?;
        let lock = self.db.backend().lock_suffix();
        let before = rows::select_for_write(&mut tx, &id, lock)
            .await?
            .filter(|(deleted, _)| !deleted)
            .map(|(_, c)| c)
            .ok_or_else(|| ApiError::not_found(&name))?;
        etag::check(&name, &request.etag, before.version, false)?;
        let mut parsed = ics::parse_holidays(&request.ics_content, expand_until, &before.time_zone)
            .map_err(|reason| ApiError::invalid_field("ics_content", reason))?;
        // A timed event leaves the rest of that day's business hours open.
        parsed.fit_to(&before);
        let (holidays, added_count, updated_count, removed_count) =
            merge_holidays(&before.holidays, parsed.holidays, mode);
        let mut c = before.clone();
        c.holidays = holidays;
        let mut v = Violations::new();
        check(&c, &mut v);
        v.into_result()?;
        let changes = changes(&before, &c);
        if request.validate_only || changes.is_empty() {
            return Ok(pb::ImportCalendarHolidaysResponse {
                calendar: Some(if request.validate_only { before } else { c }),
                added_count,
                updated_count,
                removed_count,
                warnings: parsed.warnings,
            });
        }
        next_version(&mut c, call, now);
        c.recompute_operation =
            operations::after_calendar_change(&mut tx, &c, call::principal(call), now).await?;
        rows::update(&mut tx, &id, &c, now).await?;
        let change = Change {
            resource: &name,
            version: c.version,
            action: "import_holidays",
            event_type: HOLIDAYS_IMPORTED,
            payload: event(&c, &changes),
            changes,
        };
        call::record(&mut tx, call, change, now).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(pb::ImportCalendarHolidaysResponse {
            calendar: Some(c),
            added_count,
            updated_count,
            removed_count,
            warnings: parsed.warnings,
        })
    }
}

/// One page of the versions of `id`, newest first; the token carries the
/// last version returned.
pub(super) async fn versions_page(
    conn: &mut sqlx::AnyConnection,
    tables: versioned::Tables,
    id: &str,
    limit: usize,
    page_token: &str,
    tokens: &itsm_store::page::PageTokens,
) -> Result<(Vec<Vec<u8>>, String), ApiError> {
    let query = format!("versions\u{0}{}\u{0}{id}", tables.current);
    let before = if page_token.is_empty() {
        i64::MAX
    } else {
        match tokens.decode(page_token, &query)?.as_slice() {
            [SqlValue::Int(version)] => *version,
            _ => {
                return Err(ApiError::new(
                    ErrorCode::InvalidArgument,
                    "page_token is not a token of this list; start again without one",
                ));
            }
        }
    };
    let wanted = i64::try_from(limit + 1).unwrap_or(i64::MAX);
    let mut rows = versioned::select_versions(conn, tables, id, before, wanted).await?;
    let mut next = String::new();
    if rows.len() > limit {
        rows.truncate(limit);
        if let Some((last, _)) = rows.last() {
            next = tokens.encode(&query, &[SqlValue::Int(*last)]);
        }
    }
    Ok((rows.into_iter().map(|(_, doc)| doc).collect(), next))
}
