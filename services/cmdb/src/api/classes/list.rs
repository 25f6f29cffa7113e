//! Lists of the model (classes, relationship types), filtered, sorted and
//! paged in memory: the model is small and already loaded.

use itsm_platform::ApiError;
use itsm_store::SqlValue;
use itsm_store::page::PageTokens;
use itsm_store::query::{Comparison, Expr, Op, Value, parse_filter};

/// The kinds of fields a model list filters on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Text: `=`, `!=`, `:` (contains, ignoring case), `:*` (set).
    Text,
    /// A boolean: `=`, `!=` with `true`/`false`.
    Bool,
    /// A list of names: `:` (has the element), `:*` (not empty).
    List,
}

/// A field's value on one item.
#[derive(Debug, Clone)]
pub enum FieldValue {
    Text(String),
    Bool(bool),
    List(Vec<String>),
}

/// A parsed filter over fields of `schema`; checked on parse so an item
/// never fails evaluation.
#[derive(Debug)]
pub struct Filter {
    expr: Option<Expr>,
}

impl Filter {
    /// Parses `input`, every field in `schema`, every comparison fit for its kind.
    pub fn parse(input: &str, schema: &[(&str, Kind)]) -> Result<Self, ApiError> {
        let expr = parse_filter(input)?;
        if let Some(expr) = &expr {
            check(expr, schema)?;
        }
        Ok(Self { expr })
    }

    /// Whether the item whose fields `value` reads matches.
    pub fn matches(&self, value: &dyn Fn(&str) -> Option<FieldValue>) -> bool {
        self.expr.as_ref().is_none_or(|e| eval(e, value))
    }
}

fn check(expr: &Expr, schema: &[(&str, Kind)]) -> Result<(), ApiError> {
    match expr {
        Expr::And(all) | Expr::Or(all) => all.iter().try_for_each(|e| check(e, schema)),
        Expr::Not(e) => check(e, schema),
        Expr::Compare(c) => {
            let bad = |why: String| {
                Err(ApiError::invalid_field(
                    "filter",
                    format!("at position {}: {why}", c.field_pos),
                ))
            };
            let Some((_, kind)) = schema.iter().find(|(name, _)| *name == c.field) else {
                let names: Vec<&str> = schema.iter().map(|(n, _)| *n).collect();
                return bad(format!(
                    "unknown field \"{}\"; filter on {}",
                    c.field,
                    names.join(", ")
                ));
            };
            let fits = matches!(
                (kind, c.op, &c.value),
                (
                    Kind::Text,
                    Op::Eq | Op::Ne,
                    Value::String(_) | Value::Name(_)
                ) | (
                    Kind::Text | Kind::List,
                    Op::Has,
                    Value::String(_) | Value::Name(_) | Value::Any
                ) | (Kind::Bool, Op::Eq | Op::Ne, Value::Bool(_))
            );
            if fits {
                Ok(())
            } else {
                let expected = match kind {
                    Kind::Text => "= \"text\", != \"text\" or :\"text\"",
                    Kind::Bool => "= true or = false",
                    Kind::List => ":\"classes/<id>\"",
                };
                bad(format!("\"{}\" is compared with {expected}", c.field))
            }
        }
    }
}

fn text_of(value: &Value) -> &str {
    match value {
        Value::String(s) | Value::Name(s) => s,
        _ => "",
    }
}

fn eval(expr: &Expr, value: &dyn Fn(&str) -> Option<FieldValue>) -> bool {
    match expr {
        Expr::And(all) => all.iter().all(|e| eval(e, value)),
        Expr::Or(all) => all.iter().any(|e| eval(e, value)),
        Expr::Not(e) => !eval(e, value),
        Expr::Compare(c) => compare(c, value(&c.field)),
    }
}

fn compare(c: &Comparison, actual: Option<FieldValue>) -> bool {
    match (actual, c.op, &c.value) {
        (Some(FieldValue::Text(t)), Op::Has, Value::Any) => !t.is_empty(),
        (Some(FieldValue::Text(t)), Op::Has, v) => {
            t.to_lowercase().contains(&text_of(v).to_lowercase())
        }
        (Some(FieldValue::Text(t)), Op::Eq, v) => t == text_of(v),
        (Some(FieldValue::Text(t)), Op::Ne, v) => t != text_of(v),
        (Some(FieldValue::Bool(b)), Op::Eq, Value::Bool(v)) => b == *v,
        (Some(FieldValue::Bool(b)), Op::Ne, Value::Bool(v)) => b != *v,
        (Some(FieldValue::List(l)), Op::Has, Value::Any) => !l.is_empty(),
        (Some(FieldValue::List(l)), Op::Has, v) => l.iter().any(|e| e == text_of(v)),
        _ => false,
    }
}

/// One page of `items` (already filtered), sorted by their key (text parts,
/// the last one unique), starting after the token's key. The token is bound
/// to `query` (the list, filter and order_by).
pub fn page<T>(
    mut items: Vec<(Vec<String>, T)>,
    limit: usize,
    page_token: &str,
    query: &str,
    tokens: &PageTokens,
) -> Result<(Vec<T>, String), ApiError> {
    items.sort_by(|a, b| a.0.cmp(&b.0));
    if !page_token.is_empty() {
        let after: Vec<String> = tokens
            .decode(page_token, query)?
            .into_iter()
            .map(|v| match v {
                SqlValue::Text(t) => Ok(t),
                _ => Err(ApiError::invalid_field(
                    "page_token",
                    "is not a token of this list; start again without one",
                )),
            })
            .collect::<Result<_, _>>()?;
        items.retain(|(key, _)| *key > after);
    }
    let mut next = String::new();
    if items.len() > limit {
        items.truncate(limit);
        if let Some((key, _)) = items.last() {
            let key: Vec<SqlValue> = key.iter().cloned().map(SqlValue::Text).collect();
            next = tokens.encode(query, &key);
        }
    }
    Ok((items.into_iter().map(|(_, t)| t).collect(), next))
}

/// The sort of a model list: `name` (default) or `display_name`, ascending.
pub fn order(order_by: &str, allowed: &[&'static str]) -> Result<&'static str, ApiError> {
    let trimmed = order_by.trim();
    let field = trimmed.strip_suffix(" asc").unwrap_or(trimmed).trim();
    if field.is_empty() {
        return Ok("name");
    }
    allowed
        .iter()
        .find(|a| **a == field)
        .copied()
        .ok_or_else(|| {
            ApiError::invalid_field(
                "order_by",
                format!(
                    "\"{order_by}\" is not a sort of this list; use one of {}",
                    allowed.join(", ")
                ),
            )
        })
}
