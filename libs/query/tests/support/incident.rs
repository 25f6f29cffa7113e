//! A sample schema (an incident, as the incidents service will list it) and
//! builders for expected trees, shared by the integration tests.
#![allow(dead_code)] // each test binary uses its own share of these

use itsm_query::{Comparison, Expr, Field, FieldKind, Op, QueryError, Schema, Value};

pub const STATES: &[(&str, i64)] = &[
    ("NEW", 1),
    ("IN_PROGRESS", 2),
    ("ON_HOLD", 3),
    ("RESOLVED", 4),
    ("CLOSED", 5),
    ("CANCELED", 6),
];

pub const PRIORITIES: &[(&str, i64)] = &[
    ("CRITICAL", 1),
    ("HIGH", 2),
    ("MODERATE", 3),
    ("LOW", 4),
    ("PLANNING", 5),
];

pub static INCIDENT: Schema = Schema {
    resource: "incident",
    fields: &[
        Field {
            name: "title",
            column: "title",
            kind: FieldKind::Text,
            sortable: false,
        },
        Field {
            name: "state",
            column: "state",
            kind: FieldKind::Enum(STATES),
            sortable: true,
        },
        Field {
            name: "priority",
            column: "priority",
            kind: FieldKind::Enum(PRIORITIES),
            sortable: true,
        },
        Field {
            name: "assignment_group",
            column: "assignment_group",
            kind: FieldKind::Text,
            sortable: true,
        },
        Field {
            name: "create_time",
            column: "created_at",
            kind: FieldKind::Timestamp,
            sortable: true,
        },
        Field {
            name: "reopen_count",
            column: "reopen_count",
            kind: FieldKind::Int,
            sortable: true,
        },
        Field {
            name: "major",
            column: "is_major",
            kind: FieldKind::Bool,
            sortable: false,
        },
        Field {
            name: "impact_score",
            column: "impact_score",
            kind: FieldKind::Float,
            sortable: false,
        },
    ],
};

pub fn cmp(field: &str, op: Op, value: Value) -> Expr {
    Expr::Compare(Comparison::new(field, op, value))
}

pub fn eq(field: &str, value: Value) -> Expr {
    cmp(field, Op::Eq, value)
}

pub fn name(text: &str) -> Value {
    Value::Name(text.to_owned())
}

pub fn string(text: &str) -> Value {
    Value::String(text.to_owned())
}

pub fn and(operands: impl IntoIterator<Item = Expr>) -> Expr {
    Expr::And(operands.into_iter().collect())
}

pub fn or(operands: impl IntoIterator<Item = Expr>) -> Expr {
    Expr::Or(operands.into_iter().collect())
}

pub fn not(operand: Expr) -> Expr {
    Expr::Not(Box::new(operand))
}

/// Parses a filter that must be valid and non-empty.
pub fn parse(input: &str) -> Expr {
    match itsm_query::parse_filter(input) {
        Ok(Some(expr)) => expr,
        other => panic!("{input:?} should parse, got {other:?}"),
    }
}

/// The error of a filter that must be refused, parsing or compiling.
pub fn filter_error(input: &str) -> QueryError {
    let mut sql = itsm_query::SqlBuilder::default();
    match itsm_query::filter_sql(input, &INCIDENT, &mut sql) {
        Err(error) => {
            assert_eq!(error.field, "filter");
            assert_eq!(
                sql,
                itsm_query::SqlBuilder::default(),
                "nothing written on error"
            );
            error
        }
        Ok(_) => panic!("{input:?} should be refused, compiled to {:?}", sql.sql()),
    }
}

/// `at position N: message` of a refused filter.
pub fn refused(input: &str) -> String {
    filter_error(input).description()
}
