//! The configuration management database: classes, CIs, relationships and impact.
//!
//! The gRPC contract is `itsm.cmdb.v1.CmdbService` in `proto/itsm/cmdb/v1`. Methods
//! not built yet answer UNIMPLEMENTED (generated default stubs); the service
//! already starts, reports SERVING on health and lists its methods on reflection.
//! It may use the libs; it knows other practices only through `itsm-proto`.

use itsm_proto::itsm::cmdb::v1::cmdb_service_server::{CmdbService, CmdbServiceServer};

/// The `CmdbService` handlers.
#[derive(Debug, Default, Clone)]
pub struct CmdbApi;

#[tonic::async_trait]
impl CmdbService for CmdbApi {}

/// The tonic service to add to a server.
pub fn service() -> CmdbServiceServer<CmdbApi> {
    CmdbServiceServer::new(CmdbApi)
}

/// This practice's own schema: none yet, so its database holds only the
/// platform tables (outbox, audit log, idempotency keys, counters).
pub const MIGRATIONS: Option<itsm_store::migrate::Migrations> = None;

/// Who may call which method of this service (see `policy.toml` beside
/// `Cargo.toml`; format in `itsm_auth::policy`). Default deny.
pub const POLICY: &str = include_str!("../policy.toml");
