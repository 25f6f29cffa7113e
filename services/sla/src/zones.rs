//! Where a task SLA's time zone comes from when its definition says
//! `TIME_ZONE_SOURCE_CI_LOCATION`: the CMDB knows the zone of a CI's location
//! ([`ZoneSource`]). `TIME_ZONE_SOURCE_CALLER` needs no lookup: the ticket
//! carries its caller's zone (`caller_time_zone`), so it replays the same.
//!
//! The zone is resolved once, when a clock attaches (and again when a
//! recomputation moves it to the latest versions), and recorded on the task
//! SLA (`TaskSla.time_zone`): later replays use the recorded zone, so a CI
//! moving or the CMDB being down never changes a clock after the fact.

use std::fmt::Debug;

use async_trait::async_trait;
use itsm_platform::ApiError;

/// Answers "which IANA zone is this CI in".
#[async_trait]
pub trait ZoneSource: Send + Sync + Debug {
    /// The time zone of the location of `ci` ("cis/<uuid>"): `None` when the
    /// CI or its location has none, or the CI does not exist. An error when
    /// the CMDB cannot answer (the engine then falls back to the definition's
    /// zone and logs a warning).
    async fn ci_time_zone(&self, ci: &str) -> Result<Option<String>, ApiError>;
}

/// No CMDB: every CI's zone is unknown, so CI_LOCATION definitions use their
/// own zone.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoZones;

#[async_trait]
impl ZoneSource for NoZones {
    async fn ci_time_zone(&self, _ci: &str) -> Result<Option<String>, ApiError> {
        Ok(None)
    }
}
