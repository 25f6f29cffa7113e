//! Baselines: the `baselines` row (doc: `Baseline`), the CI versions it holds
//! (`baseline_cis`) and the relationships as they were (`baseline_relationships`),
//! and the capture of the CMDB at an instant that fills them and that
//! `DiffBaseline` compares against.
//!
//! Captures read in keyset pages (by internal CI id) so a baseline of a
//! million CIs never sits in memory at once.

use std::collections::{HashMap, HashSet};

use itsm_proto::itsm::cmdb::v1 as pb;
use itsm_store::list::ListSpec;
use itsm_store::query::{Field, FieldKind, Schema};
use itsm_store::{SqlBuilder, StoreError};
use prost::Message as _;
use sqlx::AnyConnection;

use crate::filter::CiFilter;
use crate::model::Model;

/// Rows read or written per statement.
pub const PAGE: usize = 1_000;

/// What `ListBaselines` may filter and sort on.
pub static SCHEMA: Schema = Schema {
    resource: "baseline",
    fields: &[
        Field {
            name: "create_time",
            column: "created_at",
            kind: FieldKind::Timestamp,
            sortable: true,
        },
        Field {
            name: "snapshot_time",
            column: "snapshot_at",
            kind: FieldKind::Timestamp,
            sortable: false,
        },
    ],
};

pub const LIST: ListSpec = ListSpec {
    schema: &SCHEMA,
    select: "SELECT id, created_at, snapshot_at, doc FROM baselines",
    id_column: "id",
    default_order: "create_time desc",
};

/// One CI held: its uid (without "cis/"), internal id and version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub ci_uid: String,
    pub ci_id: i64,
    pub version: i64,
}

/// Inserts the baseline row; returns its internal id.
pub async fn insert_baseline(
    conn: &mut AnyConnection,
    uid: &str,
    baseline: &pb::Baseline,
    snapshot_at: i64,
    now: i64,
) -> Result<i64, StoreError> {
    let id = sqlx::query_scalar(
        "INSERT INTO baselines (uid, snapshot_at, created_at, doc) VALUES ($1, $2, $3, $4) \
         RETURNING id",
    )
    .bind(uid)
    .bind(snapshot_at)
    .bind(now)
    .bind(baseline.encode_to_vec())
    .fetch_one(conn)
    .await?;
    Ok(id)
}

/// Rewrites the stored message (the counts, once the members are in).
pub async fn update_doc(
    conn: &mut AnyConnection,
    id: i64,
    baseline: &pb::Baseline,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE baselines SET doc = $1 WHERE id = $2")
        .bind(baseline.encode_to_vec())
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// The baseline with uid `uid` and its internal id.
pub async fn select_baseline(
    conn: &mut AnyConnection,
    uid: &str,
) -> Result<Option<(i64, pb::Baseline)>, StoreError> {
    let row: Option<(i64, Vec<u8>)> =
        sqlx::query_as("SELECT id, doc FROM baselines WHERE uid = $1")
            .bind(uid)
            .fetch_optional(conn)
            .await?;
    row.map(|(id, doc)| Ok((id, super::decode("baselines", &doc)?)))
        .transpose()
}

/// Inserts held CIs, many rows per statement.
pub async fn insert_members(
    conn: &mut AnyConnection,
    baseline_id: i64,
    members: &[Member],
) -> Result<(), StoreError> {
    for chunk in members.chunks(PAGE) {
        let mut sql = SqlBuilder::new(
            "INSERT INTO baseline_cis (baseline_id, ci_uid, ci_id, version) VALUES ",
        );
        for (i, m) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            sql.push("(")
                .push_bind(baseline_id)
                .push(", ")
                .push_bind(m.ci_uid.as_str())
                .push(", ")
                .push_bind(m.ci_id)
                .push(", ")
                .push_bind(m.version)
                .push(")");
        }
        itsm_store::db::query(&sql).execute(&mut *conn).await?;
    }
    Ok(())
}

/// Inserts held relationships (as they were), many rows per statement.
pub async fn insert_relationships(
    conn: &mut AnyConnection,
    baseline_id: i64,
    relationships: &[pb::Relationship],
) -> Result<(), StoreError> {
    for chunk in relationships.chunks(PAGE) {
        let mut sql =
            SqlBuilder::new("INSERT INTO baseline_relationships (baseline_id, uid, doc) VALUES ");
        for (i, r) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            sql.push("(")
                .push_bind(baseline_id)
                .push(", ")
                .push_bind(relationship_uid(&r.name))
                .push(", ")
                .push_bind(r.encode_to_vec())
                .push(")");
        }
        itsm_store::db::query(&sql).execute(&mut *conn).await?;
    }
    Ok(())
}

/// The held CIs after uid `after` (keyset on the primary key), `limit` of them.
pub async fn select_members(
    conn: &mut AnyConnection,
    baseline_id: i64,
    after: &str,
    limit: usize,
) -> Result<Vec<Member>, StoreError> {
    let rows: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT ci_uid, ci_id, version FROM baseline_cis WHERE baseline_id = $1 AND ci_uid > $2 \
         ORDER BY ci_uid LIMIT $3",
    )
    .bind(baseline_id)
    .bind(after)
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(ci_uid, ci_id, version)| Member {
            ci_uid,
            ci_id,
            version,
        })
        .collect())
}

/// The held relationships after uid `after`, `limit` of them.
pub async fn select_relationships(
    conn: &mut AnyConnection,
    baseline_id: i64,
    after: &str,
    limit: usize,
) -> Result<Vec<pb::Relationship>, StoreError> {
    let rows: Vec<(String, Vec<u8>)> = sqlx::query_as(
        "SELECT uid, doc FROM baseline_relationships WHERE baseline_id = $1 AND uid > $2 \
         ORDER BY uid LIMIT $3",
    )
    .bind(baseline_id)
    .bind(after)
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|(_, doc)| super::decode("baseline_relationships", doc))
        .collect()
}

/// The held relationships with these uids (those held).
pub async fn select_relationships_by_uid(
    conn: &mut AnyConnection,
    baseline_id: i64,
    uids: &[String],
) -> Result<Vec<pb::Relationship>, StoreError> {
    let mut out = Vec::with_capacity(uids.len());
    for chunk in uids.chunks(PAGE) {
        let mut sql =
            SqlBuilder::new("SELECT doc FROM baseline_relationships WHERE baseline_id = ");
        sql.push_bind(baseline_id)
            .push(" AND uid IN ")
            .push_bind_list(chunk.iter().map(String::as_str));
        let docs: Vec<Vec<u8>> = itsm_store::db::query(&sql)
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(|row| sqlx::Row::try_get(row, 0))
            .collect::<Result<_, _>>()?;
        for doc in docs {
            out.push(super::decode("baseline_relationships", &doc)?);
        }
    }
    Ok(out)
}

/// The stored CI versions `(ci_id, version)` asked for, decoded, by key.
pub async fn select_versions(
    conn: &mut AnyConnection,
    keys: &[(i64, i64)],
) -> Result<HashMap<(i64, i64), pb::Ci>, StoreError> {
    let mut out = HashMap::with_capacity(keys.len());
    for chunk in keys.chunks(PAGE / 2) {
        let mut sql = SqlBuilder::new("SELECT ci_id, version, doc FROM ci_versions WHERE ");
        for (i, (ci_id, version)) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push(" OR ");
            }
            sql.push("(ci_id = ")
                .push_bind(*ci_id)
                .push(" AND version = ")
                .push_bind(*version)
                .push(")");
        }
        if chunk.is_empty() {
            continue;
        }
        for row in itsm_store::db::query(&sql).fetch_all(&mut *conn).await? {
            let ci_id: i64 = sqlx::Row::try_get(&row, 0)?;
            let version: i64 = sqlx::Row::try_get(&row, 1)?;
            let doc: Vec<u8> = sqlx::Row::try_get(&row, 2)?;
            out.insert((ci_id, version), super::decode("ci_versions", &doc)?);
        }
    }
    Ok(out)
}

/// One CI as captured at an instant.
#[derive(Debug, Clone)]
pub struct Captured {
    pub ci_id: i64,
    pub version: i64,
    pub ci: pb::Ci,
}

impl Captured {
    pub fn member(&self) -> Member {
        Member {
            ci_uid: crate::ci_uid(&self.ci.name)
                .unwrap_or(&self.ci.name)
                .to_owned(),
            ci_id: self.ci_id,
            version: self.version,
        }
    }
}

/// Whether a CI as it was belongs to a capture through `filter`: an empty
/// filter holds every CI that is not retired.
pub fn holds(filter: &CiFilter, model: &Model, ci: &pb::Ci) -> bool {
    if filter.is_empty() {
        ci.status != pb::CiStatus::Retired as i32
    } else {
        filter.matches(model, ci)
    }
}

/// The CI versions valid at an instant, through a filter, one page at a
/// time in internal id order.
#[derive(Debug)]
pub struct Capture<'a> {
    at: i64,
    filter: &'a CiFilter,
    model: &'a Model,
    after: i64,
    done: bool,
}

impl<'a> Capture<'a> {
    pub fn new(at: i64, filter: &'a CiFilter, model: &'a Model) -> Self {
        Self {
            at,
            filter,
            model,
            after: i64::MIN,
            done: false,
        }
    }

    /// The next page of held CIs (possibly empty when the filter dropped a
    /// whole page); `None` once every version was read.
    pub async fn next(
        &mut self,
        conn: &mut AnyConnection,
    ) -> Result<Option<Vec<Captured>>, StoreError> {
        if self.done {
            return Ok(None);
        }
        let rows: Vec<(i64, i64, Vec<u8>)> = sqlx::query_as(
            "SELECT ci_id, version, doc FROM ci_versions \
             WHERE ci_id > $1 AND valid_from <= $2 AND valid_to > $2 ORDER BY ci_id LIMIT $3",
        )
        .bind(self.after)
        .bind(self.at)
        .bind(i64::try_from(PAGE).unwrap_or(i64::MAX))
        .fetch_all(conn)
        .await?;
        if rows.len() < PAGE {
            self.done = true;
        }
        let Some(last) = rows.last() else {
            return Ok(None);
        };
        self.after = last.0;
        let mut page = Vec::with_capacity(rows.len());
        for (ci_id, version, doc) in rows {
            let ci: pb::Ci = super::decode("ci_versions", &doc)?;
            if holds(self.filter, self.model, &ci) {
                page.push(Captured { ci_id, version, ci });
            }
        }
        Ok(Some(page))
    }
}

/// The relationships alive at `at` with both ends among `held` (internal CI
/// ids): live rows created by then, and deleted ones created by then and
/// deleted after. In no particular order.
pub async fn relationships_at(
    conn: &mut AnyConnection,
    at: i64,
    held: &HashSet<i64>,
) -> Result<Vec<pb::Relationship>, StoreError> {
    let mut out = Vec::new();
    let mut sources: Vec<i64> = held.iter().copied().collect();
    sources.sort_unstable();
    for chunk in sources.chunks(PAGE) {
        let mut sql =
            SqlBuilder::new("SELECT target_id, doc FROM relationships WHERE created_at <= ");
        sql.push_bind(at)
            .push(" AND source_id IN ")
            .push_bind_list(chunk.iter().copied());
        for row in itsm_store::db::query(&sql).fetch_all(&mut *conn).await? {
            let target: i64 = sqlx::Row::try_get(&row, 0)?;
            if held.contains(&target) {
                let doc: Vec<u8> = sqlx::Row::try_get(&row, 1)?;
                out.push(super::decode("relationships", &doc)?);
            }
        }
    }
    let mut after = i64::MIN;
    loop {
        let rows: Vec<(i64, i64, i64, Vec<u8>)> = sqlx::query_as(
            "SELECT id, source_id, target_id, doc FROM relationships_deleted \
             WHERE deleted_at > $1 AND created_at <= $1 AND id > $2 ORDER BY id LIMIT $3",
        )
        .bind(at)
        .bind(after)
        .bind(i64::try_from(PAGE).unwrap_or(i64::MAX))
        .fetch_all(&mut *conn)
        .await?;
        let full = rows.len() == PAGE;
        for (id, source, target, doc) in rows {
            after = id;
            if held.contains(&source) && held.contains(&target) {
                out.push(super::decode("relationships_deleted", &doc)?);
            }
        }
        if !full {
            break;
        }
    }
    Ok(out)
}

/// "relationships/<uuid>" -> "<uuid>" (the name itself when not so shaped).
pub fn relationship_uid(name: &str) -> &str {
    name.strip_prefix("relationships/").unwrap_or(name)
}
