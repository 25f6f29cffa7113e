//! The incident lifecycle as data: which method moves an incident from which
//! states to which, the permission it needs (as in `policy.toml`) and the
//! request fields it requires. Handlers never hard-code a state check: they
//! ask [`find`], which also words the refusal. `ListTransitions` serves the
//! same table.

use itsm_platform::{ApiError, FieldViolation};

use super::enums::State::{self, Canceled, Closed, InProgress, New, OnHold, Resolved};

/// A method that may change an incident's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    Assign,
    Hold,
    Resume,
    Resolve,
    Close,
    Cancel,
    Reopen,
    /// A comment by the caller on an incident on hold awaiting the caller.
    CallerReply,
}

impl Method {
    /// Every method, for exhaustive tests.
    pub const ALL: [Method; 8] = [
        Self::Assign,
        Self::Hold,
        Self::Resume,
        Self::Resolve,
        Self::Close,
        Self::Cancel,
        Self::Reopen,
        Self::CallerReply,
    ];

    /// The RPC that performs it.
    pub fn rpc(self) -> &'static str {
        match self {
            Self::Assign => "AssignIncident",
            Self::Hold => "HoldIncident",
            Self::Resume => "ResumeIncident",
            Self::Resolve => "ResolveIncident",
            Self::Close => "CloseIncident",
            Self::Cancel => "CancelIncident",
            Self::Reopen => "ReopenIncident",
            Self::CallerReply => "AddJournalEntry",
        }
    }

    /// The permission its RPC needs (a unit test holds this to `policy.toml`).
    pub fn permission(self) -> &'static str {
        match self {
            Self::Assign => "incidents.incident.assign",
            Self::Hold => "incidents.incident.hold",
            Self::Resume => "incidents.incident.resume",
            Self::Resolve => "incidents.incident.resolve",
            Self::Close => "incidents.incident.close",
            Self::Cancel => "incidents.incident.cancel",
            Self::Reopen => "incidents.incident.reopen",
            Self::CallerReply => "incidents.journal_entry.create",
        }
    }

    /// The audit entry's action.
    pub fn action(self) -> &'static str {
        match self {
            Self::Assign => "assign",
            Self::Hold => "hold",
            Self::Resume => "resume",
            Self::Resolve => "resolve",
            Self::Close => "close",
            Self::Cancel => "cancel",
            Self::Reopen => "reopen",
            Self::CallerReply => "comment",
        }
    }
}

/// One row of the table: `method` moves an incident in one of `from` to `to`
/// when the request carries every field in `required`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    pub method: Method,
    pub from: &'static [State],
    pub to: State,
    /// Field names of the method's request that must be set.
    pub required: &'static [&'static str],
}

/// The lifecycle of ITSM.md. Rows of one method from one state are tried in
/// order: the first whose required fields are all present wins (an assignee
/// makes a NEW incident IN_PROGRESS; a group alone leaves it NEW).
pub static TABLE: &[Transition] = &[
    Transition {
        method: Method::Assign,
        from: &[New],
        to: InProgress,
        required: &["assignment_group", "assignee"],
    },
    Transition {
        method: Method::Assign,
        from: &[New],
        to: New,
        required: &["assignment_group"],
    },
    Transition {
        method: Method::Assign,
        from: &[InProgress],
        to: InProgress,
        required: &["assignment_group"],
    },
    Transition {
        method: Method::Assign,
        from: &[OnHold],
        to: OnHold,
        required: &["assignment_group"],
    },
    Transition {
        method: Method::Hold,
        from: &[InProgress],
        to: OnHold,
        required: &["reason"],
    },
    Transition {
        method: Method::Resume,
        from: &[OnHold],
        to: InProgress,
        required: &[],
    },
    Transition {
        method: Method::CallerReply,
        from: &[OnHold],
        to: InProgress,
        required: &["body"],
    },
    Transition {
        method: Method::Resolve,
        from: &[New, InProgress, OnHold],
        to: Resolved,
        required: &["resolution_code", "resolution_notes"],
    },
    Transition {
        method: Method::Close,
        from: &[Resolved],
        to: Closed,
        required: &[],
    },
    Transition {
        method: Method::Cancel,
        from: &[New, InProgress, OnHold],
        to: Canceled,
        required: &["reason"],
    },
    Transition {
        method: Method::Reopen,
        from: &[Resolved],
        to: InProgress,
        required: &["reason"],
    },
];

/// The states an incident may still change in: it is being worked on.
pub const OPEN: &[State] = &[New, InProgress, OnHold];

/// Every (from, transition) pair of the table, in table order: one row of
/// `ListTransitions` each.
pub fn rows() -> impl Iterator<Item = (State, &'static Transition)> {
    TABLE
        .iter()
        .flat_map(|t| t.from.iter().map(move |from| (*from, t)))
}

/// The transition `method` makes from `state` given the request fields that
/// are set, or why not: FAILED_PRECONDITION naming the current state, the
/// states the method is allowed from and what is allowed now; or
/// INVALID_ARGUMENT naming each required field that is missing.
pub fn find(
    subject: &str,
    state: State,
    method: Method,
    provided: &[&str],
) -> Result<&'static Transition, ApiError> {
    let candidates: Vec<&'static Transition> = TABLE
        .iter()
        .filter(|t| t.method == method && t.from.contains(&state))
        .collect();
    if candidates.is_empty() {
        return Err(refusal(subject, state, method));
    }
    let missing = |t: &Transition| -> Vec<&'static str> {
        t.required
            .iter()
            .copied()
            .filter(|field| !provided.contains(field))
            .collect()
    };
    if let Some(found) = candidates.iter().find(|t| missing(t).is_empty()) {
        return Ok(found);
    }
    // Name what the least demanding row still lacks.
    let closest = candidates
        .iter()
        .min_by_key(|t| missing(t).len())
        .copied()
        .unwrap_or(candidates[0]);
    let violations = missing(closest)
        .into_iter()
        .map(|field| FieldViolation {
            field: field.to_owned(),
            description: format!(
                "is required to {} ({} -> {})",
                method.rpc(),
                state,
                closest.to
            ),
        })
        .collect();
    Err(ApiError::invalid_fields(violations))
}

/// What may be done from `state`: `RPC (-> STATE)` for each row, once.
pub fn allowed_from(state: State) -> Vec<String> {
    let mut allowed: Vec<String> = Vec::new();
    for t in TABLE.iter().filter(|t| t.from.contains(&state)) {
        let entry = if t.to == state {
            format!("{} (stays {})", t.method.rpc(), t.to)
        } else {
            format!("{} (-> {})", t.method.rpc(), t.to)
        };
        if !allowed.contains(&entry) {
            allowed.push(entry);
        }
    }
    allowed
}

/// FAILED_PRECONDITION for `method` on an incident in `state`.
pub fn refusal(subject: &str, state: State, method: Method) -> ApiError {
    let mut from: Vec<State> = TABLE
        .iter()
        .filter(|t| t.method == method)
        .flat_map(|t| t.from.iter().copied())
        .collect();
    from.sort();
    from.dedup();
    let from = from
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let now = allowed_from(state);
    let now = if now.is_empty() {
        format!("nothing, {state} is final")
    } else {
        now.join(", ")
    };
    ApiError::failed_precondition(
        "STATE",
        subject,
        format!(
            "{subject} is {state}: {} is allowed only from {from}; allowed from {state}: {now}",
            method.rpc()
        ),
    )
}

#[cfg(test)]
mod tests;
