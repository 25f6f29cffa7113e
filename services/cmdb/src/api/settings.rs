//! PLACEHOLDER: settings.

use itsm_platform::{ApiError, ErrorCode};
use itsm_proto::itsm::cmdb::v1 as pb;

use super::CmdbApi;
use super::call::Call;

impl CmdbApi {
    pub(super) async fn get_cmdb_settings(
        &self,
        _call: &Call,
        _request: pb::GetCmdbSettingsRequest,
    ) -> Result<pb::CmdbSettings, ApiError> {
        Err(ApiError::new(
            ErrorCode::Unimplemented,
            "GetCmdbSettings is not built yet",
        ))
    }

    pub(super) async fn update_cmdb_settings(
        &self,
        _call: &Call,
        _request: pb::UpdateCmdbSettingsRequest,
    ) -> Result<pb::CmdbSettings, ApiError> {
        Err(ApiError::new(
            ErrorCode::Unimplemented,
            "UpdateCmdbSettings is not built yet",
        ))
    }

    pub(super) async fn list_audit_entries(
        &self,
        _call: &Call,
        _request: pb::ListAuditEntriesRequest,
    ) -> Result<pb::ListAuditEntriesResponse, ApiError> {
        Err(ApiError::new(
            ErrorCode::Unimplemented,
            "ListAuditEntries is not built yet",
        ))
    }
}
