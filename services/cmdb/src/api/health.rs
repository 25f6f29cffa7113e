//! The health report and its findings. The report is recomputed by the job
//! (`crate::jobs::run_health`); `GetHealthReport` computes it once when
//! none was ever stored.

use itsm_platform::ApiError;
use itsm_proto::itsm::cmdb::v1 as pb;
use itsm_store::page::{self, SortColumn};
use itsm_store::query::{Expr, Field, FieldKind, Op, Schema, Value, parse_filter, parse_order_by};
use itsm_store::{SqlBuilder, SqlValue, StoreError};
use sqlx::Row as _;

use super::CmdbApi;
use super::call::Call;
use crate::model::{Model, class_id};
use crate::store::health;

const KINDS: &[(&str, i64)] = &[
    ("DUPLICATE", 1),
    ("ORPHAN", 2),
    ("STALE", 3),
    ("MISSING_REQUIRED", 4),
];

/// What ListHealthIssues may filter and sort on (`ci_class` is matched with
/// its subclasses, outside the schema's own compilation).
static SCHEMA: Schema = Schema {
    resource: "healthIssue",
    fields: &[
        Field {
            name: "kind",
            column: "kind",
            kind: FieldKind::Enum(KINDS),
            sortable: true,
        },
        Field {
            name: "ci",
            column: "ci_uid",
            kind: FieldKind::Text,
            sortable: true,
        },
        Field {
            name: "ci_class",
            column: "ci_class",
            kind: FieldKind::Text,
            sortable: true,
        },
        Field {
            name: "support_group",
            column: "support_group",
            kind: FieldKind::Text,
            sortable: false,
        },
    ],
};

impl CmdbApi {
    pub(super) async fn get_health_report(
        &self,
        _call: &Call,
        _request: pb::GetHealthReportRequest,
    ) -> Result<pb::HealthReport, ApiError> {
        let mut conn = self.db.pool().acquire().await.map_err(StoreError::from)?;
        if let Some(report) = health::select_report(&mut conn).await? {
            return Ok(report);
        }
        let settings = crate::store::settings::load(&mut conn).await?;
        drop(conn);
        let model = self.model().await?;
        health::compute(&self.db, &model, &settings, itsm_store::now_micros()).await
    }

    pub(super) async fn list_health_issues(
        &self,
        _call: &Call,
        request: pb::ListHealthIssuesRequest,
    ) -> Result<pb::ListHealthIssuesResponse, ApiError> {
        let model = self.model().await?;
        let tokens = self.tokens().await?;
        let limit = page::page_size(request.page_size)?;
        let mut terms = parse_order_by(&request.order_by, &SCHEMA)?;
        if terms.is_empty() {
            terms = parse_order_by("kind, ci", &SCHEMA)?;
        }
        // The primary key (kind, ci_uid) completes any order into a total one.
        let descending = terms.first().is_some_and(|t| t.descending);
        let mut key: Vec<(&'static str, bool, bool)> = terms
            .iter()
            .map(|t| (t.field.column, t.descending, t.field.column == "kind"))
            .collect();
        for (column, is_int) in [("kind", true), ("ci_uid", false)] {
            if !key.iter().any(|(c, _, _)| *c == column) {
                key.push((column, descending, is_int));
            }
        }
        let columns: Vec<SortColumn<'_>> = key
            .iter()
            .map(|(column, descending, _)| SortColumn {
                column,
                descending: *descending,
            })
            .collect();
        let fingerprint = format!(
            "healthIssues\u{0}{}\u{0}{}",
            request.filter.trim(),
            terms
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")
        );

        let mut sql =
            SqlBuilder::new("SELECT kind, ci_uid, ci_class, doc FROM health_issues WHERE 1 = 1");
        if let Some(expr) = parse_filter(&request.filter)? {
            sql.push(" AND ");
            compile(&expr, &model, &mut sql)?;
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
            page::push_after(&mut sql, &columns, &after);
        }
        page::push_order_by(&mut sql, &columns);
        sql.push(" LIMIT ")
            .push_bind(i64::try_from(limit + 1).unwrap_or(i64::MAX));

        let mut conn = self.db.pool().acquire().await.map_err(StoreError::from)?;
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
                    .map(|(column, _, is_int)| {
                        Ok(if *is_int {
                            SqlValue::Int(last.try_get(*column)?)
                        } else {
                            SqlValue::Text(last.try_get(*column)?)
                        })
                    })
                    .collect::<Result<Vec<_>, sqlx::Error>>()
                    .map_err(StoreError::from)?;
                next_page_token = tokens.encode(&fingerprint, &after);
            }
        }
        let issues = rows
            .iter()
            .map(|row| {
                let doc: Vec<u8> = row.try_get("doc")?;
                crate::store::decode("health_issues", &doc)
            })
            .collect::<Result<Vec<pb::HealthIssue>, StoreError>>()?;
        Ok(pb::ListHealthIssuesResponse {
            issues,
            next_page_token,
        })
    }
}

/// Compiles a ListHealthIssues filter: `ci_class` as the class and its
/// subclasses, the other fields through the schema.
fn compile(expr: &Expr, model: &Model, out: &mut SqlBuilder) -> Result<(), ApiError> {
    let join = |parts: &[Expr], word: &str, out: &mut SqlBuilder| -> Result<(), ApiError> {
        out.push("(");
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                out.push(word);
            }
            compile(part, model, out)?;
        }
        out.push(")");
        Ok(())
    };
    match expr {
        Expr::And(parts) => join(parts, " AND ", out),
        Expr::Or(parts) => join(parts, " OR ", out),
        Expr::Not(inner) => {
            out.push("NOT (");
            compile(inner, model, out)?;
            out.push(")");
            Ok(())
        }
        Expr::Compare(c) if c.field == "ci_class" => {
            let bad = |message: &str| {
                ApiError::invalid_field("filter", format!("at position {}: {message}", c.value_pos))
            };
            if c.value == Value::Any {
                out.push("ci_class <> ''");
                return Ok(());
            }
            let name = match &c.value {
                Value::String(s) | Value::Name(s) => s.as_str(),
                _ => return Err(bad("ci_class takes a class name, \"classes/<id>\"")),
            };
            let id = class_id(name).unwrap_or(name);
            if model.class(id).is_none() {
                return Err(bad(&format!("\"{name}\" is not a class")));
            }
            let negate = match c.op {
                Op::Eq | Op::Has => false,
                Op::Ne => true,
                _ => return Err(bad("ci_class accepts =, != and : only")),
            };
            out.push(if negate {
                "ci_class NOT IN "
            } else {
                "ci_class IN "
            })
            .push_bind_list(model.descendants(id).into_iter().map(str::to_owned));
            Ok(())
        }
        Expr::Compare(c) if c.field == "ci" => {
            // Stored as the uid; callers name the CI.
            let mut c = c.clone();
            if let Value::String(s) | Value::Name(s) = &mut c.value
                && let Some(uid) = s.strip_prefix("cis/")
            {
                *s = uid.to_owned();
            }
            Expr::Compare(c).compile(&SCHEMA, out)?;
            Ok(())
        }
        Expr::Compare(_) => {
            expr.compile(&SCHEMA, out)?;
            Ok(())
        }
    }
}
