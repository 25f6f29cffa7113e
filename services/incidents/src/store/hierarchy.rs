//! Parent/child links (the `parent` and `child_count` columns of
//! `incidents`), incident tasks ([`tasks`]) and major-incident rules
//! ([`rules`], with [`evaluate_major_rules`]).

pub mod rules;
pub mod tasks;

use itsm_store::{SqlBuilder, StoreError};
use sqlx::AnyConnection;

use super::incidents::{self, SELECT, StoredIncident};

pub(crate) use rules::evaluate_major_rules;

/// The `platform_state` row every parent change locks first.
const HIERARCHY_LOCK: &str = "incidents.hierarchy_lock";

/// Serializes parent changes for the rest of the transaction: without it,
/// two concurrent links (A under B, B under A; or longer) could each find
/// no cycle and together make one. Parent changes are rare; lifecycle
/// changes never take this lock. (SQLite's write lock does this already.)
pub async fn lock_hierarchy(conn: &mut AnyConnection) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO platform_state (name, value) VALUES ($1, '') \
         ON CONFLICT (name) DO UPDATE SET value = platform_state.value",
    )
    .bind(HIERARCHY_LOCK)
    .execute(conn)
    .await?;
    Ok(())
}

/// The ancestors of incident `number`, nearest first, as far as `stop_at`
/// (included when found) or at most `max` of them.
pub async fn select_ancestors(
    conn: &mut AnyConnection,
    number: &str,
    stop_at: &str,
    max: usize,
) -> Result<Vec<String>, StoreError> {
    let mut ancestors: Vec<String> = Vec::new();
    let mut current = number.to_owned();
    while ancestors.len() < max {
        let parent: Option<String> =
            sqlx::query_scalar("SELECT parent FROM incidents WHERE number = $1")
                .bind(&current)
                .fetch_optional(&mut *conn)
                .await?;
        let Some(parent) = parent.filter(|p| !p.is_empty()) else {
            break;
        };
        ancestors.push(parent.clone());
        if parent == stop_at {
            break;
        }
        current = parent;
    }
    Ok(ancestors)
}

/// The children of incident `number`, oldest first, with their watchers and
/// links. `lock` as for [`incidents::select_incident`].
pub async fn select_children(
    conn: &mut AnyConnection,
    number: &str,
    lock: &'static str,
) -> Result<Vec<StoredIncident>, StoreError> {
    let mut sql = SqlBuilder::new(SELECT);
    sql.push(" WHERE parent = ")
        .push_bind(number)
        .push(" ORDER BY id")
        .push(lock);
    let rows = itsm_store::db::query(&sql).fetch_all(&mut *conn).await?;
    let mut children = rows
        .iter()
        .map(incidents::stored_incident)
        .collect::<Result<Vec<_>, _>>()?;
    incidents::load_related(conn, &mut children).await?;
    Ok(children)
}
