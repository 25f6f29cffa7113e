//! PLACEHOLDER: relationship_types.

use itsm_platform::{ApiError, ErrorCode};
use itsm_proto::itsm::cmdb::v1 as pb;

use super::CmdbApi;
use super::call::Call;

impl CmdbApi {
    pub(super) async fn create_relationship_type(
        &self,
        _call: &Call,
        _request: pb::CreateRelationshipTypeRequest,
    ) -> Result<pb::RelationshipType, ApiError> {
        Err(ApiError::new(
            ErrorCode::Unimplemented,
            "CreateRelationshipType is not built yet",
        ))
    }

    pub(super) async fn get_relationship_type(
        &self,
        _call: &Call,
        _request: pb::GetRelationshipTypeRequest,
    ) -> Result<pb::RelationshipType, ApiError> {
        Err(ApiError::new(
            ErrorCode::Unimplemented,
            "GetRelationshipType is not built yet",
        ))
    }

    pub(super) async fn list_relationship_types(
        &self,
        _call: &Call,
        _request: pb::ListRelationshipTypesRequest,
    ) -> Result<pb::ListRelationshipTypesResponse, ApiError> {
        Err(ApiError::new(
            ErrorCode::Unimplemented,
            "ListRelationshipTypes is not built yet",
        ))
    }

    pub(super) async fn update_relationship_type(
        &self,
        _call: &Call,
        _request: pb::UpdateRelationshipTypeRequest,
    ) -> Result<pb::RelationshipType, ApiError> {
        Err(ApiError::new(
            ErrorCode::Unimplemented,
            "UpdateRelationshipType is not built yet",
        ))
    }

    pub(super) async fn delete_relationship_type(
        &self,
        _call: &Call,
        _request: pb::DeleteRelationshipTypeRequest,
    ) -> Result<pb::DeleteRelationshipTypeResponse, ApiError> {
        Err(ApiError::new(
            ErrorCode::Unimplemented,
            "DeleteRelationshipType is not built yet",
        ))
    }
}
