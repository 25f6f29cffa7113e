//! Properties over large input spaces: nothing panics, printing round-trips,
//! and no value from a filter ever reaches the SQL text.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/incident.rs"]
mod support;

use itsm_query::{Comparison, Expr, Op, SqlBuilder, SqlValue, Value, filter_sql, parse_filter};
use proptest::prelude::*;
use support::{INCIDENT, PRIORITIES, STATES};

const OPS: [Op; 7] = [Op::Eq, Op::Ne, Op::Lt, Op::Le, Op::Gt, Op::Ge, Op::Has];

/// Tokens of the grammar, valid and not, for token soup.
const TOKENS: &[&str] = &[
    "(",
    ")",
    "AND",
    "OR",
    "NOT",
    "-",
    "=",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    ":",
    "*",
    "title",
    "state",
    "priority",
    "major",
    "create_time",
    "reopen_count",
    "impact_score",
    "assignment_group",
    "NEW",
    "HIGH",
    "PRIORITY_LOW",
    "high",
    "true",
    "false",
    "and",
    "\"x\"",
    "'y z'",
    "\"%_\\\\\"",
    "1",
    "-2",
    "1.5",
    "2e3",
    "\"2026-01-01T00:00:00Z\"",
    "bogus",
    "\"",
    "\\",
    "!",
    "#",
    "é",
    "99999999999999999999",
];

/// Parses and compiles, which must not panic; errors must point inside the input.
fn parse_and_compile(input: &str) {
    let len = input.chars().count();
    match parse_filter(input) {
        Err(error) => assert!(error.position <= len, "{error} for {input:?}"),
        Ok(None) => assert!(input.trim().is_empty()),
        Ok(Some(expr)) => {
            let mut out = SqlBuilder::default();
            match expr.compile(&INCIDENT, &mut out) {
                Ok(()) => assert_eq!(out.sql().matches('$').count(), out.params().len()),
                Err(error) => {
                    assert!(error.position <= len, "{error} for {input:?}");
                    assert_eq!(out, SqlBuilder::default());
                }
            }
            // What parsed prints as text that parses back to the same tree.
            let printed = expr.to_string();
            assert_eq!(
                parse_filter(&printed).unwrap(),
                Some(expr),
                "{input:?} printed as {printed:?}"
            );
        }
    }
}

/// Strings with the characters the lexer treats specially over-represented.
fn text() -> impl Strategy<Value = String> {
    let c = prop_oneof![
        4 => any::<char>(),
        1 => prop::sample::select(vec!['"', '\'', '\\', '\n', '\t', '\r', '%', '_', '*', ' ']),
    ];
    prop::collection::vec(c, 0..12).prop_map(String::from_iter)
}

/// Bare words the lexer reads back as names: not keywords, not booleans.
fn word(pattern: &'static str) -> impl Strategy<Value = String> {
    pattern.prop_filter("keyword", |w| {
        !matches!(w.as_str(), "AND" | "OR" | "NOT" | "true" | "false")
    })
}

fn any_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        text().prop_map(Value::String),
        any::<i64>().prop_map(Value::Int),
        any::<f64>()
            .prop_filter("finite", |x| x.is_finite())
            .prop_map(Value::Float),
        any::<bool>().prop_map(Value::Bool),
        word("[A-Za-z_][A-Za-z0-9_.]{0,10}").prop_map(Value::Name),
    ]
}

/// Any comparison, schema or not: field, operator, value (`*` after `:` only).
fn any_comparison() -> impl Strategy<Value = Expr> {
    let value_for = |op: Op| {
        if op == Op::Has {
            prop_oneof![4 => any_value(), 1 => Just(Value::Any)].boxed()
        } else {
            any_value().boxed()
        }
    };
    (
        word("[a-z_][a-z0-9_]{0,10}"),
        prop::sample::select(OPS.to_vec()),
    )
        .prop_flat_map(move |(field, op)| {
            value_for(op)
                .prop_map(move |value| Expr::Compare(Comparison::new(field.clone(), op, value)))
        })
}

/// A string value marked so it can be searched for in SQL text.
fn marked() -> impl Strategy<Value = Value> {
    text().prop_map(|t| Value::String(format!("zq{t}")))
}

/// Comparisons valid against the incident schema.
fn valid_comparison() -> impl Strategy<Value = Expr> {
    let names = |list: &'static [(&'static str, i64)]| {
        prop::sample::select(
            list.iter()
                .map(|(n, _)| Value::Name((*n).to_owned()))
                .collect::<Vec<_>>(),
        )
    };
    let ordering = prop::sample::select(vec![
        Op::Eq,
        Op::Ne,
        Op::Lt,
        Op::Le,
        Op::Gt,
        Op::Ge,
        Op::Has,
    ]);
    let equality = prop::sample::select(vec![Op::Eq, Op::Ne, Op::Has]);
    let timestamp = (0_i64..4_102_444_800, 0_u32..1_000_000).prop_map(|(secs, micros)| {
        let time = time::OffsetDateTime::from_unix_timestamp(secs).unwrap()
            + time::Duration::microseconds(i64::from(micros));
        Value::String(
            time.format(&time::format_description::well_known::Rfc3339)
                .unwrap(),
        )
    });
    let leaf = |field: &'static str, ops: BoxedStrategy<Op>, values: BoxedStrategy<Value>| {
        (ops, values).prop_map(move |(op, value)| Expr::Compare(Comparison::new(field, op, value)))
    };
    prop_oneof![
        leaf("title", ordering.clone().boxed(), marked().boxed()),
        leaf(
            "assignment_group",
            ordering.clone().boxed(),
            marked().boxed()
        ),
        leaf("state", ordering.clone().boxed(), names(STATES).boxed()),
        leaf(
            "priority",
            ordering.clone().boxed(),
            names(PRIORITIES).boxed()
        ),
        leaf("create_time", ordering.clone().boxed(), timestamp.boxed()),
        leaf(
            "reopen_count",
            ordering.clone().boxed(),
            any::<i64>().prop_map(Value::Int).boxed()
        ),
        leaf(
            "impact_score",
            ordering.boxed(),
            (-1e6..1e6_f64).prop_map(Value::Float).boxed()
        ),
        leaf(
            "major",
            equality.boxed(),
            any::<bool>().prop_map(Value::Bool).boxed()
        ),
        prop::sample::select(INCIDENT.fields.iter().map(|f| f.name).collect::<Vec<_>>())
            .prop_map(|field| Expr::Compare(Comparison::new(field, Op::Has, Value::Any))),
    ]
}

/// Canonical trees over `leaf`, as the parser builds them: AND and OR with two
/// or more operands, never directly holding their own kind.
fn tree(leaf: impl Strategy<Value = Expr> + 'static) -> impl Strategy<Value = Expr> {
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 2..4)
                .prop_map(|ops| Expr::And(flatten(ops, true))),
            prop::collection::vec(inner.clone(), 2..4)
                .prop_map(|ops| Expr::Or(flatten(ops, false))),
            inner.prop_map(|op| Expr::Not(Box::new(op))),
        ]
    })
}

fn flatten(operands: Vec<Expr>, and: bool) -> Vec<Expr> {
    operands
        .into_iter()
        .flat_map(|operand| match (and, operand) {
            (true, Expr::And(inner)) | (false, Expr::Or(inner)) => inner,
            (_, other) => vec![other],
        })
        .collect()
}

fn string_values(expr: &Expr, found: &mut Vec<String>) {
    match expr {
        Expr::And(ops) | Expr::Or(ops) => ops.iter().for_each(|op| string_values(op, found)),
        Expr::Not(op) => string_values(op, found),
        Expr::Compare(c) => {
            if let Value::String(s) = &c.value {
                found.push(s.clone());
            }
        }
    }
}

/// Whether `sql` is made only of what the compiler may write: columns,
/// keywords, operators, constants and placeholders.
fn only_trusted_tokens(sql: &str) -> bool {
    let columns: Vec<&str> = INCIDENT.fields.iter().map(|f| f.column).collect();
    let spaced = sql.replace('(', " ( ").replace(')', " ) ");
    spaced.split_whitespace().all(|token| {
        columns.contains(&token)
            || matches!(
                token,
                "(" | ")"
                    | "AND"
                    | "OR"
                    | "NOT"
                    | "="
                    | "<>"
                    | "<"
                    | "<="
                    | ">"
                    | ">="
                    | "LOWER"
                    | "LIKE"
                    | "ESCAPE"
                    | "'\\'"
                    | "''"
                    | "0"
                    | "TRUE"
            )
            || token
                .strip_prefix('$')
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    })
}

proptest! {
    #[test]
    fn arbitrary_strings_never_panic(input in any::<String>()) {
        parse_and_compile(&input);
    }

    #[test]
    fn filter_like_strings_never_panic(input in "[ a-zA-Z_0-9=!<>:*()\"'\\\\.,#-]{0,80}") {
        parse_and_compile(&input);
    }

    #[test]
    fn token_soup_never_panics(
        tokens in prop::collection::vec(prop::sample::select(TOKENS), 0..24),
        spaced in any::<bool>(),
    ) {
        parse_and_compile(&tokens.join(if spaced { " " } else { "" }));
    }

    #[test]
    fn printed_trees_parse_back_to_themselves(expr in tree(any_comparison())) {
        let printed = expr.to_string();
        prop_assert_eq!(parse_filter(&printed).unwrap(), Some(expr), "printed: {}", printed);
    }

    #[test]
    fn valid_filters_compile_with_every_value_bound(expr in tree(valid_comparison())) {
        let printed = expr.to_string();
        let mut out = SqlBuilder::new("SELECT id FROM incidents WHERE ");
        prop_assert!(filter_sql(&printed, &INCIDENT, &mut out).unwrap());
        let sql = out.sql().trim_start_matches("SELECT id FROM incidents WHERE ");
        prop_assert!(only_trusted_tokens(sql), "untrusted text in {}", sql);
        let mut strings = Vec::new();
        string_values(&expr, &mut strings);
        for value in &strings {
            prop_assert!(!out.sql().contains(value.as_str()), "{:?} in {}", value, out.sql());
        }
        prop_assert_eq!(out.sql().matches('$').count(), out.params().len());
        // Every text parameter is a value from the filter, or its LIKE pattern.
        for param in out.params() {
            if let SqlValue::Text(text) = param {
                prop_assert!(text.contains("zq"), "unexpected parameter {:?}", text);
            }
        }
    }
}
