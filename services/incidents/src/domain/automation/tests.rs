use std::collections::HashMap;

use itsm_store::query::{Field, FieldKind};

use super::*;

static SCHEMA: Schema = Schema {
    resource: "incident",
    fields: &[
        Field {
            name: "category",
            column: "category",
            kind: FieldKind::Text,
            sortable: false,
        },
        Field {
            name: "priority",
            column: "priority",
            kind: FieldKind::Enum(&[("CRITICAL", 1), ("HIGH", 2)]),
            sortable: false,
        },
    ],
};

fn draft(condition: &str, group: &str, ci: bool, strategy: i32) -> RuleDraft {
    RuleDraft {
        order: 10,
        condition: condition.to_owned(),
        use_ci_support_group: ci,
        assignment_group: group.to_owned(),
        strategy,
        enabled: true,
    }
}

fn fields(error: &ApiError) -> Vec<(&str, &str)> {
    error
        .field_violations()
        .iter()
        .map(|v| (v.field.as_str(), v.description.as_str()))
        .collect()
}

#[test]
fn a_valid_rule_defaults_to_group_only() {
    let rule = draft(
        r#"category = "network" priority <= HIGH"#,
        "groups/net",
        false,
        0,
    );
    assert_eq!(rule.validate(&SCHEMA).unwrap(), Strategy::GroupOnly);
    let rule = draft("", "", true, 2);
    assert_eq!(rule.validate(&SCHEMA).unwrap(), Strategy::RoundRobin);
}

#[test]
fn conditions_are_compiled_and_errors_name_the_position() {
    let error = draft("category = ", "net", false, 1)
        .validate(&SCHEMA)
        .unwrap_err();
    let found = fields(&error);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].0, "rule.condition");
    assert!(found[0].1.starts_with("at position 11:"), "{}", found[0].1);
    let error = draft("colour = red", "net", false, 1)
        .validate(&SCHEMA)
        .unwrap_err();
    assert!(fields(&error)[0].1.starts_with("at position 0:"));
}

#[test]
fn the_group_comes_from_the_rule_or_the_ci_never_both() {
    let error = draft("", "", false, 1).validate(&SCHEMA).unwrap_err();
    assert_eq!(fields(&error)[0].0, "rule.assignment_group");
    let error = draft("", "net", true, 1).validate(&SCHEMA).unwrap_err();
    assert_eq!(fields(&error)[0].0, "rule.assignment_group");
    let error = draft("x =", "bad group", false, 9)
        .validate(&SCHEMA)
        .unwrap_err();
    let names: Vec<_> = fields(&error).into_iter().map(|(f, _)| f).collect();
    assert_eq!(
        names,
        ["rule.condition", "rule.assignment_group", "rule.strategy"]
    );
}

#[test]
fn names_carry_a_positive_id() {
    assert_eq!(id_from_name("assignmentRules/7", "name").unwrap(), 7);
    for bad in [
        "",
        "assignmentRules/",
        "assignmentRules/0",
        "rules/7",
        "assignmentRules/-1",
        "assignmentRules/7x",
    ] {
        assert!(id_from_name(bad, "name").is_err(), "{bad:?}");
    }
}

#[test]
fn masks_name_known_fields_once() {
    assert_eq!(
        check_mask(&["enabled".into(), "order".into()]).unwrap(),
        ["enabled", "order"]
    );
    let error = check_mask(&["order".into(), "order".into(), "name".into()]).unwrap_err();
    let names: Vec<_> = fields(&error).into_iter().map(|(f, _)| f).collect();
    assert_eq!(names, ["update_mask.paths[1]", "update_mask.paths[2]"]);
    assert!(check_mask(&[]).is_err());
}

#[test]
fn round_robin_follows_the_last_assignee_and_wraps() {
    let members: Vec<String> = ["cara", "abe", "bo"].map(String::from).to_vec();
    assert_eq!(next_round_robin(&members, "").unwrap(), "abe");
    assert_eq!(next_round_robin(&members, "abe").unwrap(), "bo");
    assert_eq!(next_round_robin(&members, "bo").unwrap(), "cara");
    assert_eq!(next_round_robin(&members, "cara").unwrap(), "abe");
    // The last assignee left the group: the next in order still comes next.
    assert_eq!(next_round_robin(&members, "bz").unwrap(), "cara");
    assert!(next_round_robin(&[], "abe").is_none());
}

#[test]
fn least_loaded_prefers_the_idle_then_the_first() {
    let members: Vec<String> = ["abe", "bo", "cara"].map(String::from).to_vec();
    let loads = HashMap::from([("abe".to_owned(), 2), ("bo".to_owned(), 1)]);
    assert_eq!(least_loaded(&members, &loads).unwrap(), "cara");
    let loads = HashMap::from([
        ("abe".to_owned(), 1),
        ("bo".to_owned(), 1),
        ("cara".to_owned(), 1),
    ]);
    assert_eq!(least_loaded(&members, &loads).unwrap(), "abe");
}

#[test]
fn changes_are_field_by_field() {
    let mut rule = AssignmentRule {
        id: 3,
        order: 1,
        condition: String::new(),
        use_ci_support_group: false,
        assignment_group: "net".into(),
        strategy: Strategy::GroupOnly,
        enabled: true,
        created_by: Actor::system("test"),
        create_time: 0,
        update_time: 0,
        version: 1,
    };
    assert_eq!(rule.creation_changes().len(), 6);
    let before = rule.clone();
    let mut changed = rule.draft();
    changed.strategy = 3;
    changed.assignment_group = "groups/desk".into();
    rule.set(changed, Strategy::LeastLoaded);
    assert_eq!(
        before.changes_to(&rule),
        [
            FieldChange::new("assignment_group", "net", "desk"),
            FieldChange::new("strategy", "GROUP_ONLY", "LEAST_LOADED"),
        ]
    );
}

#[test]
fn means_and_rates_handle_empty_sets() {
    assert_eq!(mean(10, 0), None);
    assert_eq!(mean(10, 4), Some(2));
    assert!((rate(1, 4) - 0.25).abs() < f64::EPSILON);
    assert!(rate(3, 0).abs() < f64::EPSILON);
}
