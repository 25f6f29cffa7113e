//! SLA, OLA and underpinning-contract definitions: create, read, list,
//! update, delete and their versions. Every condition is checked against the
//! ticket type's fields (`clock::compile_conditions`) before anything is
//! stored; every change is a new version row, an audit entry and a
//! `SlaDefinitionEvent`, in one transaction.

use itsm_platform::{ApiError, Violations};
use itsm_proto::itsm::sla::v1 as pb;
use itsm_store::audit::FieldChange;
use itsm_store::idempotency::{self, Claim};
use itsm_store::list::ListRequest;
use itsm_store::{StoreError, etag, page};
use prost::Message as _;

use super::SlaApi;
use super::calendars::versions_page;
use super::call::{self, Call, Change};
use crate::clock;
use crate::store::{self, calendars, definitions as rows, versioned};

const CREATED: &str = "sla.sla_definition.created";
const UPDATED: &str = "sla.sla_definition.updated";
const DELETED: &str = "sla.sla_definition.deleted";

/// Warnings when a definition names none.
const DEFAULT_WARNINGS: &[i32] = &[50, 75, 100];

/// What UpdateSlaDefinition may change.
const EDITABLE: &[&str] = &[
    "display_name",
    "description",
    "kind",
    "ticket_type",
    "selection_condition",
    "target",
    "calendar",
    "time_zone_source",
    "time_zone",
    "start_condition",
    "pause_condition",
    "resume_condition",
    "stop_condition",
    "reset_condition",
    "cancel_condition",
    "warning_percentages",
    "retroactive_start_field",
    "retroactive_pause",
    "enabled",
];

fn id_of<'a>(name: &'a str, field: &str) -> Result<&'a str, ApiError> {
    rows::id_of(name).ok_or_else(|| {
        ApiError::invalid_field(
            field,
            format!("\"{name}\" is not a definition name; expected \"slaDefinitions/<id>\""),
        )
    })
}

fn event(d: &pb::SlaDefinition, changes: &[FieldChange]) -> prost_types::Any {
    let event = pb::SlaDefinitionEvent {
        sla_definition: Some(d.clone()),
        changes: call::field_changes(changes),
    };
    call::payload("SlaDefinitionEvent", &event)
}

fn enum_word(name: &str, prefix: &str) -> String {
    name.trim_start_matches(prefix).to_owned()
}

fn duration_text(d: Option<&prost_types::Duration>) -> String {
    d.map(|d| format!("{}s", d.seconds)).unwrap_or_default()
}

/// The audit changes from `before` to `after`.
fn changes(before: &pb::SlaDefinition, after: &pb::SlaDefinition) -> Vec<FieldChange> {
    let kind = |d: &pb::SlaDefinition| {
        enum_word(
            pb::SlaKind::try_from(d.kind)
                .unwrap_or_default()
                .as_str_name(),
            "SLA_KIND_",
        )
    };
    let source = |d: &pb::SlaDefinition| {
        enum_word(
            pb::TimeZoneSource::try_from(d.time_zone_source)
                .unwrap_or_default()
                .as_str_name(),
            "TIME_ZONE_SOURCE_",
        )
    };
    let warnings = |d: &pb::SlaDefinition| {
        d.warning_percentages
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let pairs: Vec<(&str, String, String)> = vec![
        (
            "display_name",
            before.display_name.clone(),
            after.display_name.clone(),
        ),
        (
            "description",
            before.description.clone(),
            after.description.clone(),
        ),
        ("kind", kind(before), kind(after)),
        (
            "ticket_type",
            before.ticket_type.clone(),
            after.ticket_type.clone(),
        ),
        (
            "selection_condition",
            before.selection_condition.clone(),
            after.selection_condition.clone(),
        ),
        (
            "target",
            duration_text(before.target.as_ref()),
            duration_text(after.target.as_ref()),
        ),
        ("calendar", before.calendar.clone(), after.calendar.clone()),
        ("time_zone_source", source(before), source(after)),
        (
            "time_zone",
            before.time_zone.clone(),
            after.time_zone.clone(),
        ),
        (
            "start_condition",
            before.start_condition.clone(),
            after.start_condition.clone(),
        ),
        (
            "pause_condition",
            before.pause_condition.clone(),
            after.pause_condition.clone(),
        ),
        (
            "resume_condition",
            before.resume_condition.clone(),
            after.resume_condition.clone(),
        ),
        (
            "stop_condition",
            before.stop_condition.clone(),
            after.stop_condition.clone(),
        ),
        (
            "reset_condition",
            before.reset_condition.clone(),
            after.reset_condition.clone(),
        ),
        (
            "cancel_condition",
            before.cancel_condition.clone(),
            after.cancel_condition.clone(),
        ),
        ("warning_percentages", warnings(before), warnings(after)),
        (
            "retroactive_start_field",
            before.retroactive_start_field.clone(),
            after.retroactive_start_field.clone(),
        ),
        (
            "retroactive_pause",
            before.retroactive_pause.to_string(),
            after.retroactive_pause.to_string(),
        ),
        (
            "enabled",
            before.enabled.to_string(),
            after.enabled.to_string(),
        ),
    ];
    pairs
        .into_iter()
        .filter(|(_, old, new)| old != new)
        .map(|(field, old, new)| FieldChange::new(field, old, new))
        .collect()
}

/// Checks a definition's content (not its calendar's existence), naming every
/// bad field under "sla_definition".
fn check(d: &pb::SlaDefinition, v: &mut Violations) {
    if d.display_name.trim().is_empty() {
        v.add(
            "sla_definition.display_name",
            "is required, e.g. \"P1 resolution\"",
        );
    }
    match pb::SlaKind::try_from(d.kind) {
        Ok(pb::SlaKind::Unspecified) | Err(_) => {
            v.add("sla_definition.kind", "is required: SLA, OLA or UC");
        }
        Ok(_) => {}
    }
    if pb::TimeZoneSource::try_from(d.time_zone_source).is_err() {
        v.add(
            "sla_definition.time_zone_source",
            "must be SLA, CALLER or CI_LOCATION",
        );
    }
    match d.target.as_ref() {
        None => v.add("sla_definition.target", "is required, e.g. 4h (14400s)"),
        Some(t) if t.seconds < 0 || (t.seconds == 0 && t.nanos <= 0) || t.nanos < 0 => {
            v.add("sla_definition.target", "must be longer than zero");
        }
        Some(_) => {}
    }
    if d.stop_condition.trim().is_empty() {
        v.add(
            "sla_definition.stop_condition",
            "is required, e.g. `state = RESOLVED`",
        );
    }
    if !d.calendar.is_empty() && calendars::id_of(&d.calendar).is_none() {
        v.add(
            "sla_definition.calendar",
            format!(
                "\"{}\" is not a calendar name; expected \"calendars/<id>\"",
                d.calendar
            ),
        );
    }
    if !d.time_zone.is_empty() && jiff::tz::TimeZone::get(&d.time_zone).is_err() {
        v.add(
            "sla_definition.time_zone",
            format!("unknown time zone {:?}", d.time_zone),
        );
    }
    let mut previous = 0;
    for (i, p) in d.warning_percentages.iter().enumerate() {
        let field = format!("sla_definition.warning_percentages[{i}]");
        if !(1..=100).contains(p) {
            v.add(field, format!("{p} is not a percentage between 1 and 100"));
        } else if *p <= previous {
            v.add(
                field,
                format!("{p} must be greater than the percentage before it ({previous}): ascending, each once"),
            );
        } else {
            previous = *p;
        }
    }
    if let Err(errors) = clock::compile_conditions(d) {
        for (field, description) in errors {
            // The percentages are checked above, more strictly.
            if !field.starts_with("sla_definition.warning_percentages") {
                v.add(field, description);
            }
        }
    }
}

impl SlaApi {
    /// Checks that the definition's calendar exists (INVALID_ARGUMENT naming
    /// `sla_definition.calendar` otherwise). The calendar row is read with the
    /// write lock, so a concurrent DeleteCalendar waits for this transaction
    /// and then sees the definition that uses it.
    async fn check_calendar_exists(
        &self,
        conn: &mut sqlx::AnyConnection,
        d: &pb::SlaDefinition,
    ) -> Result<(), ApiError> {
        let Some(id) = calendars::id_of(&d.calendar) else {
            return Ok(());
        };
        let lock = self.db.backend().lock_suffix();
        let found = calendars::select_for_write(conn, id, lock)
            .await?
            .filter(|(deleted, _)| !deleted);
        if found.is_none() {
            return Err(ApiError::invalid_field(
                "sla_definition.calendar",
                format!("{} does not exist", d.calendar),
            ));
        }
        Ok(())
    }

    pub(super) async fn create_sla_definition(
        &self,
        call: &Call,
        request: pb::CreateSlaDefinitionRequest,
    ) -> Result<pb::SlaDefinition, ApiError> {
        let id = request.sla_definition_id.clone();
        let sent = request.sla_definition.clone().unwrap_or_default();
        let mut v = Violations::new();
        call::check_id(&id, "sla_definition_id", "p1-resolution", &mut v);
        let now = itsm_store::now_micros();
        let time = itsm_store::audit::timestamp(now);
        let name = format!("slaDefinitions/{id}");
        let mut d = sent;
        d.name = name.clone();
        d.display_name = d.display_name.trim().to_owned();
        d.ticket_type = d.ticket_type.trim().to_owned();
        if d.time_zone_source == 0 {
            d.time_zone_source = pb::TimeZoneSource::Sla as i32;
        }
        if d.warning_percentages.is_empty() {
            d.warning_percentages = DEFAULT_WARNINGS.to_vec();
        }
        d.version = 1;
        d.recompute_operation.clear();
        d.created_by = Some(call::principal(call));
        d.create_time = Some(time);
        d.updated_by = Some(call::principal(call));
        d.update_time = Some(time);
        d.etag = etag::from_version(1);
        d.tenant.clear();
        check(&d, &mut v);
        v.into_result()?;

        let mut tx = self.db.begin().await?;
        self.check_calendar_exists(&mut tx, &d).await?;
        if request.validate_only {
            return Ok(d);
        }
        if !request.request_id.is_empty() {
            let mut unkeyed = request.clone();
            unkeyed.request_id.clear();
            let hash = idempotency::hash_request(&unkeyed.encode_to_vec());
            let claim =
                idempotency::claim(&mut tx, "CreateSlaDefinition", &request.request_id, &hash)
                    .await?;
            if let Claim::Replay { resource } = claim {
                let first =
                    rows::select(&mut tx, rows::id_of(&resource).unwrap_or_default(), 0).await?;
                return first.ok_or_else(|| ApiError::not_found(resource));
            }
        }
        let lock = self.db.backend().lock_suffix();
        if let Some((deleted, _)) = rows::select_for_write(&mut tx, &id, lock).await? {
            return Err(call::already_exists(&name, deleted));
        }
        rows::insert(&mut tx, &id, &d, now).await.map_err(|e| {
            if e.is_unique_violation() {
                call::already_exists(&name, false)
            } else {
                e.into()
            }
        })?;
        let changes = changes(&pb::SlaDefinition::default(), &d);
        let change = Change {
            resource: &name,
            version: 1,
            action: "create",
            event_type: CREATED,
            payload: event(&d, &changes),
            changes,
        };
        call::record(&mut tx, call, change, now).await?;
        if !request.request_id.is_empty() {
            idempotency::complete(&mut tx, "CreateSlaDefinition", &request.request_id, &name)
                .await?;
        }
        tx.commit().await.map_err(StoreError::from)?;
        Ok(d)
    }

    pub(super) async fn get_sla_definition(
        &self,
        _call: &Call,
        request: pb::GetSlaDefinitionRequest,
    ) -> Result<pb::SlaDefinition, ApiError> {
        let id = id_of(&request.name, "name")?;
        if request.version < 0 {
            return Err(ApiError::invalid_field(
                "version",
                "must be a version number (1, 2, ...) or 0 for the current one",
            ));
        }
        let mut conn = self.db.pool().acquire().await.map_err(StoreError::from)?;
        let found = rows::select(&mut conn, id, request.version).await?;
        found.ok_or_else(|| match request.version {
            0 => ApiError::not_found(&request.name),
            v => ApiError::not_found(format!("{} version {v}", request.name)),
        })
    }

    pub(super) async fn list_sla_definitions(
        &self,
        _call: &Call,
        request: pb::ListSlaDefinitionsRequest,
    ) -> Result<pb::ListSlaDefinitionsResponse, ApiError> {
        let tokens = self.tokens().await?;
        let list = ListRequest {
            page_size: request.page_size,
            page_token: &request.page_token,
            filter: &request.filter,
            order_by: &request.order_by,
        };
        let (docs, next_page_token) =
            store::select_text_keyed_page(&self.db, rows::SELECT, &rows::SCHEMA, "", &list, tokens)
                .await?;
        let sla_definitions = docs
            .iter()
            .map(|d| store::decode("sla_definitions", d))
            .collect::<Result<_, _>>()?;
        Ok(pb::ListSlaDefinitionsResponse {
            sla_definitions,
            next_page_token,
        })
    }

    /// Changes a definition: a new version. With `recompute_open_task_slas`
    /// it also starts, in the same transaction, the recomputation that moves
    /// the definition's open task SLAs to the new version (named by
    /// `recompute_operation` and in the audit entry); otherwise running task
    /// SLAs keep their version.
    pub(super) async fn update_sla_definition(
        &self,
        call: &Call,
        request: pb::UpdateSlaDefinitionRequest,
    ) -> Result<pb::SlaDefinition, ApiError> {
        let sent = request.sla_definition.unwrap_or_default();
        let paths = request.update_mask.map(|m| m.paths).unwrap_or_default();
        let mut v = Violations::new();
        let id = match id_of(&sent.name, "sla_definition.name") {
            Ok(id) => id.to_owned(),
            Err(e) => {
                v.add("sla_definition.name", e.message());
                String::new()
            }
        };
        let fields = call::mask_fields(&paths, EDITABLE, &mut v);
        v.check(
            !request.etag.is_empty(),
            "etag",
            "is required: the etag of the definition as last read",
        );
        v.into_result()?;

        let now = itsm_store::now_micros();
        let mut tx = self.db.begin().await?;
        let lock = self.db.backend().lock_suffix();
        let before = rows::select_for_write(&mut tx, &id, lock)
            .await?
            .filter(|(deleted, _)| !deleted)
            .map(|(_, d)| d)
            .ok_or_else(|| ApiError::not_found(&sent.name))?;
        etag::check(&sent.name, &request.etag, before.version, true)?;
        let mut d = before.clone();
        for field in &fields {
            match *field {
                "display_name" => d.display_name = sent.display_name.trim().to_owned(),
                "description" => d.description.clone_from(&sent.description),
                "kind" => d.kind = sent.kind,
                "ticket_type" => d.ticket_type = sent.ticket_type.trim().to_owned(),
                "selection_condition" => {
                    d.selection_condition.clone_from(&sent.selection_condition)
                }
                "target" => d.target = sent.target,
                "calendar" => d.calendar.clone_from(&sent.calendar),
                "time_zone_source" => {
                    d.time_zone_source = if sent.time_zone_source == 0 {
                        pb::TimeZoneSource::Sla as i32
                    } else {
                        sent.time_zone_source
                    };
                }
                "time_zone" => d.time_zone.clone_from(&sent.time_zone),
                "start_condition" => d.start_condition.clone_from(&sent.start_condition),
                "pause_condition" => d.pause_condition.clone_from(&sent.pause_condition),
                "resume_condition" => d.resume_condition.clone_from(&sent.resume_condition),
                "stop_condition" => d.stop_condition.clone_from(&sent.stop_condition),
                "reset_condition" => d.reset_condition.clone_from(&sent.reset_condition),
                "cancel_condition" => d.cancel_condition.clone_from(&sent.cancel_condition),
                "warning_percentages" => {
                    d.warning_percentages = if sent.warning_percentages.is_empty() {
                        DEFAULT_WARNINGS.to_vec()
                    } else {
                        sent.warning_percentages.clone()
                    };
                }
                "retroactive_start_field" => {
                    d.retroactive_start_field
                        .clone_from(&sent.retroactive_start_field);
                }
                "retroactive_pause" => d.retroactive_pause = sent.retroactive_pause,
                _ => d.enabled = sent.enabled,
            }
        }
        let mut v = Violations::new();
        check(&d, &mut v);
        v.into_result()?;
        // Also when unchanged: a disabled definition may point at a calendar
        // deleted since, and must not come back to life with it.
        self.check_calendar_exists(&mut tx, &d).await?;
        let mut changes = changes(&before, &d);
        if changes.is_empty() || request.validate_only {
            return Ok(if changes.is_empty() { before } else { d });
        }
        d.version += 1;
        d.etag = etag::from_version(d.version);
        d.updated_by = Some(call::principal(call));
        d.update_time = Some(itsm_store::audit::timestamp(now));
        d.recompute_operation.clear();
        if request.recompute_open_task_slas {
            let principal = call::principal(call);
            let op =
                crate::operations::after_definition_change(&mut tx, &d, principal, now).await?;
            changes.push(FieldChange::new("recompute_operation", "", &op));
            d.recompute_operation = op;
        }
        rows::update(&mut tx, &id, &d, now).await?;
        let change = Change {
            resource: &sent.name,
            version: d.version,
            action: "update",
            event_type: UPDATED,
            payload: event(&d, &changes),
            changes,
        };
        call::record(&mut tx, call, change, now).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(d)
    }

    pub(super) async fn delete_sla_definition(
        &self,
        call: &Call,
        request: pb::DeleteSlaDefinitionRequest,
    ) -> Result<pb::DeleteSlaDefinitionResponse, ApiError> {
        let name = request.name.clone();
        let id = id_of(&name, "name")?.to_owned();
        let now = itsm_store::now_micros();
        let mut tx = self.db.begin().await?;
        let lock = self.db.backend().lock_suffix();
        let d = rows::select_for_write(&mut tx, &id, lock)
            .await?
            .filter(|(deleted, _)| !deleted)
            .map(|(_, d)| d)
            .ok_or_else(|| ApiError::not_found(&name))?;
        etag::check(&name, &request.etag, d.version, false)?;
        if rows::in_use(&mut tx, &id).await? {
            return Err(ApiError::failed_precondition(
                "SLA_DEFINITION_IN_USE",
                &name,
                format!("task SLAs refer to {name}: disable it instead (enabled = false)"),
            ));
        }
        versioned::mark_deleted(&mut tx, rows::TABLES, &id, now).await?;
        let change = Change {
            resource: &name,
            version: d.version + 1,
            action: "delete",
            event_type: DELETED,
            payload: event(&d, &[]),
            changes: Vec::new(),
        };
        call::record(&mut tx, call, change, now).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(pb::DeleteSlaDefinitionResponse {})
    }

    pub(super) async fn list_sla_definition_versions(
        &self,
        _call: &Call,
        request: pb::ListSlaDefinitionVersionsRequest,
    ) -> Result<pb::ListSlaDefinitionVersionsResponse, ApiError> {
        let id = id_of(&request.name, "name")?;
        let limit = page::page_size(request.page_size)?;
        let tokens = self.tokens().await?;
        let mut conn = self.db.pool().acquire().await.map_err(StoreError::from)?;
        if rows::select(&mut conn, id, 0).await?.is_none() {
            return Err(ApiError::not_found(&request.name));
        }
        let (docs, next_page_token) = versions_page(
            &mut conn,
            rows::TABLES,
            id,
            limit,
            &request.page_token,
            tokens,
        )
        .await?;
        let sla_definitions = docs
            .iter()
            .map(|d| store::decode("sla_definition_versions", d))
            .collect::<Result<_, _>>()?;
        Ok(pb::ListSlaDefinitionVersionsResponse {
            sla_definitions,
            next_page_token,
        })
    }
}
