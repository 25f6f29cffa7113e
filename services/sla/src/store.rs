//! The SLA service's tables. Functions take a connection or transaction; the
//! use case owns the transaction. Resources are stored as their protobuf
//! message (`doc`) with copies of the columns queries filter, sort or join on.
//!
//! - [`calendars`]: calendars and their versions.
//! - [`definitions`]: SLA definitions and their versions.

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
pub mod task_slas;
pub mod versioned;

use itsm_platform::ApiError;
use itsm_store::page::{self, PageTokens, SortColumn};
use itsm_store::query::{FieldKind, Schema, SqlBuilder, SqlValue, filter_sql, parse_order_by};
use itsm_store::{Db, query};
use sqlx::Row;
use sqlx::any::AnyRow;

/// A keyset page of rows of a table whose unique key is a TEXT `id` column
/// (calendars, definitions): `filter` and `order_by` over `schema`, ties broken
/// by `id`. Returns the `doc` of each row and the next page's token.
pub async fn select_text_keyed_page(
    db: &Db,
    select: &str,
    schema: &'static Schema,
    default_order: &str,
    request: &itsm_store::list::ListRequest<'_>,
    tokens: &PageTokens,
) -> Result<(Vec<Vec<u8>>, String), ApiError> {
    let limit = page::page_size(request.page_size)?;
    // "name" is the id order: the tie-breaker alone.
    let order_by = match request.order_by.trim() {
        "name" | "name asc" => "",
        other => other,
    };
    let mut terms = parse_order_by(order_by, schema)?;
    if terms.is_empty() {
        terms = parse_order_by(default_order, schema)?;
    }
    let descending = terms.first().is_some_and(|t| t.descending);
    let mut key: Vec<(&'static str, FieldKind, bool)> = terms
        .iter()
        .map(|t| (t.field.column, t.field.kind, t.descending))
        .collect();
    if !key.iter().any(|(column, _, _)| *column == "id") {
        key.push(("id", FieldKind::Text, descending));
    }
    let fingerprint = format!(
        "{}\u{0}{}\u{0}{}",
        schema.resource,
        request.filter.trim(),
        terms
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")
    );
    let mut sql = SqlBuilder::new(select);
    sql.push(" WHERE deleted = 0");
    let mut filter = SqlBuilder::default();
    if filter_sql(request.filter, schema, &mut filter)? {
        sql.push(" AND ");
        sql.append(&filter);
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
                .map(|(column, kind, _)| key_value(last, column, *kind))
                .collect::<Result<Vec<_>, sqlx::Error>>()
                .map_err(StoreError::from)?;
            next_page_token = tokens.encode(&fingerprint, &after);
        }
    }
    let docs = rows
        .iter()
        .map(|row| row.try_get::<Vec<u8>, _>("doc"))
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .map_err(StoreError::from)?;
    Ok((docs, next_page_token))
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
