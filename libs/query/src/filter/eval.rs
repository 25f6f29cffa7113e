//! [`Expr`] evaluated in memory over one record, with the meaning the SQL
//! compilation gives it (see [`Expr::compile`]): what an SLA condition or a
//! subscription checks against a resource it holds rather than a table.
//!
//! - A field the record does not give is its zero value, as the NOT NULL
//!   columns store unset: `""`, `0`, the epoch, `..._UNSPECIFIED`, false.
//! - Text `:` is a case-insensitive "contains" (Unicode lower-casing, as
//!   PostgreSQL does; SQLite folds only ASCII), `=` exact, `<` `>` by code
//!   point (SQLite's BINARY collation).
//! - `field:*` is "set": not the zero value.
//! - Enums compare by number; a record may give an enum as its number or as
//!   its name.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use super::ast::{Comparison, Expr, Op, Value};
use super::literal::bind_value;
use crate::error::QueryError;
use crate::schema::{Field, FieldKind, Schema};
use crate::sql::{SqlBuilder, SqlValue};

/// The value of one field of a record.
#[derive(Debug, Clone, PartialEq)]
pub enum RecordValue {
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// Microseconds since the Unix epoch (UTC).
    Timestamp(i64),
    /// The enum's protobuf number.
    Enum(i64),
}

/// What a filter is evaluated over: the value of each field it may name.
pub trait Record {
    /// The value of `field`; `None` when unset (read as its zero value).
    fn get(&self, field: &Field) -> Option<RecordValue>;
}

/// Fields by their filter name (`Field::name`).
impl Record for BTreeMap<String, RecordValue> {
    fn get(&self, field: &Field) -> Option<RecordValue> {
        BTreeMap::get(self, field.name).cloned()
    }
}

/// Any closure from field to value.
impl<F: Fn(&Field) -> Option<RecordValue>> Record for F {
    fn get(&self, field: &Field) -> Option<RecordValue> {
        self(field)
    }
}

impl Expr {
    /// Checks this filter against `schema` as [`Expr::compile`] would: every
    /// field known, every literal of its field's kind, every operator allowed.
    pub fn check(&self, schema: &Schema) -> Result<(), QueryError> {
        self.compile(schema, &mut SqlBuilder::default())
    }

    /// Whether `record` satisfies this filter. A comparison [`Expr::check`]
    /// would refuse is false (call `check` first to report it).
    pub fn matches(&self, schema: &Schema, record: &dyn Record) -> bool {
        match self {
            Self::And(operands) => operands.iter().all(|e| e.matches(schema, record)),
            Self::Or(operands) => operands.iter().any(|e| e.matches(schema, record)),
            Self::Not(operand) => !operand.matches(schema, record),
            Self::Compare(comparison) => compare(comparison, schema, record).unwrap_or(false),
        }
    }
}

/// A record's value in the shape of its field's kind.
#[derive(Debug, Clone, PartialEq)]
enum Scalar {
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

fn scalar(field: &Field, value: Option<RecordValue>) -> Scalar {
    use RecordValue as R;
    match (field.kind, value) {
        (FieldKind::Text, Some(R::Text(text))) => Scalar::Text(text),
        (FieldKind::Text, _) => Scalar::Text(String::new()),
        (FieldKind::Bool, Some(R::Bool(b))) => Scalar::Bool(b),
        (FieldKind::Bool, _) => Scalar::Bool(false),
        (FieldKind::Float, Some(R::Float(x))) => Scalar::Float(x),
        (FieldKind::Float, Some(R::Int(n) | R::Timestamp(n) | R::Enum(n))) => {
            Scalar::Float(n as f64)
        }
        (FieldKind::Float, _) => Scalar::Float(0.0),
        (FieldKind::Enum(values), Some(R::Text(name))) => Scalar::Int(
            values
                .iter()
                .find(|(listed, _)| *listed == name)
                .map_or(0, |(_, number)| *number),
        ),
        (
            FieldKind::Int | FieldKind::Timestamp | FieldKind::Enum(_),
            Some(R::Int(n) | R::Timestamp(n) | R::Enum(n)),
        ) => Scalar::Int(n),
        (FieldKind::Int | FieldKind::Timestamp | FieldKind::Enum(_), Some(R::Bool(b))) => {
            Scalar::Int(i64::from(b))
        }
        (FieldKind::Int | FieldKind::Timestamp | FieldKind::Enum(_), _) => Scalar::Int(0),
    }
}

fn is_set(value: &Scalar) -> bool {
    match value {
        Scalar::Text(text) => !text.is_empty(),
        Scalar::Int(n) => *n != 0,
        Scalar::Float(x) => *x != 0.0,
        Scalar::Bool(b) => *b,
    }
}

/// `None` when the comparison is not one `compile` accepts.
fn compare(c: &Comparison, schema: &Schema, record: &dyn Record) -> Option<bool> {
    let field = schema.field(&c.field)?;
    let value = scalar(field, record.get(field));
    match (c.op, &c.value, field.kind) {
        (Op::Has, Value::Any, _) => Some(is_set(&value)),
        (Op::Has, literal, FieldKind::Text) => {
            let needle = match literal {
                Value::String(text) | Value::Name(text) => text.to_lowercase(),
                _ => return None,
            };
            let Scalar::Text(text) = value else {
                return None;
            };
            Some(text.to_lowercase().contains(&needle))
        }
        (op, literal, kind) => {
            if kind == FieldKind::Bool && op.is_ordering() {
                return None;
            }
            let bound = bind_value(field, literal, c.value_pos).ok()?;
            let ordering = match (&value, &bound) {
                (Scalar::Text(a), SqlValue::Text(b)) => a.as_str().cmp(b.as_str()),
                (Scalar::Int(a), SqlValue::Int(b)) => a.cmp(b),
                (Scalar::Float(a), SqlValue::Float(b)) => a.partial_cmp(b)?,
                (Scalar::Bool(a), SqlValue::Bool(b)) => a.cmp(b),
                _ => return None,
            };
            Some(holds(op, ordering))
        }
    }
}

fn holds(op: Op, ordering: Ordering) -> bool {
    match op {
        Op::Eq | Op::Has => ordering == Ordering::Equal,
        Op::Ne => ordering != Ordering::Equal,
        Op::Lt => ordering == Ordering::Less,
        Op::Le => ordering != Ordering::Greater,
        Op::Gt => ordering == Ordering::Greater,
        Op::Ge => ordering != Ordering::Less,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::filter::parse_filter;

    const STATES: &[(&str, i64)] = &[("NEW", 1), ("IN_PROGRESS", 2), ("ON_HOLD", 3)];
    const fn field(name: &'static str, kind: FieldKind) -> Field {
        Field {
            name,
            column: name,
            kind,
            sortable: false,
        }
    }
    static SCHEMA: Schema = Schema {
        resource: "incident",
        fields: &[
            field("title", FieldKind::Text),
            field("state", FieldKind::Enum(STATES)),
            field("reopen_count", FieldKind::Int),
            field("score", FieldKind::Float),
            field("major", FieldKind::Bool),
            field("create_time", FieldKind::Timestamp),
        ],
    };

    fn record() -> BTreeMap<String, RecordValue> {
        BTreeMap::from([
            ("title".into(), RecordValue::Text("VPN down 50%".into())),
            ("state".into(), RecordValue::Enum(3)),
            ("reopen_count".into(), RecordValue::Int(2)),
            ("score".into(), RecordValue::Float(0.5)),
            ("major".into(), RecordValue::Bool(true)),
            // 2026-01-01T00:00:00Z
            (
                "create_time".into(),
                RecordValue::Timestamp(1_767_225_600_000_000),
            ),
        ])
    }

    fn eval(filter: &str, record: &dyn Record) -> bool {
        let expr = parse_filter(filter).unwrap().unwrap();
        expr.check(&SCHEMA).unwrap();
        expr.matches(&SCHEMA, record)
    }

    #[test]
    fn each_kind_and_operator() {
        let r = record();
        for (filter, expected) in [
            ("title:vpn", true),
            (r#"title:"DOWN 50%""#, true),
            (r#"title:"50_""#, false),
            (r#"title = "VPN down 50%""#, true),
            (r#"title = "vpn down 50%""#, false),
            (r#"title < "W""#, true),
            ("state = ON_HOLD", true),
            ("state = INCIDENT_STATE_ON_HOLD", true),
            ("state:ON_HOLD", true),
            ("state != ON_HOLD", false),
            ("state > IN_PROGRESS", true),
            ("state <= IN_PROGRESS", false),
            ("reopen_count >= 2", true),
            ("reopen_count > 2", false),
            ("reopen_count:2", true),
            ("score < 1", true),
            ("score = 0.5", true),
            ("score >= 0.75", false),
            ("major = true", true),
            ("major != true", false),
            ("major:false", false),
            (r#"create_time = "2026-01-01T01:00:00+01:00""#, true),
            (r#"create_time < "2026-01-01T00:00:00.000001Z""#, true),
            (r#"create_time > "2026-01-01T00:00:00Z""#, false),
        ] {
            assert_eq!(eval(filter, &r), expected, "{filter}");
        }
    }

    #[test]
    fn presence_and_unset_fields_read_as_zero() {
        let r = record();
        let empty = BTreeMap::<String, RecordValue>::new();
        for name in [
            "title",
            "state",
            "reopen_count",
            "score",
            "major",
            "create_time",
        ] {
            let filter = format!("{name}:*");
            assert!(eval(&filter, &r), "{filter}");
            assert!(!eval(&filter, &empty), "{filter} on empty");
        }
        assert!(eval(
            "reopen_count = 0 AND title = \"\" AND major = false",
            &empty
        ));
        assert!(eval("state < NEW", &empty));
    }

    #[test]
    fn combinators_follow_aip_precedence() {
        let r = record();
        assert!(eval("state = NEW OR state = ON_HOLD", &r));
        assert!(eval("state = ON_HOLD major = true", &r));
        assert!(!eval("state = ON_HOLD AND major = false", &r));
        assert!(eval("NOT state = NEW", &r));
        assert!(eval("-state = NEW", &r));
        assert!(!eval("NOT (state = NEW OR state = ON_HOLD)", &r));
        // OR binds tighter than AND: false AND (false OR true) is false.
        assert!(!eval(
            "major = false AND state = NEW OR state = ON_HOLD",
            &r
        ));
    }

    #[test]
    fn records_may_be_closures_and_give_enums_by_name() {
        let by_name = |f: &Field| match f.name {
            "state" => Some(RecordValue::Text("IN_PROGRESS".into())),
            _ => None,
        };
        assert!(eval("state = IN_PROGRESS", &by_name));
        assert!(!eval("state = NEW", &by_name));
    }

    #[test]
    fn check_refuses_what_compile_refuses_and_matches_is_false_there() {
        for filter in [
            "bogus = 1",
            "major < true",
            "state = high",
            "reopen_count = \"x\"",
            "title:5",
        ] {
            let expr = parse_filter(filter).unwrap().unwrap();
            let error = expr.check(&SCHEMA).unwrap_err();
            assert_eq!(error.field, "filter");
            assert!(!expr.matches(&SCHEMA, &record()), "{filter}");
        }
    }
}
