//! Every way a filter is refused: the message a caller reads and the
//! position it points at, and the limits that keep abuse cheap.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/incident.rs"]
mod support;

use itsm_query::{SqlBuilder, filter_sql, parse_filter};
use support::{INCIDENT, filter_error, refused};

#[test]
fn missing_or_misplaced_values() {
    assert_eq!(
        refused("state ="),
        "at position 7: expected a value after '=', found end of input"
    );
    assert_eq!(
        refused("state = AND priority = HIGH"),
        "at position 8: expected a value after '=', found AND"
    );
    assert_eq!(
        refused("title:"),
        "at position 6: expected a value after ':', found end of input"
    );
    assert_eq!(
        refused("title = *"),
        "at position 8: '*' only follows ':' (field:* asks whether the field is set), not '='"
    );
}

#[test]
fn a_value_without_a_field_is_refused_with_a_hint() {
    let hint =
        "has no field to compare with: write field = value or field:value, e.g. title:\"disk\"";
    assert_eq!(
        refused("urgent"),
        format!("at position 0: \"urgent\" {hint}")
    );
    assert_eq!(
        refused("state = NEW \"disk\""),
        format!("at position 12: the string \"disk\" {hint}")
    );
    assert_eq!(
        refused("42"),
        format!("at position 0: the number 42 {hint}")
    );
    assert_eq!(
        refused("\"title\" = 1"),
        "at position 0: expected a field name, found the string \"title\": the field comes first, e.g. title = \"x\""
    );
    assert_eq!(
        refused("state = NEW and major = true"),
        "at position 12: \"and\" is not an operator: write AND in capitals"
    );
}

#[test]
fn broken_structure() {
    assert_eq!(
        refused("(state = NEW"),
        "at position 12: expected ')' to close the '(' at position 0, found end of input"
    );
    assert_eq!(
        refused("(state = NEW major = true"),
        "at position 25: expected ')' to close the '(' at position 0, found end of input"
    );
    assert_eq!(
        refused("state = NEW)"),
        "at position 11: unmatched ')' (no '(' is open)"
    );
    assert_eq!(
        refused("()"),
        "at position 1: expected a comparison after '(', found ')'"
    );
    assert_eq!(
        refused("state = NEW AND"),
        "at position 15: expected a comparison after AND, found end of input"
    );
    assert_eq!(
        refused("state = NEW OR OR major = true"),
        "at position 15: expected a comparison after OR, found OR"
    );
    assert_eq!(
        refused("NOT NOT major = true"),
        "at position 4: expected a comparison after NOT, found NOT"
    );
    assert_eq!(
        refused("--major = true"),
        "at position 1: expected a comparison after '-', found '-'"
    );
    assert_eq!(
        refused("= NEW"),
        "at position 0: expected a comparison, found '='"
    );
    assert_eq!(
        refused("state = NEW = OLD"),
        "at position 12: expected a comparison after \"NEW\", found '='"
    );
}

#[test]
fn malformed_literals() {
    assert_eq!(
        refused("reopen_count = 99999999999999999999"),
        "at position 15: 99999999999999999999 does not fit in a 64-bit integer"
    );
    assert_eq!(
        refused("impact_score = 1e999"),
        "at position 15: 1e999 is too large for a number"
    );
    assert_eq!(
        refused("reopen_count = 12abc"),
        "at position 15: \"12abc\" is not a number (quote text: \"...\")"
    );
    assert_eq!(
        refused("title = \"disk"),
        "at position 8: string never closed: add the closing \""
    );
    assert_eq!(
        refused(r"title = 'a\d'"),
        r#"at position 10: unknown escape \d in string (known: \\ \" \' \n \r \t)"#
    );
    assert_eq!(
        refused("title = x # comment"),
        "at position 10: unexpected character '#'"
    );
    assert_eq!(
        refused("major ! true"),
        "at position 6: unexpected character '!' (did you mean '!=' or NOT?)"
    );
    assert_eq!(
        refused("title == x"),
        "at position 7: expected a value after '=', found '='"
    );
}

#[test]
fn unknown_fields_list_the_known_ones() {
    assert_eq!(
        refused("titel:\"vpn\""),
        "at position 0: unknown field \"titel\" (fields: title, state, priority, assignment_group, create_time, reopen_count, major, impact_score)"
    );
    // Columns are not names: only the API's field names are.
    assert!(refused("created_at > 0").contains("unknown field \"created_at\""));
    assert!(
        refused("incident.title:x").starts_with("at position 0: unknown field \"incident.title\"")
    );
    assert!(
        refused("state = NEW Title = x").starts_with("at position 12: unknown field \"Title\"")
    );
}

#[test]
fn literals_of_the_wrong_kind_say_what_the_field_takes() {
    let priorities = "priority takes one of CRITICAL, HIGH, MODERATE, LOW, PLANNING";
    assert_eq!(
        refused("priority = urgent"),
        format!("at position 11: {priorities}; got \"urgent\"")
    );
    assert_eq!(
        refused("priority = high"),
        format!("at position 11: {priorities}; got \"high\" (names are case-sensitive: HIGH)")
    );
    assert_eq!(
        refused("priority <= 2"),
        format!("at position 12: {priorities}; got 2")
    );
    assert_eq!(
        refused("priority = NOT_HIGH"),
        format!("at position 11: {priorities}; got \"NOT_HIGH\""),
        "a prefix must end with the field name"
    );
    assert_eq!(
        refused("major = 1"),
        "at position 8: major takes true or false; got 1"
    );
    assert_eq!(
        refused("reopen_count = 1.5"),
        "at position 15: reopen_count takes a whole number; got 1.5"
    );
    assert_eq!(
        refused("reopen_count = \"3\""),
        "at position 15: reopen_count takes a whole number; got \"3\""
    );
    assert_eq!(
        refused("impact_score > high"),
        "at position 15: impact_score takes a number; got \"high\""
    );
    let timestamp =
        "create_time takes an RFC 3339 timestamp in quotes, e.g. \"2026-01-01T00:00:00Z\"";
    assert_eq!(
        refused("create_time > \"yesterday\""),
        format!("at position 14: {timestamp}; got \"yesterday\"")
    );
    assert_eq!(
        refused("create_time > \"2026-01-01\""),
        format!("at position 14: {timestamp}; got \"2026-01-01\"")
    );
    assert_eq!(
        refused("create_time > 2026"),
        format!("at position 14: {timestamp}; got 2026")
    );
    assert_eq!(
        refused("title = 42"),
        "at position 8: title takes text in quotes, e.g. \"42\"; got 42"
    );
    assert_eq!(
        refused("title:true"),
        "at position 6: title takes text in quotes, e.g. title:\"true\"; got true"
    );
}

#[test]
fn booleans_cannot_be_ordered() {
    assert_eq!(
        refused("major < true"),
        "at position 6: major is true or false: compare it with = or !=, not <"
    );
    assert_eq!(
        refused("state = NEW major >= false"),
        "at position 18: major is true or false: compare it with = or !=, not >="
    );
}

#[test]
fn a_late_error_leaves_the_statement_untouched() {
    let mut sql = SqlBuilder::new("SELECT id FROM incidents WHERE tenant = ");
    sql.push_bind(7_i64).push(" AND ");
    let before = sql.clone();
    let error = filter_sql(
        "state = NEW AND (title:x OR major = maybe)",
        &INCIDENT,
        &mut sql,
    )
    .unwrap_err();
    assert_eq!(error.position, 36);
    assert_eq!(sql, before);
}

#[test]
fn errors_display_with_the_request_field() {
    let error = filter_error("state =");
    assert_eq!(
        error.to_string(),
        "filter: at position 7: expected a value after '=', found end of input"
    );
    let api = itsm_platform::ApiError::from(error);
    assert_eq!(api.code(), itsm_platform::ErrorCode::InvalidArgument);
    assert_eq!(api.field_violations()[0].field, "filter");
}

#[test]
fn input_length_is_capped_at_2000_characters() {
    let fits = format!("title:\"{}\"", "x".repeat(1_992));
    assert_eq!(fits.chars().count(), 2_000);
    assert!(parse_filter(&fits).unwrap().is_some());

    let long = format!("title:\"{}\"", "x".repeat(1_993));
    assert_eq!(
        refused(&long),
        "at position 2000: 2001 characters long; the limit is 2000"
    );
    // Characters, not bytes: 1,990 two-byte characters fit.
    let wide = format!("title:\"{}\"", "é".repeat(1_992));
    assert!(parse_filter(&wide).unwrap().is_some());
}

#[test]
fn nesting_is_capped_at_32_without_overflowing_the_stack() {
    let nested = |depth: usize| format!("{}major = true{}", "(".repeat(depth), ")".repeat(depth));
    assert!(parse_filter(&nested(32)).unwrap().is_some());
    assert_eq!(
        refused(&nested(33)),
        "at position 32: parentheses nested more than 32 deep"
    );
    let negated =
        |depth: usize| format!("{}major = true{}", "NOT (".repeat(depth), ")".repeat(depth));
    assert!(parse_filter(&negated(32)).unwrap().is_some());
    assert_eq!(
        refused(&negated(33)),
        "at position 164: parentheses nested more than 32 deep"
    );
    // What an attacker would send: as deep as the length limit allows.
    assert_eq!(filter_error(&"(".repeat(2_000)).position, 32);
}

#[test]
fn comparisons_are_capped_at_100() {
    let many = |n: usize| vec!["reopen_count = 1"; n].join(" OR ");
    let mut sql = SqlBuilder::default();
    assert!(filter_sql(&many(100), &INCIDENT, &mut sql).unwrap());
    assert_eq!(sql.params().len(), 100);
    // The 101st comparison is refused before any field is looked up.
    let too_many = vec!["n:1"; 101].join(" ");
    assert_eq!(
        refused(&too_many),
        "at position 400: more than 100 comparisons; narrow the filter"
    );
}
