//! The `incidents` row, and the watchers and links stored beside it.

use std::collections::HashMap;

use itsm_store::audit::Actor;
use itsm_store::{SqlBuilder, SqlValue, StoreError};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::{actor, time};
use crate::domain::enums::{Channel, HoldReason, Impact, LinkType, MajorState, Priority};
use crate::domain::enums::{ResolutionCode, State, Urgency};
use crate::domain::escalation;
use crate::domain::incident::{Incident, Link};

/// The columns of an incident row, in one place for the selects below.
macro_rules! columns {
    () => {
        "id, number, tenant, title, description, state, impact, urgency, \
     priority, caller, category, subcategory, service, configuration_item, assignment_group, \
     assignee, channel, hold_reason, resolution_code, resolution_notes, cancel_reason, \
     major_state, major_promoted_by_subject, major_promoted_by_name, major_promoted_by_kind, \
     major_promoted_at, parent, child_count, reopen_count, reassignment_count, \
     reopened_by_subject, reopened_by_name, reopened_by_kind, reopened_at, alert_group, labels, \
     created_by_subject, created_by_name, created_by_kind, created_at, updated_at, \
     acknowledged_at, resolved_at, closed_at, first_contact_resolution, caller_time_zone, \
     escalated, escalations, version"
    };
}

/// Every column of an incident, for lists and reads.
pub const SELECT: &str = concat!("SELECT ", columns!(), " FROM incidents");

/// The same, plus how many watchers and links the incident has, so reading
/// one incident skips the query for them when there are none (most).
const SELECT_ONE: &str = concat!("SELECT ", columns!(), ", related_count FROM incidents");

/// An incident with its row id (the key of its journal, watchers and links).
#[derive(Debug, Clone)]
pub struct StoredIncident {
    pub id: i64,
    pub incident: Incident,
}

fn actor_values(
    prefix: &'static [&'static str; 3],
    a: Option<&Actor>,
) -> [(&'static str, SqlValue); 3] {
    [
        (prefix[0], a.map_or("", |a| a.subject.as_str()).into()),
        (prefix[1], a.map_or("", |a| a.display_name.as_str()).into()),
        (prefix[2], a.map_or(0, |a| a.kind).into()),
    ]
}

/// The columns every change may write, with their values.
fn mutable_values(i: &Incident) -> Vec<(&'static str, SqlValue)> {
    let t = |time: Option<i64>| SqlValue::Int(time.unwrap_or(0));
    let mut values: Vec<(&'static str, SqlValue)> = vec![
        ("title", i.title.as_str().into()),
        ("description", i.description.as_str().into()),
        ("state", i.state.number().into()),
        ("impact", i.impact.number().into()),
        ("urgency", i.urgency.number().into()),
        ("priority", i.priority.number().into()),
        ("caller", i.caller.as_str().into()),
        ("category", i.category.as_str().into()),
        ("subcategory", i.subcategory.as_str().into()),
        ("service", i.service.as_str().into()),
        ("configuration_item", i.configuration_item.as_str().into()),
        ("assignment_group", i.assignment_group.as_str().into()),
        ("assignee", i.assignee.as_str().into()),
        ("channel", i.channel.map_or(0, |c| c.number()).into()),
        (
            "hold_reason",
            i.hold_reason.map_or(0, |r| r.number()).into(),
        ),
        (
            "resolution_code",
            i.resolution_code.map_or(0, |c| c.number()).into(),
        ),
        ("resolution_notes", i.resolution_notes.as_str().into()),
        ("cancel_reason", i.cancel_reason.as_str().into()),
        ("major_state", i.major_state.number().into()),
        ("major_promoted_at", t(i.major_promote_time)),
        ("parent", i.parent.as_str().into()),
        ("child_count", i.child_count.into()),
        ("reopen_count", i.reopen_count.into()),
        ("reassignment_count", i.reassignment_count.into()),
        ("reopened_at", t(i.reopen_time)),
        ("alert_group", i.alert_group.as_str().into()),
        (
            "labels",
            serde_json::to_string(&i.labels)
                .unwrap_or_else(|_| "{}".into())
                .into(),
        ),
        ("updated_at", i.update_time.into()),
        ("acknowledged_at", t(i.acknowledge_time)),
        ("resolved_at", t(i.resolve_time)),
        ("closed_at", t(i.close_time)),
        (
            "first_contact_resolution",
            i32::from(i.first_contact_resolution).into(),
        ),
        ("caller_time_zone", i.caller_time_zone.as_str().into()),
        ("escalated", i32::from(i.escalated).into()),
        ("escalations", escalation::to_text(&i.escalations).into()),
        ("version", i.version.into()),
    ];
    values.extend(actor_values(
        &[
            "major_promoted_by_subject",
            "major_promoted_by_name",
            "major_promoted_by_kind",
        ],
        i.major_promoted_by.as_ref(),
    ));
    values.extend(actor_values(
        &[
            "reopened_by_subject",
            "reopened_by_name",
            "reopened_by_kind",
        ],
        i.reopened_by.as_ref(),
    ));
    values
}

/// Inserts a new incident (without watchers or links); returns its row id.
pub async fn insert_incident(conn: &mut AnyConnection, i: &Incident) -> Result<i64, StoreError> {
    let mut values: Vec<(&'static str, SqlValue)> = vec![
        ("number", i.number.as_str().into()),
        ("tenant", i.tenant.as_str().into()),
        ("created_at", i.create_time.into()),
    ];
    values.extend(actor_values(
        &["created_by_subject", "created_by_name", "created_by_kind"],
        Some(&i.created_by),
    ));
    values.extend(mutable_values(i));
    let mut sql = SqlBuilder::new("INSERT INTO incidents (");
    sql.push(
        &values
            .iter()
            .map(|(c, _)| *c)
            .collect::<Vec<_>>()
            .join(", "),
    );
    sql.push(") VALUES ")
        .push_bind_list(values.into_iter().map(|(_, v)| v))
        .push(" RETURNING id");
    let id: i64 = itsm_store::db::query(&sql)
        .fetch_one(&mut *conn)
        .await?
        .try_get("id")?;
    Ok(id)
}

/// Writes a changed incident's row; `previous_version` is the version read
/// under the row lock. Watchers and links are written by their own functions.
pub async fn update_incident(
    conn: &mut AnyConnection,
    id: i64,
    i: &Incident,
    previous_version: i64,
) -> Result<(), StoreError> {
    let mut sql = SqlBuilder::new("UPDATE incidents SET ");
    for (n, (column, value)) in mutable_values(i).into_iter().enumerate() {
        if n > 0 {
            sql.push(", ");
        }
        sql.push(column).push(" = ").push_bind(value);
    }
    sql.push(" WHERE id = ")
        .push_bind(id)
        .push(" AND version = ")
        .push_bind(previous_version);
    let result = itsm_store::db::query(&sql).execute(conn).await?;
    // The row is locked, so this only happens if the lock was not taken.
    if result.rows_affected() == 1 {
        Ok(())
    } else {
        Err(StoreError::StaleEtag(i.name()))
    }
}

/// The incident numbered `number`, with its watchers and links. `lock` is
/// [`itsm_store::Backend::lock_suffix`] when the transaction will update it.
pub async fn select_incident(
    conn: &mut AnyConnection,
    number: &str,
    lock: &'static str,
) -> Result<Option<StoredIncident>, StoreError> {
    let mut sql = SqlBuilder::new(SELECT_ONE);
    sql.push(" WHERE number = ").push_bind(number).push(lock);
    let Some(row) = itsm_store::db::query(&sql)
        .fetch_optional(&mut *conn)
        .await?
    else {
        return Ok(None);
    };
    let related: i32 = row.try_get("related_count")?;
    let mut stored = vec![stored_incident(&row)?];
    if related > 0 {
        load_related(conn, &mut stored).await?;
    }
    Ok(stored.pop())
}

/// Fills in the watchers and links of `incidents`, in one query.
pub async fn load_related(
    conn: &mut AnyConnection,
    incidents: &mut [StoredIncident],
) -> Result<(), StoreError> {
    if incidents.is_empty() {
        return Ok(());
    }
    let position: HashMap<i64, usize> = incidents
        .iter()
        .enumerate()
        .map(|(at, s)| (s.id, at))
        .collect();
    let ids: Vec<i64> = incidents.iter().map(|s| s.id).collect();

    // Watchers and links in one round trip: watchers come back as rows with
    // link type 0 (never a real link type) and time 0, so they sort first.
    let mut sql = SqlBuilder::new(
        "SELECT incident_id, 0 AS link_type, watcher AS target, '' AS created_by_subject, \
         '' AS created_by_name, 0 AS created_by_kind, 0 AS created_at \
         FROM incident_watchers WHERE incident_id IN ",
    );
    sql.push_bind_list(ids.iter().copied()).push(
        " UNION ALL SELECT incident_id, link_type, target, created_by_subject, created_by_name, \
         created_by_kind, created_at FROM incident_links WHERE incident_id IN ",
    );
    sql.push_bind_list(ids)
        .push(" ORDER BY incident_id, created_at, link_type, target");
    for row in itsm_store::db::query(&sql).fetch_all(&mut *conn).await? {
        let id: i64 = row.try_get("incident_id")?;
        let link_type: i32 = row.try_get("link_type")?;
        let Some(at) = position.get(&id) else {
            continue;
        };
        if link_type == 0 {
            incidents[*at]
                .incident
                .watchers
                .push(row.try_get("target")?);
            continue;
        }
        let Some(link_type) = LinkType::from_number(link_type) else {
            continue;
        };
        incidents[*at].incident.links.push(Link {
            link_type,
            target: row.try_get("target")?,
            created_by: actor(&row, "created_by")?,
            create_time: row.try_get("created_at")?,
        });
    }
    Ok(())
}

/// Keeps `related_count` (watchers plus links) in step with the side tables.
async fn adjust_related(conn: &mut AnyConnection, id: i64, delta: i32) -> Result<(), StoreError> {
    if delta != 0 {
        sqlx::query("UPDATE incidents SET related_count = related_count + $1 WHERE id = $2")
            .bind(delta)
            .bind(id)
            .execute(conn)
            .await?;
    }
    Ok(())
}

fn rows(affected: u64) -> i32 {
    i32::try_from(affected).unwrap_or(i32::MAX)
}

/// Adds a watcher (the caller checked it is not one yet).
pub async fn insert_watcher(
    conn: &mut AnyConnection,
    id: i64,
    watcher: &str,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO incident_watchers (incident_id, watcher, created_at) VALUES ($1, $2, $3)",
    )
    .bind(id)
    .bind(watcher)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    adjust_related(conn, id, 1).await
}

/// Removes a watcher.
pub async fn delete_watcher(
    conn: &mut AnyConnection,
    id: i64,
    watcher: &str,
) -> Result<(), StoreError> {
    let deleted =
        sqlx::query("DELETE FROM incident_watchers WHERE incident_id = $1 AND watcher = $2")
            .bind(id)
            .bind(watcher)
            .execute(&mut *conn)
            .await?;
    adjust_related(conn, id, -rows(deleted.rows_affected())).await
}

/// Adds a link (the caller checked it does not exist yet).
pub async fn insert_link(conn: &mut AnyConnection, id: i64, link: &Link) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO incident_links (incident_id, link_type, target, created_by_subject, \
         created_by_name, created_by_kind, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(id)
    .bind(link.link_type.number())
    .bind(&link.target)
    .bind(&link.created_by.subject)
    .bind(&link.created_by.display_name)
    .bind(link.created_by.kind)
    .bind(link.create_time)
    .execute(&mut *conn)
    .await?;
    adjust_related(conn, id, 1).await
}

/// Removes a link.
pub async fn delete_link(
    conn: &mut AnyConnection,
    id: i64,
    link_type: LinkType,
    target: &str,
) -> Result<(), StoreError> {
    let deleted = sqlx::query(
        "DELETE FROM incident_links WHERE incident_id = $1 AND link_type = $2 AND target = $3",
    )
    .bind(id)
    .bind(link_type.number())
    .bind(target)
    .execute(&mut *conn)
    .await?;
    adjust_related(conn, id, -rows(deleted.rows_affected())).await
}

/// An incident row (its watchers and links still empty).
pub fn stored_incident(row: &AnyRow) -> Result<StoredIncident, sqlx::Error> {
    let bad = |column: &str, value: i32| {
        sqlx::Error::Decode(format!("incidents.{column} holds an unknown value {value}").into())
    };
    let state: i32 = row.try_get("state")?;
    let impact: i32 = row.try_get("impact")?;
    let urgency: i32 = row.try_get("urgency")?;
    let priority: i32 = row.try_get("priority")?;
    let major: i32 = row.try_get("major_state")?;
    let labels: String = row.try_get("labels")?;
    let escalations: String = row.try_get("escalations")?;
    let major_promote_time = time(row, "major_promoted_at")?;
    let reopen_time = time(row, "reopened_at")?;
    let incident = Incident {
        number: row.try_get("number")?,
        tenant: row.try_get("tenant")?,
        title: row.try_get("title")?,
        description: row.try_get("description")?,
        state: State::from_number(state).ok_or_else(|| bad("state", state))?,
        impact: Impact::from_number(impact).ok_or_else(|| bad("impact", impact))?,
        urgency: Urgency::from_number(urgency).ok_or_else(|| bad("urgency", urgency))?,
        priority: Priority::from_number(priority).ok_or_else(|| bad("priority", priority))?,
        caller: row.try_get("caller")?,
        category: row.try_get("category")?,
        subcategory: row.try_get("subcategory")?,
        service: row.try_get("service")?,
        configuration_item: row.try_get("configuration_item")?,
        assignment_group: row.try_get("assignment_group")?,
        assignee: row.try_get("assignee")?,
        channel: Channel::from_number(row.try_get("channel")?),
        hold_reason: HoldReason::from_number(row.try_get("hold_reason")?),
        resolution_code: ResolutionCode::from_number(row.try_get("resolution_code")?),
        resolution_notes: row.try_get("resolution_notes")?,
        cancel_reason: row.try_get("cancel_reason")?,
        major_state: MajorState::from_number(major).ok_or_else(|| bad("major_state", major))?,
        major_promoted_by: major_promote_time
            .map(|_| actor(row, "major_promoted_by"))
            .transpose()?,
        major_promote_time,
        parent: row.try_get("parent")?,
        child_count: row.try_get("child_count")?,
        reopen_count: row.try_get("reopen_count")?,
        reassignment_count: row.try_get("reassignment_count")?,
        reopened_by: reopen_time.map(|_| actor(row, "reopened_by")).transpose()?,
        reopen_time,
        watchers: Vec::new(),
        links: Vec::new(),
        alert_group: row.try_get("alert_group")?,
        labels: serde_json::from_str(&labels).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        created_by: actor(row, "created_by")?,
        create_time: row.try_get("created_at")?,
        update_time: row.try_get("updated_at")?,
        acknowledge_time: time(row, "acknowledged_at")?,
        resolve_time: time(row, "resolved_at")?,
        close_time: time(row, "closed_at")?,
        first_contact_resolution: row.try_get::<i32, _>("first_contact_resolution")? != 0,
        caller_time_zone: row.try_get("caller_time_zone")?,
        escalated: row.try_get::<i32, _>("escalated")? != 0,
        escalations: serde_json::from_str(&escalations)
            .map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        version: row.try_get("version")?,
    };
    Ok(StoredIncident {
        id: row.try_get("id")?,
        incident,
    })
}
