//! Parked matches (`parked_matches`): reported items reconciliation would not
//! guess about. `doc` is the `ParkedMatch` with its `etag`; `source` holds the
//! source's name ("discoverySources/sccm"), so a filter on
//! `discovery_source` compares it directly. At most one OPEN match per
//! (source, correlation id).

use itsm_platform::ApiError;
use itsm_proto::itsm::cmdb::v1 as pb;
use itsm_store::list::{ListRequest, ListSpec};
use itsm_store::page::PageTokens;
use itsm_store::query::{Field, FieldKind, Schema};
use itsm_store::{SqlBuilder, StoreError};
use prost::Message as _;
use sqlx::{AnyConnection, Row as _};

use super::cis::micros;

const STATES: &[(&str, i64)] = &[("OPEN", 1), ("RESOLVED", 2), ("DISCARDED", 3)];
const REASONS: &[(&str, i64)] = &[
    ("MULTIPLE_MATCHES", 1),
    ("CONFLICTING_RULES", 2),
    ("CLASS_MISMATCH", 3),
    ("RETIRED_MATCH", 4),
];

/// What a parked match list's `filter` and `order_by` may name.
static SCHEMA: Schema = Schema {
    resource: "parked match",
    fields: &[
        Field {
            name: "state",
            column: "state",
            kind: FieldKind::Enum(STATES),
            sortable: false,
        },
        Field {
            name: "reason",
            column: "reason",
            kind: FieldKind::Enum(REASONS),
            sortable: false,
        },
        Field {
            name: "discovery_source",
            column: "source",
            kind: FieldKind::Text,
            sortable: false,
        },
        Field {
            name: "correlation_id",
            column: "correlation_id",
            kind: FieldKind::Text,
            sortable: false,
        },
        Field {
            name: "first_report_time",
            column: "first_report_at",
            kind: FieldKind::Timestamp,
            sortable: true,
        },
        Field {
            name: "last_report_time",
            column: "last_report_at",
            kind: FieldKind::Timestamp,
            sortable: true,
        },
    ],
};

const LIST: ListSpec = ListSpec {
    schema: &SCHEMA,
    select: "SELECT id, first_report_at, last_report_at, doc FROM parked_matches",
    id_column: "id",
    default_order: "first_report_time",
};

/// A parked match as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredMatch {
    pub id: i64,
    pub version: i64,
    pub parked: pb::ParkedMatch,
}

fn stored(row: &sqlx::any::AnyRow) -> Result<StoredMatch, StoreError> {
    let doc: Vec<u8> = row.try_get("doc")?;
    Ok(StoredMatch {
        id: row.try_get("id")?,
        version: row.try_get("version")?,
        parked: super::decode("parked_matches", &doc)?,
    })
}

/// Inserts a new match (version 1) with uid `uid`; returns its internal id.
pub async fn insert(
    conn: &mut AnyConnection,
    uid: &str,
    parked: &pb::ParkedMatch,
) -> Result<i64, StoreError> {
    let correlation_id = parked
        .reported
        .as_ref()
        .map(|r| r.correlation_id.as_str())
        .unwrap_or_default();
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO parked_matches (uid, source, correlation_id, state, reason, \
         first_report_at, last_report_at, version, doc) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8) RETURNING id",
    )
    .bind(uid)
    .bind(&parked.discovery_source)
    .bind(correlation_id)
    .bind(parked.state)
    .bind(parked.reason)
    .bind(micros(parked.first_report_time.as_ref()))
    .bind(micros(parked.last_report_time.as_ref()))
    .bind(parked.encode_to_vec())
    .fetch_one(conn)
    .await?;
    Ok(id)
}

/// The match of `uid`, read with `lock`.
pub async fn select(
    conn: &mut AnyConnection,
    uid: &str,
    lock: &str,
) -> Result<Option<StoredMatch>, StoreError> {
    let sql = format!("SELECT id, version, doc FROM parked_matches WHERE uid = $1{lock}");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(uid)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(stored).transpose()
}

/// The OPEN match of (source name, correlation id), read with `lock`.
pub async fn select_open(
    conn: &mut AnyConnection,
    source: &str,
    correlation_id: &str,
    lock: &str,
) -> Result<Option<StoredMatch>, StoreError> {
    let sql = format!(
        "SELECT id, version, doc FROM parked_matches \
         WHERE source = $1 AND correlation_id = $2 AND state = 1{lock}"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(source)
        .bind(correlation_id)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(stored).transpose()
}

/// Writes a changed match at `version`, if it is still at `previous`.
pub async fn update(
    conn: &mut AnyConnection,
    id: i64,
    parked: &pb::ParkedMatch,
    version: i64,
    previous: i64,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE parked_matches SET state = $1, reason = $2, last_report_at = $3, version = $4, \
         doc = $5 WHERE id = $6 AND version = $7",
    )
    .bind(parked.state)
    .bind(parked.reason)
    .bind(micros(parked.last_report_time.as_ref()))
    .bind(version)
    .bind(parked.encode_to_vec())
    .bind(id)
    .bind(previous)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// One page of matches; `conditions` adds the default `state = OPEN` when the
/// filter names no state.
pub async fn select_page(
    conn: &mut AnyConnection,
    request: &ListRequest<'_>,
    tokens: &PageTokens,
    only_open: bool,
) -> Result<(Vec<pb::ParkedMatch>, String), ApiError> {
    let plan = LIST.plan(request, tokens, |sql: &mut SqlBuilder| {
        if only_open {
            sql.push("state = 1");
        }
    })?;
    let rows = itsm_store::db::query(plan.sql())
        .fetch_all(conn)
        .await
        .map_err(StoreError::from)?;
    let page = plan.finish(rows, tokens)?;
    let found = page
        .rows
        .iter()
        .map(|row| {
            let doc: Vec<u8> = row.try_get("doc")?;
            super::decode("parked_matches", &doc)
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok((found, page.next_page_token))
}
