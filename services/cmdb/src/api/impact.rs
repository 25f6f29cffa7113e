//! PLACEHOLDER: impact.

use itsm_platform::{ApiError, ErrorCode};
use itsm_proto::itsm::cmdb::v1 as pb;

use super::CmdbApi;
use super::call::Call;

impl CmdbApi {
    pub(super) async fn analyze_impact(
        &self,
        _call: &Call,
        _request: pb::AnalyzeImpactRequest,
    ) -> Result<pb::ImpactAnalysis, ApiError> {
        Err(ApiError::new(
            ErrorCode::Unimplemented,
            "AnalyzeImpact is not built yet",
        ))
    }
}
