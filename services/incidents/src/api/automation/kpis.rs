//! `GetIncidentKpis`: the backlog now, and how the incidents opened in a
//! period went, computed by the database on both backends.
//!
//! - `open_by_priority`: open incidents (NEW, IN_PROGRESS, ON_HOLD) now, one
//!   entry per priority, CRITICAL first, zeros included. Not bound to the period.
//! - Of the incidents created in `[period.start_time, period.end_time)` (either
//!   end open when unset) and, when given, now in `assignment_group`:
//!   `opened_count`; `resolved_count`, those resolved now (RESOLVED or
//!   CLOSED); `mean_time_to_acknowledge`, create -> first assignment to a
//!   person over those acknowledged; `mean_time_to_resolve`, create ->
//!   resolve over those resolved (both unset without a sample);
//!   `reopen_rate`, those reopened at least once over those resolved at least
//!   once (a reopened incident was resolved before, so the rate stays within
//!   0..1 while a reopened one is being worked again);
//!   `first_contact_resolution_rate`, those resolved on first contact over
//!   those resolved.

use itsm_platform::{ApiError, Violations};
use itsm_proto::itsm::incidents::v1 as pb;
use itsm_store::StoreError;

use crate::api::IncidentsApi;
use crate::api::call::Call;
use crate::domain::automation::{mean, rate};
use crate::domain::{self, Priority};
use crate::store::automation as store;

/// A timestamp as microseconds; a violation on `field` when out of range.
fn micros(v: &mut Violations, field: &str, t: Option<prost_types::Timestamp>) -> Option<i64> {
    let t = t?;
    let value = (0..1_000_000_000)
        .contains(&t.nanos)
        .then(|| t.seconds.checked_mul(1_000_000))
        .flatten()
        .and_then(|us| us.checked_add(i64::from(t.nanos / 1_000)));
    if value.is_none() {
        v.add(field, "is not a valid timestamp");
    }
    value
}

fn duration(micros: i64) -> prost_types::Duration {
    prost_types::Duration {
        seconds: micros.div_euclid(1_000_000),
        nanos: i32::try_from(micros.rem_euclid(1_000_000) * 1_000).unwrap_or(0),
    }
}

impl IncidentsApi {
    pub(in crate::api) async fn get_incident_kpis(
        &self,
        _call: &Call,
        request: pb::GetIncidentKpisRequest,
    ) -> Result<pb::IncidentKpis, ApiError> {
        let period = request.period.unwrap_or_default();
        let mut v = Violations::new();
        let start = micros(&mut v, "period.start_time", period.start_time);
        let end = micros(&mut v, "period.end_time", period.end_time);
        let (start, end) = (start.unwrap_or(i64::MIN), end.unwrap_or(i64::MAX));
        v.check(
            start < end,
            "period.end_time",
            "must be after period.start_time",
        );
        domain::check_identifier(&mut v, "assignment_group", &request.assignment_group);
        v.into_result()?;
        let group = domain::group_id(&request.assignment_group);

        let mut conn = self.db.pool().acquire().await.map_err(StoreError::from)?;
        let open = store::select_open_by_priority(&mut conn, group).await?;
        let totals = store::select_period_totals(&mut conn, (start, end), group).await?;
        Ok(pb::IncidentKpis {
            open_by_priority: Priority::ALL
                .iter()
                .map(|p| pb::PriorityCount {
                    priority: p.number(),
                    count: open.get(&p.number()).copied().unwrap_or(0),
                })
                .collect(),
            mean_time_to_acknowledge: mean(totals.acknowledge_total, totals.acknowledged)
                .map(duration),
            mean_time_to_resolve: mean(totals.resolve_total, totals.resolved).map(duration),
            reopen_rate: rate(totals.reopened, totals.ever_resolved),
            first_contact_resolution_rate: rate(totals.first_contact, totals.resolved),
            opened_count: totals.opened,
            resolved_count: totals.resolved,
        })
    }
}
