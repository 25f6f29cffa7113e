//! PLACEHOLDER: classes.

use itsm_platform::{ApiError, ErrorCode};
use itsm_proto::itsm::cmdb::v1 as pb;

use super::CmdbApi;
use super::call::Call;

impl CmdbApi {
    pub(super) async fn create_ci_class(
        &self,
        _call: &Call,
        _request: pb::CreateCiClassRequest,
    ) -> Result<pb::CiClass, ApiError> {
        Err(ApiError::new(
            ErrorCode::Unimplemented,
            "CreateCiClass is not built yet",
        ))
    }

    pub(super) async fn get_ci_class(
        &self,
        _call: &Call,
        _request: pb::GetCiClassRequest,
    ) -> Result<pb::CiClass, ApiError> {
        Err(ApiError::new(
            ErrorCode::Unimplemented,
            "GetCiClass is not built yet",
        ))
    }

    pub(super) async fn list_ci_classes(
        &self,
        _call: &Call,
        _request: pb::ListCiClassesRequest,
    ) -> Result<pb::ListCiClassesResponse, ApiError> {
        Err(ApiError::new(
            ErrorCode::Unimplemented,
            "ListCiClasses is not built yet",
        ))
    }

    pub(super) async fn update_ci_class(
        &self,
        _call: &Call,
        _request: pb::UpdateCiClassRequest,
    ) -> Result<pb::CiClass, ApiError> {
        Err(ApiError::new(
            ErrorCode::Unimplemented,
            "UpdateCiClass is not built yet",
        ))
    }

    pub(super) async fn delete_ci_class(
        &self,
        _call: &Call,
        _request: pb::DeleteCiClassRequest,
    ) -> Result<pb::DeleteCiClassResponse, ApiError> {
        Err(ApiError::new(
            ErrorCode::Unimplemented,
            "DeleteCiClass is not built yet",
        ))
    }
}
