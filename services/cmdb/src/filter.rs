//! The CI filter language: the shared AIP-160 subset (`itsm_store::query`)
//! over the CI's core fields, `ci_class` matching the class and its
//! subclasses, and `attributes.<key>` over the attribute index. One parsed
//! filter can be compiled to SQL (lists) or evaluated in memory (baselines
//! at a past instant, impact results, diffs), with the same meaning.
//!
//! - Core fields (`display_name`, `status`, `owner`, `support_group`,
//!   `criticality`, `min_members_up`, `create_time`, `update_time`,
//!   `last_seen_time`) behave as in every List (see `itsm_query::filter`).
//! - `ci_class = "classes/server"` matches servers and every subclass;
//!   `!=` the others. `name` and `location` take CI names ("cis/<uuid>").
//! - `attributes.<key> OP literal` is typed by the literal: a number compares
//!   numbers (`attributes.cpu_count >= 8`), a string compares text
//!   (`attributes.os_version = "22.04"`, `:` a case-insensitive contains),
//!   `true`/`false` booleans; `attributes.<key>:*` asks for a value. A CI
//!   without a value matches only `!=`.

use std::cmp::Ordering;

use itsm_platform::ApiError;
use itsm_proto::itsm::cmdb::v1 as pb;
use itsm_store::SqlBuilder;
use itsm_store::query::{Comparison, Expr, Field, FieldKind, Op, QueryError, Schema, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::model::{self, Model, class_id};
use crate::store::cis::micros;

/// The status names a filter may use, with their numbers.
pub const STATUS_NAMES: &[(&str, i64)] = &[
    ("PLANNED", 1),
    ("INSTALLED", 2),
    ("OPERATIONAL", 3),
    ("RETIRED", 4),
];

/// The criticality names a filter may use, with their numbers.
pub const CRITICALITY_NAMES: &[(&str, i64)] =
    &[("CRITICAL", 1), ("HIGH", 2), ("MEDIUM", 3), ("LOW", 4)];

const fn field(name: &'static str, column: &'static str, kind: FieldKind) -> Field {
    Field {
        name,
        column,
        kind,
        sortable: false,
    }
}

/// The core fields over the `cis` columns (table aliased `c`). `ci_class`,
/// `name`, `location` and `attributes.<key>` are compiled here instead.
static CORE: Schema = Schema {
    resource: "ci",
    fields: &[
        field("display_name", "c.display_name", FieldKind::Text),
        field("status", "c.status", FieldKind::Enum(STATUS_NAMES)),
        field("owner", "c.owner", FieldKind::Text),
        field("support_group", "c.support_group", FieldKind::Text),
        field(
            "criticality",
            "c.criticality",
            FieldKind::Enum(CRITICALITY_NAMES),
        ),
        field("min_members_up", "c.min_members_up", FieldKind::Int),
        field("create_time", "c.created_at", FieldKind::Timestamp),
        field("update_time", "c.updated_at", FieldKind::Timestamp),
        field("last_seen_time", "c.last_seen_at", FieldKind::Timestamp),
        // Only for `location` and `name` after their literal is reduced to a uid.
        field("location", "c.location", FieldKind::Text),
        field("name", "c.uid", FieldKind::Text),
    ],
};

const FIELD_NAMES: &str = "name, ci_class, display_name, status, owner, support_group, \
    criticality, location, min_members_up, create_time, update_time, last_seen_time, \
    attributes.<key>";

/// A parsed CI filter, its fields checked against the CI schema.
#[derive(Debug, Clone, Default)]
pub struct CiFilter {
    expr: Option<Expr>,
    /// The request field errors name ("filter").
    field: &'static str,
}

impl CiFilter {
    /// Parses `input` (errors name the request field `field`, e.g. "filter").
    /// Empty input matches every CI.
    pub fn parse(input: &str, field: &'static str, model: &Model) -> Result<Self, ApiError> {
        let relabel = |mut e: QueryError| {
            e.field = field;
            ApiError::from(e)
        };
        let expr = itsm_store::query::parse_filter(input).map_err(relabel)?;
        let filter = Self { expr, field };
        // Compiling checks every field, literal and operator.
        if let Some(expr) = &filter.expr {
            write(expr, model, &mut SqlBuilder::default()).map_err(relabel)?;
        }
        Ok(filter)
    }

    /// Whether the filter is empty (matches everything).
    pub fn is_empty(&self) -> bool {
        self.expr.is_none()
    }

    /// The filter's canonical text ("" when empty): what page tokens bind to.
    pub fn canonical(&self) -> String {
        self.expr
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default()
    }

    /// Whether `ci` matches, evaluated in memory.
    pub fn matches(&self, model: &Model, ci: &pb::Ci) -> bool {
        self.expr.as_ref().is_none_or(|e| eval(e, model, ci))
    }

    /// Appends the predicate over the `cis` table aliased `c` to `out`;
    /// `false` (nothing appended) for an empty filter.
    pub fn compile(&self, model: &Model, out: &mut SqlBuilder) -> Result<bool, ApiError> {
        let Some(expr) = &self.expr else {
            return Ok(false);
        };
        let mut sql = out.clone();
        sql.push("(");
        write(expr, model, &mut sql).map_err(|mut e| {
            if !self.field.is_empty() {
                e.field = self.field;
            }
            ApiError::from(e)
        })?;
        sql.push(")");
        *out = sql;
        Ok(true)
    }
}

fn error(position: usize, message: impl Into<String>) -> QueryError {
    QueryError {
        field: "filter",
        position,
        message: message.into(),
    }
}

fn write(expr: &Expr, model: &Model, out: &mut SqlBuilder) -> Result<(), QueryError> {
    match expr {
        Expr::And(operands) | Expr::Or(operands) if operands.is_empty() => {
            out.push(if matches!(expr, Expr::And(_)) {
                "(1 = 1)"
            } else {
                "(1 = 0)"
            });
        }
        Expr::And(operands) | Expr::Or(operands) => {
            let separator = if matches!(expr, Expr::And(_)) {
                " AND "
            } else {
                " OR "
            };
            out.push("(");
            for (i, operand) in operands.iter().enumerate() {
                if i > 0 {
                    out.push(separator);
                }
                write(operand, model, out)?;
            }
            out.push(")");
        }
        Expr::Not(operand) => {
            out.push("NOT (");
            write(operand, model, out)?;
            out.push(")");
        }
        Expr::Compare(c) => write_comparison(c, model, out)?,
    }
    Ok(())
}

/// The class a `ci_class` literal names, checked against the model.
fn class_literal<'a>(c: &'a Comparison, model: &Model) -> Result<&'a str, QueryError> {
    let text = match &c.value {
        Value::String(text) | Value::Name(text) => text.as_str(),
        _ => {
            return Err(error(
                c.value_pos,
                "ci_class takes a class name in quotes, e.g. \"classes/server\"",
            ));
        }
    };
    let id = class_id(text).unwrap_or(text);
    if model.class(id).is_none() {
        return Err(error(
            c.value_pos,
            format!("\"{text}\" is not a class; expected \"classes/<id>\" of an existing class"),
        ));
    }
    Ok(id)
}

/// A `name`/`location` literal reduced to the uid the column holds.
fn uid_literal(value: &Value) -> Value {
    match value {
        Value::String(text) | Value::Name(text) => {
            Value::String(text.strip_prefix("cis/").unwrap_or(text).to_owned())
        }
        other => other.clone(),
    }
}

fn write_comparison(c: &Comparison, model: &Model, out: &mut SqlBuilder) -> Result<(), QueryError> {
    if c.field == "ci_class" {
        return write_class(c, model, out);
    }
    if let Some(key) = c.field.strip_prefix("attributes.") {
        return write_attribute(c, key, model, out);
    }
    if CORE.field(&c.field).is_none() {
        return Err(error(
            c.field_pos,
            format!("unknown field \"{}\" (fields: {FIELD_NAMES})", c.field),
        ));
    }
    let mut c = c.clone();
    if c.field == "name" || c.field == "location" {
        c.value = uid_literal(&c.value);
    }
    Expr::Compare(c).compile(&CORE, out)
}

fn write_class(c: &Comparison, model: &Model, out: &mut SqlBuilder) -> Result<(), QueryError> {
    if c.op == Op::Has && c.value == Value::Any {
        out.push("(c.ci_class <> '')");
        return Ok(());
    }
    let negate = match c.op {
        Op::Eq | Op::Has => false,
        Op::Ne => true,
        _ => {
            return Err(error(
                c.op_pos,
                "ci_class takes = or != (a class and its subclasses)",
            ));
        }
    };
    let id = class_literal(c, model)?;
    out.push(if negate {
        "(c.ci_class NOT IN "
    } else {
        "(c.ci_class IN "
    });
    out.push_bind_list(model.descendants(id).into_iter().map(str::to_owned));
    out.push(")");
    Ok(())
}

/// The attribute types `key` has in any class (empty: no class declares it).
fn attribute_types(model: &Model, key: &str) -> Vec<pb::AttributeType> {
    model
        .classes()
        .flat_map(|(_, class)| class.attributes.iter())
        .filter(|a| a.key == key)
        .map(|a| pb::AttributeType::try_from(a.r#type).unwrap_or_default())
        .collect()
}

/// How an attribute comparison compares, by its literal.
enum AttributeTest {
    Present,
    Number(f64),
    Text(String),
    Bool(bool),
}

fn attribute_test(c: &Comparison, key: &str, model: &Model) -> Result<AttributeTest, QueryError> {
    if key.is_empty() || !model::is_valid_id(key) {
        return Err(error(
            c.field_pos,
            format!(
                "\"{}\" is not an attribute; write attributes.<key>",
                c.field
            ),
        ));
    }
    let types = attribute_types(model, key);
    if types.is_empty() {
        return Err(error(
            c.field_pos,
            format!("no class has an attribute \"{key}\""),
        ));
    }
    let has = |t: pb::AttributeType| types.contains(&t);
    let texty = types
        .iter()
        .any(|t| !matches!(t, pb::AttributeType::Number | pb::AttributeType::Boolean));
    let test = match &c.value {
        Value::Any if c.op == Op::Has => AttributeTest::Present,
        Value::Any => {
            return Err(error(
                c.value_pos,
                "'*' only follows ':' (field:* asks whether the field is set)",
            ));
        }
        Value::Int(n) if has(pb::AttributeType::Number) => AttributeTest::Number(*n as f64),
        Value::Float(x) if has(pb::AttributeType::Number) => AttributeTest::Number(*x),
        Value::Bool(b) if has(pb::AttributeType::Boolean) => AttributeTest::Bool(*b),
        Value::String(s) | Value::Name(s) if texty => AttributeTest::Text(s.clone()),
        other => {
            let expected = match types[0] {
                pb::AttributeType::Number => "a number, e.g. 8".to_owned(),
                pb::AttributeType::Boolean => "true or false".to_owned(),
                _ => format!("text in quotes, e.g. \"{other}\""),
            };
            return Err(error(
                c.value_pos,
                format!("{} takes {expected}; got {other}", c.field),
            ));
        }
    };
    if matches!(test, AttributeTest::Bool(_)) && c.op.is_ordering() {
        return Err(error(
            c.op_pos,
            format!("{} is true or false: compare it with = or !=", c.field),
        ));
    }
    Ok(test)
}

fn sql_operator(op: Op) -> &'static str {
    match op {
        Op::Eq | Op::Has | Op::Ne => " = ",
        Op::Lt => " < ",
        Op::Le => " <= ",
        Op::Gt => " > ",
        Op::Ge => " >= ",
    }
}

fn write_attribute(
    c: &Comparison,
    key: &str,
    model: &Model,
    out: &mut SqlBuilder,
) -> Result<(), QueryError> {
    let test = attribute_test(c, key, model)?;
    // `!=` is "no value equal to": CIs without the attribute match it, as
    // an empty core field matches `owner != "x"`.
    out.push(if c.op == Op::Ne {
        "(NOT EXISTS (SELECT 1 FROM ci_attributes a WHERE a.ci_id = c.id AND a.key = "
    } else {
        "(EXISTS (SELECT 1 FROM ci_attributes a WHERE a.ci_id = c.id AND a.key = "
    });
    out.push_bind(key);
    match test {
        AttributeTest::Present => {}
        AttributeTest::Number(n) => {
            out.push(" AND a.num_value")
                .push(sql_operator(c.op))
                .push_bind(n);
        }
        AttributeTest::Bool(b) => {
            out.push(" AND a.text_value = ").push_bind(b.to_string());
        }
        AttributeTest::Text(text) if c.op == Op::Has => {
            out.push(" AND a.norm_value LIKE ")
                .push_bind(contains_pattern(&text))
                .push(" ESCAPE '\\'");
        }
        AttributeTest::Text(text) => {
            out.push(" AND a.text_value")
                .push(sql_operator(c.op))
                .push_bind(text);
        }
    }
    out.push("))");
    Ok(())
}

/// `%text%`, lower-cased, LIKE's wildcards escaped.
fn contains_pattern(text: &str) -> String {
    let mut pattern = String::from("%");
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

// ---------------------------------------------------------------------------
// In memory

fn eval(expr: &Expr, model: &Model, ci: &pb::Ci) -> bool {
    match expr {
        Expr::And(operands) => operands.iter().all(|e| eval(e, model, ci)),
        Expr::Or(operands) => operands.iter().any(|e| eval(e, model, ci)),
        Expr::Not(operand) => !eval(operand, model, ci),
        Expr::Compare(c) => eval_comparison(c, model, ci),
    }
}

fn ordered(op: Op, ordering: Option<Ordering>) -> bool {
    let Some(ordering) = ordering else {
        return op == Op::Ne;
    };
    match op {
        Op::Eq | Op::Has => ordering == Ordering::Equal,
        Op::Ne => ordering != Ordering::Equal,
        Op::Lt => ordering == Ordering::Less,
        Op::Le => ordering != Ordering::Greater,
        Op::Gt => ordering == Ordering::Greater,
        Op::Ge => ordering != Ordering::Less,
    }
}

fn literal_text(value: &Value) -> Option<&str> {
    match value {
        Value::String(text) | Value::Name(text) => Some(text),
        _ => None,
    }
}

fn compare_text(op: Op, actual: &str, value: &Value) -> bool {
    if value == &Value::Any {
        return !actual.is_empty();
    }
    let Some(literal) = literal_text(value) else {
        return false;
    };
    if op == Op::Has {
        return actual.to_lowercase().contains(&literal.to_lowercase());
    }
    ordered(op, Some(actual.cmp(literal)))
}

fn compare_int(op: Op, actual: i64, literal: Option<i64>, value: &Value) -> bool {
    if value == &Value::Any {
        return actual != 0;
    }
    literal.is_some_and(|n| ordered(op, Some(actual.cmp(&n))))
}

/// The number of an enum literal: a listed name, or the full protobuf name
/// (a prefix ending in the upper-cased field name, `_`, a listed name).
fn enum_literal(field: &str, names: &[(&str, i64)], value: &Value) -> Option<i64> {
    let name = literal_text(value)?;
    let upper = field.to_ascii_uppercase();
    names.iter().find_map(|(listed, number)| {
        let full = format!("{upper}_{listed}");
        let prefixed = name
            .strip_suffix(&full)
            .is_some_and(|p| p.is_empty() || p.ends_with('_'));
        (name == *listed || prefixed).then_some(*number)
    })
}

fn timestamp_literal(value: &Value) -> Option<i64> {
    let time = OffsetDateTime::parse(literal_text(value)?, &Rfc3339).ok()?;
    i64::try_from(time.unix_timestamp_nanos().div_euclid(1_000)).ok()
}

fn eval_comparison(c: &Comparison, model: &Model, ci: &pb::Ci) -> bool {
    let op = c.op;
    let value = &c.value;
    let uid = |name: &str| name.strip_prefix("cis/").unwrap_or(name).to_owned();
    match c.field.as_str() {
        "ci_class" => {
            let actual = class_id(&ci.ci_class).unwrap_or_default();
            if value == &Value::Any {
                return !actual.is_empty();
            }
            let Some(target) = literal_text(value) else {
                return false;
            };
            let target = class_id(target).unwrap_or(target);
            let inside = model.is_a(actual, target);
            if op == Op::Ne { !inside } else { inside }
        }
        "name" => compare_text(op, &uid(&ci.name), &uid_literal(value)),
        "location" => compare_text(op, &uid(&ci.location), &uid_literal(value)),
        "display_name" => compare_text(op, &ci.display_name, value),
        "owner" => compare_text(op, &ci.owner, value),
        "support_group" => compare_text(op, &ci.support_group, value),
        "status" => compare_int(
            op,
            i64::from(ci.status),
            enum_literal("status", STATUS_NAMES, value),
            value,
        ),
        "criticality" => compare_int(
            op,
            i64::from(ci.criticality),
            enum_literal("criticality", CRITICALITY_NAMES, value),
            value,
        ),
        "min_members_up" => {
            let literal = match value {
                Value::Int(n) => Some(*n),
                _ => None,
            };
            compare_int(op, i64::from(ci.min_members_up), literal, value)
        }
        "create_time" => compare_int(
            op,
            micros(ci.create_time.as_ref()),
            timestamp_literal(value),
            value,
        ),
        "update_time" => compare_int(
            op,
            micros(ci.update_time.as_ref()),
            timestamp_literal(value),
            value,
        ),
        "last_seen_time" => compare_int(
            op,
            micros(ci.last_seen_time.as_ref()),
            timestamp_literal(value),
            value,
        ),
        field => match field.strip_prefix("attributes.") {
            Some(key) => eval_attribute(op, value, ci.attributes.get(key)),
            None => false,
        },
    }
}

fn eval_attribute(op: Op, value: &Value, actual: Option<&pb::AttributeValue>) -> bool {
    let text = actual.and_then(model::value_text);
    let equal_or_ordered = |ordering: Option<Ordering>| match (op, ordering) {
        // No value: only `!=` holds (see write_attribute).
        (Op::Ne, None) => true,
        (_, None) => false,
        (op, ordering) => ordered(op, ordering),
    };
    match value {
        Value::Any => text.is_some(),
        Value::Int(_) | Value::Float(_) => {
            let literal = match value {
                Value::Int(n) => *n as f64,
                Value::Float(x) => *x,
                _ => return false,
            };
            let number = actual.and_then(model::value_number);
            equal_or_ordered(number.and_then(|n| n.partial_cmp(&literal)))
        }
        Value::Bool(b) => {
            let ordering = text.map(|t| t.as_str().cmp(if *b { "true" } else { "false" }));
            equal_or_ordered(ordering)
        }
        Value::String(literal) | Value::Name(literal) => match (op, text) {
            (Op::Has, Some(text)) => model::normalize(&text).contains(&literal.to_lowercase()),
            (Op::Has, None) => false,
            (_, text) => equal_or_ordered(text.map(|t| t.as_str().cmp(literal.as_str()))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> Model {
        Model::new(1, crate::seed::classes(0), Vec::new())
    }

    fn server(cpus: f64) -> pb::Ci {
        pb::Ci {
            name: "cis/6f1c1a5e-8f8a-4f43-9b8e-0d1f0c7b2a11".into(),
            ci_class: "classes/linux_server".into(),
            display_name: "web-01".into(),
            status: pb::CiStatus::Operational as i32,
            attributes: [(
                "cpu_count".to_owned(),
                pb::AttributeValue {
                    value: Some(pb::attribute_value::Value::NumberValue(cpus)),
                },
            )]
            .into(),
            ..pb::Ci::default()
        }
    }

    fn check(filter: &str, ci: &pb::Ci) -> bool {
        let model = model();
        CiFilter::parse(filter, "filter", &model)
            .unwrap()
            .matches(&model, ci)
    }

    #[test]
    fn classes_match_their_subclasses_in_memory_and_in_sql() {
        let model = model();
        assert!(check(r#"ci_class = "classes/server""#, &server(4.0)));
        assert!(!check(
            r#"ci_class = "classes/windows_server""#,
            &server(4.0)
        ));
        assert!(check(r#"ci_class != "classes/application""#, &server(4.0)));
        let filter = CiFilter::parse(r#"ci_class = "classes/server""#, "filter", &model).unwrap();
        let mut sql = SqlBuilder::default();
        assert!(filter.compile(&model, &mut sql).unwrap());
        assert!(
            sql.sql().contains("c.ci_class IN ($1, $2, $3)"),
            "{}",
            sql.sql()
        );
    }

    #[test]
    fn attributes_compare_by_the_literal_type() {
        assert!(check("attributes.cpu_count >= 8", &server(8.0)));
        assert!(!check("attributes.cpu_count >= 8", &server(4.0)));
        assert!(check("attributes.cpu_count != 8", &server(4.0)));
        assert!(check("attributes.os_version != \"x\"", &server(4.0)));
        assert!(!check("attributes.os_version:*", &server(4.0)));
        assert!(check(
            "status = OPERATIONAL AND display_name:WEB",
            &server(1.0)
        ));
        assert!(check("status = CI_STATUS_OPERATIONAL", &server(1.0)));
        assert!(!check("NOT status = OPERATIONAL", &server(1.0)));
    }

    #[test]
    fn bad_fields_and_literals_name_the_request_field_and_position() {
        let model = model();
        for bad in [
            "colour = red",
            "attributes.nope = 1",
            "attributes.cpu_count = \"eight\"",
            "ci_class = \"classes/nope\"",
            "status = BROKEN",
            "attributes.virtualized > true",
        ] {
            let e = CiFilter::parse(bad, "baseline.filter", &model).unwrap_err();
            assert_eq!(e.field_violations()[0].field, "baseline.filter", "{bad}");
            assert!(
                e.field_violations()[0]
                    .description
                    .starts_with("at position")
            );
        }
    }
}
