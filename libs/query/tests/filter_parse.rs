//! Parsing filters into trees: precedence, grouping, every literal kind and
//! the canonical text each tree prints as.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/incident.rs"]
mod support;

use itsm_query::Expr;
use itsm_query::{Op, Value, parse_filter};
use support::{and, cmp, eq, name, not, or, parse, string};

fn a() -> Expr {
    eq("a", Value::Int(1))
}
fn b() -> Expr {
    eq("b", Value::Int(2))
}
fn c() -> Expr {
    eq("c", Value::Int(3))
}

#[test]
fn empty_and_blank_filters_have_no_predicate() {
    assert_eq!(parse_filter("").unwrap(), None);
    assert_eq!(parse_filter(" \t\n ").unwrap(), None);
}

#[test]
fn a_single_comparison_is_itself() {
    assert_eq!(parse("a = 1"), a());
    assert_eq!(parse("  a=1  "), a());
}

#[test]
fn every_operator_parses() {
    for (text, op) in [
        ("=", Op::Eq),
        ("!=", Op::Ne),
        ("<", Op::Lt),
        ("<=", Op::Le),
        (">", Op::Gt),
        (">=", Op::Ge),
        (":", Op::Has),
    ] {
        assert_eq!(
            parse(&format!("n {text} 5")),
            cmp("n", op, Value::Int(5)),
            "{text}"
        );
        assert_eq!(
            parse(&format!("n{text}5")),
            cmp("n", op, Value::Int(5)),
            "{text}"
        );
    }
}

#[test]
fn or_binds_tighter_than_and_as_aip_160_says() {
    // a AND (b OR c), not (a AND b) OR c.
    assert_eq!(
        parse("a = 1 AND b = 2 OR c = 3"),
        and([a(), or([b(), c()])])
    );
    assert_eq!(
        parse("a = 1 OR b = 2 AND c = 3"),
        and([or([a(), b()]), c()])
    );
}

#[test]
fn juxtaposition_is_and_looser_than_or() {
    assert_eq!(parse("a = 1 b = 2"), and([a(), b()]));
    assert_eq!(parse("a = 1 b = 2 OR c = 3"), and([a(), or([b(), c()])]));
    assert_eq!(parse("a = 1 b = 2 AND c = 3"), and([a(), b(), c()]));
}

#[test]
fn not_binds_tightest() {
    assert_eq!(parse("NOT a = 1 OR b = 2"), or([not(a()), b()]));
    assert_eq!(parse("NOT a = 1 AND b = 2"), and([not(a()), b()]));
    assert_eq!(parse("-a = 1 OR b = 2"), or([not(a()), b()]));
    assert_eq!(parse("NOT(a = 1)"), not(a()));
}

#[test]
fn minus_negates_and_is_not_a_number_sign_before_a_field() {
    assert_eq!(parse("-a = 1"), not(a()));
    assert_eq!(parse("a = 1 -b = 2"), and([a(), not(b())]));
    assert_eq!(parse("n = -5"), eq("n", Value::Int(-5)));
}

#[test]
fn parentheses_group_and_same_kind_operands_are_merged() {
    assert_eq!(
        parse("(a = 1 AND b = 2) OR c = 3"),
        or([and([a(), b()]), c()])
    );
    assert_eq!(parse("NOT (a = 1 OR b = 2)"), not(or([a(), b()])));
    assert_eq!(parse("(a = 1 AND b = 2) AND c = 3"), and([a(), b(), c()]));
    assert_eq!(parse("a = 1 OR (b = 2 OR c = 3)"), or([a(), b(), c()]));
    assert_eq!(parse("((((a = 1))))"), a());
    assert_eq!(parse("NOT (NOT a = 1)"), not(not(a())));
}

#[test]
fn strings_take_either_quote_and_backslash_escapes() {
    assert_eq!(parse(r#"t = "disk full""#), eq("t", string("disk full")));
    assert_eq!(parse("t = 'disk full'"), eq("t", string("disk full")));
    assert_eq!(
        parse(r#"t = "say \"hi\" it\'s \\ \n\r\t""#),
        eq("t", string("say \"hi\" it's \\ \n\r\t"))
    );
    assert_eq!(parse(r#"t = 'a "b"'"#), eq("t", string("a \"b\"")));
    assert_eq!(parse(r#"t = """#), eq("t", string("")));
    assert_eq!(
        parse(r#"t = "AND OR NOT ( ) * : = 1""#),
        eq("t", string("AND OR NOT ( ) * : = 1"))
    );
    assert_eq!(parse("t = \"née\""), eq("t", string("née")));
}

#[test]
fn numbers_are_integers_unless_they_have_a_point_or_exponent() {
    assert_eq!(parse("n = 42"), eq("n", Value::Int(42)));
    assert_eq!(parse("n = 007"), eq("n", Value::Int(7)));
    assert_eq!(
        parse("n = -9223372036854775808"),
        eq("n", Value::Int(i64::MIN))
    );
    assert_eq!(
        parse("n = 9223372036854775807"),
        eq("n", Value::Int(i64::MAX))
    );
    assert_eq!(parse("n = 1.5"), eq("n", Value::Float(1.5)));
    assert_eq!(parse("n = -0.25"), eq("n", Value::Float(-0.25)));
    assert_eq!(parse("n = 2e3"), eq("n", Value::Float(2000.0)));
    assert_eq!(parse("n = 2.5E-3"), eq("n", Value::Float(0.0025)));
    assert_eq!(parse("n = 1e+2"), eq("n", Value::Float(100.0)));
}

#[test]
fn booleans_names_timestamps_and_presence() {
    assert_eq!(parse("major = true"), eq("major", Value::Bool(true)));
    assert_eq!(parse("major = false"), eq("major", Value::Bool(false)));
    assert_eq!(parse("major = TRUE"), eq("major", name("TRUE")));
    assert_eq!(
        parse("state = IN_PROGRESS"),
        eq("state", name("IN_PROGRESS"))
    );
    assert_eq!(parse("group = _net.ops2"), eq("group", name("_net.ops2")));
    assert_eq!(
        parse(r#"create_time > "2026-01-01T00:00:00Z""#),
        cmp("create_time", Op::Gt, string("2026-01-01T00:00:00Z"))
    );
    assert_eq!(parse("title:*"), cmp("title", Op::Has, Value::Any));
    assert_eq!(parse("title : *"), cmp("title", Op::Has, Value::Any));
}

#[test]
fn positions_are_recorded_in_characters() {
    let Expr::And(operands) = parse("t = \"é\" AND title >= \"x\"") else {
        panic!("expected AND");
    };
    let Expr::Compare(second) = &operands[1] else {
        panic!("expected a comparison");
    };
    assert_eq!(
        (second.field_pos, second.op_pos, second.value_pos),
        (12, 18, 21)
    );
}

#[test]
fn prints_canonical_text() {
    for (input, canonical) in [
        ("a=1", "a = 1"),
        ("a = 1 b = 2 OR c = 3", "a = 1 AND (b = 2 OR c = 3)"),
        ("-a = 1", "NOT a = 1"),
        ("NOT (NOT a = 1)", "NOT (NOT a = 1)"),
        ("(a = 1 b = 2) OR c = 3", "(a = 1 AND b = 2) OR c = 3"),
        ("t : 'it\\'s'", r#"t:"it's""#),
        ("n = 1e3", "n = 1000.0"),
        ("n != -1.5", "n != -1.5"),
        ("x:* y = true", "x:* AND y = true"),
        ("s = NEW", "s = NEW"),
    ] {
        let expr = parse(input);
        assert_eq!(expr.to_string(), canonical, "{input}");
        assert_eq!(parse(canonical), expr, "{canonical} parses back");
    }
}
