//! What each field kind accepts as a literal, turned into the value bound.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::ast::Value;
use crate::error::{QueryError, excerpt};
use crate::schema::{Field, FieldKind};
use crate::sql::SqlValue;

/// The value to bind for `field OP value` (not `:` on text, not `*`).
pub(crate) fn bind_value(field: &Field, value: &Value, pos: usize) -> Result<SqlValue, QueryError> {
    let refuse = |expected: &str| {
        QueryError::filter(
            pos,
            format!("{} takes {expected}; got {}", field.name, shown(value)),
        )
    };
    if *value == Value::Any {
        return Err(QueryError::filter(
            pos,
            "'*' only follows ':' (field:* asks whether the field is set)",
        ));
    }
    match field.kind {
        FieldKind::Text => match value {
            Value::String(text) | Value::Name(text) => Ok(SqlValue::Text(text.clone())),
            _ => Err(refuse(&format!(
                "text in quotes, e.g. \"{}\"",
                excerpt(&value.to_string())
            ))),
        },
        FieldKind::Int => match value {
            Value::Int(n) => Ok(SqlValue::Int(*n)),
            _ => Err(refuse("a whole number")),
        },
        FieldKind::Float => match value {
            // Precision loss past 2^53 is the same the column itself has.
            Value::Int(n) => Ok(SqlValue::Float(*n as f64)),
            Value::Float(x) => Ok(SqlValue::Float(*x)),
            _ => Err(refuse("a number")),
        },
        FieldKind::Bool => match value {
            Value::Bool(b) => Ok(SqlValue::Bool(*b)),
            // `TRUE`/`True` lex as names; accept them rather than nag.
            Value::Name(name) if name.eq_ignore_ascii_case("true") => Ok(SqlValue::Bool(true)),
            Value::Name(name) if name.eq_ignore_ascii_case("false") => Ok(SqlValue::Bool(false)),
            _ => Err(refuse("true or false")),
        },
        FieldKind::Timestamp => match value {
            Value::String(text) => micros(text).ok_or_else(|| refuse(TIMESTAMP)),
            _ => Err(refuse(TIMESTAMP)),
        },
        FieldKind::Enum(values) => {
            let name = match value {
                Value::Name(name) | Value::String(name) => name.as_str(),
                _ => "",
            };
            enum_number(field, values, name)
                .map(SqlValue::Int)
                .ok_or_else(|| refuse_enum(field, values, value, pos))
        }
    }
}

const TIMESTAMP: &str = "an RFC 3339 timestamp in quotes, e.g. \"2026-01-01T00:00:00Z\"";

/// Microseconds since the Unix epoch, as timestamp columns store them.
fn micros(text: &str) -> Option<SqlValue> {
    let time = OffsetDateTime::parse(text, &Rfc3339).ok()?;
    // Floor, so that a pre-1970 instant with a sub-microsecond part is not
    // moved forward past a stored value.
    let micros = time.unix_timestamp_nanos().div_euclid(1_000);
    i64::try_from(micros).ok().map(SqlValue::Int)
}

/// The number of `name`: an exact listed name (`HIGH`), or the protobuf-style
/// full name, which is a prefix ending in the upper-cased field name, then
/// `_`, then a listed name (`PRIORITY_HIGH`, `INCIDENT_STATE_NEW` for field
/// `state`). The prefix rule keeps `NOT_HIGH` from meaning `HIGH`.
fn enum_number(field: &Field, values: &[(&str, i64)], name: &str) -> Option<i64> {
    if let Some((_, number)) = values.iter().find(|(listed, _)| *listed == name) {
        return Some(*number);
    }
    let field_upper = field.name.to_ascii_uppercase();
    values.iter().find_map(|(listed, number)| {
        let full = format!("{field_upper}_{listed}");
        let prefixed = name == full
            || name
                .strip_suffix(&full)
                .is_some_and(|prefix| prefix.ends_with('_'));
        prefixed.then_some(*number)
    })
}

fn refuse_enum(field: &Field, values: &[(&str, i64)], value: &Value, pos: usize) -> QueryError {
    let names: Vec<&str> = values.iter().map(|(name, _)| *name).collect();
    let mut message = format!(
        "{} takes one of {}; got {}",
        field.name,
        names.join(", "),
        shown(value)
    );
    // Names are case-sensitive (as in the API); say so when that is the slip.
    if let Value::Name(got) | Value::String(got) = value
        && let Some(name) = names.iter().find(|name| name.eq_ignore_ascii_case(got))
    {
        message.push_str(&format!(" (names are case-sensitive: {name})"));
    }
    QueryError::filter(pos, message)
}

/// A literal as a message quotes it: words and strings in double quotes,
/// numbers and booleans bare; shortened.
pub(crate) fn shown(value: &Value) -> String {
    match value {
        Value::Name(name) | Value::String(name) => format!("\"{}\"", excerpt(name)),
        other => excerpt(&other.to_string()),
    }
}
