//! The `IncidentService` handlers: decode, check, run the use case, encode.
//!
//! Who may call which method is decided before a handler runs, by the auth
//! layer and `policy.toml`; handlers add the row-level rules the table cannot
//! express (a requester sees only incidents they are the caller of or watch,
//! and never work notes). Every change writes its row, audit entry and event
//! in one transaction.
//!
//! - [`call`]: the caller of a call, and the audit entry and event of a change.
//! - [`incidents`]: create, get, list, update.
//! - [`lifecycle`]: assign, hold, resume, resolve, close, cancel, reopen.
//! - [`journal`]: work notes and comments.
//! - [`related`]: watchers, links and the audit trail.
//! - [`config`]: the priority matrix, the transition table, the settings.
//! - [`alerts`]: alert intake; [`hierarchy`]: tasks, parents, major incidents;
//!   [`automation`]: assignment rules and KPIs.

mod alerts;
mod automation;
mod call;
mod config;
mod hierarchy;
mod incidents;
mod journal;
mod lifecycle;
mod related;

use std::sync::Arc;

use itsm_platform::ApiError;
use itsm_proto::itsm::common::v1 as common;
use itsm_proto::itsm::incidents::v1 as pb;
use itsm_proto::itsm::incidents::v1::incident_service_server::IncidentService;
use itsm_store::Db;
use itsm_store::page::PageTokens;
use tokio::sync::OnceCell;
use tonic::{Request, Response, Status};

use crate::directory::{Cmdb, Directory, NoCmdb};
use call::Call;

/// The `IncidentService` handlers. Cheap to clone.
#[derive(Debug, Clone)]
pub struct IncidentsApi {
    db: Db,
    directory: Arc<dyn Directory>,
    cmdb: Arc<dyn Cmdb>,
    tokens: Arc<OnceCell<PageTokens>>,
}

impl IncidentsApi {
    /// Handlers over `db`, migrated with [`crate::MIGRATIONS`], asking
    /// `directory` whether assignees belong to their groups. List page tokens
    /// are signed with a key kept in that database (made on first use).
    pub fn new(db: Db, directory: Arc<dyn Directory>) -> Self {
        Self {
            db,
            directory,
            cmdb: Arc::new(NoCmdb),
            tokens: Arc::new(OnceCell::new()),
        }
    }

    /// Asks `cmdb` for the support group of an incident's CI, for assignment
    /// rules that use it. Without one ([`NoCmdb`]) such rules degrade.
    #[must_use]
    pub fn with_cmdb(mut self, cmdb: Arc<dyn Cmdb>) -> Self {
        self.cmdb = cmdb;
        self
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

/// Implements the built RPCs, each as: read the caller, run the use case of
/// the same name on the request, reply.
macro_rules! handlers {
    ($($rpc:ident($request:ty) -> $response:ty;)*) => {
        #[tonic::async_trait]
        impl IncidentService for IncidentsApi {
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
    create_incident(pb::CreateIncidentRequest) -> pb::Incident;
    get_incident(pb::GetIncidentRequest) -> pb::Incident;
    list_incidents(pb::ListIncidentsRequest) -> pb::ListIncidentsResponse;
    update_incident(pb::UpdateIncidentRequest) -> pb::Incident;
    assign_incident(pb::AssignIncidentRequest) -> pb::Incident;
    hold_incident(pb::HoldIncidentRequest) -> pb::Incident;
    resume_incident(pb::ResumeIncidentRequest) -> pb::Incident;
    resolve_incident(pb::ResolveIncidentRequest) -> pb::Incident;
    close_incident(pb::CloseIncidentRequest) -> pb::Incident;
    cancel_incident(pb::CancelIncidentRequest) -> pb::Incident;
    reopen_incident(pb::ReopenIncidentRequest) -> pb::Incident;
    add_journal_entry(pb::AddJournalEntryRequest) -> common::JournalEntry;
    list_journal_entries(pb::ListJournalEntriesRequest) -> pb::ListJournalEntriesResponse;
    add_watcher(pb::AddWatcherRequest) -> pb::Incident;
    remove_watcher(pb::RemoveWatcherRequest) -> pb::Incident;
    add_link(pb::AddLinkRequest) -> pb::Incident;
    remove_link(pb::RemoveLinkRequest) -> pb::Incident;
    list_audit_entries(pb::ListAuditEntriesRequest) -> pb::ListAuditEntriesResponse;
    get_priority_matrix(pb::GetPriorityMatrixRequest) -> common::PriorityMatrix;
    update_priority_matrix(pb::UpdatePriorityMatrixRequest) -> common::PriorityMatrix;
    list_transitions(pb::ListTransitionsRequest) -> pb::ListTransitionsResponse;
    get_incident_settings(pb::GetIncidentSettingsRequest) -> pb::IncidentSettings;
    update_incident_settings(pb::UpdateIncidentSettingsRequest) -> pb::IncidentSettings;
    ingest_alerts(pb::IngestAlertsRequest) -> pb::IngestAlertsResponse;
    get_alert_group(pb::GetAlertGroupRequest) -> pb::AlertGroup;
    list_alert_groups(pb::ListAlertGroupsRequest) -> pb::ListAlertGroupsResponse;
    create_incident_task(pb::CreateIncidentTaskRequest) -> pb::IncidentTask;
    get_incident_task(pb::GetIncidentTaskRequest) -> pb::IncidentTask;
    list_incident_tasks(pb::ListIncidentTasksRequest) -> pb::ListIncidentTasksResponse;
    update_incident_task(pb::UpdateIncidentTaskRequest) -> pb::IncidentTask;
    set_parent_incident(pb::SetParentIncidentRequest) -> pb::Incident;
    promote_major_incident(pb::PromoteMajorIncidentRequest) -> pb::Incident;
    demote_major_incident(pb::DemoteMajorIncidentRequest) -> pb::Incident;
    list_major_incident_rules(pb::ListMajorIncidentRulesRequest) -> pb::ListMajorIncidentRulesResponse;
    create_major_incident_rule(pb::CreateMajorIncidentRuleRequest) -> pb::MajorIncidentRule;
    delete_major_incident_rule(pb::DeleteMajorIncidentRuleRequest) -> pb::DeleteMajorIncidentRuleResponse;
    list_assignment_rules(pb::ListAssignmentRulesRequest) -> pb::ListAssignmentRulesResponse;
    create_assignment_rule(pb::CreateAssignmentRuleRequest) -> pb::AssignmentRule;
    update_assignment_rule(pb::UpdateAssignmentRuleRequest) -> pb::AssignmentRule;
    delete_assignment_rule(pb::DeleteAssignmentRuleRequest) -> pb::DeleteAssignmentRuleResponse;
    get_incident_kpis(pb::GetIncidentKpisRequest) -> pb::IncidentKpis;
}
