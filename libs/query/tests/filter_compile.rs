//! The SQL each filter compiles to against the sample incident schema:
//! exact text, exact parameters, nothing from the input in the text.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/incident.rs"]
mod support;

use itsm_query::{Expr, SqlBuilder, SqlValue, filter_sql};
use support::INCIDENT;

use SqlValue::{Bool, Float, Int, Text};

/// The predicate and parameters `input` compiles to.
fn sql(input: &str) -> (String, Vec<SqlValue>) {
    let mut out = SqlBuilder::default();
    assert!(filter_sql(input, &INCIDENT, &mut out).unwrap(), "{input}");
    out.into_parts()
}

fn text(value: &str) -> SqlValue {
    Text(value.to_owned())
}

#[test]
fn a_comparison_is_one_parenthesized_predicate() {
    assert_eq!(sql("state = NEW"), ("(state = $1)".into(), vec![Int(1)]));
    assert_eq!(
        sql("assignment_group != \"network\""),
        ("(assignment_group <> $1)".into(), vec![text("network")])
    );
    assert_eq!(
        sql("assignment_group = network"),
        ("(assignment_group = $1)".into(), vec![text("network")])
    );
}

#[test]
fn every_ordering_operator_maps_to_its_sql() {
    for (op, sql_op) in [
        ("<", "<"),
        ("<=", "<="),
        (">", ">"),
        (">=", ">="),
        ("!=", "<>"),
    ] {
        assert_eq!(
            sql(&format!("reopen_count {op} 2")),
            (format!("(reopen_count {sql_op} $1)"), vec![Int(2)])
        );
    }
}

#[test]
fn enums_bind_their_numbers_and_order_by_them() {
    assert_eq!(
        sql("priority <= HIGH"),
        ("(priority <= $1)".into(), vec![Int(2)])
    );
    assert_eq!(
        sql("state = \"ON_HOLD\""),
        ("(state = $1)".into(), vec![Int(3)])
    );
    assert_eq!(sql("state:RESOLVED"), ("(state = $1)".into(), vec![Int(4)]));
    // The protobuf name, with a prefix ending in the field name.
    assert_eq!(
        sql("priority = PRIORITY_LOW"),
        ("(priority = $1)".into(), vec![Int(4)])
    );
    assert_eq!(
        sql("state = INCIDENT_STATE_IN_PROGRESS"),
        ("(state = $1)".into(), vec![Int(2)])
    );
}

#[test]
fn timestamps_bind_microseconds_since_the_epoch() {
    assert_eq!(
        sql("create_time > \"2026-01-01T00:00:00Z\""),
        ("(created_at > $1)".into(), vec![Int(1_767_225_600_000_000)])
    );
    // Offsets and fractions: the same instant, to the microsecond.
    assert_eq!(
        sql("create_time >= '2026-01-01T02:00:00.123456789+02:00'").1,
        vec![Int(1_767_225_600_123_456)]
    );
    assert_eq!(
        sql("create_time < \"1969-12-31T23:59:59.9999995Z\"").1,
        vec![Int(-1)],
        "floored, not truncated toward the epoch"
    );
    assert_eq!(sql("create_time:\"1970-01-01T00:00:00Z\"").1, vec![Int(0)]);
}

#[test]
fn booleans_integers_and_floats_bind_as_themselves() {
    assert_eq!(
        sql("major = true"),
        ("(is_major = $1)".into(), vec![Bool(true)])
    );
    assert_eq!(
        sql("major != FALSE"),
        ("(is_major <> $1)".into(), vec![Bool(false)])
    );
    assert_eq!(
        sql("major:true"),
        ("(is_major = $1)".into(), vec![Bool(true)])
    );
    assert_eq!(
        sql("reopen_count:-3"),
        ("(reopen_count = $1)".into(), vec![Int(-3)])
    );
    assert_eq!(
        sql("impact_score >= 0.5"),
        ("(impact_score >= $1)".into(), vec![Float(0.5)])
    );
    assert_eq!(
        sql("impact_score < 2"),
        ("(impact_score < $1)".into(), vec![Float(2.0)])
    );
}

#[test]
fn has_on_text_is_a_case_insensitive_contains_with_wildcards_escaped() {
    assert_eq!(
        sql("title:\"VPN Down\""),
        (
            "(LOWER(title) LIKE $1 ESCAPE '\\')".into(),
            vec![text("%vpn down%")]
        )
    );
    assert_eq!(
        sql(r#"title:"100%_done\\ÉTÉ""#).1,
        vec![text(r"%100\%\_done\\été%")]
    );
    assert_eq!(sql("title:vpn").1, vec![text("%vpn%")]);
    assert_eq!(
        sql("title:\"*\"").1,
        vec![text("%*%")],
        "a quoted * is a character"
    );
}

#[test]
fn presence_compares_with_the_zero_value_as_protobuf_does() {
    assert_eq!(sql("title:*"), ("(title <> '')".into(), vec![]));
    assert_eq!(
        sql("reopen_count:*"),
        ("(reopen_count <> 0)".into(), vec![])
    );
    assert_eq!(
        sql("impact_score:*"),
        ("(impact_score <> 0)".into(), vec![])
    );
    assert_eq!(sql("create_time:*"), ("(created_at <> 0)".into(), vec![]));
    assert_eq!(sql("state:*"), ("(state <> 0)".into(), vec![]));
    assert_eq!(sql("major:*"), ("(is_major = TRUE)".into(), vec![]));
    assert_eq!(sql("-title:*"), ("(NOT (title <> ''))".into(), vec![]));
}

#[test]
fn and_or_not_keep_aip_160_precedence_in_sql() {
    assert_eq!(
        sql("state = NEW AND priority = HIGH OR major = true"),
        (
            "(state = $1 AND (priority = $2 OR is_major = $3))".into(),
            vec![Int(1), Int(2), Bool(true)]
        )
    );
    assert_eq!(
        sql("(state = NEW AND priority = HIGH) OR major = true"),
        (
            "((state = $1 AND priority = $2) OR is_major = $3)".into(),
            vec![Int(1), Int(2), Bool(true)]
        )
    );
    assert_eq!(
        sql("assignment_group = network -state = CLOSED title:vpn"),
        (
            "(assignment_group = $1 AND NOT (state = $2) AND LOWER(title) LIKE $3 ESCAPE '\\')"
                .into(),
            vec![text("network"), Int(5), text("%vpn%")]
        )
    );
    assert_eq!(
        sql("NOT (state = RESOLVED OR state = CLOSED)"),
        (
            "(NOT (state = $1 OR state = $2))".into(),
            vec![Int(4), Int(5)]
        )
    );
    assert_eq!(
        sql("NOT (NOT major = true)"),
        ("(NOT NOT (is_major = $1))".into(), vec![Bool(true)])
    );
}

#[test]
fn placeholders_number_on_from_the_statement_so_far() {
    let mut out = SqlBuilder::new("SELECT id FROM incidents WHERE tenant = ");
    out.push_bind("acme").push(" AND ");
    assert!(filter_sql("state = NEW OR state = ON_HOLD", &INCIDENT, &mut out).unwrap());
    out.push(" ORDER BY id");
    assert_eq!(
        out.sql(),
        "SELECT id FROM incidents WHERE tenant = $1 AND (state = $2 OR state = $3) ORDER BY id"
    );
    assert_eq!(out.params(), [text("acme"), Int(1), Int(3)]);
}

#[test]
fn an_empty_filter_writes_nothing() {
    let mut out = SqlBuilder::new("SELECT 1");
    assert!(!filter_sql("   ", &INCIDENT, &mut out).unwrap());
    assert_eq!(out, SqlBuilder::new("SELECT 1"));
}

#[test]
fn injection_attempts_are_bound_not_written() {
    let (text_sql, params) =
        sql(r#"title = "x'); DROP TABLE incidents; --" OR title:"' OR 1=1 --""#);
    assert_eq!(text_sql, "(title = $1 OR LOWER(title) LIKE $2 ESCAPE '\\')");
    assert_eq!(
        params,
        vec![text("x'); DROP TABLE incidents; --"), text("%' or 1=1 --%")]
    );
}

#[test]
fn trees_built_in_code_compile_too() {
    let mut out = SqlBuilder::default();
    Expr::And(vec![]).compile(&INCIDENT, &mut out).unwrap();
    Expr::Or(vec![]).compile(&INCIDENT, &mut out).unwrap();
    assert_eq!(out.sql(), "(1 = 1)(1 = 0)");
}
