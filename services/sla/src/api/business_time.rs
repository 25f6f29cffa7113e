//! Business-time arithmetic over a calendar version, for other services:
//! add a business duration to an instant, measure the business time between
//! two instants. No calendar is 24x7.

use itsm_platform::{ApiError, Violations};
use itsm_proto::itsm::sla::v1 as pb;
use itsm_store::StoreError;

use super::SlaApi;
use super::calendars::id_of;
use super::call::Call;
use crate::calendar::BusinessCalendar;
use crate::store::calendars as rows;

const MICROS_PER_SECOND: i64 = 1_000_000;

fn micros_of_timestamp(t: &prost_types::Timestamp) -> Option<i64> {
    t.seconds
        .checked_mul(MICROS_PER_SECOND)?
        .checked_add(i64::from(t.nanos) / 1_000)
}

fn micros_of_duration(d: &prost_types::Duration) -> Option<i64> {
    d.seconds
        .checked_mul(MICROS_PER_SECOND)?
        .checked_add(i64::from(d.nanos) / 1_000)
}

fn timestamp(micros: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: micros.div_euclid(MICROS_PER_SECOND),
        nanos: i32::try_from(micros.rem_euclid(MICROS_PER_SECOND) * 1_000).unwrap_or_default(),
    }
}

fn duration(micros: i64) -> prost_types::Duration {
    prost_types::Duration {
        seconds: micros / MICROS_PER_SECOND,
        nanos: i32::try_from((micros % MICROS_PER_SECOND) * 1_000).unwrap_or_default(),
    }
}

impl SlaApi {
    /// The compiled calendar `name` (version 0: current) in `zone` ("" = its
    /// own): 24x7 when `name` is empty. Bad input names `time_zone`,
    /// `calendar` or `calendar_version`.
    pub(crate) async fn business_calendar(
        &self,
        name: &str,
        version: i64,
        zone: &str,
    ) -> Result<(BusinessCalendar, i64), ApiError> {
        if name.is_empty() {
            if zone.is_empty() || zone == "UTC" {
                return Ok((BusinessCalendar::always(), 0));
            }
            if jiff::tz::TimeZone::get(zone).is_err() {
                return Err(ApiError::invalid_field(
                    "time_zone",
                    format!("unknown time zone {zone:?}"),
                ));
            }
            return Ok((BusinessCalendar::always(), 0));
        }
        let id = id_of(name, "calendar")?;
        if version < 0 {
            return Err(ApiError::invalid_field(
                "calendar_version",
                "must be a version number (1, 2, ...) or 0 for the current one",
            ));
        }
        if !zone.is_empty() && jiff::tz::TimeZone::get(zone).is_err() {
            return Err(ApiError::invalid_field(
                "time_zone",
                format!("unknown time zone {zone:?}"),
            ));
        }
        let mut conn = self.db.pool().acquire().await.map_err(StoreError::from)?;
        let wanted = if version == 0 {
            rows::current_version(&mut conn, id).await?.unwrap_or(0)
        } else {
            version
        };
        let key = (id.to_owned(), wanted, zone.to_owned());
        if let Some(compiled) = self.engine.calendars().get(&key) {
            return Ok((compiled, wanted));
        }
        let c = rows::select(&mut conn, id, version)
            .await?
            .ok_or_else(|| match version {
                0 => ApiError::not_found(name),
                v => ApiError::not_found(format!("{name} version {v}")),
            })?;
        let compiled = BusinessCalendar::compile(&c, zone).map_err(|errors| {
            let mut v = Violations::new();
            for e in errors {
                let field = if e.field.ends_with("time_zone") {
                    "time_zone".to_owned()
                } else {
                    e.field
                };
                v.add(field, e.description);
            }
            v.into_result()
                .err()
                .unwrap_or_else(|| ApiError::internal("calendar does not compile"))
        })?;
        // Keyed by the version read, which a concurrent update may have moved past `wanted`.
        self.engine.calendars().put(
            (id.to_owned(), c.version, zone.to_owned()),
            compiled.clone(),
        );
        Ok((compiled, c.version))
    }

    pub(super) async fn add_business_time(
        &self,
        _call: &Call,
        request: pb::AddBusinessTimeRequest,
    ) -> Result<pb::AddBusinessTimeResponse, ApiError> {
        let mut v = Violations::new();
        let start = request.start_time.as_ref().and_then(micros_of_timestamp);
        v.check(start.is_some(), "start_time", "is required");
        let length = request.duration.as_ref().and_then(micros_of_duration);
        match length {
            None => v.add("duration", "is required, >= 0"),
            Some(d) if d < 0 => v.add("duration", "must not be negative"),
            Some(_) => {}
        }
        v.into_result()?;
        let (calendar, version) = self
            .business_calendar(
                &request.calendar,
                request.calendar_version,
                &request.time_zone,
            )
            .await?;
        let end = calendar.add(start.unwrap_or_default(), length.unwrap_or_default());
        Ok(pb::AddBusinessTimeResponse {
            end_time: Some(timestamp(end)),
            calendar_version: version,
            time_zone: calendar.zone().to_owned(),
        })
    }

    pub(super) async fn measure_business_time(
        &self,
        _call: &Call,
        request: pb::MeasureBusinessTimeRequest,
    ) -> Result<pb::MeasureBusinessTimeResponse, ApiError> {
        let mut v = Violations::new();
        let start = request.start_time.as_ref().and_then(micros_of_timestamp);
        let end = request.end_time.as_ref().and_then(micros_of_timestamp);
        v.check(start.is_some(), "start_time", "is required");
        v.check(end.is_some(), "end_time", "is required");
        if let (Some(s), Some(e)) = (start, end) {
            v.check(e >= s, "end_time", "must not be before start_time");
        }
        v.into_result()?;
        let (calendar, version) = self
            .business_calendar(
                &request.calendar,
                request.calendar_version,
                &request.time_zone,
            )
            .await?;
        let measured = calendar.measure(start.unwrap_or_default(), end.unwrap_or_default());
        Ok(pb::MeasureBusinessTimeResponse {
            duration: Some(duration(measured)),
            calendar_version: version,
            time_zone: calendar.zone().to_owned(),
        })
    }
}
