use itsm_platform::ErrorCode;

use super::major::{MajorRuleAction, RuleDraft};
use super::task::{Task, TaskDraft, TaskState};
use super::*;
use crate::domain::enums::State::Resolved;
use crate::domain::enums::{MajorState, ResolutionCode};
use crate::domain::incident::Draft;
use crate::domain::matrix::DEFAULT;

fn agent() -> Actor {
    Actor {
        subject: "bob".into(),
        display_name: "Bob".into(),
        kind: 1,
    }
}

fn incident(number: &str, state: State, reason: Option<HoldReason>) -> Incident {
    let draft = Draft {
        title: "Site down".into(),
        impact: 2,
        urgency: 2,
        caller: "ada".into(),
        ..Draft::default()
    };
    let mut i = Incident::open(draft, number.into(), &DEFAULT, agent(), 100);
    i.state = state;
    i.hold_reason = reason;
    i
}

fn parent_change(
    method: Method,
    from: State,
    to: State,
    reason: Option<HoldReason>,
) -> Option<Trigger> {
    let before = incident(
        "INC0000001",
        from,
        (method == Method::Resume).then_some(reason).flatten(),
    );
    let mut after = before.clone();
    after.state = to;
    after.hold_reason = (method == Method::Hold).then_some(reason).flatten();
    after.resolution_notes = "fixed upstream".into();
    trigger(method, &before, &after)
}

#[test]
fn only_holds_resumes_and_resolutions_propagate() {
    let methods: Vec<Method> = PROPAGATIONS.iter().map(|p| p.method).collect();
    assert_eq!(methods, [Method::Hold, Method::Resume, Method::Resolve]);
    for method in [
        Method::Close,
        Method::Cancel,
        Method::Reopen,
        Method::Assign,
        Method::CallerReply,
    ] {
        assert!(
            PROPAGATIONS.iter().all(|p| p.method != method),
            "{method:?}"
        );
    }
    assert!(parent_change(Method::Close, Resolved, State::Closed, None).is_none());
}

#[test]
fn a_hold_awaiting_change_problem_or_vendor_holds_open_children_for_the_same_reason() {
    for reason in [AwaitingChange, AwaitingProblem, AwaitingVendor] {
        let t = parent_change(Method::Hold, InProgress, OnHold, Some(reason)).unwrap();
        for state in [New, InProgress] {
            let mut child = incident("INC0000002", state, None);
            let changes = t.apply_to(&mut child, &agent(), 500).unwrap();
            assert_eq!((child.state, child.hold_reason), (OnHold, Some(reason)));
            assert_eq!(child.version, 2);
            let fields: Vec<_> = changes.iter().map(|c| c.field.as_str()).collect();
            assert_eq!(fields, ["state", "hold_reason"]);
        }
        for state in [OnHold, Resolved, State::Closed, State::Canceled] {
            let mut child = incident("INC0000002", state, None);
            let untouched = child.clone();
            assert!(t.apply_to(&mut child, &agent(), 500).is_none(), "{state}");
            assert_eq!(child, untouched);
        }
    }
    assert!(
        parent_change(
            Method::Hold,
            InProgress,
            OnHold,
            Some(HoldReason::AwaitingCaller)
        )
        .is_none()
    );
}

#[test]
fn a_resume_resumes_only_children_held_for_the_parents_reason() {
    let t = parent_change(Method::Resume, OnHold, InProgress, Some(AwaitingChange)).unwrap();
    let mut same = incident("INC0000002", OnHold, Some(AwaitingChange));
    assert!(t.apply_to(&mut same, &agent(), 500).is_some());
    assert_eq!((same.state, same.hold_reason), (InProgress, None));
    let mut other = incident("INC0000003", OnHold, Some(AwaitingVendor));
    assert!(t.apply_to(&mut other, &agent(), 500).is_none());
    assert_eq!(other.state, OnHold);
}

#[test]
fn a_resolution_resolves_unresolved_children_by_parent_with_its_notes() {
    let t = parent_change(Method::Resolve, InProgress, Resolved, None).unwrap();
    for state in [New, InProgress, OnHold] {
        let mut child = incident("INC0000002", state, None);
        t.apply_to(&mut child, &agent(), 500).unwrap();
        assert_eq!(child.state, Resolved);
        assert_eq!(
            child.resolution_code,
            Some(ResolutionCode::ResolvedByParent)
        );
        assert_eq!(child.resolution_notes, "fixed upstream");
        assert_eq!(child.resolve_time, Some(500));
    }
    let mut closed = incident("INC0000002", State::Closed, None);
    assert!(t.apply_to(&mut closed, &agent(), 500).is_none());
}

#[test]
fn propagated_changes_say_where_they_came_from() {
    assert_eq!(
        propagated_action(Method::Hold, "incidents/INC0000001"),
        "hold propagated from incidents/INC0000001"
    );
}

#[test]
fn parents_are_checked_for_form_and_self_reference() {
    let ok = check_set_parent("incidents/INC0000002", "incidents/INC0000001").unwrap();
    assert_eq!(ok, ("INC0000002", Some("INC0000001")));
    assert_eq!(
        check_set_parent("incidents/INC0000002", "").unwrap(),
        ("INC0000002", None)
    );
    let own = check_set_parent("incidents/INC0000002", "incidents/INC0000002").unwrap_err();
    assert_eq!(own.field_violations()[0].field, "parent");
    let both = check_set_parent("INC2", "nope").unwrap_err();
    let fields: Vec<_> = both
        .field_violations()
        .iter()
        .map(|v| v.field.as_str())
        .collect();
    assert_eq!(fields, ["name", "parent"]);
}

#[test]
fn a_cycle_is_named_from_the_child_back_to_itself() {
    let ancestors = vec!["INC0000002".to_owned(), "INC0000001".to_owned()];
    assert_eq!(
        cycle("INC0000001", "INC0000003", &ancestors).as_deref(),
        Some("INC0000001 -> INC0000003 -> INC0000002 -> INC0000001")
    );
    assert_eq!(cycle("INC0000009", "INC0000003", &ancestors), None);
    let error = cycle_refusal("incidents/INC0000001", "incidents/INC0000003", "X");
    assert_eq!(error.code(), ErrorCode::FailedPrecondition);
}

#[test]
fn tasks_move_open_in_progress_done_or_cancel_and_stay_final() {
    let draft = TaskDraft {
        title: "Replace the switch".into(),
        ..TaskDraft::default()
    };
    draft.validate_new().unwrap();
    let mut task = Task::open(draft, "TASK0000001".into(), "INC0000001".into(), agent(), 1);
    assert_eq!(task.name(), "incidents/INC0000001/tasks/TASK0000001");
    let to = |state: TaskState| TaskDraft {
        state: state.number(),
        ..TaskDraft::default()
    };
    let refused = task
        .clone()
        .update(&to(TaskState::Done), &["state"], 2)
        .unwrap_err();
    assert_eq!(refused.code(), ErrorCode::FailedPrecondition);
    assert!(
        refused.message().contains("IN_PROGRESS or CANCELED"),
        "{}",
        refused.message()
    );
    task.update(&to(TaskState::InProgress), &["state"], 2)
        .unwrap();
    task.update(&to(TaskState::Done), &["state"], 3).unwrap();
    assert_eq!((task.state, task.version), (TaskState::Done, 3));
    let final_ = task
        .update(&to(TaskState::Canceled), &["state"], 4)
        .unwrap_err();
    assert_eq!(final_.code(), ErrorCode::FailedPrecondition);
}

#[test]
fn task_names_carry_both_numbers() {
    let (incident, task) =
        task::numbers_from_name("incidents/INC0000001/tasks/TASK0000002", "name").unwrap();
    assert_eq!((incident, task), ("INC0000001", "TASK0000002"));
    for bad in [
        "",
        "incidents/INC0000001",
        "incidents/INC0000001/tasks/T1",
        "tasks/TASK0000002",
    ] {
        assert!(task::numbers_from_name(bad, "name").is_err(), "{bad:?}");
    }
}

#[test]
fn the_flag_is_promoted_demoted_and_proposed_as_its_states_allow() {
    let mut i = incident("INC0000001", InProgress, None);
    assert!(i.demote_major(5).is_err(), "nothing to demote");
    i.promote_major(&agent(), 5).unwrap();
    assert_eq!(i.major_state, MajorState::Accepted);
    assert_eq!(
        i.major_promoted_by.as_ref().map(|a| a.subject.as_str()),
        Some("bob")
    );
    assert!(i.promote_major(&agent(), 6).is_err(), "already major");
    i.demote_major(7).unwrap();
    assert_eq!(
        (i.major_state, i.major_promote_time),
        (MajorState::NotMajor, None)
    );

    assert!(
        i.apply_major_rule(MajorRuleAction::Propose, &agent(), 8)
            .is_some()
    );
    assert_eq!(i.major_state, MajorState::Proposed);
    i.demote_major(9).unwrap();
    assert_eq!(i.major_state, MajorState::Rejected);
    assert!(
        i.apply_major_rule(MajorRuleAction::Promote, &agent(), 10)
            .is_none(),
        "people decided"
    );
}

#[test]
fn rules_need_a_condition_or_children_and_an_action() {
    let error = RuleDraft::default().validate(agent(), 1).unwrap_err();
    let fields: Vec<_> = error
        .field_violations()
        .iter()
        .map(|v| v.field.as_str())
        .collect();
    assert_eq!(fields, ["rule.action", "rule.condition"]);
    let children = RuleDraft {
        min_children: 2,
        children_window: Some((600, 0)),
        action: 1,
        ..RuleDraft::default()
    };
    let rule = children.validate(agent(), 1).unwrap();
    assert_eq!(
        (rule.children_window, rule.action),
        (600_000_000, MajorRuleAction::Propose)
    );
    let windowless = RuleDraft {
        min_children: 2,
        action: 1,
        ..RuleDraft::default()
    };
    let error = windowless.validate(agent(), 1).unwrap_err();
    assert_eq!(error.field_violations()[0].field, "rule.children_window");
}
