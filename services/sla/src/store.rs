//! The SLA service's tables. Functions take a connection or transaction; the
//! use case owns the transaction. Resources are stored as their protobuf
//! message (`doc`) with copies of the columns queries filter, sort or join on.
//!
//! - [`calendars`]: calendars and their versions.
//! - [`definitions`]: SLA definitions and their versions.
//! - [`task_slas`]: task SLAs as lists read them; [`reports`]: compliance
//!   counts and breach pages.
//! - [`operations`]: long-running recomputations and their progress.

use itsm_store::StoreError;
use prost::Message;

/// Decodes a stored protobuf `doc`; a row that does not decode is a bug or a
/// corrupted row, reported as a store error naming the table.
pub fn decode<M: Message + Default>(table: &str, doc: &[u8]) -> Result<M, StoreError> {
    M::decode(doc).map_err(|e| {
        let message = format!("{table}.doc does not decode: {e}");
        StoreError::Database(sqlx::Error::Decode(message.into()))
    })
}

pub mod calendars;
pub mod definitions;
pub mod operations;
pub mod reports;
pub mod task_slas;
pub mod versioned;

use itsm_platform::ApiError;
use itsm_store::page::{self, PageTokens, SortColumn};
use itsm_store::query::{FieldKind, Schema, SqlBuilder, SqlValue, filter_sql, parse_order_by};
use itsm_store::{Db, query};
use sqlx::Row;
use sqlx::any::AnyRow;

/// A keyset-paged list: what it reads, which rows belong to it, and how it
/// may be filtered and ordered.
#[derive(Debug)]
pub struct Keyset<'a> {
    /// `SELECT <columns> FROM <table>`; the key columns are added to it.
    pub select: &'a str,
    /// Conditions every row of the list meets (empty: none), before the filter.
    pub base: SqlBuilder,
    /// What `filter` may name.
    pub filter_schema: &'static Schema,
    /// What `order_by` may name (often the same schema).
    pub order_schema: &'static Schema,
    /// The order when the request gives none.
    pub default_order: &'a str,
    /// The unique column that breaks ties, and its kind.
    pub tie: (&'static str, FieldKind),
    /// What a page token is bound to besides the filter and the order (the
    /// period of a report, say): a token from another scope is refused.
    pub scope: String,
}

/// A keyset page of `list`: the request's `filter` and `order_by`, rows
/// after the page token, one more row than the page to know whether another
/// follows. Returns the page's rows and the next page's token ("" at the end).
pub async fn select_keyset_page(
    db: &Db,
    list: Keyset<'_>,
    request: &itsm_store::list::ListRequest<'_>,
    tokens: &PageTokens,
) -> Result<(Vec<AnyRow>, String), ApiError> {
    let limit = page::page_size(request.page_size)?;
    let mut terms = parse_order_by(request.order_by, list.order_schema)?;
    if terms.is_empty() {
        terms = parse_order_by(list.default_order, list.order_schema)?;
    }
    let descending = terms.first().is_some_and(|t| t.descending);
    let mut key: Vec<(&'static str, FieldKind, bool)> = terms
        .iter()
        .map(|t| (t.field.column, t.field.kind, t.descending))
        .collect();
    if !key.iter().any(|(column, _, _)| *column == list.tie.0) {
        key.push((list.tie.0, list.tie.1, descending));
    }
    let fingerprint = format!(
        "{}\u{0}{}\u{0}{}\u{0}{}",
        list.filter_schema.resource,
        list.scope,
        request.filter.trim(),
        terms
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")
    );
    // Each key value as k0, k1, ...: columns and expressions alike.
    let keys = key
        .iter()
        .enumerate()
        .map(|(i, (column, _, _))| format!("{column} AS k{i}"))
        .collect::<Vec<_>>()
        .join(", ");
    let rest = list.select.strip_prefix("SELECT ").unwrap_or(list.select);
    let mut sql = SqlBuilder::new(format!("SELECT {keys}, {rest} WHERE 1 = 1"));
    if !list.base.sql().is_empty() {
        sql.push(" AND (").append(&list.base).push(")");
    }
    let mut filter = SqlBuilder::default();
    if filter_sql(request.filter, list.filter_schema, &mut filter)? {
        sql.push(" AND (").append(&filter).push(")");
    }
    let columns: Vec<SortColumn<'_>> = key
        .iter()
        .map(|(column, _, descending)| SortColumn {
            column,
            descending: *descending,
        })
        .collect();
    if !request.page_token.is_empty() {
        let after = tokens.decode(request.page_token, &fingerprint)?;
        if after.len() != key.len() {
            return Err(ApiError::invalid_field(
                "page_token",
                "does not match this list's order; start again without a page_token",
            ));
        }
        sql.push(" AND ");
        page::push_after(&mut sql, &columns, &after);
    }
    page::push_order_by(&mut sql, &columns);
    sql.push(" LIMIT ")
        .push_bind(i64::try_from(limit + 1).unwrap_or(i64::MAX));
    let mut conn = db.pool().acquire().await.map_err(StoreError::from)?;
    let mut rows = itsm_store::db::query(&sql)
        .fetch_all(&mut *conn)
        .await
        .map_err(StoreError::from)?;
    let mut next_page_token = String::new();
    if rows.len() > limit {
        rows.truncate(limit);
        if let Some(last) = rows.last() {
            let after = key
                .iter()
                .enumerate()
                .map(|(i, (_, kind, _))| key_value(last, &format!("k{i}"), *kind))
                .collect::<Result<Vec<_>, sqlx::Error>>()
                .map_err(StoreError::from)?;
            next_page_token = tokens.encode(&fingerprint, &after);
        }
    }
    Ok((rows, next_page_token))
}

/// The `doc` of each row.
pub fn docs(rows: &[AnyRow]) -> Result<Vec<Vec<u8>>, ApiError> {
    let docs = rows
        .iter()
        .map(|row| row.try_get::<Vec<u8>, _>("doc"))
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .map_err(StoreError::from)?;
    Ok(docs)
}

/// A keyset page of a table keyed by a TEXT `id` (calendars, definitions)
/// whose deleted rows are hidden: `filter` and `order_by` over `schema`
/// ("name" is the id order). Returns each row's `doc` and the next token.
pub async fn select_text_keyed_page(
    db: &Db,
    select: &str,
    schema: &'static Schema,
    default_order: &str,
    request: &itsm_store::list::ListRequest<'_>,
    tokens: &PageTokens,
) -> Result<(Vec<Vec<u8>>, String), ApiError> {
    let request = itsm_store::list::ListRequest {
        order_by: match request.order_by.trim() {
            "name" | "name asc" => "",
            other => other,
        },
        ..*request
    };
    let list = Keyset {
        select,
        base: SqlBuilder::new("deleted = 0"),
        filter_schema: schema,
        order_schema: schema,
        default_order,
        tie: ("id", FieldKind::Text),
        scope: String::new(),
    };
    let (rows, next_page_token) = select_keyset_page(db, list, &request, tokens).await?;
    Ok((docs(&rows)?, next_page_token))
}

fn key_value(row: &AnyRow, column: &str, kind: FieldKind) -> Result<SqlValue, sqlx::Error> {
    Ok(match kind {
        FieldKind::Text => SqlValue::Text(row.try_get(column)?),
        FieldKind::Float => SqlValue::Float(row.try_get(column)?),
        FieldKind::Bool => SqlValue::Bool(row.try_get::<i32, _>(column)? != 0),
        FieldKind::Int | FieldKind::Timestamp | FieldKind::Enum(_) => {
            SqlValue::Int(row.try_get(column)?)
        }
    })
}

/// A `Text` field of a list schema whose column has the same name.
pub(crate) const fn text_field(name: &'static str, sortable: bool) -> query::Field {
    query::Field {
        name,
        column: name,
        kind: FieldKind::Text,
        sortable,
    }
}
