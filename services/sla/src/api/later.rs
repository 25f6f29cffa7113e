//! The RPCs not built yet: each answers UNIMPLEMENTED naming itself, so a
//! client can tell "not there yet" from a bug.

use itsm_platform::{ApiError, ErrorCode};
use itsm_proto::itsm::sla::v1 as pb;

use super::SlaApi;
use super::call::Call;

macro_rules! not_built {
    ($($rpc:ident($request:ty) -> $response:ty = $name:literal;)*) => {
        impl SlaApi {
            $(
                pub(super) async fn $rpc(
                    &self,
                    _call: &Call,
                    _request: $request,
                ) -> Result<$response, ApiError> {
                    Err(ApiError::new(
                        ErrorCode::Unimplemented,
                        concat!($name, " is not built yet"),
                    ))
                }
            )*
        }
    };
}

not_built! {
    create_calendar(pb::CreateCalendarRequest) -> pb::Calendar = "CreateCalendar";
    get_calendar(pb::GetCalendarRequest) -> pb::Calendar = "GetCalendar";
    list_calendars(pb::ListCalendarsRequest) -> pb::ListCalendarsResponse = "ListCalendars";
    update_calendar(pb::UpdateCalendarRequest) -> pb::Calendar = "UpdateCalendar";
    delete_calendar(pb::DeleteCalendarRequest) -> pb::DeleteCalendarResponse = "DeleteCalendar";
    list_calendar_versions(pb::ListCalendarVersionsRequest) -> pb::ListCalendarVersionsResponse = "ListCalendarVersions";
    import_calendar_holidays(pb::ImportCalendarHolidaysRequest) -> pb::ImportCalendarHolidaysResponse = "ImportCalendarHolidays";
    add_business_time(pb::AddBusinessTimeRequest) -> pb::AddBusinessTimeResponse = "AddBusinessTime";
    measure_business_time(pb::MeasureBusinessTimeRequest) -> pb::MeasureBusinessTimeResponse = "MeasureBusinessTime";
    create_sla_definition(pb::CreateSlaDefinitionRequest) -> pb::SlaDefinition = "CreateSlaDefinition";
    get_sla_definition(pb::GetSlaDefinitionRequest) -> pb::SlaDefinition = "GetSlaDefinition";
    list_sla_definitions(pb::ListSlaDefinitionsRequest) -> pb::ListSlaDefinitionsResponse = "ListSlaDefinitions";
    update_sla_definition(pb::UpdateSlaDefinitionRequest) -> pb::SlaDefinition = "UpdateSlaDefinition";
    delete_sla_definition(pb::DeleteSlaDefinitionRequest) -> pb::DeleteSlaDefinitionResponse = "DeleteSlaDefinition";
    list_sla_definition_versions(pb::ListSlaDefinitionVersionsRequest) -> pb::ListSlaDefinitionVersionsResponse = "ListSlaDefinitionVersions";
    list_audit_entries(pb::ListAuditEntriesRequest) -> pb::ListAuditEntriesResponse = "ListAuditEntries";
    get_task_sla(pb::GetTaskSlaRequest) -> pb::TaskSla = "GetTaskSla";
    list_task_slas(pb::ListTaskSlasRequest) -> pb::ListTaskSlasResponse = "ListTaskSlas";
    explain_task_sla(pb::ExplainTaskSlaRequest) -> pb::TaskSlaTimeline = "ExplainTaskSla";
    recompute_ticket_slas(pb::RecomputeTicketSlasRequest) -> pb::RecomputeTicketSlasResponse = "RecomputeTicketSlas";
    recompute_task_slas(pb::RecomputeTaskSlasRequest) -> pb::Operation = "RecomputeTaskSlas";
    get_operation(pb::GetOperationRequest) -> pb::Operation = "GetOperation";
    list_operations(pb::ListOperationsRequest) -> pb::ListOperationsResponse = "ListOperations";
    cancel_operation(pb::CancelOperationRequest) -> pb::Operation = "CancelOperation";
    get_compliance_report(pb::GetComplianceReportRequest) -> pb::ComplianceReport = "GetComplianceReport";
    list_breaches(pb::ListBreachesRequest) -> pb::ListBreachesResponse = "ListBreaches";
}
