//! The `CmdbService` handlers: decode, check, run the use case, encode.
//!
//! Who may call which method is decided before a handler runs, by the auth
//! layer and `policy.toml`. Every change writes its rows, history or audit
//! entry, and event in one transaction; cached reads are invalidated after
//! commit and again by the change's event.
//!
//! - [`call`]: the stream, event types and the audit entry + event of a change.
//! - [`classes`], [`relationship_types`]: the model; [`settings`]: settings and audit.
//! - [`cis`]: create, get, list, update, retire; [`history`]: history and as-of reads.
//! - [`relationships`]: the graph; [`impact`]: impact analysis.
//! - [`discovery`]: discovery sources and precedence rules; [`reconcile`]:
//!   `ReportCis` and parked matches.
//! - [`baselines`]: baselines and their diff; [`health`]: the health report.

mod baselines;
pub(crate) mod call;
mod cis;
mod classes;
mod discovery;
mod health;
mod history;
mod impact;
mod reconcile;
mod relationship_types;
mod relationships;
mod settings;

use std::sync::Arc;
use std::time::Duration;

use itsm_events::cache::Cache;
use itsm_platform::ApiError;
use itsm_proto::itsm::cmdb::v1 as pb;
use itsm_proto::itsm::cmdb::v1::cmdb_service_server::CmdbService;
use itsm_store::Db;
use itsm_store::page::PageTokens;
use tokio::sync::OnceCell;
use tonic::{Request, Response, Status};

use crate::model::{Model, ModelCache};
use call::Call;

/// How long a cached CI or impact result may live when an invalidation is lost.
pub const CACHE_TTL: Duration = Duration::from_secs(300);

/// The `CmdbService` handlers. Cheap to clone.
#[derive(Debug, Clone)]
pub struct CmdbApi {
    db: Db,
    cache: Arc<dyn Cache>,
    /// Cache keys start with this (`cmdb:` in production; tests use their own).
    cache_prefix: Arc<str>,
    model: Arc<ModelCache>,
    tokens: Arc<OnceCell<PageTokens>>,
}

impl CmdbApi {
    /// Handlers over `db`, migrated with [`crate::MIGRATIONS`], caching CI
    /// reads and impact results in `cache` under keys starting with `cache_prefix`.
    pub fn new(db: Db, cache: Arc<dyn Cache>, cache_prefix: &str) -> Self {
        Self {
            db,
            cache,
            cache_prefix: Arc::from(cache_prefix),
            model: Arc::new(ModelCache::default()),
            tokens: Arc::new(OnceCell::new()),
        }
    }

    /// The class model and relationship types, seeded on first use and
    /// reloaded when another call (on any replica) changed them.
    pub(crate) async fn model(&self) -> Result<Arc<Model>, ApiError> {
        self.model.current(&self.db).await
    }

    async fn tokens(&self) -> Result<&PageTokens, ApiError> {
        let tokens = self
            .tokens
            .get_or_try_init(|| PageTokens::of_database(&self.db))
            .await?;
        Ok(tokens)
    }
}

/// A use case's result as a reply: where every error becomes a status.
fn reply<T>(result: Result<T, ApiError>) -> Result<Response<T>, Status> {
    result.map(Response::new).map_err(Status::from)
}

/// Implements the RPCs, each as: read the caller, run the use case of the
/// same name on the request, reply.
macro_rules! handlers {
    ($($rpc:ident($request:ty) -> $response:ty;)*) => {
        #[tonic::async_trait]
        impl CmdbService for CmdbApi {
            $(
                async fn $rpc(
                    &self,
                    request: Request<$request>,
                ) -> Result<Response<$response>, Status> {
                    let call = Call::of(&request)?;
                    reply(self.$rpc(&call, request.into_inner()).await)
                }
            )*
        }
    };
}

handlers! {
    create_ci_class(pb::CreateCiClassRequest) -> pb::CiClass;
    get_ci_class(pb::GetCiClassRequest) -> pb::CiClass;
    list_ci_classes(pb::ListCiClassesRequest) -> pb::ListCiClassesResponse;
    update_ci_class(pb::UpdateCiClassRequest) -> pb::CiClass;
    delete_ci_class(pb::DeleteCiClassRequest) -> pb::DeleteCiClassResponse;
    create_ci(pb::CreateCiRequest) -> pb::Ci;
    get_ci(pb::GetCiRequest) -> pb::Ci;
    batch_get_cis(pb::BatchGetCisRequest) -> pb::BatchGetCisResponse;
    list_cis(pb::ListCisRequest) -> pb::ListCisResponse;
    update_ci(pb::UpdateCiRequest) -> pb::Ci;
    retire_ci(pb::RetireCiRequest) -> pb::Ci;
    get_ci_as_of(pb::GetCiAsOfRequest) -> pb::Ci;
    list_ci_history(pb::ListCiHistoryRequest) -> pb::ListCiHistoryResponse;
    create_relationship_type(pb::CreateRelationshipTypeRequest) -> pb::RelationshipType;
    get_relationship_type(pb::GetRelationshipTypeRequest) -> pb::RelationshipType;
    list_relationship_types(pb::ListRelationshipTypesRequest) -> pb::ListRelationshipTypesResponse;
    update_relationship_type(pb::UpdateRelationshipTypeRequest) -> pb::RelationshipType;
    delete_relationship_type(pb::DeleteRelationshipTypeRequest) -> pb::DeleteRelationshipTypeResponse;
    create_relationship(pb::CreateRelationshipRequest) -> pb::Relationship;
    get_relationship(pb::GetRelationshipRequest) -> pb::Relationship;
    list_relationships(pb::ListRelationshipsRequest) -> pb::ListRelationshipsResponse;
    delete_relationship(pb::DeleteRelationshipRequest) -> pb::DeleteRelationshipResponse;
    analyze_impact(pb::AnalyzeImpactRequest) -> pb::ImpactAnalysis;
    report_cis(pb::ReportCisRequest) -> pb::ReportCisResponse;
    get_parked_match(pb::GetParkedMatchRequest) -> pb::ParkedMatch;
    list_parked_matches(pb::ListParkedMatchesRequest) -> pb::ListParkedMatchesResponse;
    resolve_parked_match(pb::ResolveParkedMatchRequest) -> pb::ParkedMatch;
    create_discovery_source(pb::CreateDiscoverySourceRequest) -> pb::DiscoverySource;
    get_discovery_source(pb::GetDiscoverySourceRequest) -> pb::DiscoverySource;
    list_discovery_sources(pb::ListDiscoverySourcesRequest) -> pb::ListDiscoverySourcesResponse;
    update_discovery_source(pb::UpdateDiscoverySourceRequest) -> pb::DiscoverySource;
    delete_discovery_source(pb::DeleteDiscoverySourceRequest) -> pb::DeleteDiscoverySourceResponse;
    create_precedence_rule(pb::CreatePrecedenceRuleRequest) -> pb::PrecedenceRule;
    get_precedence_rule(pb::GetPrecedenceRuleRequest) -> pb::PrecedenceRule;
    list_precedence_rules(pb::ListPrecedenceRulesRequest) -> pb::ListPrecedenceRulesResponse;
    update_precedence_rule(pb::UpdatePrecedenceRuleRequest) -> pb::PrecedenceRule;
    delete_precedence_rule(pb::DeletePrecedenceRuleRequest) -> pb::DeletePrecedenceRuleResponse;
    create_baseline(pb::CreateBaselineRequest) -> pb::Baseline;
    get_baseline(pb::GetBaselineRequest) -> pb::Baseline;
    list_baselines(pb::ListBaselinesRequest) -> pb::ListBaselinesResponse;
    diff_baseline(pb::DiffBaselineRequest) -> pb::DiffBaselineResponse;
    get_health_report(pb::GetHealthReportRequest) -> pb::HealthReport;
    list_health_issues(pb::ListHealthIssuesRequest) -> pb::ListHealthIssuesResponse;
    get_cmdb_settings(pb::GetCmdbSettingsRequest) -> pb::CmdbSettings;
    update_cmdb_settings(pb::UpdateCmdbSettingsRequest) -> pb::CmdbSettings;
    list_audit_entries(pb::ListAuditEntriesRequest) -> pb::ListAuditEntriesResponse;
}
