use std::collections::BTreeMap;

use super::*;
use crate::domain::matrix::DEFAULT;
use crate::domain::update;

pub(crate) fn draft() -> Draft {
    Draft {
        title: "VPN drops every 10 minutes".into(),
        description: "Since this morning".into(),
        impact: 2,
        urgency: 1,
        caller: "ada".into(),
        category: "network".into(),
        channel: 1,
        ..Draft::default()
    }
}

fn fields(error: &ApiError) -> Vec<&str> {
    error
        .field_violations()
        .iter()
        .map(|v| v.field.as_str())
        .collect()
}

#[test]
fn a_new_incident_is_new_with_its_priority_from_the_matrix() {
    let incident = Incident::open(
        draft(),
        "INC0000001".into(),
        &DEFAULT,
        Actor::system("t"),
        5,
    );
    assert_eq!(incident.state, State::New);
    assert_eq!(incident.priority, Priority::High);
    assert_eq!(incident.version, 1);
    assert_eq!(incident.name(), "incidents/INC0000001");
    assert_eq!(incident.acknowledge_time, None);
    let changed: Vec<_> = incident
        .creation_changes()
        .into_iter()
        .map(|c| c.field)
        .collect();
    assert_eq!(
        changed,
        [
            "title",
            "description",
            "state",
            "impact",
            "urgency",
            "priority",
            "caller",
            "category",
            "channel",
            "major_state"
        ]
    );
}

#[test]
fn every_bad_field_is_named_at_once() {
    let mut bad = draft();
    bad.title = " ".into();
    bad.description = "x".repeat(32_001);
    bad.impact = 0;
    bad.urgency = 7;
    bad.caller = String::new();
    bad.service = "web-01".into();
    bad.assignee = "bob".into();
    bad.channel = 99;
    bad.labels = (0..65).map(|i| (format!("k{i}"), "v".to_owned())).collect();
    bad.labels.insert("Bad Key".into(), "v".into());
    let error = bad.validate_new().unwrap_err();
    assert_eq!(
        fields(&error),
        [
            "incident.title",
            "incident.description",
            "incident.impact",
            "incident.urgency",
            "incident.service",
            "incident.channel",
            "incident.labels",
            "incident.labels[\"Bad Key\"]",
            "incident.caller",
            "incident.assignee",
        ]
    );
    let mut long = draft();
    long.title = "t".repeat(161);
    assert_eq!(
        fields(&long.validate_new().unwrap_err()),
        ["incident.title"]
    );
    long.title = "é".repeat(160);
    assert!(long.validate_new().is_ok(), "characters, not bytes");
}

#[test]
fn changes_are_field_by_field() {
    let before = Incident::open(
        draft(),
        "INC0000001".into(),
        &DEFAULT,
        Actor::system("t"),
        5,
    );
    let mut after = before.clone();
    after.title = "VPN down".into();
    after.labels = BTreeMap::from([("site".to_owned(), "paris".to_owned())]);
    let changes = before.changes_to(&after);
    assert_eq!(
        changes,
        [
            FieldChange::new("title", "VPN drops every 10 minutes", "VPN down"),
            FieldChange::new("labels", "", r#"{"site":"paris"}"#),
        ]
    );
}

#[test]
fn updates_take_masked_fields_only_and_recompute_priority() {
    let mut incident = Incident::open(
        draft(),
        "INC0000001".into(),
        &DEFAULT,
        Actor::system("t"),
        5,
    );
    let mut patch = draft();
    patch.title = "ignored".into();
    patch.impact = 3;
    patch.urgency = 3;
    let mask = update::check_mask(&["impact".into(), "urgency".into()]).unwrap();
    update::check_fields(&patch, &mask).unwrap();
    update::apply(&mut incident, patch, &mask, &DEFAULT);
    assert_eq!(incident.title, "VPN drops every 10 minutes");
    assert_eq!(incident.priority, Priority::Planning);

    let error = update::check_mask(&["state".into(), "title".into(), "title".into()]).unwrap_err();
    assert_eq!(
        fields(&error),
        ["update_mask.paths[0]", "update_mask.paths[2]"]
    );
    assert_eq!(
        fields(&update::check_mask(&[]).unwrap_err()),
        ["update_mask"]
    );
}
