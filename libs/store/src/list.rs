//! List methods in one place: `filter`, `order_by`, `page_size` and
//! `page_token` turned into one keyset query, and the next page token taken
//! from the last row.
//!
//! ```text
//! SELECT <columns> FROM <table> WHERE (<caller's conditions>) AND (<filter>)
//!     AND (<sort key> after <token's key>) ORDER BY <sort key> LIMIT <page size + 1>
//! ```
//! The sort key is the `order_by` fields (or the default order) plus the
//! resource's unique id, so the order is total; the extra row tells whether
//! another page exists without a COUNT.

use itsm_platform::ApiError;
use itsm_query::{FieldKind, OrderTerm, Schema, SqlBuilder, SqlValue, filter_sql, parse_order_by};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::error::StoreError;
use crate::page::{self, PageTokens, SortColumn};

/// How a resource is listed: fixed per resource, written beside its storage code.
#[derive(Debug, Clone, Copy)]
pub struct ListSpec {
    pub schema: &'static Schema,
    /// `SELECT ... FROM <table>`, without WHERE.
    pub select: &'static str,
    /// The unique column that breaks ties (an INTEGER primary key).
    pub id_column: &'static str,
    /// The order when the request names none, e.g. `create_time desc`.
    pub default_order: &'static str,
}

/// The paging fields of a List request.
#[derive(Debug, Clone, Copy, Default)]
pub struct ListRequest<'a> {
    pub page_size: i32,
    pub page_token: &'a str,
    pub filter: &'a str,
    pub order_by: &'a str,
}

/// A planned list query: run [`ListPlan::sql`], then [`ListPlan::finish`] the rows.
#[derive(Debug)]
pub struct ListPlan {
    sql: SqlBuilder,
    limit: usize,
    key: Vec<(&'static str, FieldKind, bool)>,
    fingerprint: String,
}

/// One page of rows and the token of the next page ("" on the last page).
pub struct Page {
    pub rows: Vec<AnyRow>,
    pub next_page_token: String,
}

impl std::fmt::Debug for Page {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Page")
            .field("rows", &self.rows.len())
            .field("next_page_token", &self.next_page_token)
            .finish()
    }
}

impl ListSpec {
    /// Plans the query for `request`. `conditions` appends the caller's own
    /// predicates (row-level rules such as "callers see their own tickets"),
    /// or nothing; it must push a complete boolean expression when it pushes.
    pub fn plan(
        &self,
        request: &ListRequest<'_>,
        tokens: &PageTokens,
        conditions: impl FnOnce(&mut SqlBuilder),
    ) -> Result<ListPlan, ApiError> {
        let limit = page::page_size(request.page_size)?;
        let mut terms = parse_order_by(request.order_by, self.schema)?;
        if terms.is_empty() {
            terms = parse_order_by(self.default_order, self.schema)?;
        }
        // The tie-breaker follows the first term's direction, so a one-direction
        // key stays a row comparison an index can serve.
        let tie_descending = terms.first().is_some_and(|t| t.descending);
        let mut key: Vec<(&'static str, FieldKind, bool)> = terms
            .iter()
            .map(|OrderTerm { field, descending }| (field.column, field.kind, *descending))
            .collect();
        key.push((self.id_column, FieldKind::Int, tie_descending));
        let fingerprint = format!(
            "{}\u{0}{}\u{0}{}",
            self.schema.resource,
            request.filter.trim(),
            terms
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")
        );

        let mut sql = SqlBuilder::new(self.select);
        sql.push(" WHERE 1 = 1");
        let mut extra = SqlBuilder::default();
        conditions(&mut extra);
        if !extra.sql().is_empty() {
            sql.push(" AND (");
            sql.append(&extra);
            sql.push(")");
        }
        let mut filter = SqlBuilder::default();
        if filter_sql(request.filter, self.schema, &mut filter)? {
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
        Ok(ListPlan {
            sql,
            limit,
            key,
            fingerprint,
        })
    }
}

impl ListPlan {
    /// The statement to run.
    pub fn sql(&self) -> &SqlBuilder {
        &self.sql
    }

    /// Keeps one page of `rows` (as fetched with [`ListPlan::sql`]) and makes
    /// the next page's token from the last row's sort key.
    pub fn finish(&self, mut rows: Vec<AnyRow>, tokens: &PageTokens) -> Result<Page, StoreError> {
        if rows.len() <= self.limit {
            return Ok(Page {
                rows,
                next_page_token: String::new(),
            });
        }
        rows.truncate(self.limit);
        let next_page_token = match rows.last() {
            Some(last) => {
                let after = self
                    .key
                    .iter()
                    .map(|(column, kind, _)| key_value(last, column, *kind))
                    .collect::<Result<Vec<_>, sqlx::Error>>()?;
                tokens.encode(&self.fingerprint, &after)
            }
            None => String::new(),
        };
        Ok(Page {
            rows,
            next_page_token,
        })
    }
}

fn key_value(row: &AnyRow, column: &str, kind: FieldKind) -> Result<SqlValue, sqlx::Error> {
    Ok(match kind {
        FieldKind::Text => SqlValue::Text(row.try_get(column)?),
        FieldKind::Float => SqlValue::Float(row.try_get(column)?),
        FieldKind::Bool => SqlValue::Bool(row.try_get(column)?),
        FieldKind::Int | FieldKind::Timestamp | FieldKind::Enum(_) => {
            SqlValue::Int(row.try_get(column)?)
        }
    })
}
