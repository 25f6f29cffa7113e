use itsm_platform::ErrorCode;

use super::*;
use crate::domain::enums::State;
use crate::domain::incident::Draft;
use crate::domain::matrix::DEFAULT;

fn agent() -> Actor {
    Actor {
        subject: "bob".into(),
        display_name: "Bob".into(),
        kind: 1,
    }
}

fn incident() -> Incident {
    let draft = Draft {
        title: "Printer jammed".into(),
        impact: 3,
        urgency: 3,
        caller: "ada".into(),
        ..Draft::default()
    };
    Incident::open(draft, "INC0000007".into(), &DEFAULT, agent(), 100)
}

fn assign(group: &str, assignee: &str) -> Action {
    Action::assign(group.into(), assignee.into()).unwrap()
}

fn resolve() -> Action {
    Action::resolve(1, "replaced the roller".into()).unwrap()
}

#[test]
fn assigning_a_person_starts_work_and_acknowledges_once() {
    let mut i = incident();
    let applied = i.apply(&assign("groups/desk", ""), &agent(), 200).unwrap();
    assert_eq!(applied.transition.to, State::New);
    assert_eq!(
        (i.assignment_group.as_str(), i.acknowledge_time),
        ("desk", None)
    );
    assert_eq!(i.version, 2);

    let applied = i.apply(&assign("", "carl"), &agent(), 300).unwrap();
    assert_eq!(applied.transition.to, State::InProgress);
    assert_eq!(i.state, State::InProgress);
    assert_eq!(i.acknowledge_time, Some(300));
    assert_eq!(i.reassignment_count, 0, "first person in the same group");
    let fields: Vec<_> = applied.changes.iter().map(|c| c.field.as_str()).collect();
    assert_eq!(fields, ["state", "assignee", "acknowledge_time"]);

    i.apply(&assign("", "dora"), &agent(), 400).unwrap();
    assert_eq!(i.reassignment_count, 1);
    assert_eq!(
        i.acknowledge_time,
        Some(300),
        "kept from the first assignment"
    );
    i.apply(&assign("network", ""), &agent(), 500).unwrap();
    assert_eq!(
        (i.assignment_group.as_str(), i.assignee.as_str()),
        ("network", "")
    );
    assert_eq!(i.reassignment_count, 2);

    let version = i.version;
    let same = i.apply(&assign("network", ""), &agent(), 600).unwrap();
    assert!(same.changes.is_empty());
    assert_eq!(i.version, version, "nothing changed, nothing written");
}

#[test]
fn first_contact_resolution_needs_no_reassignment_and_no_reopen() {
    let mut i = incident();
    i.apply(&assign("desk", "carl"), &agent(), 200).unwrap();
    i.apply(&resolve(), &agent(), 300).unwrap();
    assert!(i.first_contact_resolution);
    assert_eq!(i.resolve_time, Some(300));
    assert_eq!(i.resolution_code, Some(ResolutionCode::SolvedPermanently));

    let reopen = Action::Reopen {
        reason: "jammed again".into(),
    };
    let applied = i.apply(&reopen, &agent(), 400).unwrap();
    assert_eq!(i.state, State::InProgress);
    assert_eq!((i.reopen_count, i.reopen_time), (1, Some(400)));
    assert_eq!(i.reopened_by, Some(agent()));
    assert_eq!(i.resolution_code, None);
    assert!(!i.first_contact_resolution);
    assert_eq!(
        applied.journal,
        Some((JournalKind::Comment, "Reopened: jammed again".into()))
    );
    assert!(
        applied
            .changes
            .contains(&FieldChange::new("reopen_reason", "", "jammed again"))
    );
    i.apply(&resolve(), &agent(), 500).unwrap();
    assert!(!i.first_contact_resolution, "reopened once");

    let mut j = incident();
    j.apply(&assign("desk", "carl"), &agent(), 200).unwrap();
    j.apply(&assign("desk", "dora"), &agent(), 250).unwrap();
    j.apply(&resolve(), &agent(), 300).unwrap();
    assert!(!j.first_contact_resolution, "reassigned once");
}

#[test]
fn hold_needs_a_reason_and_keeps_its_note() {
    let mut i = incident();
    i.apply(&assign("desk", "carl"), &agent(), 200).unwrap();
    let before = i.clone();
    let error = i
        .apply(&Action::hold(0, String::new()).unwrap(), &agent(), 300)
        .unwrap_err();
    assert_eq!(error.code(), ErrorCode::InvalidArgument);
    assert_eq!(error.field_violations()[0].field, "reason");
    assert_eq!(i, before, "untouched on error");

    let hold = Action::hold(1, "asked for the model".into()).unwrap();
    let applied = i.apply(&hold, &agent(), 300).unwrap();
    assert_eq!(i.hold_reason, Some(HoldReason::AwaitingCaller));
    assert_eq!(
        applied.journal,
        Some((JournalKind::WorkNote, "asked for the model".into()))
    );
    i.apply(&Action::CallerReply, &agent(), 400).unwrap();
    assert_eq!((i.state, i.hold_reason), (State::InProgress, None));
}

#[test]
fn illegal_transitions_leave_the_incident_untouched() {
    let mut i = incident();
    i.apply(
        &Action::Cancel {
            reason: "duplicate".into(),
        },
        &agent(),
        200,
    )
    .unwrap();
    assert_eq!(
        (i.state, i.cancel_reason.as_str()),
        (State::Canceled, "duplicate")
    );
    let before = i.clone();
    for action in [
        assign("desk", "carl"),
        resolve(),
        Action::Close,
        Action::Resume,
    ] {
        let error = i.apply(&action, &agent(), 300).unwrap_err();
        assert_eq!(error.code(), ErrorCode::FailedPrecondition, "{action:?}");
        assert!(
            error.message().contains("is CANCELED"),
            "{}",
            error.message()
        );
    }
    assert_eq!(i, before);
}

#[test]
fn form_errors_are_caught_before_the_table() {
    assert!(Action::hold(9, String::new()).is_err());
    assert!(Action::resolve(42, String::new()).is_err());
    assert!(Action::assign(String::new(), String::new()).is_err());
    assert!(Action::assign("a group".into(), String::new()).is_err());
    assert!(Action::check_reason(&"r".repeat(4_001)).is_err());
}
