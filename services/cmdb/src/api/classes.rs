//! Classes: create, read, list, update and delete the class hierarchy.
//!
//! Every write runs in one transaction that first moves the model
//! generation (which, as a row lock on PostgreSQL and under SQLite's write
//! lock, serializes model writers) and then checks the change against the
//! model read inside that transaction: two concurrent changes can never
//! both pass checks that only hold one at a time (a key declared twice
//! along one ancestry, a cycle of parents). Every replica reloads the model
//! on its next call; this one drops its copy at once.

pub(super) mod check;
pub(super) mod list;

use itsm_platform::{ApiError, ErrorCode, Violations};
use itsm_proto::itsm::cmdb::v1 as pb;
use itsm_store::change::Change;
use itsm_store::idempotency::{self, Claim};
use itsm_store::{StoreError, Tx, etag, page};
use prost::Message as _;

use super::CmdbApi;
use super::call::{self, Call};
use crate::model::{self, Model, class_id};
use crate::store::classes as store;
use check::{
    check_class, check_parent, class_changes, mask_fields, model_with, payload, subtree_problem,
};
use list::{FieldValue, Filter, Kind};

const CREATED: &str = "cmdb.ci_class.created";
const UPDATED: &str = "cmdb.ci_class.updated";
const DELETED: &str = "cmdb.ci_class.deleted";

/// What UpdateCiClass may change.
const EDITABLE: &[&str] = &[
    "display_name",
    "description",
    "parent",
    "is_abstract",
    "attributes",
    "identification_rules",
];

/// What ListCiClasses filters on.
const FILTER: &[(&str, Kind)] = &[
    ("name", Kind::Text),
    ("display_name", Kind::Text),
    ("parent", Kind::Text),
    ("ancestors", Kind::List),
    ("is_abstract", Kind::Bool),
    ("system", Kind::Bool),
];

/// Opens a model write: the transaction, the generation moved (the lock),
/// and the model as it stands inside the transaction.
pub(super) async fn begin_model_write(api: &CmdbApi, now: i64) -> Result<(Tx, Model), ApiError> {
    // Seeds the model first when this process has not yet.
    api.model().await?;
    let mut tx = api.db.begin().await?;
    model::bump_generation(&mut tx, now).await?;
    let generation = model::generation(&mut tx).await?;
    let current = model::load(&mut tx, generation).await?;
    Ok((tx, current))
}

/// The id of the class named `name` (the request's field `field`).
fn id_of<'a>(name: &'a str, field: &str) -> Result<&'a str, ApiError> {
    class_id(name).ok_or_else(|| {
        ApiError::invalid_field(
            field,
            format!("\"{name}\" is not a class name; expected \"classes/<id>\""),
        )
    })
}

/// The CiClassEvent of a change.
fn event(
    class: Option<pb::CiClass>,
    changes: &[itsm_store::audit::FieldChange],
) -> prost_types::Any {
    let event = pb::CiClassEvent {
        ci_class: class,
        changes: check::field_changes(changes),
    };
    payload("CiClassEvent", &event)
}

impl CmdbApi {
    pub(super) async fn create_ci_class(
        &self,
        call: &Call,
        request: pb::CreateCiClassRequest,
    ) -> Result<pb::CiClass, ApiError> {
        let id = request.ci_class_id.clone();
        let sent = request.ci_class.clone().unwrap_or_default();
        let now = itsm_store::now_micros();
        let (mut tx, current) = begin_model_write(self, now).await?;
        if !request.request_id.is_empty() {
            let mut unkeyed = request.clone();
            unkeyed.request_id.clear();
            let hash = idempotency::hash_request(&unkeyed.encode_to_vec());
            let claim =
                idempotency::claim(&mut tx, "CreateCiClass", &request.request_id, &hash).await?;
            if let Claim::Replay { resource } = claim {
                drop(tx);
                let model = self.model().await?;
                let replayed = class_id(&resource).and_then(|c| model.effective_class(c));
                return replayed.ok_or_else(|| ApiError::not_found(resource));
            }
        }

        let mut v = Violations::new();
        if id.is_empty() {
            v.add("ci_class_id", "is required, e.g. \"linux_server\"");
        } else if !model::is_valid_id(&id) {
            v.add(
                "ci_class_id",
                format!(
                    "\"{id}\" is not a valid id: lower_snake_case, starting with a letter, at \
                     most 63 characters"
                ),
            );
        }
        let name = format!("classes/{id}");
        let parent_ok = check_parent(&current, &id, &sent.parent, "ci_class.parent", &mut v);
        let actor = call.actor.to_proto();
        let time = itsm_store::audit::timestamp(now);
        let class = pb::CiClass {
            name: name.clone(),
            display_name: sent.display_name.trim().to_owned(),
            description: sent.description,
            parent: sent.parent,
            is_abstract: sent.is_abstract,
            attributes: sent
                .attributes
                .into_iter()
                .map(|a| pb::AttributeDefinition {
                    defined_in: String::new(),
                    ..a
                })
                .collect(),
            identification_rules: sent.identification_rules,
            system: false,
            created_by: Some(actor.clone()),
            create_time: Some(time),
            updated_by: Some(actor),
            update_time: Some(time),
            etag: etag::from_version(1),
            ..pb::CiClass::default()
        };
        // Checked as a root when its parent is wrong: never a cycle of parents.
        let placed = pb::CiClass {
            parent: if parent_ok {
                class.parent.clone()
            } else {
                String::new()
            },
            ..class.clone()
        };
        let after = model_with(&current, Some(&placed), None);
        check_class(&after, &id, &class, "ci_class", &mut v);
        v.into_result()?;
        if current.class(&id).is_some() {
            return Err(ApiError::new(
                ErrorCode::AlreadyExists,
                format!("{name} already exists"),
            ));
        }

        store::insert_class(&mut tx, &class, 1, now, false).await?;
        let shown = after.effective_class(&id).unwrap_or_else(|| class.clone());
        let changes = class_changes(&pb::CiClass::default(), &class);
        let change = Change {
            resource: &name,
            version: 1,
            action: "create",
            event_type: CREATED,
            payload: event(Some(shown.clone()), &changes),
            changes,
        };
        call::record(&mut tx, call, change, now).await?;
        if !request.request_id.is_empty() {
            idempotency::complete(&mut tx, "CreateCiClass", &request.request_id, &name).await?;
        }
        tx.commit().await.map_err(StoreError::from)?;
        self.model.invalidate().await;
        // Walks read relationship types and the class tree (business services).
        self.impact_changed().await;
        tracing::info!(class = %name, "ci class created");
        Ok(shown)
    }

    pub(super) async fn get_ci_class(
        &self,
        _call: &Call,
        request: pb::GetCiClassRequest,
    ) -> Result<pb::CiClass, ApiError> {
        let id = id_of(&request.name, "name")?;
        let model = self.model().await?;
        model
            .effective_class(id)
            .ok_or_else(|| ApiError::not_found(&request.name))
    }

    pub(super) async fn list_ci_classes(
        &self,
        _call: &Call,
        request: pb::ListCiClassesRequest,
    ) -> Result<pb::ListCiClassesResponse, ApiError> {
        let limit = page::page_size(request.page_size)?;
        let filter = Filter::parse(&request.filter, FILTER)?;
        let order = list::order(&request.order_by, &["name", "display_name"])?;
        let tokens = self.tokens().await?;
        let model = self.model().await?;
        let mut items = Vec::new();
        for (id, _) in model.classes() {
            let Some(class) = model.effective_class(id) else {
                continue;
            };
            let value = |field: &str| {
                Some(match field {
                    "name" => FieldValue::Text(class.name.clone()),
                    "display_name" => FieldValue::Text(class.display_name.clone()),
                    "parent" => FieldValue::Text(class.parent.clone()),
                    "ancestors" => FieldValue::List(class.ancestors.clone()),
                    "is_abstract" => FieldValue::Bool(class.is_abstract),
                    "system" => FieldValue::Bool(class.system),
                    _ => return None,
                })
            };
            if !filter.matches(&value) {
                continue;
            }
            let key = match order {
                "display_name" => vec![class.display_name.clone(), class.name.clone()],
                _ => vec![class.name.clone()],
            };
            items.push((key, class));
        }
        let query = format!("classes\u{0}{}\u{0}{order}", request.filter);
        let (ci_classes, next_page_token) =
            list::page(items, limit, &request.page_token, &query, tokens)?;
        Ok(pb::ListCiClassesResponse {
            ci_classes,
            next_page_token,
        })
    }

    pub(super) async fn update_ci_class(
        &self,
        call: &Call,
        request: pb::UpdateCiClassRequest,
    ) -> Result<pb::CiClass, ApiError> {
        let sent = request.ci_class.unwrap_or_default();
        let paths = request.update_mask.map(|m| m.paths).unwrap_or_default();
        let mut v = Violations::new();
        let id = match id_of(&sent.name, "ci_class.name") {
            Ok(id) => Some(id.to_owned()),
            Err(e) => {
                v.add("ci_class.name", e.message());
                None
            }
        };
        let fields = mask_fields(&paths, EDITABLE, &mut v);
        v.check(
            !request.etag.is_empty(),
            "etag",
            "is required: the etag of the class as last read",
        );
        v.into_result()?;
        let id = id.unwrap_or_default();

        let now = itsm_store::now_micros();
        let (mut tx, current) = begin_model_write(self, now).await?;
        let lock = self.db.backend().lock_suffix();
        let (version, before) = store::select_class(&mut tx, &id, lock)
            .await?
            .ok_or_else(|| ApiError::not_found(&sent.name))?;
        etag::check(&sent.name, &request.etag, version, true)?;

        let mut class = before.clone();
        let mut v = Violations::new();
        for field in &fields {
            match *field {
                "display_name" => class.display_name = sent.display_name.trim().to_owned(),
                "description" => class.description.clone_from(&sent.description),
                "parent" => class.parent.clone_from(&sent.parent),
                "is_abstract" => class.is_abstract = sent.is_abstract,
                "attributes" => {
                    class.attributes = sent
                        .attributes
                        .iter()
                        .cloned()
                        .map(|a| pb::AttributeDefinition {
                            defined_in: String::new(),
                            ..a
                        })
                        .collect();
                }
                _ => class
                    .identification_rules
                    .clone_from(&sent.identification_rules),
            }
        }
        if class.parent != before.parent {
            if before.system {
                return Err(ApiError::failed_precondition(
                    "SYSTEM_CLASS",
                    &sent.name,
                    format!("{} is a system class: it cannot be reparented", sent.name),
                ));
            }
            if !check_parent(&current, &id, &class.parent, "ci_class.parent", &mut v) {
                // Checked where it was: never a cycle of parents.
                class.parent.clone_from(&before.parent);
            }
        }
        let after = model_with(&current, Some(&class), None);
        check_class(&after, &id, &class, "ci_class", &mut v);
        v.into_result()?;
        if let Some(problem) = subtree_problem(&after, &id) {
            return Err(problem);
        }
        self.check_class_data(&mut tx, &after, &id, &before, &class)
            .await?;

        let changes = class_changes(&before, &class);
        if changes.is_empty() {
            // Nothing changed: the transaction (and its generation move) rolls back.
            drop(tx);
            return current
                .effective_class(&id)
                .ok_or_else(|| ApiError::not_found(&sent.name));
        }
        let version = version + 1;
        class.updated_by = Some(call.actor.to_proto());
        class.update_time = Some(itsm_store::audit::timestamp(now));
        class.etag = etag::from_version(version);
        store::update_class(&mut tx, &class, version, now).await?;
        let after = model_with(&current, Some(&class), None);
        let shown = after.effective_class(&id).unwrap_or_else(|| class.clone());
        let change = Change {
            resource: &sent.name,
            version,
            action: "update",
            event_type: UPDATED,
            payload: event(Some(shown.clone()), &changes),
            changes,
        };
        call::record(&mut tx, call, change, now).await?;
        tx.commit().await.map_err(StoreError::from)?;
        self.model.invalidate().await;
        // Walks read relationship types and the class tree (business services).
        self.impact_changed().await;
        Ok(shown)
    }

    /// What the stored CIs forbid in a class change: the type of an
    /// attribute that has values in the class or its subclasses, and making
    /// a class abstract while CIs are of it.
    async fn check_class_data(
        &self,
        tx: &mut Tx,
        after: &Model,
        id: &str,
        before: &pb::CiClass,
        class: &pb::CiClass,
    ) -> Result<(), ApiError> {
        let subtree = after.descendants(id);
        for old in &before.attributes {
            let Some(new) = class.attributes.iter().find(|a| a.key == old.key) else {
                continue;
            };
            if new.r#type != old.r#type && store::any_value_of(tx, &subtree, &old.key).await? {
                return Err(ApiError::failed_precondition(
                    "ATTRIBUTE_HAS_VALUES",
                    format!("classes/{id}"),
                    format!(
                        "CIs of classes/{id} or its subclasses have values for \"{}\": its type \
                         cannot change (add an attribute under a new key instead)",
                        old.key
                    ),
                ));
            }
        }
        if class.is_abstract && !before.is_abstract && store::any_ci_of(tx, &[id]).await? {
            return Err(ApiError::failed_precondition(
                "CLASS_HAS_CIS",
                format!("classes/{id}"),
                format!("CIs are of classes/{id}: it cannot become abstract"),
            ));
        }
        Ok(())
    }

    pub(super) async fn delete_ci_class(
        &self,
        call: &Call,
        request: pb::DeleteCiClassRequest,
    ) -> Result<pb::DeleteCiClassResponse, ApiError> {
        let name = request.name.clone();
        let id = id_of(&name, "name")?.to_owned();
        let now = itsm_store::now_micros();
        let (mut tx, current) = begin_model_write(self, now).await?;
        let lock = self.db.backend().lock_suffix();
        let (version, class) = store::select_class(&mut tx, &id, lock)
            .await?
            .ok_or_else(|| ApiError::not_found(&name))?;
        etag::check(&name, &request.etag, version, false)?;
        let refuse = |kind: &str, why: String| Err(ApiError::failed_precondition(kind, &name, why));
        if class.system {
            return refuse(
                "SYSTEM_CLASS",
                format!("{name} is a system class: it cannot be deleted"),
            );
        }
        if let Some(child) = current.children(&id).first() {
            return refuse(
                "CLASS_HAS_SUBCLASSES",
                format!("{name} has subclasses (classes/{child}): delete or move them first"),
            );
        }
        if let Some((user, _)) = current
            .classes()
            .find(|(_, c)| c.attributes.iter().any(|a| a.reference_class == name))
        {
            return refuse(
                "CLASS_REFERENCED",
                format!("an attribute of classes/{user} references {name}"),
            );
        }
        if let Some((t, _)) = current.relationship_types().find(|(_, t)| {
            t.allowed_source_classes.contains(&name) || t.allowed_target_classes.contains(&name)
        }) {
            return refuse(
                "CLASS_REFERENCED",
                format!("the relationship type relationshipTypes/{t} allows {name}"),
            );
        }
        if crate::store::settings::load(&mut tx)
            .await?
            .orphan_exempt_classes
            .contains(&name)
        {
            return refuse(
                "CLASS_REFERENCED",
                format!("the CMDB settings exempt {name} from orphans"),
            );
        }
        if store::any_ci_of(&mut tx, &[&id]).await? {
            return refuse(
                "CLASS_HAS_CIS",
                format!("CIs (retired ones included) are of {name}: it cannot be deleted"),
            );
        }
        store::delete_class(&mut tx, &id).await?;
        let shown = current.effective_class(&id).unwrap_or(class);
        let change = Change {
            resource: &name,
            version: version + 1,
            action: "delete",
            event_type: DELETED,
            payload: event(Some(shown), &[]),
            changes: Vec::new(),
        };
        call::record(&mut tx, call, change, now).await?;
        tx.commit().await.map_err(StoreError::from)?;
        self.model.invalidate().await;
        // Walks read relationship types and the class tree (business services).
        self.impact_changed().await;
        tracing::info!(class = %name, "ci class deleted");
        Ok(pb::DeleteCiClassResponse {})
    }
}
