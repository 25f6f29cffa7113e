//! What an alert does to its group's incident, inside the group's
//! transaction: the same writes as `CreateIncident`, `ResolveIncident` and
//! `ReopenIncident` (row, journal entry, audit entry, event), by the caller
//! of `IngestAlerts` (the monitoring service account), without their
//! request checks: the alert was checked, the transition table still rules.
//! Assignment rules, major-incident rules and parent/child propagation
//! apply as they do to those methods.

use itsm_platform::ApiError;
use itsm_store::audit::FieldChange;
use itsm_store::{Tx, counter};

use super::super::IncidentsApi;
use super::super::call::{self, CREATED, Call};
use super::super::hierarchy::apply_major_rules;
use super::super::lifecycle::event_type;
use crate::convert;
use crate::domain::alerts::{self, Alert, AlertGroup, IncidentStep};
use crate::domain::incident::Incident;
use crate::domain::lifecycle::Action;
use crate::domain::{self, LinkType, ResolutionCode};
use crate::store::{StoredIncident, config, incidents, journal};

/// As `CreateIncident` names it (events.proto).
const ASSIGNMENT_DEGRADED: &str = "incidents.incident.assignment_degraded";

/// Carries out `step` on the incident of `group` (`current`, locked, when it
/// has one) for `alert` at `now`; a new incident becomes the group's.
pub async fn run(
    api: &IncidentsApi,
    tx: &mut Tx,
    call: &Call,
    (group, alert): (&mut AlertGroup, &Alert),
    step: IncidentStep,
    current: Option<StoredIncident>,
    now: i64,
) -> Result<(), ApiError> {
    match (step, current) {
        (IncidentStep::Keep, _) => Ok(()),
        (IncidentStep::Open { related }, _) => {
            let opened = open(api, tx, call, (group, alert), related.as_deref(), now).await?;
            group.incident = opened.number;
            Ok(())
        }
        (IncidentStep::Resolve, Some(current)) => {
            let notes = format!("Alert cleared: {}", alerts::describe(alert));
            let notes = alerts::truncate(&notes, domain::TEXT_MAX);
            let action = Action::resolve(ResolutionCode::AlertCleared.number(), notes)?;
            change(api, tx, call, current, action, now).await
        }
        (IncidentStep::Reopen, Some(current)) => {
            let reason = format!("Alert fired again: {}", alerts::describe(alert));
            let reason = alerts::truncate(&reason, domain::REASON_MAX);
            Action::check_reason(&reason)?;
            change(api, tx, call, current, Action::Reopen { reason }, now).await
        }
        (IncidentStep::Resolve | IncidentStep::Reopen, None) => Err(ApiError::internal(
            "an alert step needs the group's incident, which was not loaded",
        )),
    }
}

/// Opens the incident of `alert` for `group`, linked (RELATED) to the
/// incident numbered `related` when the group's last one was final. Written
/// as `CreateIncident` writes a new incident (`IncidentsApi::insert_new`,
/// private to `api/incidents.rs`): routed by the assignment rules, then the
/// creation's audit entry and event, then the major-incident rules.
async fn open(
    api: &IncidentsApi,
    tx: &mut Tx,
    call: &Call,
    (group, alert): (&AlertGroup, &Alert),
    related: Option<&str>,
    now: i64,
) -> Result<Incident, ApiError> {
    let draft = alerts::incident_draft(alert, &call.caller.subject);
    draft.validate_new()?;
    let matrix = config::select_matrix(tx, "").await?;
    let number = counter::next(tx, domain::COUNTER).await?;
    let number = counter::format_number(domain::NUMBER_PREFIX, number);
    let mut incident = Incident::open(draft, number, &matrix.cells, call.actor.clone(), now);
    incident.alert_group.clone_from(&group.fingerprint);
    let link = related
        .map(domain::name_of)
        .and_then(|old| incident.add_link(LinkType::Related, &old, &call.actor, now));
    let id = incidents::insert_incident(tx, &incident).await?;
    for link in &incident.links {
        incidents::insert_link(tx, id, link).await?;
    }
    let routed = api.route(tx, id, &mut incident, now).await?;
    if !incident.assignment_group.is_empty() {
        // Still the creation: version 1, one row written twice.
        incidents::update_incident(tx, id, &incident, incident.version).await?;
    }
    let mut changes = incident.creation_changes();
    changes.push(FieldChange::new("alert_group", "", group.name()));
    changes.extend(link);
    if let Some(rule) = &routed.rule {
        changes.push(FieldChange::new("assignment_rule", "", rule));
    }
    call::record_incident(tx, call, &incident, ("create", CREATED), changes, None, now).await?;
    if let (Some(rule), Some(reason)) = (&routed.rule, &routed.degraded) {
        let changes = vec![
            FieldChange::new("assignment_rule", "", rule),
            FieldChange::new("reason", "", reason),
        ];
        let kind = ("assignment_degraded", ASSIGNMENT_DEGRADED);
        call::record_incident(tx, call, &incident, kind, changes, None, now).await?;
    }
    let mut stored = StoredIncident { id, incident };
    apply_major_rules(tx, call, &mut stored, now).await?;
    tracing::info!(
        incident = %stored.incident.name(),
        group = %group.name(),
        priority = %stored.incident.priority,
        "incident opened from an alert"
    );
    Ok(stored.incident)
}

/// Applies a lifecycle `action` to the locked incident `current`, as the
/// lifecycle methods do: the transition table decides, then row, journal
/// entry, audit entry and event, then the change passes on to its children.
async fn change(
    api: &IncidentsApi,
    tx: &mut Tx,
    call: &Call,
    current: StoredIncident,
    action: Action,
    now: i64,
) -> Result<(), ApiError> {
    let (id, mut incident) = (current.id, current.incident);
    let previous = incident.version;
    let before = incident.clone();
    let applied = incident.apply(&action, &call.actor, now)?;
    if applied.changes.is_empty() && applied.journal.is_none() {
        return Ok(());
    }
    incidents::update_incident(tx, id, &incident, previous).await?;
    let mut changes = applied.changes;
    let mut entry = None;
    if let Some((kind, body)) = applied.journal {
        let added = journal::insert_entry(tx, id, kind, &body, &call.actor, now).await?;
        changes.push(added.change());
        entry = Some(convert::journal_entry(&added, &incident.number));
    }
    let method = action.method();
    let kind = (method.action(), event_type(method));
    call::record_incident(tx, call, &incident, kind, changes, entry, now).await?;
    api.propagate(tx, call, (&before, &incident), method, now)
        .await?;
    tracing::info!(incident = %incident.name(), state = %incident.state, "incident changed by an alert");
    Ok(())
}
