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
    recompute_task_slas(pb::RecomputeTaskSlasRequest) -> pb::Operation = "RecomputeTaskSlas";
    get_operation(pb::GetOperationRequest) -> pb::Operation = "GetOperation";
    list_operations(pb::ListOperationsRequest) -> pb::ListOperationsResponse = "ListOperations";
    cancel_operation(pb::CancelOperationRequest) -> pb::Operation = "CancelOperation";
    get_compliance_report(pb::GetComplianceReportRequest) -> pb::ComplianceReport = "GetComplianceReport";
    list_breaches(pb::ListBreachesRequest) -> pb::ListBreachesResponse = "ListBreaches";
}
