//! Request fulfillment and the service catalog.
//!
//! The gRPC contract is `itsm.requests.v1.RequestService` in `proto/itsm/requests/v1`. Methods
//! not built yet answer UNIMPLEMENTED (generated default stubs); the service
//! already starts, reports SERVING on health and lists its methods on reflection.
//! It may use the libs; it knows other practices only through `itsm-proto`.

use itsm_proto::itsm::requests::v1::request_service_server::{
    RequestService, RequestServiceServer,
};

/// The `RequestService` handlers.
#[derive(Debug, Default, Clone)]
pub struct RequestsApi;

#[tonic::async_trait]
impl RequestService for RequestsApi {}

/// The tonic service to add to a server.
pub fn service() -> RequestServiceServer<RequestsApi> {
    RequestServiceServer::new(RequestsApi)
}

/// This practice's own schema: none yet, so its database holds only the
/// platform tables (outbox, audit log, idempotency keys, counters).
pub const MIGRATIONS: Option<itsm_store::migrate::Migrations> = None;

/// Who may call which method of this service (see `policy.toml` beside
/// `Cargo.toml`; format in `itsm_auth::policy`). Default deny.
pub const POLICY: &str = include_str!("../policy.toml");
