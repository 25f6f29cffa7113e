//! PLACEHOLDER: health.

use itsm_platform::{ApiError, ErrorCode};
use itsm_proto::itsm::cmdb::v1 as pb;

use super::CmdbApi;
use super::call::Call;

impl CmdbApi {
    pub(super) async fn get_health_report(
        &self,
        _call: &Call,
        _request: pb::GetHealthReportRequest,
    ) -> Result<pb::HealthReport, ApiError> {
        Err(ApiError::new(
            ErrorCode::Unimplemented,
            "GetHealthReport is not built yet",
        ))
    }

    pub(super) async fn list_health_issues(
        &self,
        _call: &Call,
        _request: pb::ListHealthIssuesRequest,
    ) -> Result<pb::ListHealthIssuesResponse, ApiError> {
        Err(ApiError::new(
            ErrorCode::Unimplemented,
            "ListHealthIssues is not built yet",
        ))
    }
}
