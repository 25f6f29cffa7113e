//! Creating a relationship, whoever creates it (the API or a discovery
//! report): checks, the edge row, history on both CIs, the event.
//!
//! The caller owns the transaction and, after commit, tells the impact cache
//! that the graph changed (`CmdbApi::impact_changed`).

use itsm_platform::{ApiError, Violations};
use itsm_proto::itsm::cmdb::v1 as pb;
use itsm_store::StoreError;
use itsm_store::outbox::{self, NewEvent};
use prost::Message as _;
use sqlx::AnyConnection;

use crate::api::call::{SOURCE, STREAM};
use crate::model::Model;
use crate::store::relationships::{self as store, StoredRelationship};
use crate::write::{Origin, StoredCi};

/// The discovery source of edits through the API.
pub const MANUAL: &str = "manual";

/// Relates `source` to `target` by the relationship type `type_id`
/// ("runs_on") with `description`. Checks the type exists, the classes fit
/// it, neither CI is retired, no self-relationship, and for acyclic types
/// that no cycle forms (FAILED_PRECONDITION); errors name fields under
/// `field` ("relationship"). An identical relationship (either direction for
/// a symmetric type) is not created again: `Ok((existing, false))` with its
/// `last_seen_time` moved when `origin.source` is not "manual"; callers that
/// must refuse duplicates answer ALREADY_EXISTS themselves.
#[allow(clippy::too_many_arguments)] // reason: the shared contract other modules call
pub async fn relate(
    conn: &mut AnyConnection,
    model: &Model,
    source: &StoredCi,
    type_id: &str,
    target: &StoredCi,
    description: &str,
    field: &str,
    origin: &Origin<'_>,
) -> Result<(pb::Relationship, bool), ApiError> {
    let Some(kind) = model.relationship_type(type_id) else {
        return Err(ApiError::invalid_field(
            format!("{field}.type"),
            format!("\"relationshipTypes/{type_id}\" is not a relationship type"),
        ));
    };
    if source.id == target.id {
        return Err(ApiError::invalid_field(
            format!("{field}.target_ci"),
            "a CI cannot be related to itself",
        ));
    }
    if let Some(existing) = find_existing(conn, kind, type_id, source.id, target.id).await? {
        let mut existing = existing;
        if origin.source != MANUAL {
            existing.relationship.last_seen_time = Some(itsm_store::audit::timestamp(origin.now));
            store::touch(conn, existing.id, origin.now, &existing.relationship).await?;
        }
        return Ok((existing.relationship, false));
    }

    let mut violations = Violations::new();
    check_class(
        model,
        &kind.allowed_source_classes,
        source,
        &format!("{field}.source_ci"),
        "source",
        &mut violations,
    );
    check_class(
        model,
        &kind.allowed_target_classes,
        target,
        &format!("{field}.target_ci"),
        "target",
        &mut violations,
    );
    violations.into_result()?;
    for ci in [source, target] {
        if ci.ci.status == pb::CiStatus::Retired as i32 {
            return Err(ApiError::failed_precondition(
                "CI_RETIRED",
                ci.ci.name.clone(),
                format!(
                    "{} is retired: a retired CI takes no new relationships",
                    ci.ci.name
                ),
            ));
        }
    }
    if kind.acyclic {
        serialize_acyclic(conn, type_id).await?;
        check_acyclic(conn, type_id, source, target).await?;
    }

    let uid = uuid::Uuid::new_v4().to_string();
    let name = format!("relationships/{uid}");
    let discovered = origin.source != MANUAL;
    let last_seen_at = if discovered { origin.now } else { 0 };
    let relationship = pb::Relationship {
        name: name.clone(),
        r#type: format!("relationshipTypes/{type_id}"),
        source_ci: source.ci.name.clone(),
        target_ci: target.ci.name.clone(),
        description: description.to_owned(),
        discovery_source: format!("discoverySources/{}", origin.source),
        last_seen_time: discovered.then(|| itsm_store::audit::timestamp(last_seen_at)),
        created_by: Some(origin.call.actor.to_proto()),
        create_time: Some(itsm_store::audit::timestamp(origin.now)),
        tenant: String::new(),
    };
    store::insert(
        conn,
        &uid,
        type_id,
        source.id,
        target.id,
        origin.source,
        last_seen_at,
        origin.now,
        &relationship,
    )
    .await?;
    crate::write::record_relationship(conn, source.id, "relate", &name, origin).await?;
    crate::write::record_relationship(conn, target.id, "relate", &name, origin).await?;
    emit(conn, &relationship, "cmdb.relationship.created", 1, origin).await?;
    Ok((relationship, true))
}

/// The relationship of `type_id` between the two CIs, either way round for
/// a symmetric type.
async fn find_existing(
    conn: &mut AnyConnection,
    kind: &pb::RelationshipType,
    type_id: &str,
    source_id: i64,
    target_id: i64,
) -> Result<Option<StoredRelationship>, StoreError> {
    if let Some(found) = store::select_edge(conn, type_id, source_id, target_id, "").await? {
        return Ok(Some(found));
    }
    if kind.symmetric {
        return store::select_edge(conn, type_id, target_id, source_id, "").await;
    }
    Ok(None)
}

fn check_class(
    model: &Model,
    allowed: &[String],
    ci: &StoredCi,
    field: &str,
    end: &str,
    violations: &mut Violations,
) {
    if allowed.is_empty() {
        return;
    }
    let class = crate::model::class_id(&ci.ci.ci_class).unwrap_or_default();
    let fits = allowed
        .iter()
        .filter_map(|a| crate::model::class_id(a))
        .any(|a| model.is_a(class, a));
    if !fits {
        violations.add(
            field,
            format!(
                "{} is of class \"{}\"; this relationship type's {end} must be one of {}",
                ci.ci.name,
                ci.ci.ci_class,
                allowed.join(", ")
            ),
        );
    }
}

/// Makes new relationships of an acyclic type take turns (until the
/// transaction ends): two concurrent creates that each pass the cycle check
/// could otherwise close a cycle of three or more CIs together. SQLite
/// transactions are serialized already.
async fn serialize_acyclic(conn: &mut AnyConnection, type_id: &str) -> Result<(), ApiError> {
    if conn.backend_name() != "PostgreSQL" {
        return Ok(());
    }
    // FNV-1a of the type id: a stable advisory lock key of its own.
    let key = format!("cmdb.acyclic.{type_id}")
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
        });
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(i64::from_ne_bytes(key.to_ne_bytes()))
        .execute(&mut *conn)
        .await
        .map_err(StoreError::from)?;
    Ok(())
}

/// Refuses `source -> target` when `target` already reaches `source` through
/// relationships of `type_id`: the new edge would close a cycle.
async fn check_acyclic(
    conn: &mut AnyConnection,
    type_id: &str,
    source: &StoredCi,
    target: &StoredCi,
) -> Result<(), ApiError> {
    let Some(path) = store::path(conn, type_id, target.id, source.id).await? else {
        return Ok(());
    };
    let uids = store::ci_uids(conn, &path).await?;
    let mut cycle: Vec<String> = vec![source.ci.name.clone()];
    cycle.extend(path.iter().map(|id| {
        uids.get(id)
            .map_or_else(|| format!("#{id}"), |u| format!("cis/{u}"))
    }));
    Err(ApiError::failed_precondition(
        "RELATIONSHIP_CYCLE",
        format!("relationshipTypes/{type_id}"),
        format!(
            "relationships of type \"relationshipTypes/{type_id}\" may not form a cycle; \
             this one would close {}",
            cycle.join(" -> ")
        ),
    ))
}

/// The `cmdb.relationship.*` event of `relationship` (`sequence` 1 created, 2 deleted).
pub async fn emit(
    conn: &mut AnyConnection,
    relationship: &pb::Relationship,
    event_type: &str,
    sequence: u64,
    origin: &Origin<'_>,
) -> Result<(), StoreError> {
    let payload = pb::RelationshipEvent {
        relationship: Some(relationship.clone()),
        discovery_source: format!("discoverySources/{}", origin.source),
    };
    let event = NewEvent {
        stream: STREAM,
        source: SOURCE,
        event_type,
        subject: &relationship.name,
        sequence,
        payload: prost_types::Any {
            type_url: "type.googleapis.com/itsm.cmdb.v1.RelationshipEvent".to_owned(),
            value: payload.encode_to_vec(),
        },
        actor: &origin.call.actor,
        request_id: &origin.call.request_id,
        traceparent: &origin.call.traceparent,
        tracestate: &origin.call.tracestate,
        time: origin.now,
    };
    outbox::insert(conn, &event).await?;
    Ok(())
}
