//! Service level management: business-hours calendars and SLA clocks.
//!
//! The gRPC contract is `itsm.sla.v1.SlaService` in `proto/itsm/sla/v1`. Methods
//! not built yet answer UNIMPLEMENTED (generated default stubs); the service
//! already starts, reports SERVING on health and lists its methods on reflection.
//! It may use the libs; it knows other practices only through `itsm-proto`.

use itsm_proto::itsm::sla::v1::sla_service_server::{SlaService, SlaServiceServer};

/// The `SlaService` handlers.
#[derive(Debug, Default, Clone)]
pub struct SlaApi;

#[tonic::async_trait]
impl SlaService for SlaApi {}

/// The tonic service to add to a server.
pub fn service() -> SlaServiceServer<SlaApi> {
    SlaServiceServer::new(SlaApi)
}

/// This practice's own schema: none yet, so its database holds only the
/// platform tables (outbox, audit log, idempotency keys, counters).
pub const MIGRATIONS: Option<itsm_store::migrate::Migrations> = None;

/// Who may call which method of this service (see `policy.toml` beside
/// `Cargo.toml`; format in `itsm_auth::policy`). Default deny.
pub const POLICY: &str = include_str!("../policy.toml");
