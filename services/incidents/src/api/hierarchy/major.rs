//! The major flag by hand (PromoteMajorIncident, DemoteMajorIncident: a
//! reason, its own permission, the etag when sent), by rule
//! ([`apply_major_rules`]), and the rules themselves (list, create, delete).

use itsm_platform::ApiError;
use itsm_proto::itsm::incidents::v1 as pb;
use itsm_store::audit::FieldChange;
use itsm_store::idempotency::{self, Claim};
use itsm_store::list::ListRequest;
use itsm_store::{SqlBuilder, StoreError, Tx, etag};
use prost::Message as _;

use super::{
    MAJOR_DEMOTED, MAJOR_PROMOTED, MAJOR_PROPOSED, RULE_CREATED, RULE_DELETED, rule, rule_payload,
};
use crate::api::IncidentsApi;
use crate::api::call::{self, Call, Change, Checks};
use crate::convert;
use crate::domain::enums::{JournalKind, MajorState};
use crate::domain::hierarchy::major::{self, MajorRuleAction, RULES, RuleDraft};
use crate::domain::{self};
use crate::store::hierarchy::{evaluate_major_rules, rules};
use crate::store::{StoredIncident, incidents, journal};

const CREATE_METHOD: &str = "itsm.incidents.v1.IncidentService/CreateMajorIncidentRule";

/// Evaluates the major-incident rules on `stored` (locked and current in
/// `tx`) and applies what they say: PROPOSE or PROMOTE, by the caller, with
/// its audit entry and `major_proposed` / `major_promoted` event. Whether
/// anything changed. For any change that may make an incident major: a new
/// child (SetParentIncident), a create or an update.
pub(in crate::api) async fn apply_major_rules(
    tx: &mut Tx,
    call: &Call,
    stored: &mut StoredIncident,
    now: i64,
) -> Result<bool, ApiError> {
    let Some(action) = evaluate_major_rules(tx, stored.id).await? else {
        return Ok(false);
    };
    let previous = stored.incident.version;
    let Some(changes) = stored.incident.apply_major_rule(action, &call.actor, now) else {
        return Ok(false);
    };
    incidents::update_incident(tx, stored.id, &stored.incident, previous).await?;
    let kind = match action {
        MajorRuleAction::Propose => ("propose_major by rule", MAJOR_PROPOSED),
        MajorRuleAction::Promote => ("promote_major by rule", MAJOR_PROMOTED),
    };
    call::record_incident(tx, call, &stored.incident, kind, changes, None, now).await?;
    tracing::info!(incident = %stored.incident.name(), major_state = %stored.incident.major_state, "major incident rule applied");
    Ok(true)
}

/// The rule id in `majorIncidentRules/<id>`; INVALID_ARGUMENT otherwise.
fn rule_id(name: &str) -> Result<i64, ApiError> {
    name.strip_prefix(RULES)
        .and_then(|rest| rest.strip_prefix('/'))
        .and_then(|id| id.parse::<i64>().ok())
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::invalid_field("name", format!("must be {RULES}/<id>")))
}

impl IncidentsApi {
    pub(in crate::api) async fn promote_major_incident(
        &self,
        call: &Call,
        request: pb::PromoteMajorIncidentRequest,
    ) -> Result<pb::Incident, ApiError> {
        self.flag(call, &request.name, &request.reason, &request.etag, true)
            .await
    }

    pub(in crate::api) async fn demote_major_incident(
        &self,
        call: &Call,
        request: pb::DemoteMajorIncidentRequest,
    ) -> Result<pb::Incident, ApiError> {
        self.flag(call, &request.name, &request.reason, &request.etag, false)
            .await
    }

    /// Promotes (`up`) or demotes the incident `name` for `reason`, which is
    /// audited and written to the work notes.
    async fn flag(
        &self,
        call: &Call,
        name: &str,
        reason: &str,
        sent_etag: &str,
        up: bool,
    ) -> Result<pb::Incident, ApiError> {
        let mut checks = Checks::default();
        checks.take(domain::number_from_name(name, "name"));
        checks.take(major::check_reason(reason));
        checks.finish()?;
        let now = itsm_store::now_micros();
        let mut tx = self.db.begin().await?;
        let lock = self.db.backend().lock_suffix();
        let stored = call::load(&mut tx, call, name, "name", lock).await?;
        let (id, mut incident) = (stored.id, stored.incident);
        let previous = incident.version;
        // The flag's state first, as for lifecycle methods.
        let mut changes = if up {
            incident.promote_major(&call.actor, now)?
        } else {
            incident.demote_major(now)?
        };
        etag::check(name, sent_etag, previous, false)?;
        changes.push(FieldChange::new("major_reason", "", reason));
        incidents::update_incident(&mut tx, id, &incident, previous).await?;
        let (verb, event) = if up {
            ("Promoted to major incident", MAJOR_PROMOTED)
        } else if incident.major_state == MajorState::Rejected {
            ("Major incident proposal rejected", MAJOR_DEMOTED)
        } else {
            ("Demoted from major incident", MAJOR_DEMOTED)
        };
        let body = format!("{verb}: {reason}");
        let added =
            journal::insert_entry(&mut tx, id, JournalKind::WorkNote, &body, &call.actor, now)
                .await?;
        changes.push(added.change());
        let entry = Some(convert::journal_entry(&added, &incident.number));
        let action = if up { "promote_major" } else { "demote_major" };
        call::record_incident(
            &mut tx,
            call,
            &incident,
            (action, event),
            changes,
            entry,
            now,
        )
        .await?;
        tx.commit().await.map_err(StoreError::from)?;
        tracing::info!(incident = %name, major_state = %incident.major_state, "major flag changed");
        Ok(convert::incident(&incident))
    }

    pub(in crate::api) async fn list_major_incident_rules(
        &self,
        _call: &Call,
        request: pb::ListMajorIncidentRulesRequest,
    ) -> Result<pb::ListMajorIncidentRulesResponse, ApiError> {
        let tokens = self.tokens().await?;
        let list = ListRequest {
            page_size: request.page_size,
            page_token: &request.page_token,
            filter: "",
            order_by: "",
        };
        let (found, next_page_token) = rules::select_page(&self.db, &list, tokens).await?;
        Ok(pb::ListMajorIncidentRulesResponse {
            rules: found.iter().map(rule).collect(),
            next_page_token,
        })
    }

    pub(in crate::api) async fn create_major_incident_rule(
        &self,
        call: &Call,
        request: pb::CreateMajorIncidentRuleRequest,
    ) -> Result<pb::MajorIncidentRule, ApiError> {
        let sent = request.rule.clone().unwrap_or_default();
        let now = itsm_store::now_micros();
        let draft = RuleDraft {
            condition: sent.condition.clone(),
            min_children: sent.min_children,
            children_window: sent.children_window.map(|d| (d.seconds, d.nanos)),
            action: sent.action,
            enabled: sent.enabled,
        };
        let mut checks = Checks::default();
        let new = checks.take(draft.validate(call.actor.clone(), now));
        checks.take(rules::compile_condition(
            &sent.condition,
            &mut SqlBuilder::default(),
        ));
        checks.check(
            request.request_id.chars().count() <= 128,
            "request_id",
            "must be at most 128 characters (a UUID is recommended)",
        );
        checks.finish()?;
        let mut new = new.ok_or_else(|| {
            ApiError::internal("a major incident rule failed its checks silently")
        })?;

        let mut tx = self.db.begin().await?;
        if !request.request_id.is_empty() {
            let content = pb::CreateMajorIncidentRuleRequest {
                request_id: String::new(),
                ..request.clone()
            };
            let hash = idempotency::hash_request(&content.encode_to_vec());
            let claim = idempotency::claim(&mut tx, CREATE_METHOD, &request.request_id, &hash);
            if let Claim::Replay { resource } = claim.await? {
                let found = rules::select_rule(&mut tx, rule_id(&resource)?)
                    .await?
                    .ok_or_else(|| ApiError::not_found(&resource))?;
                tx.commit().await.map_err(StoreError::from)?;
                return Ok(rule(&found));
            }
        }
        new.id = rules::insert_rule(&mut tx, &new).await?;
        let name = new.name();
        let change = Change {
            resource: &name,
            version: new.version,
            action: "create",
            event_type: RULE_CREATED,
            changes: new.creation_changes(),
            payload: rule_payload(&new),
        };
        call::record(&mut tx, call, change, now).await?;
        if !request.request_id.is_empty() {
            idempotency::complete(&mut tx, CREATE_METHOD, &request.request_id, &name).await?;
        }
        tx.commit().await.map_err(StoreError::from)?;
        tracing::info!(rule = %name, "major incident rule created");
        Ok(rule(&new))
    }

    pub(in crate::api) async fn delete_major_incident_rule(
        &self,
        call: &Call,
        request: pb::DeleteMajorIncidentRuleRequest,
    ) -> Result<pb::DeleteMajorIncidentRuleResponse, ApiError> {
        let id = rule_id(&request.name)?;
        let now = itsm_store::now_micros();
        let mut tx = self.db.begin().await?;
        let found = rules::select_rule(&mut tx, id)
            .await?
            .ok_or_else(|| ApiError::not_found(&request.name))?;
        rules::delete_rule(&mut tx, id).await?;
        let change = Change {
            resource: &request.name,
            version: found.version + 1,
            action: "delete",
            event_type: RULE_DELETED,
            changes: vec![FieldChange::new("condition", &found.condition, "")],
            payload: rule_payload(&found),
        };
        call::record(&mut tx, call, change, now).await?;
        tx.commit().await.map_err(StoreError::from)?;
        tracing::info!(rule = %request.name, "major incident rule deleted");
        Ok(pb::DeleteMajorIncidentRuleResponse {})
    }
}
