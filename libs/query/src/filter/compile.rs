//! [`Expr`] to a SQL boolean predicate over a [`Schema`]'s columns.
//!
//! Only three things reach the SQL text: column names from the schema (our
//! own source), operators and constants chosen here, and `$N` placeholders.
//! Every value from the filter is bound.

use super::ast::{Comparison, Expr, Op, Value};
use super::literal::{bind_value, shown};
use crate::error::QueryError;
use crate::schema::{Field, FieldKind, Schema};
use crate::sql::{SqlBuilder, SqlValue};

impl Expr {
    /// Appends this filter to `out` as one parenthesized predicate, e.g.
    /// `(state = $1 AND (priority <= $2 OR major = $3))`, ready to follow
    /// `WHERE` or `AND`.
    ///
    /// Fails, leaving `out` untouched, on a field the schema does not list, a
    /// literal the field's kind does not take, or an operator it does not
    /// support; the error points at the offending part of the filter text.
    pub fn compile(&self, schema: &Schema, out: &mut SqlBuilder) -> Result<(), QueryError> {
        // Written to a copy so a failure halfway leaves no partial predicate,
        // while placeholders still number on from those already in `out`.
        let mut sql = out.clone();
        match self {
            Self::And(_) | Self::Or(_) => write(self, schema, &mut sql)?,
            Self::Not(_) | Self::Compare(_) => {
                sql.push("(");
                write(self, schema, &mut sql)?;
                sql.push(")");
            }
        }
        *out = sql;
        Ok(())
    }
}

fn write(expr: &Expr, schema: &Schema, out: &mut SqlBuilder) -> Result<(), QueryError> {
    match expr {
        // Empty AND/OR never come from the parser; give them their identity
        // rather than invalid SQL. `1 = 1` works on every backend.
        Expr::And(operands) if operands.is_empty() => {
            out.push("(1 = 1)");
        }
        Expr::Or(operands) if operands.is_empty() => {
            out.push("(1 = 0)");
        }
        Expr::And(operands) => write_joined(operands, " AND ", schema, out)?,
        Expr::Or(operands) => write_joined(operands, " OR ", schema, out)?,
        Expr::Not(operand) => {
            out.push("NOT ");
            match operand.as_ref() {
                Expr::Compare(_) => {
                    out.push("(");
                    write(operand, schema, out)?;
                    out.push(")");
                }
                // AND and OR bring their own parentheses.
                _ => write(operand, schema, out)?,
            }
        }
        Expr::Compare(comparison) => write_comparison(comparison, schema, out)?,
    }
    Ok(())
}

fn write_joined(
    operands: &[Expr],
    separator: &str,
    schema: &Schema,
    out: &mut SqlBuilder,
) -> Result<(), QueryError> {
    out.push("(");
    for (i, operand) in operands.iter().enumerate() {
        if i > 0 {
            out.push(separator);
        }
        write(operand, schema, out)?;
    }
    out.push(")");
    Ok(())
}

fn write_comparison(
    c: &Comparison,
    schema: &Schema,
    out: &mut SqlBuilder,
) -> Result<(), QueryError> {
    let field = schema.field(&c.field).ok_or_else(|| {
        QueryError::filter(
            c.field_pos,
            format!(
                "unknown field \"{}\" (fields: {})",
                crate::error::excerpt(&c.field),
                schema.field_names()
            ),
        )
    })?;
    let column = field.column;
    match (c.op, &c.value, field.kind) {
        (Op::Has, Value::Any, kind) => {
            out.push(column).push(presence(kind));
        }
        (Op::Has, value, FieldKind::Text) => {
            let text = match value {
                Value::String(text) | Value::Name(text) => text,
                other => {
                    return Err(QueryError::filter(
                        c.value_pos,
                        format!(
                            "{} takes text in quotes, e.g. {}:\"{}\"; got {}",
                            field.name,
                            field.name,
                            other,
                            shown(other)
                        ),
                    ));
                }
            };
            out.push("LOWER(")
                .push(column)
                .push(") LIKE ")
                .push_bind(contains_pattern(text))
                .push(" ESCAPE '\\'");
        }
        // `:` on anything but text is equality (AIP-160 leaves it to the
        // implementation; equality is what `state:NEW` can only mean).
        (op, value, kind) => {
            check_operator(field, op, kind, c.op_pos)?;
            let bound = bind_value(field, value, c.value_pos)?;
            out.push(column).push(sql_operator(op)).push_bind(bound);
        }
    }
    Ok(())
}

/// `field:*`: the field differs from its zero value, which is how protobuf
/// (proto3) tells "set" from "unset" and how every column here stores unset
/// (all are NOT NULL).
fn presence(kind: FieldKind) -> &'static str {
    match kind {
        FieldKind::Text => " <> ''",
        FieldKind::Bool => " = TRUE",
        FieldKind::Int | FieldKind::Float | FieldKind::Timestamp | FieldKind::Enum(_) => " <> 0",
    }
}

/// Ordering a boolean has no meaning callers could rely on; refuse it.
fn check_operator(field: &Field, op: Op, kind: FieldKind, pos: usize) -> Result<(), QueryError> {
    if kind == FieldKind::Bool && op.is_ordering() {
        return Err(QueryError::filter(
            pos,
            format!(
                "{} is true or false: compare it with = or !=, not {op}",
                field.name
            ),
        ));
    }
    Ok(())
}

fn sql_operator(op: Op) -> &'static str {
    match op {
        Op::Eq | Op::Has => " = ",
        Op::Ne => " <> ",
        Op::Lt => " < ",
        Op::Le => " <= ",
        Op::Gt => " > ",
        Op::Ge => " >= ",
    }
}

/// `%text%`, lower-cased, with LIKE's wildcards (and its escape character)
/// escaped so the caller's `%` and `_` match themselves.
fn contains_pattern(text: &str) -> SqlValue {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    SqlValue::Text(pattern)
}
