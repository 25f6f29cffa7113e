//! CI rows (`cis`), the attribute index (`ci_attributes`), sightings
//! (`ci_sightings`) and version snapshots (`ci_versions`).
//!
//! Column conventions: `cis.ci_class` holds the class id ("linux_server"),
//! `cis.location` the location CI's uid; `ci_attributes.text_value` is
//! [`crate::model::value_text`] (references as "cis/<uuid>").

use itsm_proto::itsm::cmdb::v1 as pb;
use itsm_store::page::{self, SortColumn};
use itsm_store::query::FieldKind;
use itsm_store::{SqlBuilder, SqlValue, StoreError};
use prost::Message as _;
use sqlx::{AnyConnection, Row};

use crate::model::{self, class_id};
use crate::write::StoredCi;

/// `valid_to` of the current version.
pub const CURRENT: i64 = i64::MAX;

/// The columns of a stored CI, as every read selects them.
pub const COLUMNS: &str = "c.id, c.version, c.doc";

/// Micros of a protobuf timestamp (0 when unset).
pub fn micros(t: Option<&prost_types::Timestamp>) -> i64 {
    t.map_or(0, |t| {
        t.seconds
            .saturating_mul(1_000_000)
            .saturating_add(i64::from(t.nanos) / 1_000)
    })
}

/// The copies of `ci`'s fields the `cis` columns hold.
struct Columns<'a> {
    ci_class: &'a str,
    location: &'a str,
}

fn columns(ci: &pb::Ci) -> Columns<'_> {
    Columns {
        ci_class: class_id(&ci.ci_class).unwrap_or_default(),
        location: crate::ci_uid(&ci.location).unwrap_or_default(),
    }
}

/// Inserts the row of a new CI (version 1); returns its internal id.
pub async fn insert_ci(
    conn: &mut AnyConnection,
    uid: &str,
    ci: &pb::Ci,
) -> Result<i64, StoreError> {
    let c = columns(ci);
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO cis (uid, ci_class, display_name, status, owner, support_group, criticality, \
         location, min_members_up, last_seen_at, created_at, updated_at, version, doc) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 1, $13) RETURNING id",
    )
    .bind(uid)
    .bind(c.ci_class)
    .bind(&ci.display_name)
    .bind(ci.status)
    .bind(&ci.owner)
    .bind(&ci.support_group)
    .bind(ci.criticality)
    .bind(c.location)
    .bind(ci.min_members_up)
    .bind(micros(ci.last_seen_time.as_ref()))
    .bind(micros(ci.create_time.as_ref()))
    .bind(micros(ci.update_time.as_ref()))
    .bind(ci.encode_to_vec())
    .fetch_one(conn)
    .await?;
    Ok(id)
}

/// Rewrites the row of `id` from `ci` at `version`, when its version is
/// still `expected`; returns whether it was.
pub async fn update_ci(
    conn: &mut AnyConnection,
    id: i64,
    ci: &pb::Ci,
    version: i64,
    expected: i64,
) -> Result<bool, StoreError> {
    let c = columns(ci);
    let result = sqlx::query(
        "UPDATE cis SET ci_class = $1, display_name = $2, status = $3, owner = $4, \
         support_group = $5, criticality = $6, location = $7, min_members_up = $8, \
         last_seen_at = $9, updated_at = $10, version = $11, doc = $12 \
         WHERE id = $13 AND version = $14",
    )
    .bind(c.ci_class)
    .bind(&ci.display_name)
    .bind(ci.status)
    .bind(&ci.owner)
    .bind(&ci.support_group)
    .bind(ci.criticality)
    .bind(c.location)
    .bind(ci.min_members_up)
    .bind(micros(ci.last_seen_time.as_ref()))
    .bind(micros(ci.update_time.as_ref()))
    .bind(version)
    .bind(ci.encode_to_vec())
    .bind(id)
    .bind(expected)
    .execute(conn)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// A stored CI from a row of [`COLUMNS`].
pub fn from_row(row: &sqlx::any::AnyRow) -> Result<StoredCi, StoreError> {
    let doc: Vec<u8> = row.try_get("doc")?;
    Ok(StoredCi {
        id: row.try_get("id")?,
        version: row.try_get("version")?,
        ci: crate::store::decode("cis", &doc)?,
    })
}

/// The CI of `uid`, locked with `lock`.
pub async fn select_by_uid(
    conn: &mut AnyConnection,
    uid: &str,
    lock: &str,
) -> Result<Option<StoredCi>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM cis c WHERE c.uid = $1{lock}");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(uid)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// The CIs of these uids (those that exist), in no order.
/// The CI with internal id `id`, locked with `lock`.
pub async fn select_by_id(
    conn: &mut AnyConnection,
    id: i64,
    lock: &str,
) -> Result<Option<StoredCi>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM cis c WHERE c.id = $1{lock}");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn select_by_uids(
    conn: &mut AnyConnection,
    uids: &[&str],
) -> Result<Vec<StoredCi>, StoreError> {
    let mut out = Vec::with_capacity(uids.len());
    for chunk in uids.chunks(500) {
        let mut sql = SqlBuilder::new(format!("SELECT {COLUMNS} FROM cis c WHERE c.uid IN "));
        sql.push_bind_list(chunk.iter().copied());
        let rows = itsm_store::db::query(&sql).fetch_all(&mut *conn).await?;
        for row in &rows {
            out.push(from_row(row)?);
        }
    }
    Ok(out)
}

/// The CIs of these internal ids (those that exist), in no order.
pub async fn select_by_ids(
    conn: &mut AnyConnection,
    ids: &[i64],
) -> Result<Vec<StoredCi>, StoreError> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        let mut sql = SqlBuilder::new(format!("SELECT {COLUMNS} FROM cis c WHERE c.id IN "));
        sql.push_bind_list(chunk.iter().copied());
        let rows = itsm_store::db::query(&sql).fetch_all(&mut *conn).await?;
        for row in &rows {
            out.push(from_row(row)?);
        }
    }
    Ok(out)
}

/// `(uid, class id)` of the CIs with these uids (those that exist).
pub async fn select_classes(
    conn: &mut AnyConnection,
    uids: &[&str],
) -> Result<Vec<(String, String)>, StoreError> {
    if uids.is_empty() {
        return Ok(Vec::new());
    }
    let mut sql = SqlBuilder::new("SELECT uid, ci_class FROM cis WHERE uid IN ");
    sql.push_bind_list(uids.iter().copied());
    let rows = itsm_store::db::query(&sql).fetch_all(conn).await?;
    rows.iter()
        .map(|r| Ok((r.try_get("uid")?, r.try_get("ci_class")?)))
        .collect::<Result<_, sqlx::Error>>()
        .map_err(StoreError::from)
}

/// Sets (`Some`) or clears (`None`) the index row of attribute `key`.
pub async fn put_attribute(
    conn: &mut AnyConnection,
    ci_id: i64,
    key: &str,
    value: Option<&pb::AttributeValue>,
) -> Result<(), StoreError> {
    let text = value.and_then(model::value_text);
    let Some(text) = text else {
        sqlx::query("DELETE FROM ci_attributes WHERE ci_id = $1 AND key = $2")
            .bind(ci_id)
            .bind(key)
            .execute(conn)
            .await?;
        return Ok(());
    };
    // No NULL bound: a statement prepared with a number for num_value
    // refuses a typeless NULL later (PostgreSQL through sqlx Any).
    let number = value.and_then(model::value_number);
    let sql = if number.is_some() {
        "INSERT INTO ci_attributes (ci_id, key, text_value, norm_value, num_value) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (ci_id, key) DO UPDATE SET \
         text_value = excluded.text_value, norm_value = excluded.norm_value, \
         num_value = excluded.num_value"
    } else {
        "INSERT INTO ci_attributes (ci_id, key, text_value, norm_value, num_value) \
         VALUES ($1, $2, $3, $4, NULL) ON CONFLICT (ci_id, key) DO UPDATE SET \
         text_value = excluded.text_value, norm_value = excluded.norm_value, \
         num_value = NULL"
    };
    let mut query = sqlx::query(sql)
        .bind(ci_id)
        .bind(key)
        .bind(&text)
        .bind(model::normalize(&text));
    if let Some(number) = number {
        query = query.bind(number);
    }
    query.execute(conn).await?;
    Ok(())
}

/// Inserts the sighting of `(source, correlation_id)` on `ci_id`, or moves
/// its `last_seen_at`. A correlation id another CI held moves to `ci_id`;
/// returns that other CI's id when it did. `held`: the caller knows `ci_id`
/// holds the sighting already (its locked message lists it), so no other
/// CI can: the look for one is skipped.
pub async fn upsert_sighting(
    conn: &mut AnyConnection,
    ci_id: i64,
    source: &str,
    correlation_id: &str,
    now: i64,
    held: bool,
) -> Result<Option<i64>, StoreError> {
    let mut moved_from = None;
    if !correlation_id.is_empty() && !held {
        moved_from = sqlx::query_scalar::<_, i64>(
            "SELECT ci_id FROM ci_sightings WHERE source = $1 AND correlation_id = $2 \
             AND correlation_id <> '' AND ci_id <> $3",
        )
        .bind(source)
        .bind(correlation_id)
        .bind(ci_id)
        .fetch_optional(&mut *conn)
        .await?;
        if let Some(other) = moved_from {
            sqlx::query(
                "DELETE FROM ci_sightings WHERE ci_id = $1 AND source = $2 AND correlation_id = $3",
            )
            .bind(other)
            .bind(source)
            .bind(correlation_id)
            .execute(&mut *conn)
            .await?;
        }
    }
    sqlx::query(
        "INSERT INTO ci_sightings (ci_id, source, correlation_id, first_seen_at, last_seen_at) \
         VALUES ($1, $2, $3, $4, $4) ON CONFLICT (ci_id, source, correlation_id) \
         DO UPDATE SET last_seen_at = excluded.last_seen_at",
    )
    .bind(ci_id)
    .bind(source)
    .bind(correlation_id)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(moved_from)
}

/// Stores the snapshot of `version` of `ci_id`, valid from `now`, closing
/// the current one.
pub async fn push_version(
    conn: &mut AnyConnection,
    ci_id: i64,
    version: i64,
    ci: &pb::Ci,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE ci_versions SET valid_to = $1 WHERE ci_id = $2 AND valid_to = $3")
        .bind(now)
        .bind(ci_id)
        .bind(CURRENT)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO ci_versions (ci_id, version, valid_from, valid_to, doc) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(ci_id)
    .bind(version)
    .bind(now)
    .bind(CURRENT)
    .bind(ci.encode_to_vec())
    .execute(conn)
    .await?;
    Ok(())
}

/// The version of `ci_id` valid at `at` (`valid_from <= at < valid_to`).
pub async fn select_version_at(
    conn: &mut AnyConnection,
    ci_id: i64,
    at: i64,
) -> Result<Option<pb::Ci>, StoreError> {
    let doc: Option<Vec<u8>> = sqlx::query_scalar(
        "SELECT doc FROM ci_versions WHERE ci_id = $1 AND valid_from <= $2 AND valid_to > $2 \
         ORDER BY version DESC LIMIT 1",
    )
    .bind(ci_id)
    .bind(at)
    .fetch_optional(conn)
    .await?;
    doc.map(|d| crate::store::decode("ci_versions", &d))
        .transpose()
}

/// What `ListCis` may sort on: name, column, and kind of the key value.
pub static SORT: itsm_store::query::Schema = itsm_store::query::Schema {
    resource: "ci",
    fields: &[
        sort_field("display_name", "c.display_name", FieldKind::Text),
        sort_field("ci_class", "c.ci_class", FieldKind::Text),
        sort_field("support_group", "c.support_group", FieldKind::Text),
        sort_field("status", "c.status", FieldKind::Int),
        sort_field("create_time", "c.created_at", FieldKind::Int),
        sort_field("update_time", "c.updated_at", FieldKind::Int),
        sort_field("last_seen_time", "c.last_seen_at", FieldKind::Int),
    ],
};

const fn sort_field(
    name: &'static str,
    column: &'static str,
    kind: FieldKind,
) -> itsm_store::query::Field {
    itsm_store::query::Field {
        name,
        column,
        kind,
        sortable: true,
    }
}

/// One page of CIs: those matching `filter` (a predicate over `cis c`, or
/// none), sorted by `order` then id, after the key `after`; at most
/// `limit + 1` rows, each with its sort key (for the next page token).
pub async fn select_page(
    conn: &mut AnyConnection,
    filter: Option<&SqlBuilder>,
    order: &[itsm_store::query::OrderTerm],
    after: Option<&[SqlValue]>,
    limit: usize,
) -> Result<Vec<(StoredCi, Vec<SqlValue>)>, StoreError> {
    let tie_descending = order.first().is_some_and(|t| t.descending);
    let mut key: Vec<SortColumn<'_>> = order
        .iter()
        .map(|t| SortColumn {
            column: t.field.column,
            descending: t.descending,
        })
        .collect();
    key.push(SortColumn {
        column: "c.id",
        descending: tie_descending,
    });
    let mut sql = SqlBuilder::new(format!("SELECT {COLUMNS}"));
    for (i, term) in order.iter().enumerate() {
        // Integers read back as BIGINT on every backend (status is INTEGER).
        match term.field.kind {
            FieldKind::Text => sql.push(&format!(", {} AS k{i}", term.field.column)),
            _ => sql.push(&format!(", CAST({} AS BIGINT) AS k{i}", term.field.column)),
        };
    }
    sql.push(" FROM cis c WHERE 1 = 1");
    if let Some(filter) = filter {
        sql.push(" AND ").append(filter);
    }
    if let Some(after) = after {
        sql.push(" AND ");
        page::push_after(&mut sql, &key, after);
    }
    page::push_order_by(&mut sql, &key);
    sql.push(" LIMIT ")
        .push_bind(i64::try_from(limit + 1).unwrap_or(i64::MAX));
    let rows = itsm_store::db::query(&sql).fetch_all(conn).await?;
    rows.iter()
        .map(|row| {
            let stored = from_row(row)?;
            let mut values = Vec::with_capacity(order.len() + 1);
            for (i, term) in order.iter().enumerate() {
                let column = format!("k{i}");
                values.push(match term.field.kind {
                    FieldKind::Text => SqlValue::Text(row.try_get(column.as_str())?),
                    _ => SqlValue::Int(row.try_get(column.as_str())?),
                });
            }
            values.push(SqlValue::Int(stored.id));
            Ok((stored, values))
        })
        .collect()
}
