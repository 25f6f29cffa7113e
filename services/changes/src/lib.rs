//! Change enablement: assess, authorize, schedule and review changes.
//!
//! The gRPC contract is `itsm.changes.v1.ChangeService` in `proto/itsm/changes/v1`. Methods
//! not built yet answer UNIMPLEMENTED (generated default stubs); the service
//! already starts, reports SERVING on health and lists its methods on reflection.
//! It may use the libs; it knows other practices only through `itsm-proto`.

use itsm_proto::itsm::changes::v1::change_service_server::{ChangeService, ChangeServiceServer};

/// The `ChangeService` handlers.
#[derive(Debug, Default, Clone)]
pub struct ChangesApi;

#[tonic::async_trait]
impl ChangeService for ChangesApi {}

/// The tonic service to add to a server.
pub fn service() -> ChangeServiceServer<ChangesApi> {
    ChangeServiceServer::new(ChangesApi)
}

/// This practice's own schema: none yet, so its database holds only the
/// platform tables (outbox, audit log, idempotency keys, counters).
pub const MIGRATIONS: Option<itsm_store::migrate::Migrations> = None;

/// Who may call which method of this service (see `policy.toml` beside
/// `Cargo.toml`; format in `itsm_auth::policy`). Default deny.
pub const POLICY: &str = include_str!("../policy.toml");
