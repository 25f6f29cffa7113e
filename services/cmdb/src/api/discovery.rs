//! Discovery sources and precedence rules: configuration of the intake.
//! Every change is audited and published with the resource as its payload
//! (`cmdb.discovery_source.created`, `.updated`, `.deleted`;
//! `cmdb.precedence_rule.*`).
//!
//! `CreateDiscoverySource` stores `enabled` as sent (a source created
//! without it is disabled until enabled).

use itsm_platform::{ApiError, ErrorCode, Violations};
use itsm_proto::itsm::cmdb::v1 as pb;
use itsm_proto::itsm::common::v1 as common;
use itsm_store::audit::{FieldChange, timestamp};
use itsm_store::change::Change;
use itsm_store::idempotency::{self, Claim};
use itsm_store::list::ListRequest;
use itsm_store::{StoreError, etag};
use prost::Message as _;

use super::CmdbApi;
use super::call::{self, Call};
use crate::model::{self, Model};
use crate::reconcile::{CORE_FIELDS, duration_micros, source_id};
use crate::store::discovery as store;

const SOURCE_CREATED: &str = "cmdb.discovery_source.created";
const SOURCE_UPDATED: &str = "cmdb.discovery_source.updated";
const SOURCE_DELETED: &str = "cmdb.discovery_source.deleted";
const RULE_CREATED: &str = "cmdb.precedence_rule.created";
const RULE_UPDATED: &str = "cmdb.precedence_rule.updated";
const RULE_DELETED: &str = "cmdb.precedence_rule.deleted";

/// The source every API edit is attributed to; no source may take its id.
pub const MANUAL: &str = "manual";
/// Longest request_id accepted.
const REQUEST_ID_MAX: usize = 128;
/// Longest display name or description kept.
const TEXT_MAX: usize = 4_000;

const SOURCE_FIELDS: &[&str] = &[
    "display_name",
    "description",
    "stale_after",
    "allowed_classes",
    "allowed_principals",
    "enabled",
];
const RULE_FIELDS: &[&str] = &[
    "ci_class",
    "field",
    "discovery_sources",
    "stale_after",
    "description",
];

fn any<M: prost::Message>(name: &str, message: &M) -> prost_types::Any {
    prost_types::Any {
        type_url: format!("type.googleapis.com/itsm.cmdb.v1.{name}"),
        value: message.encode_to_vec(),
    }
}

fn proto_changes(changes: &[FieldChange]) -> Vec<common::FieldChange> {
    changes
        .iter()
        .map(|c| common::FieldChange {
            field: c.field.clone(),
            old_value: c.old.clone(),
            new_value: c.new.clone(),
        })
        .collect()
}

fn duration_text(d: Option<&prost_types::Duration>) -> String {
    d.map(|d| format!("{}s", duration_micros(d) / 1_000_000))
        .unwrap_or_default()
}

fn push(out: &mut Vec<FieldChange>, field: &str, old: String, new: String) {
    if old != new {
        out.push(FieldChange::new(field, old, new));
    }
}

fn source_changes(a: &pb::DiscoverySource, b: &pb::DiscoverySource) -> Vec<FieldChange> {
    let mut out = Vec::new();
    push(
        &mut out,
        "display_name",
        a.display_name.clone(),
        b.display_name.clone(),
    );
    push(
        &mut out,
        "description",
        a.description.clone(),
        b.description.clone(),
    );
    push(
        &mut out,
        "stale_after",
        duration_text(a.stale_after.as_ref()),
        duration_text(b.stale_after.as_ref()),
    );
    push(
        &mut out,
        "allowed_classes",
        a.allowed_classes.join(","),
        b.allowed_classes.join(","),
    );
    push(
        &mut out,
        "allowed_principals",
        a.allowed_principals.join(","),
        b.allowed_principals.join(","),
    );
    push(
        &mut out,
        "enabled",
        a.enabled.to_string(),
        b.enabled.to_string(),
    );
    out
}

fn rule_changes(a: &pb::PrecedenceRule, b: &pb::PrecedenceRule) -> Vec<FieldChange> {
    let mut out = Vec::new();
    push(&mut out, "ci_class", a.ci_class.clone(), b.ci_class.clone());
    push(&mut out, "field", a.field.clone(), b.field.clone());
    push(
        &mut out,
        "discovery_sources",
        a.discovery_sources.join(","),
        b.discovery_sources.join(","),
    );
    push(
        &mut out,
        "stale_after",
        duration_text(a.stale_after.as_ref()),
        duration_text(b.stale_after.as_ref()),
    );
    push(
        &mut out,
        "description",
        a.description.clone(),
        b.description.clone(),
    );
    out
}

/// The id of a source name ("discoverySources/sccm"), or INVALID_ARGUMENT on `field`.
pub(super) fn source_id_of<'a>(name: &'a str, field: &str) -> Result<&'a str, ApiError> {
    name.strip_prefix("discoverySources/")
        .filter(|id| !id.is_empty())
        .ok_or_else(|| {
            ApiError::invalid_field(
                field,
                format!(
                    "\"{name}\" is not a discovery source name; expected \"discoverySources/<id>\""
                ),
            )
        })
}

fn rule_uid_of<'a>(name: &'a str, field: &str) -> Result<&'a str, ApiError> {
    name.strip_prefix("precedenceRules/")
        .filter(|uid| uuid::Uuid::try_parse(uid).is_ok())
        .ok_or_else(|| {
            ApiError::invalid_field(
                field,
                format!(
                    "\"{name}\" is not a precedence rule name; expected \"precedenceRules/<uuid>\""
                ),
            )
        })
}

fn check_duration(d: Option<&prost_types::Duration>, field: &str, v: &mut Violations) {
    if let Some(d) = d {
        v.check(
            d.seconds >= 0 && d.nanos >= 0 && d.nanos < 1_000_000_000,
            field,
            "must be a non-negative duration",
        );
    }
}

fn check_text(text: &str, field: &str, v: &mut Violations) {
    v.check(
        text.chars().count() <= TEXT_MAX,
        field,
        format!("must be at most {TEXT_MAX} characters"),
    );
}

/// Checks the settable fields of a source.
fn check_source(model: &Model, s: &pb::DiscoverySource, v: &mut Violations) {
    check_text(&s.display_name, "discovery_source.display_name", v);
    check_text(&s.description, "discovery_source.description", v);
    check_duration(s.stale_after.as_ref(), "discovery_source.stale_after", v);
    for (i, class) in s.allowed_classes.iter().enumerate() {
        let known = model::class_id(class).is_some_and(|id| model.class(id).is_some());
        v.check(
            known,
            format!("discovery_source.allowed_classes[{i}]"),
            format!("\"{class}\" is not an existing class (\"classes/<id>\")"),
        );
    }
    for (i, principal) in s.allowed_principals.iter().enumerate() {
        v.check(
            !principal.trim().is_empty(),
            format!("discovery_source.allowed_principals[{i}]"),
            "must not be empty",
        );
    }
}

/// The update mask's paths, checked against `editable`; empty means all of them.
fn mask_paths(
    mask: Option<prost_types::FieldMask>,
    editable: &[&str],
) -> Result<Vec<String>, ApiError> {
    let paths = mask.map(|m| m.paths).unwrap_or_default();
    if paths.is_empty() {
        return Ok(editable.iter().map(|p| (*p).to_owned()).collect());
    }
    let mut v = Violations::new();
    for (i, path) in paths.iter().enumerate() {
        v.check(
            editable.contains(&path.as_str()),
            format!("update_mask.paths[{i}]"),
            format!(
                "\"{path}\" cannot be updated; updatable: {}",
                editable.join(", ")
            ),
        );
    }
    v.into_result()?;
    Ok(paths)
}

impl CmdbApi {
    pub(super) async fn create_discovery_source(
        &self,
        call: &Call,
        request: pb::CreateDiscoverySourceRequest,
    ) -> Result<pb::DiscoverySource, ApiError> {
        let id = request.discovery_source_id.clone();
        let sent = request.discovery_source.clone().unwrap_or_default();
        let model = self.model().await?;
        let mut v = Violations::new();
        if id.is_empty() {
            v.add("discovery_source_id", "is required, e.g. \"sccm\"");
        } else if !model::is_valid_id(&id) {
            v.add(
                "discovery_source_id",
                format!("\"{id}\" is not a valid id: lower_snake_case, starting with a letter, at most 63 characters"),
            );
        } else if id == MANUAL {
            v.add(
                "discovery_source_id",
                "\"manual\" is reserved for edits through the API",
            );
        }
        v.check(
            request.request_id.chars().count() <= REQUEST_ID_MAX,
            "request_id",
            "must be at most 128 characters",
        );
        check_source(&model, &sent, &mut v);
        v.into_result()?;

        let name = format!("discoverySources/{id}");
        let now = itsm_store::now_micros();
        let mut tx = self.db.begin().await?;
        if !request.request_id.is_empty() {
            let mut unkeyed = request.clone();
            unkeyed.request_id.clear();
            let hash = idempotency::hash_request(&unkeyed.encode_to_vec());
            let claim =
                idempotency::claim(&mut tx, "CreateDiscoverySource", &request.request_id, &hash)
                    .await?;
            if let Claim::Replay { resource } = claim {
                let rid = source_id(&resource).to_owned();
                let found = store::select_source(&mut tx, &rid, "").await?;
                tx.commit().await.map_err(StoreError::from)?;
                return found
                    .map(|(_, s)| s)
                    .ok_or_else(|| ApiError::not_found(resource));
            }
        }
        if store::select_source(&mut tx, &id, "").await?.is_some() {
            return Err(ApiError::new(
                ErrorCode::AlreadyExists,
                format!("{name} already exists"),
            ));
        }
        let time = Some(timestamp(now));
        let source = pb::DiscoverySource {
            name: name.clone(),
            display_name: sent.display_name.trim().to_owned(),
            description: sent.description,
            stale_after: sent.stale_after,
            allowed_classes: sent.allowed_classes,
            allowed_principals: sent.allowed_principals,
            enabled: sent.enabled,
            last_report_time: None,
            create_time: time,
            update_time: time,
            etag: etag::from_version(1),
        };
        store::insert_source(&mut tx, &id, &source, now).await?;
        let changes = source_changes(&pb::DiscoverySource::default(), &source);
        let payload = pb::DiscoverySourceEvent {
            discovery_source: Some(source.clone()),
            changes: proto_changes(&changes),
        };
        let change = Change {
            resource: &name,
            version: 1,
            action: "create",
            event_type: SOURCE_CREATED,
            changes,
            payload: any("DiscoverySourceEvent", &payload),
        };
        call::record(&mut tx, call, change, now).await?;
        if !request.request_id.is_empty() {
            idempotency::complete(&mut tx, "CreateDiscoverySource", &request.request_id, &name)
                .await?;
        }
        tx.commit().await.map_err(StoreError::from)?;
        tracing::info!(source = %name, "discovery source created");
        Ok(source)
    }

    pub(super) async fn get_discovery_source(
        &self,
        _call: &Call,
        request: pb::GetDiscoverySourceRequest,
    ) -> Result<pb::DiscoverySource, ApiError> {
        let id = source_id_of(&request.name, "name")?;
        let mut conn = self.db.pool().acquire().await.map_err(StoreError::from)?;
        store::select_source(&mut conn, id, "")
            .await?
            .map(|(_, s)| s)
            .ok_or_else(|| ApiError::not_found(&request.name))
    }

    pub(super) async fn list_discovery_sources(
        &self,
        _call: &Call,
        request: pb::ListDiscoverySourcesRequest,
    ) -> Result<pb::ListDiscoverySourcesResponse, ApiError> {
        let tokens = self.tokens().await?;
        let list = ListRequest {
            page_size: request.page_size,
            page_token: &request.page_token,
            filter: &request.filter,
            order_by: &request.order_by,
        };
        let mut conn = self.db.pool().acquire().await.map_err(StoreError::from)?;
        let (discovery_sources, next_page_token) =
            store::select_source_page(&mut conn, &list, tokens).await?;
        Ok(pb::ListDiscoverySourcesResponse {
            discovery_sources,
            next_page_token,
        })
    }

    pub(super) async fn update_discovery_source(
        &self,
        call: &Call,
        request: pb::UpdateDiscoverySourceRequest,
    ) -> Result<pb::DiscoverySource, ApiError> {
        let sent = request.discovery_source.unwrap_or_default();
        let name = sent.name.clone();
        let id = source_id_of(&name, "discovery_source.name")?.to_owned();
        let paths = mask_paths(request.update_mask, SOURCE_FIELDS)?;
        if request.etag.is_empty() {
            return Err(ApiError::invalid_field(
                "etag",
                "is required: the etag of the source as last read",
            ));
        }
        let model = self.model().await?;
        let now = itsm_store::now_micros();
        let mut tx = self.db.begin().await?;
        let lock = self.db.backend().lock_suffix();
        let (previous, before) = store::select_source(&mut tx, &id, lock)
            .await?
            .ok_or_else(|| ApiError::not_found(&name))?;
        etag::check(&name, &request.etag, previous, true)?;
        let mut after = before.clone();
        for path in &paths {
            match path.as_str() {
                "display_name" => after.display_name = sent.display_name.trim().to_owned(),
                "description" => after.description.clone_from(&sent.description),
                "stale_after" => after.stale_after = sent.stale_after,
                "allowed_classes" => after.allowed_classes.clone_from(&sent.allowed_classes),
                "allowed_principals" => {
                    after
                        .allowed_principals
                        .clone_from(&sent.allowed_principals);
                }
                _ => after.enabled = sent.enabled,
            }
        }
        let mut v = Violations::new();
        check_source(&model, &after, &mut v);
        v.into_result()?;
        let changes = source_changes(&before, &after);
        if changes.is_empty() {
            tx.commit().await.map_err(StoreError::from)?;
            return Ok(before);
        }
        let version = previous + 1;
        after.etag = etag::from_version(version);
        after.update_time = Some(timestamp(now));
        if !store::update_source(&mut tx, &id, &after, version, previous, now).await? {
            return Err(ApiError::stale_etag(&name));
        }
        let payload = pb::DiscoverySourceEvent {
            discovery_source: Some(after.clone()),
            changes: proto_changes(&changes),
        };
        let change = Change {
            resource: &name,
            version,
            action: "update",
            event_type: SOURCE_UPDATED,
            changes,
            payload: any("DiscoverySourceEvent", &payload),
        };
        call::record(&mut tx, call, change, now).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(after)
    }

    pub(super) async fn delete_discovery_source(
        &self,
        call: &Call,
        request: pb::DeleteDiscoverySourceRequest,
    ) -> Result<pb::DeleteDiscoverySourceResponse, ApiError> {
        let name = request.name;
        let id = source_id_of(&name, "name")?.to_owned();
        let now = itsm_store::now_micros();
        let mut tx = self.db.begin().await?;
        let lock = self.db.backend().lock_suffix();
        let (version, before) = store::select_source(&mut tx, &id, lock)
            .await?
            .ok_or_else(|| ApiError::not_found(&name))?;
        etag::check(&name, &request.etag, version, false)?;
        store::delete_source(&mut tx, &id).await?;
        let changes = source_changes(&before, &pb::DiscoverySource::default());
        let payload = pb::DiscoverySourceEvent {
            discovery_source: Some(before),
            changes: proto_changes(&changes),
        };
        let change = Change {
            resource: &name,
            version: version + 1,
            action: "delete",
            event_type: SOURCE_DELETED,
            changes,
            payload: any("DiscoverySourceEvent", &payload),
        };
        call::record(&mut tx, call, change, now).await?;
        tx.commit().await.map_err(StoreError::from)?;
        tracing::info!(source = %name, "discovery source deleted");
        Ok(pb::DeleteDiscoverySourceResponse {})
    }

    /// Checks a rule's settable fields (sources must exist, read in `conn`).
    async fn check_rule(
        &self,
        conn: &mut sqlx::AnyConnection,
        model: &Model,
        rule: &pb::PrecedenceRule,
    ) -> Result<(), ApiError> {
        let mut v = Violations::new();
        let class = model::class_id(&rule.ci_class).filter(|id| model.class(id).is_some());
        match class {
            None => v.add(
                "precedence_rule.ci_class",
                format!(
                    "\"{}\" is not an existing class (\"classes/<id>\")",
                    rule.ci_class
                ),
            ),
            Some(class) => {
                let field = rule.field.as_str();
                let ok = field == "*"
                    || CORE_FIELDS.contains(&field)
                    || field
                        .strip_prefix("attributes.")
                        .is_some_and(|key| model.attribute(class, key).is_some());
                v.check(
                    ok,
                    "precedence_rule.field",
                    format!(
                        "\"{field}\" is not \"*\", a core field ({}) or \"attributes.<key>\" of an attribute of {}",
                        CORE_FIELDS.join(", "),
                        rule.ci_class
                    ),
                );
            }
        }
        if rule.discovery_sources.is_empty() {
            v.add(
                "precedence_rule.discovery_sources",
                "is required: the sources, highest precedence first",
            );
        }
        let known: Vec<String> = store::select_all_sources(&mut *conn)
            .await?
            .into_iter()
            .map(|s| s.name)
            .collect();
        for (i, source) in rule.discovery_sources.iter().enumerate() {
            let field = format!("precedence_rule.discovery_sources[{i}]");
            if rule.discovery_sources[..i].contains(source) {
                v.add(field, format!("\"{source}\" is listed twice"));
            } else if source != "discoverySources/manual" && !known.contains(source) {
                v.add(
                    field,
                    format!("\"{source}\" is not an existing discovery source (\"discoverySources/<id>\")"),
                );
            }
        }
        check_duration(
            rule.stale_after.as_ref(),
            "precedence_rule.stale_after",
            &mut v,
        );
        check_text(&rule.description, "precedence_rule.description", &mut v);
        v.into_result()
    }

    pub(super) async fn create_precedence_rule(
        &self,
        call: &Call,
        request: pb::CreatePrecedenceRuleRequest,
    ) -> Result<pb::PrecedenceRule, ApiError> {
        let sent = request.precedence_rule.clone().unwrap_or_default();
        if request.request_id.chars().count() > REQUEST_ID_MAX {
            return Err(ApiError::invalid_field(
                "request_id",
                "must be at most 128 characters",
            ));
        }
        let model = self.model().await?;
        let now = itsm_store::now_micros();
        let mut tx = self.db.begin().await?;
        if !request.request_id.is_empty() {
            let mut unkeyed = request.clone();
            unkeyed.request_id.clear();
            let hash = idempotency::hash_request(&unkeyed.encode_to_vec());
            let claim =
                idempotency::claim(&mut tx, "CreatePrecedenceRule", &request.request_id, &hash)
                    .await?;
            if let Claim::Replay { resource } = claim {
                let uid = resource
                    .strip_prefix("precedenceRules/")
                    .unwrap_or_default();
                let found = store::select_rule(&mut tx, uid, "").await?;
                tx.commit().await.map_err(StoreError::from)?;
                return found
                    .map(|(_, r)| r)
                    .ok_or_else(|| ApiError::not_found(resource));
            }
        }
        self.check_rule(&mut tx, &model, &sent).await?;
        let class = model::class_id(&sent.ci_class)
            .unwrap_or_default()
            .to_owned();
        if store::rule_exists(&mut tx, &class, &sent.field, "").await? {
            return Err(ApiError::new(
                ErrorCode::AlreadyExists,
                format!(
                    "a precedence rule for {} field \"{}\" already exists",
                    sent.ci_class, sent.field
                ),
            ));
        }
        let uid = uuid::Uuid::new_v4().to_string();
        let name = format!("precedenceRules/{uid}");
        let time = Some(timestamp(now));
        let rule = pb::PrecedenceRule {
            name: name.clone(),
            ci_class: sent.ci_class,
            field: sent.field,
            discovery_sources: sent.discovery_sources,
            stale_after: sent.stale_after,
            description: sent.description,
            create_time: time,
            update_time: time,
            etag: etag::from_version(1),
        };
        store::insert_rule(&mut tx, &uid, &class, &rule, now).await?;
        let changes = rule_changes(&pb::PrecedenceRule::default(), &rule);
        let payload = pb::PrecedenceRuleEvent {
            precedence_rule: Some(rule.clone()),
            changes: proto_changes(&changes),
        };
        let change = Change {
            resource: &name,
            version: 1,
            action: "create",
            event_type: RULE_CREATED,
            changes,
            payload: any("PrecedenceRuleEvent", &payload),
        };
        call::record(&mut tx, call, change, now).await?;
        if !request.request_id.is_empty() {
            idempotency::complete(&mut tx, "CreatePrecedenceRule", &request.request_id, &name)
                .await?;
        }
        tx.commit().await.map_err(StoreError::from)?;
        tracing::info!(rule = %name, "precedence rule created");
        Ok(rule)
    }

    pub(super) async fn get_precedence_rule(
        &self,
        _call: &Call,
        request: pb::GetPrecedenceRuleRequest,
    ) -> Result<pb::PrecedenceRule, ApiError> {
        let uid = rule_uid_of(&request.name, "name")?;
        let mut conn = self.db.pool().acquire().await.map_err(StoreError::from)?;
        store::select_rule(&mut conn, uid, "")
            .await?
            .map(|(_, r)| r)
            .ok_or_else(|| ApiError::not_found(&request.name))
    }

    pub(super) async fn list_precedence_rules(
        &self,
        _call: &Call,
        request: pb::ListPrecedenceRulesRequest,
    ) -> Result<pb::ListPrecedenceRulesResponse, ApiError> {
        let tokens = self.tokens().await?;
        let list = ListRequest {
            page_size: request.page_size,
            page_token: &request.page_token,
            filter: &request.filter,
            order_by: &request.order_by,
        };
        let mut conn = self.db.pool().acquire().await.map_err(StoreError::from)?;
        let (precedence_rules, next_page_token) =
            store::select_rule_page(&mut conn, &list, tokens).await?;
        Ok(pb::ListPrecedenceRulesResponse {
            precedence_rules,
            next_page_token,
        })
    }

    pub(super) async fn update_precedence_rule(
        &self,
        call: &Call,
        request: pb::UpdatePrecedenceRuleRequest,
    ) -> Result<pb::PrecedenceRule, ApiError> {
        let sent = request.precedence_rule.unwrap_or_default();
        let name = sent.name.clone();
        let uid = rule_uid_of(&name, "precedence_rule.name")?.to_owned();
        let paths = mask_paths(request.update_mask, RULE_FIELDS)?;
        if request.etag.is_empty() {
            return Err(ApiError::invalid_field(
                "etag",
                "is required: the etag of the rule as last read",
            ));
        }
        let model = self.model().await?;
        let now = itsm_store::now_micros();
        let mut tx = self.db.begin().await?;
        let lock = self.db.backend().lock_suffix();
        let (previous, before) = store::select_rule(&mut tx, &uid, lock)
            .await?
            .ok_or_else(|| ApiError::not_found(&name))?;
        etag::check(&name, &request.etag, previous, true)?;
        let mut after = before.clone();
        for path in &paths {
            match path.as_str() {
                "ci_class" => after.ci_class.clone_from(&sent.ci_class),
                "field" => after.field.clone_from(&sent.field),
                "discovery_sources" => after.discovery_sources.clone_from(&sent.discovery_sources),
                "stale_after" => after.stale_after = sent.stale_after,
                _ => after.description.clone_from(&sent.description),
            }
        }
        self.check_rule(&mut tx, &model, &after).await?;
        let class = model::class_id(&after.ci_class)
            .unwrap_or_default()
            .to_owned();
        if store::rule_exists(&mut tx, &class, &after.field, &uid).await? {
            return Err(ApiError::new(
                ErrorCode::AlreadyExists,
                format!(
                    "a precedence rule for {} field \"{}\" already exists",
                    after.ci_class, after.field
                ),
            ));
        }
        let changes = rule_changes(&before, &after);
        if changes.is_empty() {
            tx.commit().await.map_err(StoreError::from)?;
            return Ok(before);
        }
        let version = previous + 1;
        after.etag = etag::from_version(version);
        after.update_time = Some(timestamp(now));
        if !store::update_rule(&mut tx, &uid, &class, &after, version, previous, now).await? {
            return Err(ApiError::stale_etag(&name));
        }
        let payload = pb::PrecedenceRuleEvent {
            precedence_rule: Some(after.clone()),
            changes: proto_changes(&changes),
        };
        let change = Change {
            resource: &name,
            version,
            action: "update",
            event_type: RULE_UPDATED,
            changes,
            payload: any("PrecedenceRuleEvent", &payload),
        };
        call::record(&mut tx, call, change, now).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(after)
    }

    pub(super) async fn delete_precedence_rule(
        &self,
        call: &Call,
        request: pb::DeletePrecedenceRuleRequest,
    ) -> Result<pb::DeletePrecedenceRuleResponse, ApiError> {
        let name = request.name;
        let uid = rule_uid_of(&name, "name")?.to_owned();
        let now = itsm_store::now_micros();
        let mut tx = self.db.begin().await?;
        let lock = self.db.backend().lock_suffix();
        let (version, before) = store::select_rule(&mut tx, &uid, lock)
            .await?
            .ok_or_else(|| ApiError::not_found(&name))?;
        etag::check(&name, &request.etag, version, false)?;
        store::delete_rule(&mut tx, &uid).await?;
        let changes = rule_changes(&before, &pb::PrecedenceRule::default());
        let payload = pb::PrecedenceRuleEvent {
            precedence_rule: Some(before),
            changes: proto_changes(&changes),
        };
        let change = Change {
            resource: &name,
            version: version + 1,
            action: "delete",
            event_type: RULE_DELETED,
            changes,
            payload: any("PrecedenceRuleEvent", &payload),
        };
        call::record(&mut tx, call, change, now).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(pb::DeletePrecedenceRuleResponse {})
    }
}
