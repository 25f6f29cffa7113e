//! Reports: compliance (percentage met per definition, kind, group,
//! priority, service and period) and breaches with their cause.
//!
//! Compliance is counted in the database (`store::reports`); a breach page
//! is analysed row by row (`crate::reports::analyse`), the page only.

use itsm_platform::{ApiError, Violations};
use itsm_proto::itsm::common::v1::TimeWindow;
use itsm_proto::itsm::sla::v1 as pb;
use itsm_store::StoreError;
use itsm_store::list::ListRequest;
use jiff::tz::TimeZone;
use pb::ComplianceDimension as Dim;

use super::SlaApi;
use super::call::Call;
use crate::clock::{duration, timestamp};
use crate::reports::{self, Interval, Tally};
use crate::store;
use crate::store::reports::{self as rows, ComplianceQuery, Dimension};
use crate::{engine, tickets};

/// Earliest and latest instants a request may name: years 0001 to 9999 UTC
/// (what a protobuf Timestamp may hold), in microseconds.
const MIN_MICROS: i64 = -62_135_596_800 * 1_000_000;
const MAX_MICROS: i64 = 253_402_300_799 * 1_000_000;

/// An instant of a request, or why not.
fn instant(t: &prost_types::Timestamp) -> Option<i64> {
    if !(0..1_000_000_000).contains(&t.nanos) {
        return None;
    }
    let micros = t
        .seconds
        .checked_mul(1_000_000)?
        .checked_add(i64::from(t.nanos) / 1_000)?;
    (MIN_MICROS..=MAX_MICROS)
        .contains(&micros)
        .then_some(micros)
}

/// The bounds of `period` (either may be unset: open). Bad input names
/// `period`.
fn window(period: Option<&TimeWindow>, v: &mut Violations) -> (Option<i64>, Option<i64>) {
    let Some(period) = period else {
        return (None, None);
    };
    let mut bound = |t: &Option<prost_types::Timestamp>, which: &str| {
        let t = t.as_ref()?;
        let micros = instant(t);
        if micros.is_none() {
            v.add(
                "period",
                format!("{which} must be a valid instant between years 0001 and 9999"),
            );
        }
        micros
    };
    let start = bound(&period.start_time, "start_time");
    let end = bound(&period.end_time, "end_time");
    if let (Some(s), Some(e)) = (start, end)
        && s >= e
    {
        v.add("period", "start_time must be before end_time");
    }
    (start, end)
}

fn dimension(d: Dim) -> Option<Dimension> {
    Some(match d {
        Dim::Unspecified => return None,
        Dim::SlaDefinition => Dimension::SlaDefinition,
        Dim::Kind => Dimension::Kind,
        Dim::AssignmentGroup => Dimension::AssignmentGroup,
        Dim::Priority => Dimension::Priority,
        Dim::Service => Dimension::Service,
        Dim::Period => Dimension::Period,
    })
}

/// A checked GetComplianceReportRequest.
struct Checked {
    start: i64,
    end: i64,
    group_by: Vec<Dimension>,
    boundaries: Vec<i64>,
}

fn check(request: &pb::GetComplianceReportRequest) -> Result<Checked, ApiError> {
    let mut v = Violations::new();
    let (start, end) = window(request.period.as_ref(), &mut v);
    let period = request.period.as_ref();
    if period.and_then(|p| p.start_time.as_ref()).is_none()
        || period.and_then(|p| p.end_time.as_ref()).is_none()
    {
        v.add("period", "start_time and end_time are required");
    }
    let mut group_by = Vec::new();
    for (i, number) in request.group_by.iter().enumerate() {
        let field = format!("group_by[{i}]");
        match Dim::try_from(*number).ok().map(|d| (d, dimension(d))) {
            Some((_, Some(d))) if group_by.contains(&d) => {
                v.add(field, "appears twice");
            }
            Some((_, Some(d))) => group_by.push(d),
            Some((_, None)) => v.add(field, "must be a dimension, not UNSPECIFIED"),
            None => v.add(field, format!("unknown dimension {number}")),
        }
    }
    let interval = Interval::of(request.interval);
    if interval.is_none() {
        v.add("interval", format!("unknown interval {}", request.interval));
    }
    let zone = request.time_zone.trim();
    let tz = if zone.is_empty() {
        Some(TimeZone::UTC)
    } else {
        let tz = TimeZone::get(zone).ok();
        if tz.is_none() {
            v.add(
                "time_zone",
                format!("unknown time zone {zone:?} (an IANA name, e.g. \"Europe/Berlin\")"),
            );
        }
        tz
    };
    v.into_result()?;
    let (Some(start), Some(end), Some(interval), Some(tz)) = (start, end, interval, tz) else {
        return Err(ApiError::invalid_field("period", "is required"));
    };
    let boundaries = if group_by.contains(&Dimension::Period) {
        reports::boundaries(start, end, interval, &tz)
            .map_err(|e| ApiError::invalid_field("period", e.to_string()))?
    } else {
        vec![start, end]
    };
    Ok(Checked {
        start,
        end,
        group_by,
        boundaries,
    })
}

fn window_of(start: i64, end: i64) -> TimeWindow {
    TimeWindow {
        start_time: Some(timestamp(start)),
        end_time: Some(timestamp(end)),
    }
}

/// The row of one group: the values of the dimensions grouped by.
fn row_of(group: &rows::Group, dimensions: &[Dimension], boundaries: &[i64]) -> pb::ComplianceRow {
    let mut row = pb::ComplianceRow::default();
    for d in dimensions {
        match d {
            Dimension::SlaDefinition => {
                row.sla_definition = format!("slaDefinitions/{}", group.sla_definition);
            }
            Dimension::Kind => row.kind = group.kind,
            Dimension::AssignmentGroup => row.assignment_group = group.assignment_group.clone(),
            Dimension::Priority => row.priority = group.priority,
            Dimension::Service => row.service = group.service.clone(),
            Dimension::Period => {
                if let (Some(s), Some(e)) = (
                    boundaries.get(group.bucket),
                    boundaries.get(group.bucket + 1),
                ) {
                    row.bucket = Some(window_of(*s, *e));
                }
            }
        }
    }
    group.tally.fill(&mut row);
    row
}

impl SlaApi {
    pub(super) async fn get_compliance_report(
        &self,
        _call: &Call,
        request: pb::GetComplianceReportRequest,
    ) -> Result<pb::ComplianceReport, ApiError> {
        let checked = check(&request)?;
        let query = ComplianceQuery {
            start: checked.start,
            end: checked.end,
            group_by: &checked.group_by,
            boundaries: &checked.boundaries,
            filter: &request.filter,
        };
        let groups = rows::select_compliance(&self.db, &query).await?;
        let mut total = Tally::default();
        for g in &groups {
            total.add(&g.tally);
        }
        let mut total_row = pb::ComplianceRow::default();
        total.fill(&mut total_row);
        let rows = if checked.group_by.is_empty() {
            vec![total_row.clone()]
        } else {
            groups
                .iter()
                .map(|g| row_of(g, &checked.group_by, &checked.boundaries))
                .collect()
        };
        Ok(pb::ComplianceReport {
            period: Some(window_of(checked.start, checked.end)),
            group_by: request.group_by,
            rows,
            total: Some(total_row),
            compute_time: Some(timestamp(itsm_store::now_micros())),
        })
    }

    pub(super) async fn list_breaches(
        &self,
        _call: &Call,
        request: pb::ListBreachesRequest,
    ) -> Result<pb::ListBreachesResponse, ApiError> {
        let mut v = Violations::new();
        let (start, end) = window(request.period.as_ref(), &mut v);
        v.into_result()?;
        let tokens = self.tokens().await?;
        let list = ListRequest {
            page_size: request.page_size,
            page_token: &request.page_token,
            filter: &request.filter,
            order_by: &request.order_by,
        };
        let page = rows::select_breaches(&self.db, start, end, &list, tokens).await?;
        let now = itsm_store::now_micros();
        let mut breaches = Vec::with_capacity(page.rows.len());
        let mut conn = self.db.pool().acquire().await.map_err(StoreError::from)?;
        // Breaches of one ticket share its history.
        let mut histories: Vec<(String, Vec<tickets::TicketEvent>)> = Vec::new();
        for (id, doc) in &page.rows {
            let sla: pb::TaskSla = store::decode("task_slas", doc)?;
            let timeline = engine::timeline_of(&mut conn, *id).await?;
            if !histories.iter().any(|(t, _)| *t == sla.ticket) {
                let events = engine::history(&mut conn, &sla.ticket).await?;
                histories.push((sla.ticket.clone(), events));
            }
            let events = histories
                .iter()
                .find(|(t, _)| *t == sla.ticket)
                .map(|(_, e)| e.as_slice())
                .unwrap_or_default();
            let (calendar, _) = self
                .engine
                .load_calendar(
                    &mut conn,
                    &sla.calendar,
                    sla.calendar_version,
                    &sla.time_zone,
                )
                .await?;
            let ticket_type = sla.ticket.split('/').next().unwrap_or_default();
            let schema = tickets::schema(ticket_type).unwrap_or(&tickets::INCIDENT);
            let cause = reports::analyse(&sla, &timeline, events, schema, &calendar, now);
            let projected = crate::clock::project(&sla, &calendar, now);
            let micros = |d: Option<&prost_types::Duration>| {
                d.map_or(0, |d| {
                    d.seconds
                        .saturating_mul(1_000_000)
                        .saturating_add(i64::from(d.nanos) / 1_000)
                })
            };
            let overrun = micros(projected.elapsed.as_ref())
                .saturating_sub(micros(projected.target.as_ref()))
                .max(0);
            let share = |(value, elapsed): (String, i64)| pb::TimeShare {
                value,
                elapsed: Some(duration(elapsed)),
            };
            breaches.push(pb::Breach {
                task_sla: sla.name.clone(),
                ticket: sla.ticket.clone(),
                sla_definition: sla.sla_definition.clone(),
                kind: sla.kind,
                priority: sla.priority,
                service: sla.service.clone(),
                breach_time: cause.breach_time.map(timestamp),
                stop_time: sla.stop_time,
                overrun: Some(duration(overrun)),
                ticket_state: cause.ticket_state,
                assignment_group: cause.assignment_group,
                time_by_state: cause.time_by_state.into_iter().map(share).collect(),
                time_by_group: cause.time_by_group.into_iter().map(share).collect(),
                pauses: cause
                    .pauses
                    .into_iter()
                    .map(|p| pb::PausePeriod {
                        start_time: Some(timestamp(p.start)),
                        end_time: p.end.map(timestamp),
                        duration: Some(duration(p.duration)),
                        condition_expression: p.condition_expression,
                        ticket_state: p.ticket_state,
                        hold_reason: p.hold_reason,
                    })
                    .collect(),
                reset_count: sla.reset_count,
            });
        }
        Ok(pb::ListBreachesResponse {
            breaches,
            next_page_token: page.next_page_token,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_outside_protobuf_range_are_refused() {
        let t = |seconds, nanos| prost_types::Timestamp { seconds, nanos };
        assert_eq!(instant(&t(1, 5_000)), Some(1_000_005));
        assert_eq!(instant(&t(1, -1)), None);
        assert_eq!(instant(&t(253_402_300_800, 0)), None);
        assert_eq!(instant(&t(i64::MAX, 0)), None);
    }
}
