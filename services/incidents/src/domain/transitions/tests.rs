use itsm_auth::policy::Policy;
use itsm_platform::ErrorCode;

use super::*;

const NAME: &str = "incidents/INC0000001";

/// Every field any row requires: with all of them, only the state decides.
const ALL_FIELDS: &[&str] = &[
    "assignment_group",
    "assignee",
    "reason",
    "resolution_code",
    "resolution_notes",
    "body",
];

/// The expected outcome of every (state, method) pair with every field set.
fn expected(state: State, method: Method) -> Option<State> {
    use Method::*;
    match (state, method) {
        (New, Assign) => Some(InProgress),
        (InProgress, Assign) => Some(InProgress),
        (OnHold, Assign) => Some(OnHold),
        (InProgress, Hold) => Some(OnHold),
        (OnHold, Resume) => Some(InProgress),
        (OnHold, CallerReply) => Some(InProgress),
        (New | InProgress | OnHold, Resolve) => Some(Resolved),
        (Resolved, Close) => Some(Closed),
        (New | InProgress | OnHold, Cancel) => Some(Canceled),
        (Resolved, Reopen) => Some(InProgress),
        _ => None,
    }
}

#[test]
fn every_state_and_method_pair_follows_the_lifecycle() {
    for state in State::ALL {
        for method in Method::ALL {
            let found = find(NAME, *state, method, ALL_FIELDS);
            match expected(*state, method) {
                Some(to) => assert_eq!(found.unwrap().to, to, "{state} {method:?}"),
                None => {
                    let error = found.unwrap_err();
                    assert_eq!(
                        error.code(),
                        ErrorCode::FailedPrecondition,
                        "{state} {method:?}"
                    );
                    let violation = &error.precondition_violations()[0];
                    assert_eq!(violation.kind, "STATE");
                    assert_eq!(violation.subject, NAME);
                    assert!(
                        violation
                            .description
                            .starts_with(&format!("{NAME} is {state}: {}", method.rpc())),
                        "{}",
                        violation.description
                    );
                }
            }
        }
    }
}

#[test]
fn refusals_name_the_allowed_states_and_what_is_allowed_now() {
    let error = find(NAME, State::Closed, Method::Reopen, &["reason"]).unwrap_err();
    assert_eq!(
        error.message(),
        "incidents/INC0000001 is CLOSED: ReopenIncident is allowed only from RESOLVED; \
         allowed from CLOSED: nothing, CLOSED is final"
    );
    let error = find(NAME, State::New, Method::Hold, &["reason"]).unwrap_err();
    assert_eq!(
        error.message(),
        "incidents/INC0000001 is NEW: HoldIncident is allowed only from IN_PROGRESS; \
         allowed from NEW: AssignIncident (-> IN_PROGRESS), AssignIncident (stays NEW), \
         ResolveIncident (-> RESOLVED), CancelIncident (-> CANCELED)"
    );
}

#[test]
fn missing_required_fields_are_named() {
    let error = find(
        NAME,
        State::InProgress,
        Method::Resolve,
        &["resolution_code"],
    )
    .unwrap_err();
    assert_eq!(error.code(), ErrorCode::InvalidArgument);
    let fields: Vec<_> = error
        .field_violations()
        .iter()
        .map(|v| (v.field.as_str(), v.description.as_str()))
        .collect();
    assert_eq!(
        fields,
        [(
            "resolution_notes",
            "is required to ResolveIncident (IN_PROGRESS -> RESOLVED)"
        )]
    );
    let error = find(NAME, State::InProgress, Method::Hold, &[]).unwrap_err();
    assert_eq!(error.field_violations()[0].field, "reason");
}

#[test]
fn a_group_alone_leaves_a_new_incident_new() {
    let group_only = find(NAME, State::New, Method::Assign, &["assignment_group"]).unwrap();
    assert_eq!(group_only.to, State::New);
    let person = find(
        NAME,
        State::New,
        Method::Assign,
        &["assignment_group", "assignee"],
    );
    assert_eq!(person.unwrap().to, State::InProgress);
    let nothing = find(NAME, State::New, Method::Assign, &[]).unwrap_err();
    assert_eq!(nothing.field_violations()[0].field, "assignment_group");
}

#[test]
fn the_final_states_have_no_way_out() {
    for state in [State::Closed, State::Canceled] {
        assert!(allowed_from(state).is_empty(), "{state}");
    }
    for state in OPEN {
        assert!(!allowed_from(*state).is_empty(), "{state}");
    }
}

#[test]
fn permissions_are_those_of_the_policy_table() {
    let policy = Policy::from_toml(crate::POLICY).unwrap();
    for method in Method::ALL {
        let rule = &policy.methods[method.rpc()];
        assert_eq!(rule.permission, method.permission(), "{method:?}");
    }
}

#[test]
fn rows_flatten_every_from_state() {
    let resolve: Vec<State> = rows()
        .filter(|(_, t)| t.method == Method::Resolve)
        .map(|(from, _)| from)
        .collect();
    assert_eq!(resolve, [State::New, State::InProgress, State::OnHold]);
    assert_eq!(rows().count(), 15);
}
