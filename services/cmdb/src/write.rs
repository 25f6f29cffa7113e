//! The one way a CI changes, whoever changes it (the API, reconciliation, a
//! parked match resolved): the row, the attribute index, the version snapshot,
//! the sighting, the history entry and the event, in the caller's transaction.
//!
//! Versions: every versioned change (create, update) stores a snapshot in
//! `ci_versions`; what is not a change of the CI (sightings, provenance's
//! `last_reported_time`) rewrites the row only ([`save_unversioned`]), so an
//! as-of read shows the CI as it was changed, not as it was last seen.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use itsm_platform::{ApiError, Violations};
use itsm_proto::itsm::cmdb::v1 as pb;
use itsm_proto::itsm::common::v1 as common;
use itsm_store::audit::{FieldChange, timestamp};
use itsm_store::outbox::{self, NewEvent};
use prost::Message as _;
use sqlx::AnyConnection;

use crate::api::call::{Call, SOURCE, STREAM};
use crate::model::{self, LOCATION_CLASS, Model, class_id};
use crate::store::{cis, history};

/// The event types of CI changes (events.proto).
pub const CREATED: &str = "cmdb.ci.created";
pub const UPDATED: &str = "cmdb.ci.updated";
pub const STATUS_CHANGED: &str = "cmdb.ci.status_changed";
pub const RECLASSIFIED: &str = "cmdb.ci.reclassified";
pub const RETIRED: &str = "cmdb.ci.retired";

/// A CI as stored: its internal id (what relationships and history
/// reference) and the message (`name` "cis/<uid>", `etag` "v<version>").
#[derive(Debug, Clone, PartialEq)]
pub struct StoredCi {
    pub id: i64,
    pub version: i64,
    pub ci: pb::Ci,
}

/// Where a change comes from.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    pub call: &'a Call,
    /// The discovery source id: "sccm", or "manual" for edits through the API.
    pub source: &'a str,
    /// The source's key for the CI, "" for manual edits.
    pub correlation_id: &'a str,
    /// The history action: "create", "update", "reconcile", "reclassify", "retire".
    pub action: &'a str,
    pub now: i64,
}

/// "discoverySources/<source>".
pub fn source_name(source: &str) -> String {
    format!("discoverySources/{source}")
}

/// The provenance of a field set by `origin` now.
pub fn provenance(origin: &Origin<'_>) -> pb::FieldProvenance {
    pb::FieldProvenance {
        discovery_source: source_name(origin.source),
        actor: Some(origin.call.actor.to_proto()),
        set_time: Some(timestamp(origin.now)),
        last_reported_time: Some(timestamp(origin.now)),
    }
}

/// Drops attributes without a value: an unset value means "no value".
fn drop_unset(ci: &mut pb::Ci) {
    ci.attributes.retain(|_, v| v.value.is_some());
}

/// Stores `ci` as a new CI (version 1) and returns it as stored: a new uid,
/// status PLANNED when unspecified, attribute defaults of the class applied,
/// provenance of every set field from `origin`, a sighting of
/// (source, correlation_id), the attribute index, the version snapshot, a
/// "create" history entry listing every set field, and a `cmdb.ci.created`
/// event. The caller has validated `ci` (class, attributes, references).
pub async fn create_ci(
    conn: &mut AnyConnection,
    model: &Model,
    mut ci: pb::Ci,
    origin: &Origin<'_>,
) -> Result<StoredCi, ApiError> {
    let uid = uuid::Uuid::new_v4().to_string();
    let now = origin.now;
    drop_unset(&mut ci);
    if let Some(class) = class_id(&ci.ci_class) {
        for attribute in model.effective_attributes(class) {
            let default = attribute.default_value.filter(|v| v.value.is_some());
            if let Some(default) = default {
                ci.attributes.entry(attribute.key).or_insert(default);
            }
        }
    }
    if ci.status == pb::CiStatus::Unspecified as i32 {
        ci.status = pb::CiStatus::Planned as i32;
    }
    let actor = origin.call.actor.to_proto();
    ci.name = format!("cis/{uid}");
    ci.etag = itsm_store::etag::from_version(1);
    ci.tenant = String::new();
    ci.time_zone = String::new();
    ci.created_by = Some(actor.clone());
    ci.updated_by = Some(actor);
    ci.create_time = Some(timestamp(now));
    ci.update_time = Some(timestamp(now));
    ci.sightings.clear();
    ci.last_seen_time = None;
    if ci.status != pb::CiStatus::Retired as i32 {
        ci.retire_reason.clear();
        ci.retire_time = None;
    }
    let changes = diff(&pb::Ci::default(), &ci);
    ci.provenance = changes
        .iter()
        .map(|c| (c.field.clone(), provenance(origin)))
        .collect();
    apply_sighting(&mut ci, origin);

    let id = cis::insert_ci(&mut *conn, &uid, &ci).await?;
    cis::upsert_sighting(
        &mut *conn,
        id,
        origin.source,
        origin.correlation_id,
        now,
        false,
    )
    .await?;
    for (key, value) in &ci.attributes {
        cis::put_attribute(&mut *conn, id, key, Some(value)).await?;
    }
    cis::push_version(&mut *conn, id, 1, &ci, now).await?;
    let stored = StoredCi { id, version: 1, ci };
    record(&mut *conn, &stored, &changes, origin, CREATED).await?;
    Ok(stored)
}

/// The history entry and event of a versioned change of `stored`.
async fn record(
    conn: &mut AnyConnection,
    stored: &StoredCi,
    changes: &[FieldChange],
    origin: &Origin<'_>,
    event_type: &str,
) -> Result<(), ApiError> {
    let call = origin.call;
    history::insert(
        &mut *conn,
        &history::NewEntry {
            ci_id: stored.id,
            version: stored.version,
            action: origin.action,
            source: origin.source,
            relationship: "",
            changes,
            actor: &call.actor,
            request_id: &call.request_id,
            time: origin.now,
        },
    )
    .await?;
    let payload = pb::CiEvent {
        ci: Some(stored.ci.clone()),
        changes: changes
            .iter()
            .map(|c| common::FieldChange {
                field: c.field.clone(),
                old_value: c.old.clone(),
                new_value: c.new.clone(),
            })
            .collect(),
        discovery_source: source_name(origin.source),
    };
    let event = NewEvent {
        stream: STREAM,
        source: SOURCE,
        event_type,
        subject: &stored.ci.name,
        sequence: u64::try_from(stored.version).unwrap_or_default(),
        payload: prost_types::Any {
            type_url: "type.googleapis.com/itsm.cmdb.v1.CiEvent".to_owned(),
            value: payload.encode_to_vec(),
        },
        actor: &call.actor,
        request_id: &call.request_id,
        traceparent: &call.traceparent,
        tracestate: &call.tracestate,
        time: origin.now,
    };
    outbox::insert(conn, &event).await?;
    Ok(())
}

/// Stores `after` as the next version of `before` when a field differs
/// (see [`diff`]): provenance of each changed field set from `origin`, the
/// row and the changed attribute index rows, the old version closed and the
/// new snapshot stored, one history entry with every field change, and the
/// event (`cmdb.ci.retired`, `.reclassified`, `.status_changed` or
/// `.updated`, by what changed). Returns the CI as stored and the changes
/// (none: nothing was written, `before` is returned).
///
/// `after` keeps what the caller put in its output-only fields (provenance,
/// sightings); its name, creation and tenant are `before`'s. A stale
/// `before` (the row moved on meanwhile) is ABORTED.
pub async fn update_ci(
    conn: &mut AnyConnection,
    _model: &Model,
    before: &StoredCi,
    mut after: pb::Ci,
    origin: &Origin<'_>,
) -> Result<(StoredCi, Vec<FieldChange>), ApiError> {
    drop_unset(&mut after);
    after.name.clone_from(&before.ci.name);
    after.tenant.clone_from(&before.ci.tenant);
    after.created_by.clone_from(&before.ci.created_by);
    after.create_time = before.ci.create_time;
    after.time_zone = String::new();
    let changes = diff(&before.ci, &after);
    if changes.is_empty() {
        return Ok((before.clone(), changes));
    }
    let now = origin.now;
    let version = before.version + 1;
    let retired = pb::CiStatus::Retired as i32;
    if after.status == retired && before.ci.status != retired && after.retire_time.is_none() {
        after.retire_time = Some(timestamp(now));
    }
    after.etag = itsm_store::etag::from_version(version);
    after.updated_by = Some(origin.call.actor.to_proto());
    after.update_time = Some(timestamp(now));
    for change in &changes {
        after
            .provenance
            .insert(change.field.clone(), provenance(origin));
    }
    let written = cis::update_ci(&mut *conn, before.id, &after, version, before.version).await?;
    if !written {
        return Err(ApiError::stale_etag(&before.ci.name));
    }
    for change in &changes {
        if let Some(key) = change.field.strip_prefix("attributes.") {
            cis::put_attribute(&mut *conn, before.id, key, after.attributes.get(key)).await?;
        }
    }
    cis::push_version(&mut *conn, before.id, version, &after, now).await?;
    let event_type = if after.status != before.ci.status && after.status == retired {
        RETIRED
    } else if after.ci_class != before.ci.ci_class {
        RECLASSIFIED
    } else if after.status != before.ci.status {
        STATUS_CHANGED
    } else {
        UPDATED
    };
    let stored = StoredCi {
        id: before.id,
        version,
        ci: after,
    };
    record(&mut *conn, &stored, &changes, origin, event_type).await?;
    Ok((stored, changes))
}

/// Rewrites the stored message of `ci` without a new version, history entry
/// or event: for what is not a change of the CI (a sighting, provenance's
/// `last_reported_time`, `last_seen_time`). The caller sets those fields.
pub async fn save_unversioned(
    conn: &mut AnyConnection,
    ci: &StoredCi,
    _now: i64,
) -> Result<(), ApiError> {
    sqlx::query("UPDATE cis SET last_seen_at = $1, doc = $2 WHERE id = $3")
        .bind(cis::micros(ci.ci.last_seen_time.as_ref()))
        .bind(ci.ci.encode_to_vec())
        .bind(ci.id)
        .execute(conn)
        .await
        .map_err(itsm_store::StoreError::from)?;
    Ok(())
}

/// Moves `ci`'s sighting of `origin`'s (source, correlation id) and its
/// `last_seen_time` to `origin.now`, in memory.
fn apply_sighting(ci: &mut pb::Ci, origin: &Origin<'_>) {
    let discovery_source = source_name(origin.source);
    let now = Some(timestamp(origin.now));
    match ci.sightings.iter_mut().find(|s| {
        s.discovery_source == discovery_source && s.correlation_id == origin.correlation_id
    }) {
        Some(sighting) => sighting.last_seen_time = now,
        None => ci.sightings.push(pb::SourceSighting {
            discovery_source,
            correlation_id: origin.correlation_id.to_owned(),
            first_seen_time: now,
            last_seen_time: now,
        }),
    }
    ci.last_seen_time = now;
}

/// Records that `origin.source` saw the CI now under `origin.correlation_id`
/// (inserting or moving the sighting row), and moves the CI's
/// `last_seen_time` and its `sightings` in `ci` (the caller saves `ci`).
/// A correlation id another CI held moves to this one (that CI's stored
/// sightings are rewritten; its cached copy is the caller's to forget).
pub async fn sight(
    conn: &mut AnyConnection,
    ci: &mut StoredCi,
    origin: &Origin<'_>,
) -> Result<(), ApiError> {
    // The sighting is this CI's already when its message lists it: the
    // message and the sighting rows are written together, under the CI's lock.
    let discovery_source = source_name(origin.source);
    let held = ci.ci.sightings.iter().any(|s| {
        s.discovery_source == discovery_source && s.correlation_id == origin.correlation_id
    });
    let moved_from = cis::upsert_sighting(
        &mut *conn,
        ci.id,
        origin.source,
        origin.correlation_id,
        origin.now,
        held,
    )
    .await?;
    if let Some(other) = moved_from {
        for mut previous in cis::select_by_ids(&mut *conn, &[other]).await? {
            previous.ci.sightings.retain(|s| {
                s.discovery_source != discovery_source || s.correlation_id != origin.correlation_id
            });
            save_unversioned(&mut *conn, &previous, origin.now).await?;
        }
    }
    apply_sighting(&mut ci.ci, origin);
    Ok(())
}

/// A "relate" or "unrelate" history entry on the CI with internal id
/// `ci_id` for `relationship` ("relationships/<uuid>"); no new CI version.
pub async fn record_relationship(
    conn: &mut AnyConnection,
    ci_id: i64,
    action: &str,
    relationship: &str,
    origin: &Origin<'_>,
) -> Result<(), ApiError> {
    history::insert(
        conn,
        &history::NewEntry {
            ci_id,
            version: 0,
            action,
            source: origin.source,
            relationship,
            changes: &[],
            actor: &origin.call.actor,
            request_id: &origin.call.request_id,
            time: origin.now,
        },
    )
    .await?;
    Ok(())
}

/// A status as history shows it: "OPERATIONAL", "" when unspecified.
pub fn status_text(status: i32) -> String {
    match pb::CiStatus::try_from(status) {
        Ok(pb::CiStatus::Unspecified) => String::new(),
        Ok(s) => s.as_str_name().trim_start_matches("CI_STATUS_").to_owned(),
        Err(_) => status.to_string(),
    }
}

/// A criticality as history shows it: "HIGH", "" when unspecified.
pub fn criticality_text(criticality: i32) -> String {
    match pb::Criticality::try_from(criticality) {
        Ok(pb::Criticality::Unspecified) => String::new(),
        Ok(c) => c
            .as_str_name()
            .trim_start_matches("CRITICALITY_")
            .to_owned(),
        Err(_) => criticality.to_string(),
    }
}

/// Labels as history shows them: a JSON object sorted by key, "" when none.
fn labels_text(labels: &BTreeMap<String, String>) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let sorted: BTreeMap<&String, &String> = labels.iter().collect();
    serde_json::to_string(&sorted).unwrap_or_default()
}

/// The field changes from `before` to `after`: core fields by name
/// ("support_group", "status", "ci_class", ...), attributes as
/// "attributes.<key>", labels as "labels"; values as text. Output-only
/// fields (provenance, sightings, times, etag) are not compared, except
/// `retire_reason`, which a retirement records.
pub fn diff(before: &pb::Ci, after: &pb::Ci) -> Vec<FieldChange> {
    let mut out = Vec::new();
    let mut text = |field: &str, old: String, new: String| {
        if old != new {
            out.push(FieldChange::new(field, old, new));
        }
    };
    text("ci_class", before.ci_class.clone(), after.ci_class.clone());
    text(
        "display_name",
        before.display_name.clone(),
        after.display_name.clone(),
    );
    text(
        "description",
        before.description.clone(),
        after.description.clone(),
    );
    text(
        "status",
        status_text(before.status),
        status_text(after.status),
    );
    text("owner", before.owner.clone(), after.owner.clone());
    text(
        "support_group",
        before.support_group.clone(),
        after.support_group.clone(),
    );
    text(
        "criticality",
        criticality_text(before.criticality),
        criticality_text(after.criticality),
    );
    text("location", before.location.clone(), after.location.clone());
    text(
        "min_members_up",
        before.min_members_up.to_string(),
        after.min_members_up.to_string(),
    );
    text(
        "labels",
        labels_text(&before.labels),
        labels_text(&after.labels),
    );
    text(
        "retire_reason",
        before.retire_reason.clone(),
        after.retire_reason.clone(),
    );
    let keys: BTreeSet<&String> = before
        .attributes
        .keys()
        .chain(after.attributes.keys())
        .collect();
    for key in keys {
        let value = |ci: &pb::Ci| {
            ci.attributes
                .get(key)
                .and_then(model::value_text)
                .unwrap_or_default()
        };
        let (old, new) = (value(before), value(after));
        // Same text, other type (a number 1 and a string "1") is a change too.
        let same_type = before
            .attributes
            .get(key)
            .map(|v| &v.value)
            .map(std::mem::discriminant)
            == after
                .attributes
                .get(key)
                .map(|v| &v.value)
                .map(std::mem::discriminant);
        if old != new || !same_type {
            out.push(FieldChange::new(&format!("attributes.{key}"), old, new));
        }
    }
    out
}

/// Checks what needs the database: references (`location` and REFERENCE
/// attributes) name existing CIs of the right class. Violations name
/// `"{prefix}.location"`, `"{prefix}.attributes.<key>"`. Malformed attribute
/// references are [`Model::check_attributes`]'s to report; a malformed
/// `location` is reported here.
pub async fn check_references(
    conn: &mut AnyConnection,
    model: &Model,
    ci: &pb::Ci,
    prefix: &str,
    violations: &mut Violations,
) -> Result<(), ApiError> {
    // (field, reference, the class it must be of)
    let mut wanted: Vec<(String, &str, String)> = Vec::new();
    if !ci.location.is_empty() {
        let field = format!("{prefix}.location");
        match crate::ci_uid(&ci.location) {
            Some(_) => wanted.push((field, &ci.location, LOCATION_CLASS.to_owned())),
            None => violations.add(
                field,
                format!(
                    "\"{}\" is not a CI name; expected \"cis/<uuid>\"",
                    ci.location
                ),
            ),
        }
    }
    if let Some(class) = class_id(&ci.ci_class) {
        let definitions: HashMap<String, pb::AttributeDefinition> = model
            .effective_attributes(class)
            .into_iter()
            .map(|a| (a.key.clone(), a))
            .collect();
        let mut keys: Vec<&String> = ci.attributes.keys().collect();
        keys.sort();
        for key in keys {
            let Some(pb::attribute_value::Value::ReferenceValue(reference)) =
                &ci.attributes[key].value
            else {
                continue;
            };
            let Some(definition) = definitions.get(key) else {
                continue;
            };
            if crate::ci_uid(reference).is_none() {
                continue;
            }
            let class = class_id(&definition.reference_class)
                .unwrap_or(model::ROOT_CLASS)
                .to_owned();
            wanted.push((format!("{prefix}.attributes.{key}"), reference, class));
        }
    }
    if wanted.is_empty() {
        return Ok(());
    }
    let uids: Vec<&str> = wanted
        .iter()
        .filter_map(|(_, name, _)| crate::ci_uid(name))
        .collect();
    let found: HashMap<String, String> = cis::select_classes(conn, &uids)
        .await?
        .into_iter()
        .collect();
    for (field, name, class) in wanted {
        let uid = crate::ci_uid(name).unwrap_or_default();
        match found.get(uid) {
            None => violations.add(field, format!("\"{name}\" is not an existing CI")),
            Some(actual) if !model.is_a(actual, &class) => violations.add(
                field,
                format!(
                    "\"{name}\" is of class \"classes/{actual}\"; expected \"classes/{class}\" or a subclass"
                ),
            ),
            Some(_) => {}
        }
    }
    Ok(())
}

/// The CI named `name` ("cis/<uuid>"), locked with `lock` (the backend's
/// `lock_suffix()` in a write transaction, "" otherwise). `None` when no
/// such CI exists (or `name` is malformed).
pub async fn load(
    conn: &mut AnyConnection,
    name: &str,
    lock: &str,
) -> Result<Option<StoredCi>, ApiError> {
    let Some(uid) = crate::ci_uid(name) else {
        return Ok(None);
    };
    Ok(cis::select_by_uid(conn, uid, lock).await?)
}

/// The CIs with these internal ids (those that exist), in no order.
pub async fn load_by_ids(conn: &mut AnyConnection, ids: &[i64]) -> Result<Vec<StoredCi>, ApiError> {
    Ok(cis::select_by_ids(conn, ids).await?)
}

/// The cache keys a change of the CI with uid `uid` makes stale.
pub fn stale_keys(prefix: &str, uid: &str) -> Vec<String> {
    vec![format!("{prefix}ci:{uid}")]
}
