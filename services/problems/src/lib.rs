//! Problem management: root causes, known errors and permanent fixes.
//!
//! The gRPC contract is `itsm.problems.v1.ProblemService` in `proto/itsm/problems/v1`. Methods
//! not built yet answer UNIMPLEMENTED (generated default stubs); the service
//! already starts, reports SERVING on health and lists its methods on reflection.
//! It may use the libs; it knows other practices only through `itsm-proto`.

use itsm_proto::itsm::problems::v1::problem_service_server::{
    ProblemService, ProblemServiceServer,
};

/// The `ProblemService` handlers.
#[derive(Debug, Default, Clone)]
pub struct ProblemsApi;

#[tonic::async_trait]
impl ProblemService for ProblemsApi {}

/// The tonic service to add to a server.
pub fn service() -> ProblemServiceServer<ProblemsApi> {
    ProblemServiceServer::new(ProblemsApi)
}

/// This practice's own schema: none yet, so its database holds only the
/// platform tables (outbox, audit log, idempotency keys, counters).
pub const MIGRATIONS: Option<itsm_store::migrate::Migrations> = None;

/// Who may call which method of this service (see `policy.toml` beside
/// `Cargo.toml`; format in `itsm_auth::policy`). Default deny.
pub const POLICY: &str = include_str!("../policy.toml");
