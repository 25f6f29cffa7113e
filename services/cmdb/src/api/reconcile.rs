//! PLACEHOLDER: reconcile.

use itsm_platform::{ApiError, ErrorCode};
use itsm_proto::itsm::cmdb::v1 as pb;

use super::CmdbApi;
use super::call::Call;

impl CmdbApi {
    pub(super) async fn report_cis(
        &self,
        _call: &Call,
        _request: pb::ReportCisRequest,
    ) -> Result<pb::ReportCisResponse, ApiError> {
        Err(ApiError::new(
            ErrorCode::Unimplemented,
            "ReportCis is not built yet",
        ))
    }

    pub(super) async fn get_parked_match(
        &self,
        _call: &Call,
        _request: pb::GetParkedMatchRequest,
    ) -> Result<pb::ParkedMatch, ApiError> {
        Err(ApiError::new(
            ErrorCode::Unimplemented,
            "GetParkedMatch is not built yet",
        ))
    }

    pub(super) async fn list_parked_matches(
        &self,
        _call: &Call,
        _request: pb::ListParkedMatchesRequest,
    ) -> Result<pb::ListParkedMatchesResponse, ApiError> {
        Err(ApiError::new(
            ErrorCode::Unimplemented,
            "ListParkedMatches is not built yet",
        ))
    }

    pub(super) async fn resolve_parked_match(
        &self,
        _call: &Call,
        _request: pb::ResolveParkedMatchRequest,
    ) -> Result<pb::ParkedMatch, ApiError> {
        Err(ApiError::new(
            ErrorCode::Unimplemented,
            "ResolveParkedMatch is not built yet",
        ))
    }
}
