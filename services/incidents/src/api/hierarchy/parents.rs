//! SetParentIncident, and the propagation of a parent's lifecycle change to
//! its children.
//!
//! Locks, in order: the hierarchy lock (parent changes one at a time, so two
//! of them cannot close a cycle together), the new parent, the old parent,
//! the child: parents before children, as [`IncidentsApi::propagate`] locks them.

use std::collections::{HashSet, VecDeque};

use itsm_platform::ApiError;
use itsm_proto::itsm::incidents::v1 as pb;
use itsm_store::audit::FieldChange;
use itsm_store::{StoreError, Tx, etag};

use super::apply_major_rules;
use crate::api::IncidentsApi;
use crate::api::call::{self, Call, UPDATED};
use crate::api::lifecycle::event_type;
use crate::convert;
use crate::domain::hierarchy::{self, MAX_DEPTH};
use crate::domain::incident::Incident;
use crate::domain::transitions::{Method, OPEN};
use crate::domain::{self, update};
use crate::store::{StoredIncident, hierarchy as store, incidents};

/// A parent's `child_count` moved by `delta` because of `child`: its own
/// audited change (`add_child` / `remove_child`) with an `updated` event.
async fn count_child(
    tx: &mut Tx,
    call: &Call,
    parent: &mut StoredIncident,
    child: &str,
    delta: i32,
    now: i64,
) -> Result<(), ApiError> {
    let incident = &mut parent.incident;
    let previous = incident.version;
    let old = incident.child_count;
    incident.child_count = (old + delta).max(0);
    let (action, link) = if delta > 0 {
        ("add_child", FieldChange::new("children", "", child))
    } else {
        ("remove_child", FieldChange::new("children", child, ""))
    };
    let changes = vec![
        link,
        FieldChange::new("child_count", old, incident.child_count),
    ];
    incident.touch(now);
    incidents::update_incident(tx, parent.id, incident, previous).await?;
    call::record_incident(tx, call, incident, (action, UPDATED), changes, None, now).await?;
    Ok(())
}

impl IncidentsApi {
    pub(in crate::api) async fn set_parent_incident(
        &self,
        call: &Call,
        request: pb::SetParentIncidentRequest,
    ) -> Result<pb::Incident, ApiError> {
        let (child_number, parent_number) =
            hierarchy::check_set_parent(&request.name, &request.parent)?;
        let now = itsm_store::now_micros();
        let lock = self.db.backend().lock_suffix();
        let mut tx = self.db.begin().await?;
        store::lock_hierarchy(&mut tx).await?;
        // Read first to learn the old parent; the hierarchy lock keeps it.
        let current = call::load(&mut tx, call, &request.name, "name", "").await?;
        let old_parent = current.incident.parent.clone();
        if parent_number.unwrap_or_default() == old_parent {
            etag::check(
                &request.name,
                &request.etag,
                current.incident.version,
                false,
            )?;
            tx.commit().await.map_err(StoreError::from)?;
            return Ok(convert::incident(&current.incident));
        }

        let mut new_parent = None;
        if let Some(number) = parent_number {
            let parent_name = domain::name_of(number);
            let parent = call::load(&mut tx, call, &parent_name, "parent", lock).await?;
            if !OPEN.contains(&parent.incident.state) {
                return Err(ApiError::failed_precondition(
                    "STATE",
                    &parent_name,
                    format!(
                        "{parent_name} is {}: only an open incident can be a parent",
                        parent.incident.state
                    ),
                ));
            }
            let ancestors =
                store::select_ancestors(&mut tx, number, child_number, MAX_DEPTH).await?;
            if let Some(cycle) = hierarchy::cycle(child_number, number, &ancestors) {
                return Err(hierarchy::cycle_refusal(
                    &request.name,
                    &parent_name,
                    &cycle,
                ));
            }
            if ancestors.len() >= MAX_DEPTH {
                return Err(ApiError::failed_precondition(
                    "DEPTH",
                    &parent_name,
                    format!(
                        "{parent_name} is {MAX_DEPTH} levels deep already: the tree may grow no deeper"
                    ),
                ));
            }
            new_parent = Some(parent);
        }
        let mut old = None;
        if !old_parent.is_empty() {
            old = incidents::select_incident(&mut tx, &old_parent, lock).await?;
        }

        let stored = call::load(&mut tx, call, &request.name, "name", lock).await?;
        let (id, mut child) = (stored.id, stored.incident);
        if child.parent != old_parent {
            return Err(ApiError::stale_etag(&request.name));
        }
        update::check_editable(&child)?;
        let previous = child.version;
        etag::check(&request.name, &request.etag, previous, false)?;
        let before = child.clone();
        child.parent = parent_number.unwrap_or_default().to_owned();
        let changes = before.changes_to(&child);
        child.touch(now);
        incidents::update_incident(&mut tx, id, &child, previous).await?;
        let kind = ("set_parent", UPDATED);
        call::record_incident(&mut tx, call, &child, kind, changes, None, now).await?;

        if let Some(old) = &mut old {
            count_child(&mut tx, call, old, &request.name, -1, now).await?;
        }
        if let Some(parent) = &mut new_parent {
            count_child(&mut tx, call, parent, &request.name, 1, now).await?;
            // More children may be what makes the parent major.
            apply_major_rules(&mut tx, call, parent, now).await?;
        }
        tx.commit().await.map_err(StoreError::from)?;
        tracing::info!(incident = %request.name, parent = %child.parent, "incident parent set");
        Ok(convert::incident(&child))
    }

    /// Passes the parent's lifecycle change (`method`, from `before` to
    /// `after`) down its tree as [`hierarchy::PROPAGATIONS`] says, in the
    /// parent's transaction `tx`: each child changed is its own audited
    /// change by the caller, with its own event, and passes the change on to
    /// its own children. Children the table does not apply to are skipped.
    /// Returns how many incidents changed.
    pub(in crate::api) async fn propagate(
        &self,
        tx: &mut Tx,
        call: &Call,
        (before, after): (&Incident, &Incident),
        method: Method,
        now: i64,
    ) -> Result<usize, ApiError> {
        let Some(trigger) = hierarchy::trigger(method, before, after) else {
            return Ok(0);
        };
        let lock = self.db.backend().lock_suffix();
        let event = event_type(trigger.rule.method);
        let mut queue = VecDeque::from([after.number.clone()]);
        // The tree is acyclic; this only keeps a damaged one from looping.
        let mut seen = HashSet::new();
        let mut changed = 0;
        while let Some(parent) = queue.pop_front() {
            if !seen.insert(parent.clone()) {
                continue;
            }
            let action =
                hierarchy::propagated_action(trigger.rule.method, &domain::name_of(&parent));
            for StoredIncident { id, mut incident } in
                store::select_children(tx, &parent, lock).await?
            {
                let previous = incident.version;
                let Some(changes) = trigger.apply_to(&mut incident, &call.actor, now) else {
                    continue;
                };
                incidents::update_incident(tx, id, &incident, previous).await?;
                call::record_incident(tx, call, &incident, (&action, event), changes, None, now)
                    .await?;
                changed += 1;
                queue.push_back(incident.number);
            }
        }
        if changed > 0 {
            tracing::info!(incident = %after.name(), changed, method = method.rpc(), "change propagated to children");
        }
        Ok(changed)
    }
}
