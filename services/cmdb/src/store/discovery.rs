//! Discovery sources (`discovery_sources`, keyed by their id, "sccm") and
//! precedence rules (`precedence_rules`, keyed by uid, unique per
//! (class id, field)). Both keep their protobuf message in `doc` with its
//! `etag` and times; the columns are copies for lookups and lists.

use itsm_platform::ApiError;
use itsm_proto::itsm::cmdb::v1 as pb;
use itsm_store::list::{ListRequest, ListSpec};
use itsm_store::page::{self, PageTokens, SortColumn};
use itsm_store::query::{Field, FieldKind, Schema, filter_sql};
use itsm_store::{SqlBuilder, SqlValue, StoreError};
use prost::Message as _;
use sqlx::{AnyConnection, Row as _};

/// What a source list's `filter` may name.
static SOURCE_SCHEMA: Schema = Schema {
    resource: "discovery source",
    fields: &[Field {
        name: "enabled",
        column: "(enabled = 1)",
        kind: FieldKind::Bool,
        sortable: false,
    }],
};

/// What a rule list's `filter` and `order_by` may name.
static RULE_SCHEMA: Schema = Schema {
    resource: "precedence rule",
    fields: &[
        Field {
            name: "ci_class",
            column: "ci_class_name",
            kind: FieldKind::Text,
            sortable: false,
        },
        Field {
            name: "field",
            column: "field",
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

const RULES: ListSpec = ListSpec {
    schema: &RULE_SCHEMA,
    select: "SELECT id, created_at, doc FROM (SELECT id, created_at, field, doc, \
             'classes/' || ci_class AS ci_class_name FROM precedence_rules) r",
    id_column: "id",
    default_order: "create_time",
};

/// Inserts a new source (`version` 1); a duplicate id is a unique violation.
pub async fn insert_source(
    conn: &mut AnyConnection,
    id: &str,
    source: &pb::DiscoverySource,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO discovery_sources (id, enabled, created_at, updated_at, version, doc) \
         VALUES ($1, $2, $3, $3, 1, $4)",
    )
    .bind(id)
    .bind(i32::from(source.enabled))
    .bind(now)
    .bind(source.encode_to_vec())
    .execute(conn)
    .await?;
    Ok(())
}

/// The source `id` and its version, read with `lock`.
pub async fn select_source(
    conn: &mut AnyConnection,
    id: &str,
    lock: &str,
) -> Result<Option<(i64, pb::DiscoverySource)>, StoreError> {
    let sql = format!("SELECT version, doc FROM discovery_sources WHERE id = $1{lock}");
    let row: Option<(i64, Vec<u8>)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(conn)
        .await?;
    row.map(|(version, doc)| Ok((version, super::decode("discovery_sources", &doc)?)))
        .transpose()
}

/// Every source, by id.
pub async fn select_all_sources(
    conn: &mut AnyConnection,
) -> Result<Vec<pb::DiscoverySource>, StoreError> {
    let docs: Vec<Vec<u8>> = sqlx::query_scalar("SELECT doc FROM discovery_sources ORDER BY id")
        .fetch_all(conn)
        .await?;
    docs.iter()
        .map(|d| super::decode("discovery_sources", d))
        .collect()
}

/// Writes a changed source at `version`, if it is still at `previous`.
pub async fn update_source(
    conn: &mut AnyConnection,
    id: &str,
    source: &pb::DiscoverySource,
    version: i64,
    previous: i64,
    now: i64,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE discovery_sources SET enabled = $1, updated_at = $2, version = $3, doc = $4 \
         WHERE id = $5 AND version = $6",
    )
    .bind(i32::from(source.enabled))
    .bind(now)
    .bind(version)
    .bind(source.encode_to_vec())
    .bind(id)
    .bind(previous)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Rewrites a source's message without a new version (its `last_report_time`).
pub async fn save_source_unversioned(
    conn: &mut AnyConnection,
    id: &str,
    source: &pb::DiscoverySource,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE discovery_sources SET doc = $1 WHERE id = $2")
        .bind(source.encode_to_vec())
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn delete_source(conn: &mut AnyConnection, id: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM discovery_sources WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// One page of sources by id (`filter` may name `enabled`).
pub async fn select_source_page(
    conn: &mut AnyConnection,
    request: &ListRequest<'_>,
    tokens: &PageTokens,
) -> Result<(Vec<pb::DiscoverySource>, String), ApiError> {
    if !request.order_by.trim().is_empty() && request.order_by.trim() != "name" {
        return Err(ApiError::invalid_field(
            "order_by",
            "discovery sources are listed by name only",
        ));
    }
    let limit = page::page_size(request.page_size)?;
    let fingerprint = format!("discovery source\u{0}{}", request.filter.trim());
    let mut sql = SqlBuilder::new("SELECT id, doc FROM discovery_sources WHERE 1 = 1");
    let mut filter = SqlBuilder::default();
    if filter_sql(request.filter, &SOURCE_SCHEMA, &mut filter)? {
        sql.push(" AND ");
        sql.append(&filter);
    }
    let columns = [SortColumn {
        column: "id",
        descending: false,
    }];
    if !request.page_token.is_empty() {
        let after = tokens.decode(request.page_token, &fingerprint)?;
        if after.len() != 1 {
            return Err(ApiError::invalid_field(
                "page_token",
                "does not match this list; start again without a page_token",
            ));
        }
        sql.push(" AND ");
        page::push_after(&mut sql, &columns, &after);
    }
    page::push_order_by(&mut sql, &columns);
    sql.push(" LIMIT ")
        .push_bind(i64::try_from(limit + 1).unwrap_or(i64::MAX));
    let rows = itsm_store::db::query(&sql)
        .fetch_all(conn)
        .await
        .map_err(StoreError::from)?;
    let mut out = Vec::new();
    let mut last = String::new();
    for row in rows.iter().take(limit) {
        last = row.try_get::<String, _>(0).map_err(StoreError::from)?;
        let doc: Vec<u8> = row.try_get(1).map_err(StoreError::from)?;
        out.push(super::decode("discovery_sources", &doc)?);
    }
    let next = if rows.len() > limit {
        tokens.encode(&fingerprint, &[SqlValue::Text(last)])
    } else {
        String::new()
    };
    Ok((out, next))
}

/// Inserts a new rule (`version` 1) of class id `class`; returns its internal
/// id. A second rule for the same (class, field) is a unique violation.
pub async fn insert_rule(
    conn: &mut AnyConnection,
    uid: &str,
    class: &str,
    rule: &pb::PrecedenceRule,
    now: i64,
) -> Result<i64, StoreError> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO precedence_rules (uid, ci_class, field, created_at, updated_at, version, doc) \
         VALUES ($1, $2, $3, $4, $4, 1, $5) RETURNING id",
    )
    .bind(uid)
    .bind(class)
    .bind(&rule.field)
    .bind(now)
    .bind(rule.encode_to_vec())
    .fetch_one(conn)
    .await?;
    Ok(id)
}

/// Whether a rule other than `uid` exists for (class id, field).
pub async fn rule_exists(
    conn: &mut AnyConnection,
    class: &str,
    field: &str,
    uid: &str,
) -> Result<bool, StoreError> {
    let found: Option<i64> = sqlx::query_scalar(
        "SELECT id FROM precedence_rules WHERE ci_class = $1 AND field = $2 AND uid <> $3",
    )
    .bind(class)
    .bind(field)
    .bind(uid)
    .fetch_optional(conn)
    .await?;
    Ok(found.is_some())
}

/// The rule of `uid` and its version, read with `lock`.
pub async fn select_rule(
    conn: &mut AnyConnection,
    uid: &str,
    lock: &str,
) -> Result<Option<(i64, pb::PrecedenceRule)>, StoreError> {
    let sql = format!("SELECT version, doc FROM precedence_rules WHERE uid = $1{lock}");
    let row: Option<(i64, Vec<u8>)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(uid)
        .fetch_optional(conn)
        .await?;
    row.map(|(version, doc)| Ok((version, super::decode("precedence_rules", &doc)?)))
        .transpose()
}

/// The rules of these class ids.
pub async fn select_rules_of(
    conn: &mut AnyConnection,
    classes: &[&str],
) -> Result<Vec<pb::PrecedenceRule>, StoreError> {
    if classes.is_empty() {
        return Ok(Vec::new());
    }
    let mut sql = SqlBuilder::new("SELECT doc FROM precedence_rules WHERE ci_class IN ");
    sql.push_bind_list(classes.iter().map(|c| SqlValue::Text((*c).to_owned())));
    let rows = itsm_store::db::query(&sql).fetch_all(conn).await?;
    rows.iter()
        .map(|row| {
            let doc: Vec<u8> = row.try_get(0)?;
            super::decode("precedence_rules", &doc)
        })
        .collect()
}

/// Every rule.
pub async fn select_all_rules(
    conn: &mut AnyConnection,
) -> Result<Vec<pb::PrecedenceRule>, StoreError> {
    let docs: Vec<Vec<u8>> = sqlx::query_scalar("SELECT doc FROM precedence_rules")
        .fetch_all(conn)
        .await?;
    docs.iter()
        .map(|d| super::decode("precedence_rules", d))
        .collect()
}

/// Writes a changed rule at `version`, if it is still at `previous`.
pub async fn update_rule(
    conn: &mut AnyConnection,
    uid: &str,
    class: &str,
    rule: &pb::PrecedenceRule,
    version: i64,
    previous: i64,
    now: i64,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE precedence_rules SET ci_class = $1, field = $2, updated_at = $3, version = $4, \
         doc = $5 WHERE uid = $6 AND version = $7",
    )
    .bind(class)
    .bind(&rule.field)
    .bind(now)
    .bind(version)
    .bind(rule.encode_to_vec())
    .bind(uid)
    .bind(previous)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn delete_rule(conn: &mut AnyConnection, uid: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM precedence_rules WHERE uid = $1")
        .bind(uid)
        .execute(conn)
        .await?;
    Ok(())
}

/// One page of rules (`filter` may name `ci_class` and `field`).
pub async fn select_rule_page(
    conn: &mut AnyConnection,
    request: &ListRequest<'_>,
    tokens: &PageTokens,
) -> Result<(Vec<pb::PrecedenceRule>, String), ApiError> {
    let plan = RULES.plan(request, tokens, |_| {})?;
    let rows = itsm_store::db::query(plan.sql())
        .fetch_all(conn)
        .await
        .map_err(StoreError::from)?;
    let page = plan.finish(rows, tokens)?;
    let rules = page
        .rows
        .iter()
        .map(|row| {
            let doc: Vec<u8> = row.try_get("doc")?;
            super::decode("precedence_rules", &doc)
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok((rules, page.next_page_token))
}

/// The CI that `source` sighted under `correlation_id`, read with `lock`:
/// the reconciliation fast path (one statement instead of identify + load).
///
/// Lookups of a (source, correlation id) pair say `correlation_id <> ''`:
/// the unique index on the pair is partial (manual edits have no
/// correlation id), and a prepared statement's generic plan may use it only
/// when the query implies its predicate; without it each lookup read every
/// sighting.
pub async fn select_by_correlation(
    conn: &mut AnyConnection,
    source: &str,
    correlation_id: &str,
    lock: &str,
) -> Result<Option<crate::write::StoredCi>, StoreError> {
    let sql = format!(
        "SELECT {} FROM ci_sightings s JOIN cis c ON c.id = s.ci_id \
         WHERE s.source = $1 AND s.correlation_id = $2 AND s.correlation_id <> ''{lock}",
        super::cis::COLUMNS
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(source)
        .bind(correlation_id)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(super::cis::from_row).transpose()
}
