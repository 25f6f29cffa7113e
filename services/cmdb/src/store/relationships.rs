//! The edge table: `relationships` (doc: `Relationship`) between CIs'
//! internal ids, `relationships_deleted` for what was removed, and the
//! batched edge reads the impact walk and the cycle check make.
//!
//! Walks read only the columns they need, a level at a time: `source_id IN
//! (...)` is served by `relationships_edge (source_id, type, target_id)`,
//! `target_id IN (...)` by `relationships_target_walk` (covering: index-only).

use std::collections::HashMap;

use itsm_platform::ApiError;
use itsm_proto::itsm::cmdb::v1 as pb;
use itsm_store::list::{ListRequest, ListSpec};
use itsm_store::page::PageTokens;
use itsm_store::query::{Comparison, Expr, Field, FieldKind, Op, Schema, Value, parse_filter};
use itsm_store::{SqlBuilder, StoreError};
use prost::Message as _;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

/// The longest `IN (...)` list one statement binds.
pub const MAX_IN_LIST: usize = 1_000;

/// `ids`, the last one repeated up to a bucket size (8, 16, ... 512,
/// [`MAX_IN_LIST`]): a walk's `IN (...)` statements then come in a few
/// shapes each connection keeps prepared, instead of one new statement per
/// list length. Repeating an id changes no result.
fn padded(ids: &[i64]) -> impl Iterator<Item = i64> + '_ {
    let len = ids.len();
    let bucket = len.next_power_of_two().clamp(8, MAX_IN_LIST.max(len));
    let last = ids.last().copied();
    ids.iter()
        .copied()
        .chain(std::iter::repeat_n(last, bucket.saturating_sub(len)).flatten())
}

/// A relationship as stored: its internal id and ends, and the message.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRelationship {
    pub id: i64,
    pub type_id: String,
    pub source_id: i64,
    pub target_id: i64,
    pub relationship: pb::Relationship,
}

const SELECT: &str = "SELECT id, type, source_id, target_id, created_at, doc FROM relationships";

fn stored(row: &AnyRow) -> Result<StoredRelationship, StoreError> {
    let doc: Vec<u8> = row.try_get("doc")?;
    Ok(StoredRelationship {
        id: row.try_get("id")?,
        type_id: row.try_get("type")?,
        source_id: row.try_get("source_id")?,
        target_id: row.try_get("target_id")?,
        relationship: crate::store::decode("relationships", &doc)?,
    })
}

/// The uid of a relationship name: "relationships/<uuid>" -> "<uuid>".
pub fn relationship_uid(name: &str) -> Option<&str> {
    name.strip_prefix("relationships/")
        .filter(|uid| uuid::Uuid::try_parse(uid).is_ok())
}

/// A new row for `relationship` (its `name` set); returns its internal id.
#[allow(clippy::too_many_arguments)] // reason: one column each, all distinct
pub async fn insert(
    conn: &mut AnyConnection,
    uid: &str,
    type_id: &str,
    source_id: i64,
    target_id: i64,
    discovery_source: &str,
    last_seen_at: i64,
    now: i64,
    relationship: &pb::Relationship,
) -> Result<i64, StoreError> {
    let id = sqlx::query_scalar::<_, i64>(
        "INSERT INTO relationships (uid, type, source_id, target_id, discovery_source, \
         last_seen_at, created_at, doc) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
    )
    .bind(uid)
    .bind(type_id)
    .bind(source_id)
    .bind(target_id)
    .bind(discovery_source)
    .bind(last_seen_at)
    .bind(now)
    .bind(relationship.encode_to_vec())
    .fetch_one(conn)
    .await?;
    Ok(id)
}

/// The relationship of `type_id` from `source_id` to `target_id`, if any.
pub async fn select_edge(
    conn: &mut AnyConnection,
    type_id: &str,
    source_id: i64,
    target_id: i64,
    lock: &str,
) -> Result<Option<StoredRelationship>, StoreError> {
    let sql = format!("{SELECT} WHERE source_id = $1 AND type = $2 AND target_id = $3{lock}");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(source_id)
        .bind(type_id)
        .bind(target_id)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(stored).transpose()
}

/// The relationship named `name` ("relationships/<uuid>"), locked with `lock`.
pub async fn select_by_name(
    conn: &mut AnyConnection,
    name: &str,
    lock: &str,
) -> Result<Option<StoredRelationship>, StoreError> {
    let Some(uid) = relationship_uid(name) else {
        return Ok(None);
    };
    let sql = format!("{SELECT} WHERE uid = $1{lock}");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(uid)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(stored).transpose()
}

/// Moves `last_seen_at` of a relationship and rewrites its message.
pub async fn touch(
    conn: &mut AnyConnection,
    id: i64,
    last_seen_at: i64,
    relationship: &pb::Relationship,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE relationships SET last_seen_at = $1, doc = $2 WHERE id = $3")
        .bind(last_seen_at)
        .bind(relationship.encode_to_vec())
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Moves a relationship to `relationships_deleted`.
pub async fn delete(
    conn: &mut AnyConnection,
    relationship: &StoredRelationship,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO relationships_deleted (id, uid, tenant, type, source_id, target_id, \
         created_at, deleted_at, doc) SELECT id, uid, tenant, type, source_id, target_id, \
         created_at, $1, doc FROM relationships WHERE id = $2",
    )
    .bind(now)
    .bind(relationship.id)
    .execute(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM relationships WHERE id = $1")
        .bind(relationship.id)
        .execute(conn)
        .await?;
    Ok(())
}

/// One edge as a walk sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    pub uid: String,
    pub type_id: String,
    pub source_id: i64,
    pub target_id: i64,
}

/// The edges leaving (`outgoing`) or arriving at the CIs `ids`, of the types
/// `types` (every type when empty), in chunks of at most [`MAX_IN_LIST`] ids.
pub async fn edges(
    conn: &mut AnyConnection,
    ids: &[i64],
    outgoing: bool,
    types: &[String],
) -> Result<Vec<Edge>, StoreError> {
    let mut out = Vec::new();
    for chunk in ids.chunks(MAX_IN_LIST) {
        let mut sql = SqlBuilder::new("SELECT uid, type, source_id, target_id FROM relationships");
        sql.push(if outgoing {
            " WHERE source_id IN "
        } else {
            " WHERE target_id IN "
        });
        sql.push_bind_list(padded(chunk));
        if !types.is_empty() {
            sql.push(" AND type IN ")
                .push_bind_list(types.iter().map(String::as_str));
        }
        let rows = itsm_store::db::query(&sql).fetch_all(&mut *conn).await?;
        for row in &rows {
            out.push(Edge {
                uid: row.try_get("uid")?,
                type_id: row.try_get("type")?,
                source_id: row.try_get("source_id")?,
                target_id: row.try_get("target_id")?,
            });
        }
    }
    Ok(out)
}

/// A path of `type_id` edges from `from` to `to` (the CI ids along it, `from`
/// first, `to` last), if `to` is reachable from `from`: walked level by level.
pub async fn path(
    conn: &mut AnyConnection,
    type_id: &str,
    from: i64,
    to: i64,
) -> Result<Option<Vec<i64>>, StoreError> {
    use std::collections::HashMap;
    let mut parent: HashMap<i64, i64> = HashMap::from([(from, from)]);
    let mut frontier = vec![from];
    let types = [type_id.to_owned()];
    while !frontier.is_empty() {
        let mut next = Vec::new();
        for edge in edges(conn, &frontier, true, &types).await? {
            if parent.contains_key(&edge.target_id) {
                continue;
            }
            parent.insert(edge.target_id, edge.source_id);
            if edge.target_id == to {
                let mut chain = vec![to];
                let mut at = to;
                while at != from {
                    at = parent.get(&at).copied().unwrap_or(from);
                    chain.push(at);
                }
                chain.reverse();
                return Ok(Some(chain));
            }
            next.push(edge.target_id);
        }
        frontier = next;
    }
    Ok(None)
}

/// The uids of the CIs with these internal ids, by id.
pub async fn ci_uids(
    conn: &mut AnyConnection,
    ids: &[i64],
) -> Result<std::collections::HashMap<i64, String>, StoreError> {
    let mut out = std::collections::HashMap::new();
    for chunk in ids.chunks(MAX_IN_LIST) {
        let mut sql = SqlBuilder::new("SELECT id, uid FROM cis WHERE id IN ");
        sql.push_bind_list(padded(chunk));
        let rows = itsm_store::db::query(&sql).fetch_all(&mut *conn).await?;
        for row in &rows {
            out.insert(row.try_get("id")?, row.try_get("uid")?);
        }
    }
    Ok(out)
}

/// The columns of a CI an impact walk reads (no `doc`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CiRow {
    pub id: i64,
    pub uid: String,
    pub ci_class: String,
    pub display_name: String,
    pub status: i64,
    pub criticality: i64,
    pub support_group: String,
    pub min_members_up: i64,
}

const CI_COLUMNS: &str = "c.id, c.uid, c.ci_class, c.display_name, c.status, c.criticality, c.support_group, c.min_members_up";

fn ci_row(row: &AnyRow) -> Result<CiRow, sqlx::Error> {
    Ok(CiRow {
        id: row.try_get("id")?,
        uid: row.try_get("uid")?,
        ci_class: row.try_get("ci_class")?,
        display_name: row.try_get("display_name")?,
        status: row.try_get("status")?,
        criticality: row.try_get("criticality")?,
        support_group: row.try_get("support_group")?,
        min_members_up: row.try_get("min_members_up")?,
    })
}

/// The walk columns of the CIs with these uids (those that exist).
pub async fn ci_rows_by_uid(
    conn: &mut AnyConnection,
    uids: &[&str],
) -> Result<Vec<CiRow>, StoreError> {
    let mut out = Vec::new();
    for chunk in uids.chunks(MAX_IN_LIST) {
        let mut sql = SqlBuilder::new("SELECT ");
        sql.push(CI_COLUMNS)
            .push(" FROM cis c WHERE c.uid IN ")
            .push_bind_list(chunk.iter().copied());
        let rows = itsm_store::db::query(&sql).fetch_all(&mut *conn).await?;
        for row in &rows {
            out.push(ci_row(row)?);
        }
    }
    Ok(out)
}

/// One hop of a walk: an edge from a CI of the frontier and the CI at its other end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hop {
    pub relationship_uid: String,
    pub type_id: String,
    /// The frontier CI the hop leaves from.
    pub from: i64,
    /// Whether the hop goes from the edge's source to its target.
    pub forward: bool,
    /// The CI at the other end.
    pub to: i64,
}

/// A level of a walk: its hops, and the walk columns of the CIs they reach
/// that the walk did not know (by id).
#[derive(Debug, Default)]
pub struct Hops {
    pub hops: Vec<Hop>,
    pub cis: HashMap<i64, CiRow>,
}

/// The hops from the CIs `ids`: along edges of `forward_types` leaving them
/// (they are the edges' sources) and of `backward_types` arriving at them.
/// One statement per [`MAX_IN_LIST`] ids (both directions), served by the
/// covering `relationships_source_walk` / `relationships_target_walk`
/// (index-only), then one for the CIs at the other ends by primary key,
/// except those `known` (the walk has them): most edges of a dense graph
/// lead back to CIs already reached.
pub async fn hops(
    conn: &mut AnyConnection,
    ids: &[i64],
    forward_types: &[&str],
    backward_types: &[&str],
    known: &(dyn Fn(i64) -> bool + Sync),
) -> Result<Hops, StoreError> {
    // Two steps, each served by an index whatever the planner estimates for
    // a long IN list: the edges, then the CIs they reach. One joined
    // statement let PostgreSQL pick a merge join over all of `cis`.
    let mut edges: Vec<(String, String, i64, i64, bool)> = Vec::new();
    let directions: Vec<(bool, &[&str])> = [(true, forward_types), (false, backward_types)]
        .into_iter()
        .filter(|(_, types)| !types.is_empty())
        .collect();
    if directions.is_empty() {
        return Ok(Hops::default());
    }
    for chunk in ids.chunks(MAX_IN_LIST) {
        // Both directions in one statement (one round trip per level).
        let mut sql = SqlBuilder::new("");
        for (i, (forward, types)) in directions.iter().enumerate() {
            let (from, to, flag) = if *forward {
                ("source_id", "target_id", "1")
            } else {
                ("target_id", "source_id", "0")
            };
            if i > 0 {
                sql.push(" UNION ALL ");
            }
            sql.push("SELECT r.uid, r.type, r.")
                .push(from)
                .push(", r.")
                .push(to)
                .push(", CAST(")
                .push(flag)
                .push(" AS BIGINT) FROM relationships r WHERE r.")
                .push(from)
                .push(" IN ")
                .push_bind_list(padded(chunk))
                .push(" AND r.type IN ")
                .push_bind_list(types.iter().copied());
        }
        let rows = itsm_store::db::query(&sql).fetch_all(&mut *conn).await?;
        edges.reserve(rows.len());
        for row in &rows {
            edges.push((
                row.try_get(0)?,
                row.try_get(1)?,
                row.try_get(2)?,
                row.try_get(3)?,
                row.try_get::<i64, _>(4)? == 1,
            ));
        }
    }
    let mut targets: Vec<i64> = edges.iter().map(|e| e.3).filter(|id| !known(*id)).collect();
    targets.sort_unstable();
    targets.dedup();
    let mut cis: HashMap<i64, CiRow> = HashMap::with_capacity(targets.len());
    for chunk in targets.chunks(MAX_IN_LIST) {
        let mut sql = SqlBuilder::new("SELECT ");
        sql.push(CI_COLUMNS)
            .push(" FROM cis c WHERE c.id IN ")
            .push_bind_list(padded(chunk));
        let rows = itsm_store::db::query(&sql).fetch_all(&mut *conn).await?;
        for row in &rows {
            let ci = ci_row(row)?;
            cis.insert(ci.id, ci);
        }
    }
    let mut hops = Vec::with_capacity(edges.len());
    for (relationship_uid, type_id, from, to, forward) in edges {
        // An edge to a CI that is gone (deleted since) leads nowhere.
        if known(to) || cis.contains_key(&to) {
            hops.push(Hop {
                relationship_uid,
                type_id,
                from,
                forward,
                to,
            });
        }
    }
    Ok(Hops { hops, cis })
}

/// Whether an edge of `types` leads from the CIs `ids` (forward: as sources;
/// else as targets) to a CI `known` does not hold. Reads rows only until it
/// finds one.
pub async fn any_hop_beyond(
    conn: &mut AnyConnection,
    ids: &[i64],
    forward: bool,
    types: &[&str],
    known: &(dyn Fn(i64) -> bool + Sync),
) -> Result<bool, StoreError> {
    use futures_util::TryStreamExt as _;
    if types.is_empty() {
        return Ok(false);
    }
    let (from, to) = if forward {
        ("source_id", "target_id")
    } else {
        ("target_id", "source_id")
    };
    for chunk in ids.chunks(MAX_IN_LIST) {
        let mut sql = SqlBuilder::new("SELECT ");
        sql.push(to)
            .push(" AS other FROM relationships WHERE ")
            .push(from)
            .push(" IN ")
            .push_bind_list(padded(chunk))
            .push(" AND type IN ")
            .push_bind_list(types.iter().copied());
        let mut rows = itsm_store::db::query(&sql).fetch(&mut *conn);
        while let Some(row) = rows.try_next().await? {
            let other: i64 = row.try_get("other")?;
            if !known(other) {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// The members (targets of `types` edges) of the groups `ids`: (group, member, member status).
pub async fn members(
    conn: &mut AnyConnection,
    ids: &[i64],
    types: &[&str],
) -> Result<Vec<(i64, i64, i64)>, StoreError> {
    let mut out = Vec::new();
    if types.is_empty() {
        return Ok(out);
    }
    for chunk in ids.chunks(MAX_IN_LIST) {
        let mut sql = SqlBuilder::new(
            "SELECT r.source_id, r.target_id, c.status FROM relationships r \
             JOIN cis c ON c.id = r.target_id WHERE r.source_id IN ",
        );
        sql.push_bind_list(padded(chunk))
            .push(" AND r.type IN ")
            .push_bind_list(types.iter().copied());
        let rows = itsm_store::db::query(&sql).fetch_all(&mut *conn).await?;
        for row in &rows {
            out.push((
                row.try_get("source_id")?,
                row.try_get("target_id")?,
                row.try_get("status")?,
            ));
        }
    }
    Ok(out)
}

/// The stored messages of the CIs with these ids (for filters on any field).
pub async fn ci_docs(
    conn: &mut AnyConnection,
    ids: &[i64],
) -> Result<std::collections::HashMap<i64, pb::Ci>, StoreError> {
    let mut out = std::collections::HashMap::new();
    for chunk in ids.chunks(MAX_IN_LIST) {
        let mut sql = SqlBuilder::new("SELECT id, doc FROM cis WHERE id IN ");
        sql.push_bind_list(padded(chunk));
        let rows = itsm_store::db::query(&sql).fetch_all(&mut *conn).await?;
        for row in &rows {
            let doc: Vec<u8> = row.try_get("doc")?;
            out.insert(row.try_get("id")?, crate::store::decode("cis", &doc)?);
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// ListRelationships

const fn field(name: &'static str, column: &'static str, kind: FieldKind, sortable: bool) -> Field {
    Field {
        name,
        column,
        kind,
        sortable,
    }
}

/// What the compiled filter may name: the public names are rewritten first
/// (see [`rewrite`]) to the internal columns below.
static SCHEMA: Schema = Schema {
    resource: "relationship",
    fields: &[
        field("source_id", "source_id", FieldKind::Int, false),
        field("target_id", "target_id", FieldKind::Int, false),
        field("type", "type", FieldKind::Text, false),
        field(
            "discovery_source",
            "discovery_source",
            FieldKind::Text,
            false,
        ),
        field("create_time", "created_at", FieldKind::Timestamp, true),
        field(
            "last_seen_time",
            "last_seen_at",
            FieldKind::Timestamp,
            false,
        ),
    ],
};

const SPEC: ListSpec = ListSpec {
    schema: &SCHEMA,
    select: SELECT,
    id_column: "id",
    default_order: "create_time",
};

/// The filter fields callers may name.
const PUBLIC_FIELDS: &str =
    "source_ci, target_ci, ci, type, discovery_source, create_time, last_seen_time";

/// One page of relationships matching `request` and the next page token.
pub async fn select_page(
    conn: &mut AnyConnection,
    request: &ListRequest<'_>,
    tokens: &PageTokens,
) -> Result<(Vec<pb::Relationship>, String), ApiError> {
    let filter = match parse_filter(request.filter)? {
        Some(expr) => rewrite(conn, expr).await?.to_string(),
        None => String::new(),
    };
    let request = ListRequest {
        filter: &filter,
        ..*request
    };
    let plan = SPEC.plan(&request, tokens, |_| {})?;
    let rows = itsm_store::db::query(plan.sql())
        .fetch_all(&mut *conn)
        .await
        .map_err(StoreError::from)?;
    let page = plan.finish(rows, tokens)?;
    let relationships = page
        .rows
        .iter()
        .map(|row| stored(row).map(|s| s.relationship))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((relationships, page.next_page_token))
}

fn bad_filter(message: String) -> ApiError {
    ApiError::invalid_field("filter", message)
}

/// The filter over internal columns: `source_ci = "cis/<uuid>"` becomes
/// `source_id = <id>` (-1 for a CI that does not exist: matches nothing),
/// `ci = ...` either end, and the prefixes of `type` and `discovery_source`
/// values are taken off ("relationshipTypes/runs_on" -> "runs_on").
async fn rewrite(conn: &mut AnyConnection, expr: Expr) -> Result<Expr, ApiError> {
    // Comparisons first, then the tree rebuilt (no async recursion needed).
    let mut comparisons = Vec::new();
    collect(&expr, &mut comparisons);
    let mut replaced = Vec::with_capacity(comparisons.len());
    for comparison in comparisons {
        replaced.push(rewrite_one(conn, comparison).await?);
    }
    let mut replaced = replaced.into_iter();
    Ok(rebuild(expr, &mut replaced))
}

fn collect(expr: &Expr, out: &mut Vec<Comparison>) {
    match expr {
        Expr::And(operands) | Expr::Or(operands) => {
            for operand in operands {
                collect(operand, out);
            }
        }
        Expr::Not(operand) => collect(operand, out),
        Expr::Compare(comparison) => out.push(comparison.clone()),
    }
}

fn rebuild(expr: Expr, replaced: &mut impl Iterator<Item = Expr>) -> Expr {
    match expr {
        Expr::And(operands) => {
            Expr::And(operands.into_iter().map(|o| rebuild(o, replaced)).collect())
        }
        Expr::Or(operands) => {
            Expr::Or(operands.into_iter().map(|o| rebuild(o, replaced)).collect())
        }
        Expr::Not(operand) => Expr::Not(Box::new(rebuild(*operand, replaced))),
        Expr::Compare(comparison) => replaced.next().unwrap_or(Expr::Compare(comparison)),
    }
}

async fn rewrite_one(conn: &mut AnyConnection, comparison: Comparison) -> Result<Expr, ApiError> {
    let name = comparison.field.as_str();
    let prefix = match name {
        "source_ci" | "target_ci" | "ci" => "cis/",
        "type" => "relationshipTypes/",
        "discovery_source" => "discoverySources/",
        "create_time" | "last_seen_time" => return Ok(Expr::Compare(comparison)),
        other => {
            return Err(bad_filter(format!(
                "unknown field \"{other}\"; a filter may name {PUBLIC_FIELDS}"
            )));
        }
    };
    let op = match comparison.op {
        Op::Eq | Op::Has => Op::Eq,
        Op::Ne => Op::Ne,
        other => {
            return Err(bad_filter(format!(
                "{name} takes = or != , not {}",
                other.as_str()
            )));
        }
    };
    let Value::String(text) = &comparison.value else {
        return Err(bad_filter(format!(
            "{name} takes a quoted name, e.g. {name} = \"{prefix}...\""
        )));
    };
    let Some(id) = text.strip_prefix(prefix).filter(|id| !id.is_empty()) else {
        return Err(bad_filter(format!(
            "\"{text}\" is not a name of the form \"{prefix}...\""
        )));
    };
    let compare = |field: &str, value: Value| Expr::Compare(Comparison::new(field, op, value));
    if prefix != "cis/" {
        return Ok(compare(name, Value::String(id.to_owned())));
    }
    let ci_id = if uuid::Uuid::try_parse(id).is_ok() {
        sqlx::query_scalar::<_, i64>("SELECT id FROM cis WHERE uid = $1")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(StoreError::from)?
            .unwrap_or(-1)
    } else {
        return Err(bad_filter(format!(
            "\"{text}\" is not a CI name (\"cis/<uuid>\")"
        )));
    };
    Ok(match name {
        "source_ci" => compare("source_id", Value::Int(ci_id)),
        "target_ci" => compare("target_id", Value::Int(ci_id)),
        _ => {
            let both = vec![
                compare("source_id", Value::Int(ci_id)),
                compare("target_id", Value::Int(ci_id)),
            ];
            if op == Op::Eq {
                Expr::Or(both)
            } else {
                Expr::And(both)
            }
        }
    })
}
