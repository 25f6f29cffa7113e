//! Relationship types: create, read, list, update and delete the kinds of
//! relationship, as data. Writes serialize with class writes (see
//! `classes::begin_model_write`) and move the model generation.

use std::collections::{HashMap, HashSet};

use itsm_platform::{ApiError, ErrorCode, Violations};
use itsm_proto::itsm::cmdb::v1 as pb;
use itsm_store::audit::FieldChange;
use itsm_store::change::Change;
use itsm_store::idempotency::{self, Claim};
use itsm_store::{StoreError, etag, page};
use prost::Message as _;

use super::CmdbApi;
use super::call::{self, Call};
use super::classes::begin_model_write;
use super::classes::check::{field_changes, mask_fields, payload};
use super::classes::list::{self, FieldValue, Filter, Kind};
use crate::model::{self, Model, class_id, relationship_type_id};
use crate::store::relationship_types as store;

const CREATED: &str = "cmdb.relationship_type.created";
const UPDATED: &str = "cmdb.relationship_type.updated";
const DELETED: &str = "cmdb.relationship_type.deleted";

/// What UpdateRelationshipType may change.
const EDITABLE: &[&str] = &[
    "forward_label",
    "reverse_label",
    "description",
    "allowed_source_classes",
    "allowed_target_classes",
    "impact_propagation",
    "membership",
    "acyclic",
];

/// What ListRelationshipTypes filters on.
const FILTER: &[(&str, Kind)] = &[
    ("name", Kind::Text),
    ("forward_label", Kind::Text),
    ("reverse_label", Kind::Text),
    ("symmetric", Kind::Bool),
    ("membership", Kind::Bool),
    ("acyclic", Kind::Bool),
    ("system", Kind::Bool),
    ("allowed_source_classes", Kind::List),
    ("allowed_target_classes", Kind::List),
];

const MAX_LABEL: usize = 100;

fn id_of<'a>(name: &'a str, field: &str) -> Result<&'a str, ApiError> {
    relationship_type_id(name).ok_or_else(|| {
        ApiError::invalid_field(
            field,
            format!(
                "\"{name}\" is not a relationship type name; expected \"relationshipTypes/<id>\""
            ),
        )
    })
}

fn event(t: &pb::RelationshipType, changes: &[FieldChange]) -> prost_types::Any {
    let event = pb::RelationshipTypeEvent {
        relationship_type: Some(t.clone()),
        changes: field_changes(changes),
    };
    payload("RelationshipTypeEvent", &event)
}

/// Checks the editable fields of `t` against `model`, naming violations
/// under "relationship_type".
fn check_type(model: &Model, t: &pb::RelationshipType, v: &mut Violations) {
    for (field, label) in [
        ("forward_label", &t.forward_label),
        ("reverse_label", &t.reverse_label),
    ] {
        let label = label.trim();
        if label.is_empty() {
            v.add(
                format!("relationship_type.{field}"),
                "is required, e.g. \"depends on\"",
            );
        } else if label.chars().count() > MAX_LABEL {
            v.add(
                format!("relationship_type.{field}"),
                format!("must be at most {MAX_LABEL} characters"),
            );
        }
    }
    for (field, classes) in [
        ("allowed_source_classes", &t.allowed_source_classes),
        ("allowed_target_classes", &t.allowed_target_classes),
    ] {
        let mut seen = HashSet::new();
        for (i, name) in classes.iter().enumerate() {
            let field = format!("relationship_type.{field}[{i}]");
            if class_id(name).and_then(|c| model.class(c)).is_none() {
                v.add(field, format!("\"{name}\" is not an existing class"));
            } else if !seen.insert(name) {
                v.add(field, format!("\"{name}\" is listed twice"));
            }
        }
    }
    match pb::ImpactPropagation::try_from(t.impact_propagation) {
        Ok(pb::ImpactPropagation::Unspecified) | Err(_) => v.add(
            "relationship_type.impact_propagation",
            "is required: TARGET_TO_SOURCE, SOURCE_TO_TARGET, BOTH or NONE",
        ),
        Ok(_) => {}
    }
    if t.symmetric && t.membership {
        v.add(
            "relationship_type.membership",
            "a symmetric type has no group side: it cannot be a membership",
        );
    }
}

fn propagation_word(value: i32) -> String {
    pb::ImpactPropagation::try_from(value)
        .unwrap_or_default()
        .as_str_name()
        .trim_start_matches("IMPACT_PROPAGATION_")
        .to_owned()
}

/// The audit changes from `before` to `after`.
fn type_changes(before: &pb::RelationshipType, after: &pb::RelationshipType) -> Vec<FieldChange> {
    let mut changes = Vec::new();
    let mut field = |name: &str, old: String, new: String| {
        if old != new {
            changes.push(FieldChange::new(name, old, new));
        }
    };
    field(
        "forward_label",
        before.forward_label.clone(),
        after.forward_label.clone(),
    );
    field(
        "reverse_label",
        before.reverse_label.clone(),
        after.reverse_label.clone(),
    );
    field(
        "description",
        before.description.clone(),
        after.description.clone(),
    );
    field(
        "symmetric",
        before.symmetric.to_string(),
        after.symmetric.to_string(),
    );
    field(
        "allowed_source_classes",
        before.allowed_source_classes.join(", "),
        after.allowed_source_classes.join(", "),
    );
    field(
        "allowed_target_classes",
        before.allowed_target_classes.join(", "),
        after.allowed_target_classes.join(", "),
    );
    field(
        "impact_propagation",
        propagation_word(before.impact_propagation),
        propagation_word(after.impact_propagation),
    );
    field(
        "membership",
        before.membership.to_string(),
        after.membership.to_string(),
    );
    field(
        "acyclic",
        before.acyclic.to_string(),
        after.acyclic.to_string(),
    );
    changes
}

/// Whether the directed edges form a cycle (iterative depth-first search,
/// three colours; a self-loop is a cycle).
pub(crate) fn has_cycle(edges: &[(i64, i64)]) -> bool {
    let mut next: HashMap<i64, Vec<i64>> = HashMap::new();
    for (from, to) in edges {
        next.entry(*from).or_default().push(*to);
    }
    // 1: on the current path; 2: done.
    let mut state: HashMap<i64, u8> = HashMap::new();
    for start in next.keys() {
        if state.contains_key(start) {
            continue;
        }
        let mut stack: Vec<(i64, usize)> = vec![(*start, 0)];
        state.insert(*start, 1);
        while let Some((node, i)) = stack.last_mut() {
            let node = *node;
            let children = next.get(&node).map(Vec::as_slice).unwrap_or_default();
            if let Some(child) = children.get(*i) {
                *i += 1;
                match state.get(child) {
                    Some(1) => return true,
                    Some(_) => {}
                    None => {
                        state.insert(*child, 1);
                        stack.push((*child, 0));
                    }
                }
            } else {
                state.insert(node, 2);
                stack.pop();
            }
        }
    }
    false
}

impl CmdbApi {
    pub(super) async fn create_relationship_type(
        &self,
        call: &Call,
        request: pb::CreateRelationshipTypeRequest,
    ) -> Result<pb::RelationshipType, ApiError> {
        let id = request.relationship_type_id.clone();
        let sent = request.relationship_type.clone().unwrap_or_default();
        let now = itsm_store::now_micros();
        let (mut tx, current) = begin_model_write(self, now).await?;
        if !request.request_id.is_empty() {
            let mut unkeyed = request.clone();
            unkeyed.request_id.clear();
            let hash = idempotency::hash_request(&unkeyed.encode_to_vec());
            let claim = idempotency::claim(
                &mut tx,
                "CreateRelationshipType",
                &request.request_id,
                &hash,
            )
            .await?;
            if let Claim::Replay { resource } = claim {
                drop(tx);
                let model = self.model().await?;
                let replayed = relationship_type_id(&resource)
                    .and_then(|t| model.relationship_type(t))
                    .cloned();
                return replayed.ok_or_else(|| ApiError::not_found(resource));
            }
        }
        let mut v = Violations::new();
        if id.is_empty() {
            v.add(
                "relationship_type_id",
                "is required, e.g. \"replicates_to\"",
            );
        } else if !model::is_valid_id(&id) {
            v.add(
                "relationship_type_id",
                format!(
                    "\"{id}\" is not a valid id: lower_snake_case, starting with a letter, at \
                     most 63 characters"
                ),
            );
        }
        let name = format!("relationshipTypes/{id}");
        let time = itsm_store::audit::timestamp(now);
        let t = pb::RelationshipType {
            name: name.clone(),
            forward_label: sent.forward_label.trim().to_owned(),
            reverse_label: sent.reverse_label.trim().to_owned(),
            description: sent.description,
            symmetric: sent.symmetric,
            allowed_source_classes: sent.allowed_source_classes,
            allowed_target_classes: sent.allowed_target_classes,
            impact_propagation: sent.impact_propagation,
            membership: sent.membership,
            acyclic: sent.acyclic,
            system: false,
            create_time: Some(time),
            update_time: Some(time),
            etag: etag::from_version(1),
        };
        check_type(&current, &t, &mut v);
        v.into_result()?;
        if current.relationship_type(&id).is_some() {
            return Err(ApiError::new(
                ErrorCode::AlreadyExists,
                format!("{name} already exists"),
            ));
        }
        store::insert_type(&mut tx, &t, 1, now, false).await?;
        let changes = type_changes(&pb::RelationshipType::default(), &t);
        let change = Change {
            resource: &name,
            version: 1,
            action: "create",
            event_type: CREATED,
            payload: event(&t, &changes),
            changes,
        };
        call::record(&mut tx, call, change, now).await?;
        if !request.request_id.is_empty() {
            idempotency::complete(
                &mut tx,
                "CreateRelationshipType",
                &request.request_id,
                &name,
            )
            .await?;
        }
        tx.commit().await.map_err(StoreError::from)?;
        self.model.invalidate().await;
        // Walks read relationship types and the class tree (business services).
        self.impact_changed().await;
        Ok(t)
    }

    pub(super) async fn get_relationship_type(
        &self,
        _call: &Call,
        request: pb::GetRelationshipTypeRequest,
    ) -> Result<pb::RelationshipType, ApiError> {
        let id = id_of(&request.name, "name")?;
        let model = self.model().await?;
        model
            .relationship_type(id)
            .cloned()
            .ok_or_else(|| ApiError::not_found(&request.name))
    }

    pub(super) async fn list_relationship_types(
        &self,
        _call: &Call,
        request: pb::ListRelationshipTypesRequest,
    ) -> Result<pb::ListRelationshipTypesResponse, ApiError> {
        let limit = page::page_size(request.page_size)?;
        let filter = Filter::parse(&request.filter, FILTER)?;
        let order = list::order(&request.order_by, &["name", "forward_label"])?;
        let tokens = self.tokens().await?;
        let model = self.model().await?;
        let mut items = Vec::new();
        for (_, t) in model.relationship_types() {
            let value = |field: &str| {
                Some(match field {
                    "name" => FieldValue::Text(t.name.clone()),
                    "forward_label" => FieldValue::Text(t.forward_label.clone()),
                    "reverse_label" => FieldValue::Text(t.reverse_label.clone()),
                    "symmetric" => FieldValue::Bool(t.symmetric),
                    "membership" => FieldValue::Bool(t.membership),
                    "acyclic" => FieldValue::Bool(t.acyclic),
                    "system" => FieldValue::Bool(t.system),
                    "allowed_source_classes" => FieldValue::List(t.allowed_source_classes.clone()),
                    "allowed_target_classes" => FieldValue::List(t.allowed_target_classes.clone()),
                    _ => return None,
                })
            };
            if !filter.matches(&value) {
                continue;
            }
            let key = match order {
                "forward_label" => vec![t.forward_label.clone(), t.name.clone()],
                _ => vec![t.name.clone()],
            };
            items.push((key, t.clone()));
        }
        let query = format!("relationshipTypes\u{0}{}\u{0}{order}", request.filter);
        let (relationship_types, next_page_token) =
            list::page(items, limit, &request.page_token, &query, tokens)?;
        Ok(pb::ListRelationshipTypesResponse {
            relationship_types,
            next_page_token,
        })
    }

    pub(super) async fn update_relationship_type(
        &self,
        call: &Call,
        request: pb::UpdateRelationshipTypeRequest,
    ) -> Result<pb::RelationshipType, ApiError> {
        let sent = request.relationship_type.unwrap_or_default();
        let paths = request.update_mask.map(|m| m.paths).unwrap_or_default();
        let mut v = Violations::new();
        let id = match id_of(&sent.name, "relationship_type.name") {
            Ok(id) => id.to_owned(),
            Err(e) => {
                v.add("relationship_type.name", e.message());
                String::new()
            }
        };
        let fields = mask_fields(&paths, EDITABLE, &mut v);
        v.check(
            !request.etag.is_empty(),
            "etag",
            "is required: the etag of the relationship type as last read",
        );
        v.into_result()?;

        let now = itsm_store::now_micros();
        let (mut tx, current) = begin_model_write(self, now).await?;
        let lock = self.db.backend().lock_suffix();
        let (version, before) = store::select_type(&mut tx, &id, lock)
            .await?
            .ok_or_else(|| ApiError::not_found(&sent.name))?;
        etag::check(&sent.name, &request.etag, version, true)?;
        let mut t = before.clone();
        for field in &fields {
            match *field {
                "forward_label" => t.forward_label = sent.forward_label.trim().to_owned(),
                "reverse_label" => t.reverse_label = sent.reverse_label.trim().to_owned(),
                "description" => t.description.clone_from(&sent.description),
                "allowed_source_classes" => {
                    t.allowed_source_classes
                        .clone_from(&sent.allowed_source_classes);
                }
                "allowed_target_classes" => {
                    t.allowed_target_classes
                        .clone_from(&sent.allowed_target_classes);
                }
                "impact_propagation" => t.impact_propagation = sent.impact_propagation,
                "membership" => t.membership = sent.membership,
                _ => t.acyclic = sent.acyclic,
            }
        }
        let mut v = Violations::new();
        check_type(&current, &t, &mut v);
        v.into_result()?;
        if t.acyclic && !before.acyclic && has_cycle(&store::select_edges(&mut tx, &id).await?) {
            return Err(ApiError::failed_precondition(
                "RELATIONSHIP_CYCLE",
                &sent.name,
                format!(
                    "relationships of {} form a cycle: remove one of its relationships before \
                     making the type acyclic",
                    sent.name
                ),
            ));
        }
        let changes = type_changes(&before, &t);
        if changes.is_empty() {
            drop(tx);
            return Ok(before);
        }
        let version = version + 1;
        t.update_time = Some(itsm_store::audit::timestamp(now));
        t.etag = etag::from_version(version);
        store::update_type(&mut tx, &t, version, now).await?;
        let change = Change {
            resource: &sent.name,
            version,
            action: "update",
            event_type: UPDATED,
            payload: event(&t, &changes),
            changes,
        };
        call::record(&mut tx, call, change, now).await?;
        tx.commit().await.map_err(StoreError::from)?;
        self.model.invalidate().await;
        // Walks read relationship types and the class tree (business services).
        self.impact_changed().await;
        Ok(t)
    }

    pub(super) async fn delete_relationship_type(
        &self,
        call: &Call,
        request: pb::DeleteRelationshipTypeRequest,
    ) -> Result<pb::DeleteRelationshipTypeResponse, ApiError> {
        let name = request.name.clone();
        let id = id_of(&name, "name")?.to_owned();
        let now = itsm_store::now_micros();
        let (mut tx, _current) = begin_model_write(self, now).await?;
        let lock = self.db.backend().lock_suffix();
        let (version, t) = store::select_type(&mut tx, &id, lock)
            .await?
            .ok_or_else(|| ApiError::not_found(&name))?;
        etag::check(&name, &request.etag, version, false)?;
        if t.system {
            return Err(ApiError::failed_precondition(
                "SYSTEM_RELATIONSHIP_TYPE",
                &name,
                format!("{name} is a system relationship type: it cannot be deleted"),
            ));
        }
        if store::in_use(&mut tx, &id).await? {
            return Err(ApiError::failed_precondition(
                "RELATIONSHIP_TYPE_IN_USE",
                &name,
                format!("relationships of {name} exist: delete them first"),
            ));
        }
        store::delete_type(&mut tx, &id).await?;
        let change = Change {
            resource: &name,
            version: version + 1,
            action: "delete",
            event_type: DELETED,
            payload: event(&t, &[]),
            changes: Vec::new(),
        };
        call::record(&mut tx, call, change, now).await?;
        tx.commit().await.map_err(StoreError::from)?;
        self.model.invalidate().await;
        // Walks read relationship types and the class tree (business services).
        self.impact_changed().await;
        Ok(pb::DeleteRelationshipTypeResponse {})
    }
}

#[cfg(test)]
mod tests {
    use super::has_cycle;

    #[test]
    fn finds_cycles_and_only_cycles() {
        assert!(!has_cycle(&[]));
        assert!(!has_cycle(&[(1, 2), (2, 3), (1, 3)]));
        assert!(has_cycle(&[(1, 2), (2, 3), (3, 1)]));
        assert!(has_cycle(&[(4, 4)]));
        assert!(has_cycle(&[(1, 2), (5, 6), (6, 7), (7, 5)]));
        assert!(!has_cycle(&[(1, 2), (3, 2), (2, 4), (4, 5), (3, 5)]));
    }
}
