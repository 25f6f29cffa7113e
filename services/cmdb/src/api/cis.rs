//! PLACEHOLDER: cis.

use itsm_platform::{ApiError, ErrorCode};
use itsm_proto::itsm::cmdb::v1 as pb;

use super::CmdbApi;
use super::call::Call;

impl CmdbApi {
    pub(super) async fn create_ci(
        &self,
        _call: &Call,
        _request: pb::CreateCiRequest,
    ) -> Result<pb::Ci, ApiError> {
        Err(ApiError::new(
            ErrorCode::Unimplemented,
            "CreateCi is not built yet",
        ))
    }

    pub(super) async fn get_ci(
        &self,
        _call: &Call,
        _request: pb::GetCiRequest,
    ) -> Result<pb::Ci, ApiError> {
        Err(ApiError::new(
            ErrorCode::Unimplemented,
            "GetCi is not built yet",
        ))
    }

    pub(super) async fn batch_get_cis(
        &self,
        _call: &Call,
        _request: pb::BatchGetCisRequest,
    ) -> Result<pb::BatchGetCisResponse, ApiError> {
        Err(ApiError::new(
            ErrorCode::Unimplemented,
            "BatchGetCis is not built yet",
        ))
    }

    pub(super) async fn list_cis(
        &self,
        _call: &Call,
        _request: pb::ListCisRequest,
    ) -> Result<pb::ListCisResponse, ApiError> {
        Err(ApiError::new(
            ErrorCode::Unimplemented,
            "ListCis is not built yet",
        ))
    }

    pub(super) async fn update_ci(
        &self,
        _call: &Call,
        _request: pb::UpdateCiRequest,
    ) -> Result<pb::Ci, ApiError> {
        Err(ApiError::new(
            ErrorCode::Unimplemented,
            "UpdateCi is not built yet",
        ))
    }

    pub(super) async fn retire_ci(
        &self,
        _call: &Call,
        _request: pb::RetireCiRequest,
    ) -> Result<pb::Ci, ApiError> {
        Err(ApiError::new(
            ErrorCode::Unimplemented,
            "RetireCi is not built yet",
        ))
    }
}
