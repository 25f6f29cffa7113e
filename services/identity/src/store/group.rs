//! SQL for assignment groups: the `groups` table and its side table
//! `group_members`, one text for PostgreSQL and SQLite. Functions take a
//! connection; the use case in `api` owns the transaction, and changes a
//! group's members only while it holds the group's row lock.
//!
//! Members are sorted here, in Rust, not by `ORDER BY`: the databases'
//! collations differ, and the domain relies on byte order.
//!
//! A read without the lock takes two statements (groups, then members). A
//! change committed between them can pair a group's etag with newer members;
//! that only makes the reader's next conditional write ABORTED, so no change
//! is ever lost to it.

use std::collections::HashMap;

use itsm_platform::ApiError;
use itsm_store::list::{ListRequest, ListSpec};
use itsm_store::page::PageTokens;
use itsm_store::query::{Field, FieldKind, Schema};
use itsm_store::{Db, SqlBuilder, StoreError};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::domain::group::Group;

const SELECT: &str = "SELECT id, group_id, display_name, description, email, manager, \
     created_at, updated_at, version FROM groups";

/// Membership rows written or deleted per statement: 3 parameters each,
/// far below either database's limit on parameters.
const MEMBERS_PER_STATEMENT: usize = 200;

/// A group's row: the group, with its members, and its row id (the keyset tie-breaker).
#[derive(Debug, Clone)]
pub struct StoredGroup {
    pub id: i64,
    pub group: Group,
}

/// Inserts a new group and its members. Returns false, writing nothing,
/// when its group id is taken, so a duplicate never aborts the surrounding
/// transaction.
pub async fn insert_group(conn: &mut AnyConnection, group: &Group) -> Result<bool, StoreError> {
    let result = sqlx::query(
        "INSERT INTO groups (group_id, display_name, description, email, manager, created_at, \
         updated_at, version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (group_id) DO NOTHING",
    )
    .bind(&group.group_id)
    .bind(&group.display_name)
    .bind(&group.description)
    .bind(&group.email)
    .bind(&group.manager)
    .bind(group.create_time)
    .bind(group.update_time)
    .bind(group.version)
    .execute(&mut *conn)
    .await?;
    if result.rows_affected() != 1 {
        return Ok(false);
    }
    insert_members(conn, &group.group_id, &group.members, group.create_time).await?;
    Ok(true)
}

/// The group with this group id and its members. `lock` is
/// [`itsm_store::Backend::lock_suffix`] when the caller's transaction will
/// change the group or its members, `""` for a plain read.
pub async fn select_group(
    conn: &mut AnyConnection,
    group_id: &str,
    lock: &'static str,
) -> Result<Option<StoredGroup>, StoreError> {
    let mut sql = SqlBuilder::new(SELECT);
    sql.push(" WHERE group_id = ")
        .push_bind(group_id)
        .push(lock);
    let row = itsm_store::db::query(&sql)
        .fetch_optional(&mut *conn)
        .await?;
    let Some(mut stored) = row.as_ref().map(stored_group).transpose()? else {
        return Ok(None);
    };
    let members: Vec<String> =
        sqlx::query_scalar("SELECT member FROM group_members WHERE group_id = $1")
            .bind(group_id)
            .fetch_all(conn)
            .await?;
    stored.group.members = sorted(members);
    Ok(Some(stored))
}

/// Writes the group's own fields and version after a change made by the
/// domain; `previous_version` is the version read under the row lock.
/// Members are written separately ([`insert_members`], [`delete_members`]).
pub async fn update_group(
    conn: &mut AnyConnection,
    id: i64,
    group: &Group,
    previous_version: i64,
) -> Result<(), StoreError> {
    let result = sqlx::query(
        "UPDATE groups SET display_name = $1, description = $2, email = $3, manager = $4, \
         updated_at = $5, version = $6 WHERE id = $7 AND version = $8",
    )
    .bind(&group.display_name)
    .bind(&group.description)
    .bind(&group.email)
    .bind(&group.manager)
    .bind(group.update_time)
    .bind(group.version)
    .bind(id)
    .bind(previous_version)
    .execute(conn)
    .await?;
    // The row is locked, so this only happens if the lock was not taken.
    if result.rows_affected() == 1 {
        Ok(())
    } else {
        Err(StoreError::StaleEtag(group.name()))
    }
}

/// Deletes the group and its memberships; `previous_version` as in [`update_group`].
pub async fn delete_group(
    conn: &mut AnyConnection,
    id: i64,
    group: &Group,
    previous_version: i64,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM group_members WHERE group_id = $1")
        .bind(&group.group_id)
        .execute(&mut *conn)
        .await?;
    let result = sqlx::query("DELETE FROM groups WHERE id = $1 AND version = $2")
        .bind(id)
        .bind(previous_version)
        .execute(conn)
        .await?;
    if result.rows_affected() == 1 {
        Ok(())
    } else {
        Err(StoreError::StaleEtag(group.name()))
    }
}

/// Records `members` as joining the group at `at`; one already there keeps
/// the time it joined.
pub async fn insert_members(
    conn: &mut AnyConnection,
    group_id: &str,
    members: &[String],
    at: i64,
) -> Result<(), StoreError> {
    for chunk in members.chunks(MEMBERS_PER_STATEMENT) {
        let mut sql =
            SqlBuilder::new("INSERT INTO group_members (group_id, member, added_at) VALUES ");
        for (i, member) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            sql.push("(")
                .push_bind(group_id)
                .push(", ")
                .push_bind(member.as_str())
                .push(", ")
                .push_bind(at)
                .push(")");
        }
        sql.push(" ON CONFLICT (group_id, member) DO NOTHING");
        itsm_store::db::query(&sql).execute(&mut *conn).await?;
    }
    Ok(())
}

/// Removes `members` from the group; subjects that are not members are ignored.
pub async fn delete_members(
    conn: &mut AnyConnection,
    group_id: &str,
    members: &[String],
) -> Result<(), StoreError> {
    for chunk in members.chunks(MEMBERS_PER_STATEMENT) {
        let mut sql = SqlBuilder::new("DELETE FROM group_members WHERE group_id = ");
        sql.push_bind(group_id)
            .push(" AND member IN ")
            .push_bind_list(chunk.iter().map(String::as_str));
        itsm_store::db::query(&sql).execute(&mut *conn).await?;
    }
    Ok(())
}

/// Whether `member` belongs to the group: `None` when there is no such
/// group. One statement, so the answer is one consistent snapshot.
pub async fn select_membership(
    conn: &mut AnyConnection,
    group_id: &str,
    member: &str,
) -> Result<Option<bool>, StoreError> {
    let count: Option<i64> = sqlx::query_scalar(
        "SELECT (SELECT COUNT(*) FROM group_members m \
         WHERE m.group_id = g.group_id AND m.member = $2) FROM groups g WHERE g.group_id = $1",
    )
    .bind(group_id)
    .bind(member)
    .fetch_optional(conn)
    .await?;
    Ok(count.map(|n| n > 0))
}

/// What `filter` and `order_by` may name.
static SCHEMA: Schema = Schema {
    resource: "group",
    fields: &[
        Field {
            name: "display_name",
            column: "display_name",
            kind: FieldKind::Text,
            sortable: true,
        },
        Field {
            name: "manager",
            column: "manager",
            kind: FieldKind::Text,
            sortable: false,
        },
        Field {
            name: "create_time",
            column: "created_at",
            kind: FieldKind::Timestamp,
            sortable: true,
        },
    ],
};

static LIST: ListSpec = ListSpec {
    schema: &SCHEMA,
    select: SELECT,
    id_column: "id",
    default_order: "create_time desc",
};

/// One page of groups, with their members, and the next page's token (""
/// on the last page). With `member`, only the groups that subject belongs to.
pub async fn select_page(
    db: &Db,
    request: &ListRequest<'_>,
    member: Option<&str>,
    tokens: &PageTokens,
) -> Result<(Vec<Group>, String), ApiError> {
    let plan = LIST.plan(request, tokens, |sql| {
        if let Some(member) = member {
            sql.push(
                "groups.group_id IN (SELECT m.group_id FROM group_members m WHERE m.member = ",
            )
            .push_bind(member)
            .push(")");
        }
    })?;
    let mut conn = db.pool().acquire().await.map_err(StoreError::from)?;
    let rows = itsm_store::db::query(plan.sql())
        .fetch_all(&mut *conn)
        .await
        .map_err(StoreError::from)?;
    let page = plan.finish(rows, tokens)?;
    let mut groups: Vec<Group> = page
        .rows
        .iter()
        .map(|row| stored_group(row).map(|stored| stored.group))
        .collect::<Result<_, _>>()
        .map_err(StoreError::from)?;
    select_members_of(&mut conn, &mut groups).await?;
    Ok((groups, page.next_page_token))
}

/// Fills in the members of a page of groups with one query.
async fn select_members_of(
    conn: &mut AnyConnection,
    groups: &mut [Group],
) -> Result<(), StoreError> {
    if groups.is_empty() {
        return Ok(());
    }
    let mut sql = SqlBuilder::new("SELECT group_id, member FROM group_members WHERE group_id IN ");
    sql.push_bind_list(groups.iter().map(|g| g.group_id.as_str()));
    let rows = itsm_store::db::query(&sql).fetch_all(conn).await?;
    let index: HashMap<String, usize> = groups
        .iter()
        .enumerate()
        .map(|(i, g)| (g.group_id.clone(), i))
        .collect();
    for row in &rows {
        let group_id: String = row.try_get("group_id")?;
        if let Some(&i) = index.get(&group_id) {
            groups[i].members.push(row.try_get("member")?);
        }
    }
    for group in groups {
        group.members.sort();
    }
    Ok(())
}

fn sorted(mut members: Vec<String>) -> Vec<String> {
    members.sort();
    members
}

/// A group's row, without its members (they are another table's rows).
fn stored_group(row: &AnyRow) -> Result<StoredGroup, sqlx::Error> {
    Ok(StoredGroup {
        id: row.try_get("id")?,
        group: Group {
            group_id: row.try_get("group_id")?,
            display_name: row.try_get("display_name")?,
            description: row.try_get("description")?,
            email: row.try_get("email")?,
            manager: row.try_get("manager")?,
            members: Vec::new(),
            create_time: row.try_get("created_at")?,
            update_time: row.try_get("updated_at")?,
            version: row.try_get("version")?,
        },
    })
}
