//! The lifecycle methods. Each one builds an [`Action`], and one path runs
//! them all: lock, let the transition table decide, check the etag, write the
//! row, the journal entry the action brings, the audit entry and the event,
//! then pass the change on to the incident's children as the propagation
//! table says (`crate::domain::hierarchy::PROPAGATIONS`), in the same transaction.

use itsm_platform::ApiError;
use itsm_proto::itsm::incidents::v1 as pb;
use itsm_store::{StoreError, etag};

use super::IncidentsApi;
use super::call::{self, COMMENTED, Call, Checks};
use crate::convert;
use crate::directory::{Directory, Membership};
use crate::domain;
use crate::domain::lifecycle::{Action, assignment_target};
use crate::domain::transitions::Method;
use crate::store::{incidents, journal};

/// The event type of each method's change (events.proto).
pub(super) fn event_type(method: Method) -> &'static str {
    match method {
        Method::Assign => "incidents.incident.assigned",
        Method::Hold | Method::Resume => "incidents.incident.state_changed",
        Method::Resolve => "incidents.incident.resolved",
        Method::Close => "incidents.incident.closed",
        Method::Cancel => "incidents.incident.canceled",
        Method::Reopen => "incidents.incident.reopened",
        Method::CallerReply => COMMENTED,
    }
}

/// INVALID_ARGUMENT unless the directory knows `group` and, when set, that
/// `assignee` belongs to it. `prefix` is where the request keeps both fields
/// (`"incident."` on create, `""` on assign).
pub async fn check_assignment(
    directory: &dyn Directory,
    call: &Call,
    prefix: &str,
    group: &str,
    assignee: &str,
) -> Result<(), ApiError> {
    // Without an assignee only the group's existence matters; asking about
    // the caller's own membership answers that too.
    let member = if assignee.is_empty() {
        call.caller.subject.as_str()
    } else {
        assignee
    };
    match directory.is_member(group, member).await? {
        Membership::UnknownGroup => Err(ApiError::invalid_field(
            format!("{prefix}assignment_group"),
            format!("the directory knows no group {group:?}"),
        )),
        Membership::NotMember if !assignee.is_empty() => Err(ApiError::invalid_field(
            format!("{prefix}assignee"),
            format!("{assignee:?} is not a member of the group {group:?}"),
        )),
        Membership::Member | Membership::NotMember => Ok(()),
    }
}

/// The request's name checked with the action's own fields: every bad field at once.
fn checked(name: &str, action: Result<Action, ApiError>) -> Result<Action, ApiError> {
    let mut checks = Checks::default();
    checks.take(domain::number_from_name(name, "name"));
    let action = checks.take(action);
    checks.finish()?;
    action.ok_or_else(|| ApiError::internal("a lifecycle action failed its checks silently"))
}

impl IncidentsApi {
    pub(super) async fn assign_incident(
        &self,
        call: &Call,
        request: pb::AssignIncidentRequest,
    ) -> Result<pb::Incident, ApiError> {
        let action = Action::assign(request.assignment_group.clone(), request.assignee.clone());
        let action = checked(&request.name, action)?;
        // The state and the directory are checked before the transaction, so
        // no row lock is held across a call to the identity service; the
        // transaction then makes sure the group it checked is still the one.
        let mut conn = self.db.pool().acquire().await.map_err(StoreError::from)?;
        let current = call::load(&mut conn, call, &request.name, "name", "").await?;
        drop(conn);
        let mut probe = current.incident.clone();
        probe.apply(&action, &call.actor, itsm_store::now_micros())?;
        let target = assignment_target(
            &current.incident,
            &request.assignment_group,
            &request.assignee,
        );
        check_assignment(&*self.directory, call, "", &target.0, &request.assignee).await?;
        self.transition(call, &request.name, &request.etag, action, Some(target))
            .await
    }

    pub(super) async fn hold_incident(
        &self,
        call: &Call,
        request: pb::HoldIncidentRequest,
    ) -> Result<pb::Incident, ApiError> {
        let action = checked(&request.name, Action::hold(request.reason, request.note))?;
        self.transition(call, &request.name, &request.etag, action, None)
            .await
    }

    pub(super) async fn resume_incident(
        &self,
        call: &Call,
        request: pb::ResumeIncidentRequest,
    ) -> Result<pb::Incident, ApiError> {
        let action = checked(&request.name, Ok(Action::Resume))?;
        self.transition(call, &request.name, &request.etag, action, None)
            .await
    }

    pub(super) async fn resolve_incident(
        &self,
        call: &Call,
        request: pb::ResolveIncidentRequest,
    ) -> Result<pb::Incident, ApiError> {
        let action = Action::resolve(request.resolution_code, request.resolution_notes);
        let action = checked(&request.name, action)?;
        self.transition(call, &request.name, &request.etag, action, None)
            .await
    }

    pub(super) async fn close_incident(
        &self,
        call: &Call,
        request: pb::CloseIncidentRequest,
    ) -> Result<pb::Incident, ApiError> {
        let action = checked(&request.name, Ok(Action::Close))?;
        self.transition(call, &request.name, &request.etag, action, None)
            .await
    }

    pub(super) async fn cancel_incident(
        &self,
        call: &Call,
        request: pb::CancelIncidentRequest,
    ) -> Result<pb::Incident, ApiError> {
        let action = Action::check_reason(&request.reason).map(|()| Action::Cancel {
            reason: request.reason.clone(),
        });
        let action = checked(&request.name, action)?;
        self.transition(call, &request.name, &request.etag, action, None)
            .await
    }

    pub(super) async fn reopen_incident(
        &self,
        call: &Call,
        request: pb::ReopenIncidentRequest,
    ) -> Result<pb::Incident, ApiError> {
        let action = Action::check_reason(&request.reason).map(|()| Action::Reopen {
            reason: request.reason.clone(),
        });
        let action = checked(&request.name, action)?;
        self.transition(call, &request.name, &request.etag, action, None)
            .await
    }

    /// Runs `action` on the incident `name` in one transaction. `target` is
    /// the (group, assignee) an assignment was checked against.
    async fn transition(
        &self,
        call: &Call,
        name: &str,
        sent_etag: &str,
        action: Action,
        target: Option<(String, String)>,
    ) -> Result<pb::Incident, ApiError> {
        let now = itsm_store::now_micros();
        let mut tx = self.db.begin().await?;
        let lock = self.db.backend().lock_suffix();
        let stored = call::load(&mut tx, call, name, "name", lock).await?;
        let (id, mut incident) = (stored.id, stored.incident);
        if let (Some(target), Action::Assign { group, assignee }) = (&target, &action)
            && assignment_target(&incident, group, assignee) != *target
        {
            return Err(ApiError::stale_etag(name));
        }
        let previous = incident.version;
        let before = incident.clone();
        // The state first: an illegal transition is the answer whatever etag was sent.
        let applied = incident.apply(&action, &call.actor, now)?;
        etag::check(name, sent_etag, previous, false)?;
        if applied.changes.is_empty() && applied.journal.is_none() {
            tx.commit().await.map_err(StoreError::from)?;
            return Ok(convert::incident(&incident));
        }
        incidents::update_incident(&mut tx, id, &incident, previous).await?;
        let mut changes = applied.changes;
        let mut entry = None;
        if let Some((kind, body)) = applied.journal {
            let added = journal::insert_entry(&mut tx, id, kind, &body, &call.actor, now).await?;
            changes.push(added.change());
            entry = Some(convert::journal_entry(&added, &incident.number));
        }
        let method = action.method();
        let kind = (method.action(), event_type(method));
        call::record_incident(&mut tx, call, &incident, kind, changes, entry, now).await?;
        // Children follow in this transaction: their changes commit with the parent's or not at all.
        self.propagate(&mut tx, call, (&before, &incident), method, now)
            .await?;
        tx.commit().await.map_err(StoreError::from)?;
        tracing::info!(incident = %name, state = %incident.state, method = method.rpc(), "incident changed");
        Ok(convert::incident(&incident))
    }
}
