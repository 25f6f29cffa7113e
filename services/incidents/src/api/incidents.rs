//! Create, read, list and update incidents.

use itsm_auth::rows;
use itsm_platform::{ApiError, ErrorCode};
use itsm_proto::itsm::incidents::v1 as pb;
use itsm_store::audit::FieldChange;
use itsm_store::idempotency::{self, Claim};
use itsm_store::list::ListRequest;
use itsm_store::{StoreError, Tx, counter, etag};
use prost::Message as _;

use super::IncidentsApi;
use super::automation::routing::Routed;
use super::call::{self, CREATED, Call, Checks, PRIORITY_CHANGED, UPDATED};
use super::hierarchy::apply_major_rules;
use super::lifecycle::check_assignment;
use crate::convert;
use crate::domain::incident::Incident;
use crate::domain::{self, update};
use crate::store::{StoredIncident, config, incidents, list};

const CREATE_METHOD: &str = "itsm.incidents.v1.IncidentService/CreateIncident";
/// Longest request_id accepted (a UUID is 36 characters).
const REQUEST_ID_MAX: usize = 128;
/// Created without the assignment a rule asked for, because the CMDB or the
/// directory did not answer (events.proto).
const ASSIGNMENT_DEGRADED: &str = "incidents.incident.assignment_degraded";

/// PERMISSION_DENIED for what a requester may not do on an incident.
pub fn requester_refused(what: &str) -> ApiError {
    ApiError::new(
        ErrorCode::PermissionDenied,
        format!("requesters may not {what}"),
    )
}

impl IncidentsApi {
    pub(super) async fn create_incident(
        &self,
        call: &Call,
        request: pb::CreateIncidentRequest,
    ) -> Result<pb::Incident, ApiError> {
        let mut draft = convert::draft(request.incident.clone().unwrap_or_default());
        if draft.caller.is_empty() {
            draft.caller.clone_from(&call.caller.subject);
        }
        if itsm_auth::rows::is_requester_only(&call.caller) {
            // Otherwise a requester could file incidents they then cannot see,
            // or assign work, which the policy keeps for agents.
            if draft.caller != call.caller.subject {
                return Err(requester_refused("open an incident for another caller"));
            }
            if !draft.assignment_group.is_empty() || !draft.assignee.is_empty() {
                return Err(requester_refused("assign incidents"));
            }
        }
        let mut checks = Checks::default();
        checks.take(draft.validate_new());
        checks.check(
            request.request_id.chars().count() <= REQUEST_ID_MAX,
            "request_id",
            "must be at most 128 characters (a UUID is recommended)",
        );
        checks.finish()?;
        let group = domain::group_id(&draft.assignment_group).to_owned();
        if !group.is_empty() {
            check_assignment(&*self.directory, call, "incident.", &group, &draft.assignee).await?;
        }

        let now = itsm_store::now_micros();
        let mut tx = self.db.begin().await?;
        if !request.request_id.is_empty() {
            // The content hash leaves the request id out: it is what identifies a retry.
            let content = pb::CreateIncidentRequest {
                request_id: String::new(),
                ..request.clone()
            };
            let hash = idempotency::hash_request(&content.encode_to_vec());
            let claim = idempotency::claim(&mut tx, CREATE_METHOD, &request.request_id, &hash);
            if let Claim::Replay { resource } = claim.await? {
                let stored = call::load(&mut tx, call, &resource, "request_id", "").await?;
                tx.commit().await.map_err(StoreError::from)?;
                return Ok(convert::incident(&stored.incident));
            }
        }
        let matrix = config::select_matrix(&mut tx, "").await?;
        let number = counter::next(&mut tx, domain::COUNTER).await?;
        let number = counter::format_number(domain::NUMBER_PREFIX, number);
        let incident = Incident::open(draft, number, &matrix.cells, call.actor.clone(), now);
        let incident = self.insert_new(&mut tx, call, incident, now).await?;
        let name = incident.name();
        if !request.request_id.is_empty() {
            idempotency::complete(&mut tx, CREATE_METHOD, &request.request_id, &name).await?;
        }
        tx.commit().await.map_err(StoreError::from)?;
        tracing::info!(incident = %name, priority = %incident.priority, group = %incident.assignment_group, "incident opened");
        Ok(convert::incident(&incident))
    }

    /// Writes the new `incident`: its row, routed by the assignment rules
    /// when it names no group; the creation's audit entry and event (and
    /// `assignment_degraded` when a rule could not be applied in full); then
    /// what the major-incident rules say, a change of its own (version 2,
    /// its own event). Returns the incident as written.
    async fn insert_new(
        &self,
        tx: &mut Tx,
        call: &Call,
        mut incident: Incident,
        now: i64,
    ) -> Result<Incident, ApiError> {
        let id = incidents::insert_incident(tx, &incident).await?;
        let mut routed = Routed::default();
        if incident.assignment_group.is_empty() {
            routed = self.route(tx, id, &mut incident, now).await?;
            if !incident.assignment_group.is_empty() {
                // Still the creation: version 1, one row written twice.
                incidents::update_incident(tx, id, &incident, incident.version).await?;
            }
        }
        let mut changes = incident.creation_changes();
        if let Some(rule) = &routed.rule {
            changes.push(FieldChange::new("assignment_rule", "", rule));
        }
        let kind = ("create", CREATED);
        call::record_incident(tx, call, &incident, kind, changes, None, now).await?;
        if let (Some(rule), Some(reason)) = (&routed.rule, &routed.degraded) {
            // Changes nothing: it carries the creation's version as its sequence.
            let changes = vec![
                FieldChange::new("assignment_rule", "", rule),
                FieldChange::new("reason", "", reason),
            ];
            let kind = ("assignment_degraded", ASSIGNMENT_DEGRADED);
            call::record_incident(tx, call, &incident, kind, changes, None, now).await?;
        }
        let mut stored = StoredIncident { id, incident };
        apply_major_rules(tx, call, &mut stored, now).await?;
        Ok(stored.incident)
    }

    pub(super) async fn get_incident(
        &self,
        call: &Call,
        request: pb::GetIncidentRequest,
    ) -> Result<pb::Incident, ApiError> {
        let number = domain::number_from_name(&request.name, "name")?;
        let mut conn = self.db.read().await?;
        // A failed statement drops the connection, which then gets sqlx's check.
        let found = incidents::select_incident(&mut conn, number, "").await?;
        conn.done();
        let stored = call::visible(call, &request.name, found)?;
        Ok(convert::incident(&stored.incident))
    }

    pub(super) async fn list_incidents(
        &self,
        call: &Call,
        request: pb::ListIncidentsRequest,
    ) -> Result<pb::ListIncidentsResponse, ApiError> {
        let tokens = self.tokens().await?;
        let list = ListRequest {
            page_size: request.page_size,
            page_token: &request.page_token,
            filter: &request.filter,
            order_by: &request.order_by,
        };
        let scope = rows::ticket_scope(&call.caller);
        let (found, next_page_token) = list::select_page(&self.db, &list, tokens, scope).await?;
        Ok(pb::ListIncidentsResponse {
            incidents: found.iter().map(convert::incident).collect(),
            next_page_token,
        })
    }

    pub(super) async fn update_incident(
        &self,
        call: &Call,
        request: pb::UpdateIncidentRequest,
    ) -> Result<pb::Incident, ApiError> {
        let sent = request.incident.unwrap_or_default();
        let name = sent.name.clone();
        let paths = request.update_mask.map(|m| m.paths).unwrap_or_default();
        let draft = convert::draft(sent);
        let mut checks = Checks::default();
        checks.take(domain::number_from_name(&name, "incident.name"));
        let fields = checks
            .take(update::check_mask(&paths))
            .unwrap_or_else(|| update::known_fields(&paths));
        checks.take(update::check_fields(&draft, &fields));
        checks.check(
            !request.etag.is_empty(),
            "etag",
            "is required: the etag of the incident as last read",
        );
        checks.finish()?;

        let now = itsm_store::now_micros();
        let mut tx = self.db.begin().await?;
        let lock = self.db.backend().lock_suffix();
        let stored = call::load(&mut tx, call, &name, "incident.name", lock).await?;
        let (id, mut incident) = (stored.id, stored.incident);
        update::check_editable(&incident)?;
        let previous = incident.version;
        etag::check(&name, &request.etag, previous, true)?;
        let matrix = config::select_matrix(&mut tx, "").await?;
        let before = incident.clone();
        update::apply(&mut incident, draft, &fields, &matrix.cells);
        let changes = before.changes_to(&incident);
        if changes.is_empty() {
            tx.commit().await.map_err(StoreError::from)?;
            return Ok(convert::incident(&incident));
        }
        incident.touch(now);
        incidents::update_incident(&mut tx, id, &incident, previous).await?;
        let event = if incident.priority == before.priority {
            UPDATED
        } else {
            PRIORITY_CHANGED
        };
        call::record_incident(
            &mut tx,
            call,
            &incident,
            ("update", event),
            changes,
            None,
            now,
        )
        .await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(convert::incident(&incident))
    }
}
