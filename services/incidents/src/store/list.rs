//! `ListIncidents`: the fields a filter may name and order_by may sort on
//! (each sortable one indexed, see the migration), and one keyset page.

use itsm_platform::ApiError;
use itsm_store::list::{ListRequest, ListSpec};
use itsm_store::page::PageTokens;
use itsm_store::query::{Field, FieldKind, Schema};
use itsm_store::{Db, SqlBuilder, StoreError};

use super::incidents::{self, SELECT, StoredIncident};
use crate::domain::enums::{Impact, MajorState, Priority, State, Urgency};
use crate::domain::incident::Incident;

const fn text(name: &'static str, sortable: bool) -> Field {
    Field {
        name,
        column: name,
        kind: FieldKind::Text,
        sortable,
    }
}

const fn enumeration(
    name: &'static str,
    values: &'static [(&'static str, i64)],
    sortable: bool,
) -> Field {
    Field {
        name,
        column: name,
        kind: FieldKind::Enum(values),
        sortable,
    }
}

/// What `filter` and `order_by` may name.
pub static SCHEMA: Schema = Schema {
    resource: "incident",
    fields: &[
        text("number", true),
        text("title", false),
        enumeration("state", State::NAMES, true),
        enumeration("priority", Priority::NAMES, true),
        enumeration("impact", Impact::NAMES, false),
        enumeration("urgency", Urgency::NAMES, false),
        text("assignment_group", false),
        text("assignee", false),
        text("caller", false),
        text("category", false),
        text("subcategory", false),
        text("service", false),
        text("configuration_item", false),
        enumeration("major_state", MajorState::NAMES, false),
        Field {
            name: "escalated",
            column: "(escalated <> 0)",
            kind: FieldKind::Bool,
            sortable: false,
        },
        Field {
            name: "reopen_count",
            column: "reopen_count",
            kind: FieldKind::Int,
            sortable: false,
        },
        Field {
            name: "create_time",
            column: "created_at",
            kind: FieldKind::Timestamp,
            sortable: true,
        },
        Field {
            name: "update_time",
            column: "updated_at",
            kind: FieldKind::Timestamp,
            sortable: true,
        },
    ],
};

const SPEC: ListSpec = ListSpec {
    schema: &SCHEMA,
    select: SELECT,
    id_column: "id",
    default_order: "create_time desc",
};

/// One page of incidents and the next page's token ("" on the last page).
/// `scope`, when set, restricts the page to incidents that subject is the
/// caller of or watches (a requester's view).
pub async fn select_page(
    db: &Db,
    request: &ListRequest<'_>,
    tokens: &PageTokens,
    scope: Option<&str>,
) -> Result<(Vec<Incident>, String), ApiError> {
    let plan = SPEC.plan(request, tokens, |sql: &mut SqlBuilder| {
        if let Some(subject) = scope {
            sql.push("caller = ")
                .push_bind(subject)
                .push(" OR id IN (SELECT incident_id FROM incident_watchers WHERE watcher = ")
                .push_bind(subject)
                .push(")");
        }
    })?;
    // Errors drop the read connection unfinished, which has it checked.
    let mut conn = db.read().await?;
    let rows = itsm_store::db::query(plan.sql())
        .fetch_all(&mut *conn)
        .await
        .map_err(StoreError::from)?;
    let page = plan.finish(rows, tokens)?;
    let mut stored = page
        .rows
        .iter()
        .map(incidents::stored_incident)
        .collect::<Result<Vec<StoredIncident>, _>>()
        .map_err(StoreError::from)?;
    incidents::load_related(&mut conn, &mut stored).await?;
    conn.done();
    Ok((
        stored.into_iter().map(|s| s.incident).collect(),
        page.next_page_token,
    ))
}
