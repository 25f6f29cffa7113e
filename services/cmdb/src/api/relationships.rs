//! PLACEHOLDER: relationships.

use itsm_platform::{ApiError, ErrorCode};
use itsm_proto::itsm::cmdb::v1 as pb;

use super::CmdbApi;
use super::call::Call;

impl CmdbApi {
    pub(super) async fn create_relationship(
        &self,
        _call: &Call,
        _request: pb::CreateRelationshipRequest,
    ) -> Result<pb::Relationship, ApiError> {
        Err(ApiError::new(
            ErrorCode::Unimplemented,
            "CreateRelationship is not built yet",
        ))
    }

    pub(super) async fn get_relationship(
        &self,
        _call: &Call,
        _request: pb::GetRelationshipRequest,
    ) -> Result<pb::Relationship, ApiError> {
        Err(ApiError::new(
            ErrorCode::Unimplemented,
            "GetRelationship is not built yet",
        ))
    }

    pub(super) async fn list_relationships(
        &self,
        _call: &Call,
        _request: pb::ListRelationshipsRequest,
    ) -> Result<pb::ListRelationshipsResponse, ApiError> {
        Err(ApiError::new(
            ErrorCode::Unimplemented,
            "ListRelationships is not built yet",
        ))
    }

    pub(super) async fn delete_relationship(
        &self,
        _call: &Call,
        _request: pb::DeleteRelationshipRequest,
    ) -> Result<pb::DeleteRelationshipResponse, ApiError> {
        Err(ApiError::new(
            ErrorCode::Unimplemented,
            "DeleteRelationship is not built yet",
        ))
    }
}
