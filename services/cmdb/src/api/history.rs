//! PLACEHOLDER: history.

use itsm_platform::{ApiError, ErrorCode};
use itsm_proto::itsm::cmdb::v1 as pb;

use super::CmdbApi;
use super::call::Call;

impl CmdbApi {
    pub(super) async fn get_ci_as_of(
        &self,
        _call: &Call,
        _request: pb::GetCiAsOfRequest,
    ) -> Result<pb::Ci, ApiError> {
        Err(ApiError::new(
            ErrorCode::Unimplemented,
            "GetCiAsOf is not built yet",
        ))
    }

    pub(super) async fn list_ci_history(
        &self,
        _call: &Call,
        _request: pb::ListCiHistoryRequest,
    ) -> Result<pb::ListCiHistoryResponse, ApiError> {
        Err(ApiError::new(
            ErrorCode::Unimplemented,
            "ListCiHistory is not built yet",
        ))
    }
}
