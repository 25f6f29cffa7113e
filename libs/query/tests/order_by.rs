//! `order_by` against the sample incident schema.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/incident.rs"]
mod support;

use itsm_query::{OrderTerm, parse_order_by};
use support::INCIDENT;

fn order(input: &str) -> Vec<(&'static str, bool)> {
    parse_order_by(input, &INCIDENT)
        .unwrap()
        .into_iter()
        .map(|t| (t.field.column, t.descending))
        .collect()
}

fn refused(input: &str) -> String {
    let error = parse_order_by(input, &INCIDENT).unwrap_err();
    assert_eq!(error.field, "order_by");
    error.description()
}

#[test]
fn empty_means_the_callers_default() {
    assert_eq!(order(""), vec![]);
    assert_eq!(order("  \t "), vec![]);
}

#[test]
fn fields_in_order_with_directions() {
    assert_eq!(
        order("priority, create_time desc"),
        vec![("priority", false), ("created_at", true)]
    );
    assert_eq!(
        order("  create_time   DESC ,priority ASC,reopen_count Desc  "),
        vec![
            ("created_at", true),
            ("priority", false),
            ("reopen_count", true)
        ]
    );
    assert_eq!(order("state asc"), vec![("state", false)]);
}

#[test]
fn terms_print_canonically_and_give_their_sql_direction() {
    let terms: Vec<OrderTerm> =
        parse_order_by("priority ASC, create_time DESC", &INCIDENT).unwrap();
    let printed: Vec<String> = terms.iter().map(ToString::to_string).collect();
    assert_eq!(printed, ["priority", "create_time desc"]);
    assert_eq!(terms[0].sql_direction(), "ASC");
    assert_eq!(terms[1].sql_direction(), "DESC");
}

#[test]
fn only_known_sortable_fields_once_each() {
    let sortable =
        "(sortable fields: state, priority, assignment_group, create_time, reopen_count)";
    assert_eq!(
        refused("priority, create"),
        format!("at position 10: unknown field \"create\" {sortable}")
    );
    assert_eq!(
        refused("title desc"),
        format!("at position 0: title cannot be sorted on {sortable}")
    );
    assert_eq!(
        refused("created_at"),
        format!("at position 0: unknown field \"created_at\" {sortable}")
    );
    assert_eq!(
        refused("Priority"),
        format!("at position 0: unknown field \"Priority\" {sortable}")
    );
    assert_eq!(
        refused("priority desc, state, priority"),
        "at position 22: priority appears twice"
    );
}

#[test]
fn malformed_lists_point_at_the_problem() {
    assert_eq!(
        refused("priority down"),
        "at position 9: expected asc, desc or ',' after \"priority\", found \"down\""
    );
    assert_eq!(
        refused("priority desc asc"),
        "at position 14: expected ',' after \"priority desc\", found \"asc\""
    );
    assert_eq!(
        refused("priority create_time"),
        "at position 9: expected asc, desc or ',' after \"priority\", found \"create_time\""
    );
    assert_eq!(
        refused("priority,"),
        "at position 9: expected a field name after \"priority\", found end of input"
    );
    assert_eq!(
        refused("priority,,state"),
        "at position 9: expected a field name after \"priority\", found ','"
    );
    assert_eq!(
        refused(",priority"),
        "at position 0: expected a field name, found ','"
    );
    assert_eq!(
        refused("desc"),
        "at position 0: unknown field \"desc\" (sortable fields: state, priority, assignment_group, create_time, reopen_count)"
    );
}

#[test]
fn positions_count_characters_and_length_is_capped() {
    assert_eq!(
        refused("priority é"),
        "at position 9: expected asc, desc or ',' after \"priority\", found \"é\""
    );
    let long = format!("priority{}", " ".repeat(1_993));
    assert_eq!(
        refused(&long),
        "at position 2000: 2001 characters long; the limit is 2000"
    );
}

#[test]
fn errors_become_invalid_argument_on_order_by() {
    let error = parse_order_by("nope", &INCIDENT).unwrap_err();
    let api = itsm_platform::ApiError::from(error);
    assert_eq!(api.field_violations()[0].field, "order_by");
    assert!(
        api.field_violations()[0]
            .description
            .starts_with("at position 0: unknown field")
    );
}
