//! A CI's history (`ListCiHistory`) and point-in-time reads (`GetCiAsOf`).

use itsm_platform::{ApiError, Violations};
use itsm_proto::itsm::cmdb::v1 as pb;
use itsm_proto::itsm::common::v1 as common;
use itsm_store::audit::timestamp;
use itsm_store::page::{self, SortColumn};
use itsm_store::query::{
    Comparison, Expr, Field, FieldKind, Op, QueryError, Schema, Value, parse_filter, parse_order_by,
};
use itsm_store::{SqlBuilder, SqlValue, StoreError};

use super::CmdbApi;
use super::call::Call;
use super::cis::load_or_not_found;
use crate::store::cis::{micros, select_version_at};
use crate::store::history::{self, Entry};
use crate::write::source_name;

/// What a history filter may name besides `field` (compiled here), and
/// what order_by may sort on.
static HISTORY: Schema = Schema {
    resource: "ci history entry",
    fields: &[
        Field {
            name: "action",
            column: "h.action",
            kind: FieldKind::Text,
            sortable: false,
        },
        Field {
            name: "discovery_source",
            column: "h.source",
            kind: FieldKind::Text,
            sortable: false,
        },
        Field {
            name: "time",
            column: "h.time",
            kind: FieldKind::Timestamp,
            sortable: true,
        },
    ],
};

fn error(position: usize, message: impl Into<String>) -> QueryError {
    QueryError {
        field: "filter",
        position,
        message: message.into(),
    }
}

fn write(expr: &Expr, out: &mut SqlBuilder) -> Result<(), QueryError> {
    match expr {
        Expr::And(operands) | Expr::Or(operands) => {
            let separator = if matches!(expr, Expr::And(_)) {
                " AND "
            } else {
                " OR "
            };
            out.push("(");
            if operands.is_empty() {
                out.push("1 = 1");
            }
            for (i, operand) in operands.iter().enumerate() {
                if i > 0 {
                    out.push(separator);
                }
                write(operand, out)?;
            }
            out.push(")");
        }
        Expr::Not(operand) => {
            out.push("NOT (");
            write(operand, out)?;
            out.push(")");
        }
        Expr::Compare(c) if c.field == "field" => write_field(c, out)?,
        Expr::Compare(c) => {
            if HISTORY.field(&c.field).is_none() {
                return Err(error(
                    c.field_pos,
                    format!(
                        "unknown field \"{}\" (fields: field, action, discovery_source, time)",
                        c.field
                    ),
                ));
            }
            let mut c = c.clone();
            if c.field == "discovery_source"
                && let Value::String(text) | Value::Name(text) = &c.value
            {
                let id = text.strip_prefix("discoverySources/").unwrap_or(text);
                c.value = Value::String(id.to_owned());
            }
            Expr::Compare(c).compile(&HISTORY, out)?;
        }
    }
    Ok(())
}

/// `field = "attributes.ip_address"`: entries that changed that field.
fn write_field(c: &Comparison, out: &mut SqlBuilder) -> Result<(), QueryError> {
    let (Value::String(name) | Value::Name(name)) = &c.value else {
        return Err(error(
            c.value_pos,
            "field takes a field path in quotes, e.g. \"attributes.ip_address\"",
        ));
    };
    let negate = match c.op {
        Op::Eq | Op::Has => false,
        Op::Ne => true,
        _ => return Err(error(c.op_pos, "field takes = or !=")),
    };
    let mut pattern = String::from("%|");
    for ch in name.chars() {
        if matches!(ch, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(ch);
    }
    pattern.push_str("|%");
    out.push(if negate {
        "(h.fields NOT LIKE "
    } else {
        "(h.fields LIKE "
    })
    .push_bind(pattern)
    .push(" ESCAPE '\\')");
    Ok(())
}

/// An entry as the API shows it, under the CI named `ci`.
fn entry(ci: &str, e: Entry) -> pb::CiHistoryEntry {
    pb::CiHistoryEntry {
        entry: Some(common::AuditEntry {
            name: format!("{ci}/history/{}", e.id),
            resource: ci.to_owned(),
            action: e.action,
            actor: Some(e.actor.to_proto()),
            time: Some(timestamp(e.time)),
            changes: e
                .changes
                .into_iter()
                .map(|c| common::FieldChange {
                    field: c.field,
                    old_value: c.old,
                    new_value: c.new,
                })
                .collect(),
            request_id: e.request_id,
        }),
        discovery_source: source_name(&e.source),
        relationship: e.relationship,
    }
}

impl CmdbApi {
    pub(super) async fn get_ci_as_of(
        &self,
        _call: &Call,
        request: pb::GetCiAsOfRequest,
    ) -> Result<pb::Ci, ApiError> {
        let mut violations = Violations::new();
        if crate::ci_uid(&request.name).is_none() {
            violations.add(
                "name",
                format!(
                    "\"{}\" is not a CI name; expected \"cis/<uuid>\"",
                    request.name
                ),
            );
        }
        violations.check(
            request.read_time.is_some(),
            "read_time",
            "is required: the instant to read the CI at",
        );
        violations.into_result()?;
        let at = micros(request.read_time.as_ref());
        let mut conn = self.db.pool().acquire().await.map_err(StoreError::from)?;
        let stored = load_or_not_found(&mut conn, &request.name, "").await?;
        select_version_at(&mut conn, stored.id, at)
            .await?
            .ok_or_else(|| {
                ApiError::not_found(format!("{} at the requested read_time", request.name))
            })
    }

    pub(super) async fn list_ci_history(
        &self,
        _call: &Call,
        request: pb::ListCiHistoryRequest,
    ) -> Result<pb::ListCiHistoryResponse, ApiError> {
        if crate::ci_uid(&request.parent).is_none() {
            return Err(ApiError::invalid_field(
                "parent",
                format!(
                    "\"{}\" is not a CI name; expected \"cis/<uuid>\"",
                    request.parent
                ),
            ));
        }
        let limit = page::page_size(request.page_size)?;
        let expr = parse_filter(&request.filter)?;
        let mut predicate = SqlBuilder::default();
        if let Some(expr) = &expr {
            write(expr, &mut predicate)?;
        }
        let order = parse_order_by(&request.order_by, &HISTORY)?;
        let descending = order.first().is_some_and(|t| t.descending);
        let fingerprint = format!(
            "ci_history\u{0}{}\u{0}{}\u{0}{descending}",
            request.parent,
            expr.as_ref().map(ToString::to_string).unwrap_or_default()
        );
        let tokens = self.tokens().await?;
        let mut conn = self.db.pool().acquire().await.map_err(StoreError::from)?;
        let ci = load_or_not_found(&mut conn, &request.parent, "").await?;

        let key = [
            SortColumn {
                column: "h.time",
                descending,
            },
            SortColumn {
                column: "h.id",
                descending,
            },
        ];
        let mut sql = SqlBuilder::new(format!(
            "SELECT {} FROM ci_history h WHERE h.ci_id = ",
            history::COLUMNS
        ));
        sql.push_bind(ci.id);
        if expr.is_some() {
            sql.push(" AND ").append(&predicate);
        }
        if !request.page_token.is_empty() {
            let after = tokens.decode(&request.page_token, &fingerprint)?;
            if after.len() != key.len() {
                return Err(ApiError::invalid_field(
                    "page_token",
                    "does not match this list's order; start again without a page_token",
                ));
            }
            sql.push(" AND ");
            page::push_after(&mut sql, &key, &after);
        }
        page::push_order_by(&mut sql, &key);
        sql.push(" LIMIT ")
            .push_bind(i64::try_from(limit + 1).unwrap_or(i64::MAX));
        let rows = itsm_store::db::query(&sql)
            .fetch_all(&mut *conn)
            .await
            .map_err(StoreError::from)?;
        let mut entries = rows
            .iter()
            .map(history::from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let mut next_page_token = String::new();
        if entries.len() > limit {
            entries.truncate(limit);
            if let Some(last) = entries.last() {
                let after = [SqlValue::Int(last.time), SqlValue::Int(last.id)];
                next_page_token = tokens.encode(&fingerprint, &after);
            }
        }
        let name = ci.ci.name;
        Ok(pb::ListCiHistoryResponse {
            entries: entries.into_iter().map(|e| entry(&name, e)).collect(),
            next_page_token,
        })
    }
}
