//! PLACEHOLDER: baselines.

use itsm_platform::{ApiError, ErrorCode};
use itsm_proto::itsm::cmdb::v1 as pb;

use super::CmdbApi;
use super::call::Call;

impl CmdbApi {
    pub(super) async fn create_baseline(
        &self,
        _call: &Call,
        _request: pb::CreateBaselineRequest,
    ) -> Result<pb::Baseline, ApiError> {
        Err(ApiError::new(
            ErrorCode::Unimplemented,
            "CreateBaseline is not built yet",
        ))
    }

    pub(super) async fn get_baseline(
        &self,
        _call: &Call,
        _request: pb::GetBaselineRequest,
    ) -> Result<pb::Baseline, ApiError> {
        Err(ApiError::new(
            ErrorCode::Unimplemented,
            "GetBaseline is not built yet",
        ))
    }

    pub(super) async fn list_baselines(
        &self,
        _call: &Call,
        _request: pb::ListBaselinesRequest,
    ) -> Result<pb::ListBaselinesResponse, ApiError> {
        Err(ApiError::new(
            ErrorCode::Unimplemented,
            "ListBaselines is not built yet",
        ))
    }

    pub(super) async fn diff_baseline(
        &self,
        _call: &Call,
        _request: pb::DiffBaselineRequest,
    ) -> Result<pb::DiffBaselineResponse, ApiError> {
        Err(ApiError::new(
            ErrorCode::Unimplemented,
            "DiffBaseline is not built yet",
        ))
    }
}
