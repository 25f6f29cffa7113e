//! Incident management: restore normal service as quickly as possible.
//!
//! The gRPC contract is `itsm.incidents.v1.IncidentService` in `proto/itsm/incidents/v1`. Methods
//! not built yet answer UNIMPLEMENTED (generated default stubs); the service
//! already starts, reports SERVING on health and lists its methods on reflection.
//! It may use the libs; it knows other practices only through `itsm-proto`.

use itsm_proto::itsm::incidents::v1::incident_service_server::{
    IncidentService, IncidentServiceServer,
};

/// The `IncidentService` handlers.
#[derive(Debug, Default, Clone)]
pub struct IncidentsApi;

#[tonic::async_trait]
impl IncidentService for IncidentsApi {}

/// The tonic service to add to a server.
pub fn service() -> IncidentServiceServer<IncidentsApi> {
    IncidentServiceServer::new(IncidentsApi)
}

/// This practice's own schema: none yet, so its database holds only the
/// platform tables (outbox, audit log, idempotency keys, counters).
pub const MIGRATIONS: Option<itsm_store::migrate::Migrations> = None;

/// Who may call which method of this service (see `policy.toml` beside
/// `Cargo.toml`; format in `itsm_auth::policy`). Default deny.
pub const POLICY: &str = include_str!("../policy.toml");
