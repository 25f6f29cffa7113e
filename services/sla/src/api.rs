//! The `SlaService` handlers: decode, check, run the use case, encode.
//!
//! Who may call which method is decided before a handler runs, by the auth
//! layer and `policy.toml`. Every change writes its rows, version row, audit
//! entry and event in one transaction.
//!
//! - [`call`]: the stream, event types and the audit entry + event of a change.
//! - [`calendars`]: calendars, their versions and holiday import;
//!   [`business_time`]: business-time arithmetic over a calendar.
//! - [`definitions`]: SLA / OLA / UC definitions and their versions.
//! - [`task_slas`]: task SLAs (read, list, explain, recompute one ticket).
//! - [`audit`]: the audit trail of calendars and definitions.
//! - [`operations`]: recomputation operations (start, read, list, cancel).
//! - [`reports`]: compliance and breaches with their cause.

mod audit;
mod business_time;
mod calendars;
pub(crate) mod call;
mod definitions;
mod operations;
mod reports;
mod task_slas;

use std::sync::Arc;

use itsm_platform::ApiError;
use itsm_proto::itsm::sla::v1 as pb;
use itsm_proto::itsm::sla::v1::sla_service_server::SlaService;
use itsm_store::Db;
use itsm_store::page::PageTokens;
use tokio::sync::OnceCell;
use tonic::{Request, Response, Status};

use call::Call;

use crate::engine::Engine;

/// The `SlaService` handlers. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SlaApi {
    db: Db,
    tokens: Arc<OnceCell<PageTokens>>,
    /// The clock engine, with its compiled calendars (shared with
    /// `business_time`).
    engine: Engine,
}

impl SlaApi {
    /// Handlers over `db`, migrated with [`crate::MIGRATIONS`], with an
    /// engine that knows no CMDB.
    pub fn new(db: Db) -> Self {
        Self::with_engine(db, Engine::default())
    }

    /// Handlers over `db` whose replays use `engine` (the one the ticket
    /// consumer and the timer job use, so they share compiled calendars).
    pub fn with_engine(db: Db, engine: Engine) -> Self {
        Self {
            db,
            tokens: Arc::new(OnceCell::new()),
            engine,
        }
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
        impl SlaService for SlaApi {
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
    create_calendar(pb::CreateCalendarRequest) -> pb::Calendar;
    get_calendar(pb::GetCalendarRequest) -> pb::Calendar;
    list_calendars(pb::ListCalendarsRequest) -> pb::ListCalendarsResponse;
    update_calendar(pb::UpdateCalendarRequest) -> pb::Calendar;
    delete_calendar(pb::DeleteCalendarRequest) -> pb::DeleteCalendarResponse;
    list_calendar_versions(pb::ListCalendarVersionsRequest) -> pb::ListCalendarVersionsResponse;
    import_calendar_holidays(pb::ImportCalendarHolidaysRequest) -> pb::ImportCalendarHolidaysResponse;
    add_business_time(pb::AddBusinessTimeRequest) -> pb::AddBusinessTimeResponse;
    measure_business_time(pb::MeasureBusinessTimeRequest) -> pb::MeasureBusinessTimeResponse;
    create_sla_definition(pb::CreateSlaDefinitionRequest) -> pb::SlaDefinition;
    get_sla_definition(pb::GetSlaDefinitionRequest) -> pb::SlaDefinition;
    list_sla_definitions(pb::ListSlaDefinitionsRequest) -> pb::ListSlaDefinitionsResponse;
    update_sla_definition(pb::UpdateSlaDefinitionRequest) -> pb::SlaDefinition;
    delete_sla_definition(pb::DeleteSlaDefinitionRequest) -> pb::DeleteSlaDefinitionResponse;
    list_sla_definition_versions(pb::ListSlaDefinitionVersionsRequest) -> pb::ListSlaDefinitionVersionsResponse;
    get_task_sla(pb::GetTaskSlaRequest) -> pb::TaskSla;
    list_task_slas(pb::ListTaskSlasRequest) -> pb::ListTaskSlasResponse;
    explain_task_sla(pb::ExplainTaskSlaRequest) -> pb::TaskSlaTimeline;
    recompute_ticket_slas(pb::RecomputeTicketSlasRequest) -> pb::RecomputeTicketSlasResponse;
    recompute_task_slas(pb::RecomputeTaskSlasRequest) -> pb::Operation;
    get_operation(pb::GetOperationRequest) -> pb::Operation;
    list_operations(pb::ListOperationsRequest) -> pb::ListOperationsResponse;
    cancel_operation(pb::CancelOperationRequest) -> pb::Operation;
    get_compliance_report(pb::GetComplianceReportRequest) -> pb::ComplianceReport;
    list_breaches(pb::ListBreachesRequest) -> pb::ListBreachesResponse;
    list_audit_entries(pb::ListAuditEntriesRequest) -> pb::ListAuditEntriesResponse;
}
