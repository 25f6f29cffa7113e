//! Assignment rules (listed in evaluation order, created idempotently,
//! updated with a mask and an etag, deleted), and incident KPIs. Rules are
//! configuration: audited and published like the settings, with the rule
//! itself as the payload of `incidents.assignment_rule.created`, `.updated`
//! and `.deleted`.
//!
//! - [`routing`]: the rules at work, choosing the group and assignee of a new incident.
//! - [`kpis`]: the `GetIncidentKpis` use case.

mod kpis;
pub(super) mod routing;

use itsm_platform::ApiError;
use itsm_proto::itsm::incidents::v1 as pb;
use itsm_store::idempotency::{self, Claim};
use itsm_store::list::ListRequest;
use itsm_store::{StoreError, etag};
use prost::Message as _;

use super::IncidentsApi;
use super::call::{self, Call, Change, Checks};
use super::lifecycle::check_assignment;
use crate::domain::automation::{self, AssignmentRule, RuleDraft, Strategy};
use crate::domain::group_id;
use crate::store::{automation as store, list};

const CREATE_METHOD: &str = "itsm.incidents.v1.IncidentService/CreateAssignmentRule";
/// Longest request_id accepted (a UUID is 36 characters).
const REQUEST_ID_MAX: usize = 128;

const RULE_CREATED: &str = "incidents.assignment_rule.created";
const RULE_UPDATED: &str = "incidents.assignment_rule.updated";
const RULE_DELETED: &str = "incidents.assignment_rule.deleted";

/// The fields of a sent rule a caller may set.
fn draft(rule: pb::AssignmentRule) -> RuleDraft {
    RuleDraft {
        order: rule.order,
        condition: rule.condition,
        use_ci_support_group: rule.use_ci_support_group,
        assignment_group: rule.assignment_group,
        strategy: rule.strategy,
        enabled: rule.enabled,
    }
}

/// A rule as the API returns it.
fn rule(r: &AssignmentRule) -> pb::AssignmentRule {
    pb::AssignmentRule {
        name: r.name(),
        order: r.order,
        condition: r.condition.clone(),
        use_ci_support_group: r.use_ci_support_group,
        assignment_group: r.assignment_group.clone(),
        strategy: r.strategy.number(),
        enabled: r.enabled,
        etag: etag::from_version(r.version),
    }
}

/// The payload of a rule's events: the rule itself.
fn payload(r: &AssignmentRule) -> prost_types::Any {
    prost_types::Any {
        type_url: "type.googleapis.com/itsm.incidents.v1.AssignmentRule".to_owned(),
        value: rule(r).encode_to_vec(),
    }
}

/// INVALID_ARGUMENT unless the directory knows the rule's group (a rule
/// using the CI's support group names none).
async fn check_group(api: &IncidentsApi, call: &Call, draft: &RuleDraft) -> Result<(), ApiError> {
    let group = group_id(&draft.assignment_group);
    if group.is_empty() {
        return Ok(());
    }
    check_assignment(&*api.directory, call, "rule.", group, "").await
}

impl IncidentsApi {
    pub(super) async fn list_assignment_rules(
        &self,
        _call: &Call,
        request: pb::ListAssignmentRulesRequest,
    ) -> Result<pb::ListAssignmentRulesResponse, ApiError> {
        let tokens = self.tokens().await?;
        let list = ListRequest {
            page_size: request.page_size,
            page_token: &request.page_token,
            filter: "",
            order_by: "",
        };
        let mut conn = self.db.pool().acquire().await.map_err(StoreError::from)?;
        let (rules, next_page_token) = store::select_rule_page(&mut conn, &list, tokens).await?;
        Ok(pb::ListAssignmentRulesResponse {
            rules: rules.iter().map(rule).collect(),
            next_page_token,
        })
    }

    pub(super) async fn create_assignment_rule(
        &self,
        call: &Call,
        request: pb::CreateAssignmentRuleRequest,
    ) -> Result<pb::AssignmentRule, ApiError> {
        let sent = draft(request.rule.clone().unwrap_or_default());
        let mut checks = Checks::default();
        let strategy = checks.take(sent.validate(&list::SCHEMA));
        checks.check(
            request.request_id.chars().count() <= REQUEST_ID_MAX,
            "request_id",
            "must be at most 128 characters (a UUID is recommended)",
        );
        checks.finish()?;
        check_group(self, call, &sent).await?;

        let now = itsm_store::now_micros();
        let mut tx = self.db.begin().await?;
        if !request.request_id.is_empty() {
            // The content hash leaves the request id out: it is what identifies a retry.
            let content = pb::CreateAssignmentRuleRequest {
                request_id: String::new(),
                ..request.clone()
            };
            let hash = idempotency::hash_request(&content.encode_to_vec());
            let claim = idempotency::claim(&mut tx, CREATE_METHOD, &request.request_id, &hash);
            if let Claim::Replay { resource } = claim.await? {
                let id = automation::id_from_name(&resource, "request_id")?;
                let first = store::select_rule(&mut tx, id, "")
                    .await?
                    .ok_or_else(|| ApiError::not_found(&resource))?;
                tx.commit().await.map_err(StoreError::from)?;
                return Ok(rule(&first));
            }
        }
        let mut created = AssignmentRule {
            id: 0,
            order: 0,
            condition: String::new(),
            use_ci_support_group: false,
            assignment_group: String::new(),
            strategy: Strategy::GroupOnly,
            enabled: false,
            created_by: call.actor.clone(),
            create_time: now,
            update_time: now,
            version: 1,
        };
        created.set(sent, strategy.unwrap_or(Strategy::GroupOnly));
        created.id = store::insert_rule(&mut tx, &created).await?;
        let name = created.name();
        let change = Change {
            resource: &name,
            version: created.version,
            action: "create",
            event_type: RULE_CREATED,
            changes: created.creation_changes(),
            payload: payload(&created),
        };
        call::record(&mut tx, call, change, now).await?;
        if !request.request_id.is_empty() {
            idempotency::complete(&mut tx, CREATE_METHOD, &request.request_id, &name).await?;
        }
        tx.commit().await.map_err(StoreError::from)?;
        tracing::info!(rule = %name, order = created.order, "assignment rule created");
        Ok(rule(&created))
    }

    pub(super) async fn update_assignment_rule(
        &self,
        call: &Call,
        request: pb::UpdateAssignmentRuleRequest,
    ) -> Result<pb::AssignmentRule, ApiError> {
        let sent = request.rule.unwrap_or_default();
        let name = sent.name.clone();
        let paths = request.update_mask.map(|m| m.paths).unwrap_or_default();
        let mut checks = Checks::default();
        let id = checks.take(automation::id_from_name(&name, "rule.name"));
        let fields = checks.take(automation::check_mask(&paths));
        checks.check(
            !request.etag.is_empty(),
            "etag",
            "is required: the etag of the rule as last read",
        );
        checks.finish()?;
        let (id, fields) = (id.unwrap_or_default(), fields.unwrap_or_default());

        // The rule is read, merged and checked (the directory too) before the
        // transaction, so no lock is held across a call to identity; the
        // etag, required and checked again under the lock, makes sure the
        // transaction writes what was checked.
        let mut conn = self.db.pool().acquire().await.map_err(StoreError::from)?;
        let current = store::select_rule(&mut conn, id, "")
            .await?
            .ok_or_else(|| ApiError::not_found(&name))?;
        drop(conn);
        etag::check(&name, &request.etag, current.version, true)?;
        let sent = draft(sent);
        let mut merged = current.draft();
        for field in &fields {
            match *field {
                "order" => merged.order = sent.order,
                "condition" => merged.condition.clone_from(&sent.condition),
                "use_ci_support_group" => merged.use_ci_support_group = sent.use_ci_support_group,
                "assignment_group" => merged.assignment_group.clone_from(&sent.assignment_group),
                "strategy" => merged.strategy = sent.strategy,
                _ => merged.enabled = sent.enabled,
            }
        }
        let strategy = merged.validate(&list::SCHEMA)?;
        if group_id(&merged.assignment_group) != current.assignment_group {
            check_group(self, call, &merged).await?;
        }

        let now = itsm_store::now_micros();
        let mut tx = self.db.begin().await?;
        let lock = self.db.backend().lock_suffix();
        let mut updated = store::select_rule(&mut tx, id, lock)
            .await?
            .ok_or_else(|| ApiError::not_found(&name))?;
        let previous = updated.version;
        etag::check(&name, &request.etag, previous, true)?;
        let before = updated.clone();
        updated.set(merged, strategy);
        let changes = before.changes_to(&updated);
        if changes.is_empty() {
            tx.commit().await.map_err(StoreError::from)?;
            return Ok(rule(&before));
        }
        updated.version += 1;
        updated.update_time = now;
        store::update_rule(&mut tx, &updated, previous).await?;
        let change = Change {
            resource: &name,
            version: updated.version,
            action: "update",
            event_type: RULE_UPDATED,
            changes,
            payload: payload(&updated),
        };
        call::record(&mut tx, call, change, now).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(rule(&updated))
    }

    pub(super) async fn delete_assignment_rule(
        &self,
        call: &Call,
        request: pb::DeleteAssignmentRuleRequest,
    ) -> Result<pb::DeleteAssignmentRuleResponse, ApiError> {
        let name = request.name;
        let id = automation::id_from_name(&name, "name")?;
        let now = itsm_store::now_micros();
        let mut tx = self.db.begin().await?;
        let lock = self.db.backend().lock_suffix();
        let deleted = store::select_rule(&mut tx, id, lock)
            .await?
            .ok_or_else(|| ApiError::not_found(&name))?;
        // Optional, as AIP-154 has it: a delete without an etag is unconditional.
        etag::check(&name, &request.etag, deleted.version, false)?;
        store::delete_rule(&mut tx, id).await?;
        let change = Change {
            resource: &name,
            version: deleted.version + 1,
            action: "delete",
            event_type: RULE_DELETED,
            changes: deleted.deletion_changes(),
            payload: payload(&deleted),
        };
        call::record(&mut tx, call, change, now).await?;
        tx.commit().await.map_err(StoreError::from)?;
        tracing::info!(rule = %name, "assignment rule deleted");
        Ok(pb::DeleteAssignmentRuleResponse {})
    }
}
