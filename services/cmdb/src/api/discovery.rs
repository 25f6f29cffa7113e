//! PLACEHOLDER: discovery.

use itsm_platform::{ApiError, ErrorCode};
use itsm_proto::itsm::cmdb::v1 as pb;

use super::CmdbApi;
use super::call::Call;

impl CmdbApi {
    pub(super) async fn create_discovery_source(
        &self,
        _call: &Call,
        _request: pb::CreateDiscoverySourceRequest,
    ) -> Result<pb::DiscoverySource, ApiError> {
        Err(ApiError::new(
            ErrorCode::Unimplemented,
            "CreateDiscoverySource is not built yet",
        ))
    }

    pub(super) async fn get_discovery_source(
        &self,
        _call: &Call,
        _request: pb::GetDiscoverySourceRequest,
    ) -> Result<pb::DiscoverySource, ApiError> {
        Err(ApiError::new(
            ErrorCode::Unimplemented,
            "GetDiscoverySource is not built yet",
        ))
    }

    pub(super) async fn list_discovery_sources(
        &self,
        _call: &Call,
        _request: pb::ListDiscoverySourcesRequest,
    ) -> Result<pb::ListDiscoverySourcesResponse, ApiError> {
        Err(ApiError::new(
            ErrorCode::Unimplemented,
            "ListDiscoverySources is not built yet",
        ))
    }

    pub(super) async fn update_discovery_source(
        &self,
        _call: &Call,
        _request: pb::UpdateDiscoverySourceRequest,
    ) -> Result<pb::DiscoverySource, ApiError> {
        Err(ApiError::new(
            ErrorCode::Unimplemented,
            "UpdateDiscoverySource is not built yet",
        ))
    }

    pub(super) async fn delete_discovery_source(
        &self,
        _call: &Call,
        _request: pb::DeleteDiscoverySourceRequest,
    ) -> Result<pb::DeleteDiscoverySourceResponse, ApiError> {
        Err(ApiError::new(
            ErrorCode::Unimplemented,
            "DeleteDiscoverySource is not built yet",
        ))
    }

    pub(super) async fn create_precedence_rule(
        &self,
        _call: &Call,
        _request: pb::CreatePrecedenceRuleRequest,
    ) -> Result<pb::PrecedenceRule, ApiError> {
        Err(ApiError::new(
            ErrorCode::Unimplemented,
            "CreatePrecedenceRule is not built yet",
        ))
    }

    pub(super) async fn get_precedence_rule(
        &self,
        _call: &Call,
        _request: pb::GetPrecedenceRuleRequest,
    ) -> Result<pb::PrecedenceRule, ApiError> {
        Err(ApiError::new(
            ErrorCode::Unimplemented,
            "GetPrecedenceRule is not built yet",
        ))
    }

    pub(super) async fn list_precedence_rules(
        &self,
        _call: &Call,
        _request: pb::ListPrecedenceRulesRequest,
    ) -> Result<pb::ListPrecedenceRulesResponse, ApiError> {
        Err(ApiError::new(
            ErrorCode::Unimplemented,
            "ListPrecedenceRules is not built yet",
        ))
    }

    pub(super) async fn update_precedence_rule(
        &self,
        _call: &Call,
        _request: pb::UpdatePrecedenceRuleRequest,
    ) -> Result<pb::PrecedenceRule, ApiError> {
        Err(ApiError::new(
            ErrorCode::Unimplemented,
            "UpdatePrecedenceRule is not built yet",
        ))
    }

    pub(super) async fn delete_precedence_rule(
        &self,
        _call: &Call,
        _request: pb::DeletePrecedenceRuleRequest,
    ) -> Result<pb::DeletePrecedenceRuleResponse, ApiError> {
        Err(ApiError::new(
            ErrorCode::Unimplemented,
            "DeletePrecedenceRule is not built yet",
        ))
    }
}
