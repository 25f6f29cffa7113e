//! What each lifecycle method does to an incident. The transition table
//! decides whether it may ([`super::transitions::find`]); this module does
//! the rest: assignment bookkeeping (acknowledge time, reassignments),
//! resolution, reopen counts, first-contact resolution.

use itsm_platform::{ApiError, Violations};
use itsm_store::audit::{Actor, FieldChange};

use super::enums::{self, HoldReason, JournalKind, ResolutionCode};
use super::incident::Incident;
use super::transitions::{self, Method, Transition};
use super::{REASON_MAX, TEXT_MAX};

/// A lifecycle request, its fields checked for form (known enums, lengths);
/// whether they are required is the transition table's call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Group (as sent; empty keeps the current one) and assignee (empty for group only).
    Assign {
        group: String,
        assignee: String,
    },
    Hold {
        reason: Option<HoldReason>,
        note: String,
    },
    Resume,
    Resolve {
        code: Option<ResolutionCode>,
        notes: String,
    },
    Close,
    Cancel {
        reason: String,
    },
    Reopen {
        reason: String,
    },
    /// The caller's comment on an incident awaiting the caller.
    CallerReply,
}

/// What an applied action did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub transition: &'static Transition,
    /// Field by field; empty when the action changed nothing (then the
    /// incident was not touched and nothing is to be written).
    pub changes: Vec<FieldChange>,
    /// A journal entry the action writes with the change (a hold's note, a reopen's reason).
    pub journal: Option<(JournalKind, String)>,
}

impl Action {
    /// AssignIncident's fields.
    pub fn assign(group: String, assignee: String) -> Result<Self, ApiError> {
        let mut v = Violations::new();
        super::check_identifier(&mut v, "assignment_group", &group);
        super::check_identifier(&mut v, "assignee", &assignee);
        v.check(
            !group.is_empty() || !assignee.is_empty(),
            "assignment_group",
            "set assignment_group, assignee or both",
        );
        v.into_result()?;
        Ok(Self::Assign { group, assignee })
    }

    /// HoldIncident's fields.
    pub fn hold(reason: i32, note: String) -> Result<Self, ApiError> {
        let mut v = Violations::new();
        let parsed = enums::optional(
            &mut v,
            "reason",
            reason,
            HoldReason::from_number,
            HoldReason::allowed,
        );
        super::check_len(&mut v, "note", &note, TEXT_MAX);
        v.into_result()?;
        Ok(Self::Hold {
            reason: parsed,
            note,
        })
    }

    /// ResolveIncident's fields.
    pub fn resolve(code: i32, notes: String) -> Result<Self, ApiError> {
        let mut v = Violations::new();
        let parsed = enums::optional(
            &mut v,
            "resolution_code",
            code,
            ResolutionCode::from_number,
            ResolutionCode::allowed,
        );
        super::check_len(&mut v, "resolution_notes", &notes, TEXT_MAX);
        v.into_result()?;
        Ok(Self::Resolve {
            code: parsed,
            notes,
        })
    }

    /// CancelIncident's or ReopenIncident's reason.
    pub fn check_reason(reason: &str) -> Result<(), ApiError> {
        let mut v = Violations::new();
        super::check_len(&mut v, "reason", reason, REASON_MAX);
        v.into_result()
    }

    /// The method in the transition table.
    pub fn method(&self) -> Method {
        match self {
            Self::Assign { .. } => Method::Assign,
            Self::Hold { .. } => Method::Hold,
            Self::Resume => Method::Resume,
            Self::Resolve { .. } => Method::Resolve,
            Self::Close => Method::Close,
            Self::Cancel { .. } => Method::Cancel,
            Self::Reopen { .. } => Method::Reopen,
            Self::CallerReply => Method::CallerReply,
        }
    }

    /// The request fields that are set, as the table names them.
    fn provided(&self, incident: &Incident) -> Vec<&'static str> {
        let mut fields = Vec::new();
        match self {
            Self::Assign { group, assignee } => {
                if !group.is_empty() || !incident.assignment_group.is_empty() {
                    fields.push("assignment_group");
                }
                if !assignee.is_empty() {
                    fields.push("assignee");
                }
            }
            Self::Hold { reason, .. } if reason.is_some() => fields.push("reason"),
            Self::Resolve { code, notes } => {
                if code.is_some() {
                    fields.push("resolution_code");
                }
                if !notes.trim().is_empty() {
                    fields.push("resolution_notes");
                }
            }
            Self::Cancel { reason } | Self::Reopen { reason } if !reason.trim().is_empty() => {
                fields.push("reason");
            }
            Self::CallerReply => fields.push("body"),
            _ => {}
        }
        fields
    }
}

/// The group and assignee an assignment ends with: the group sent (or the
/// current one), and the assignee sent; a new group without an assignee
/// leaves the incident unassigned within it (the old assignee was of the old group).
pub fn assignment_target(incident: &Incident, group: &str, assignee: &str) -> (String, String) {
    let group = if group.is_empty() {
        incident.assignment_group.clone()
    } else {
        super::group_id(group).to_owned()
    };
    let assignee = if !assignee.is_empty() {
        assignee.to_owned()
    } else if group == incident.assignment_group {
        incident.assignee.clone()
    } else {
        String::new()
    };
    (group, assignee)
}

impl Incident {
    /// Applies `action` by `by` at `now`, or refuses it as the transition
    /// table says (the incident is left untouched on error).
    pub fn apply(&mut self, action: &Action, by: &Actor, now: i64) -> Result<Applied, ApiError> {
        let name = self.name();
        let transition =
            transitions::find(&name, self.state, action.method(), &action.provided(self))?;
        let before = self.clone();
        let mut journal = None;
        let mut extra = Vec::new();
        match action {
            Action::Assign { group, assignee } => {
                let (group, assignee) = assignment_target(self, group, assignee);
                let regrouped = !self.assignment_group.is_empty() && group != self.assignment_group;
                let reassigned = !self.assignee.is_empty() && assignee != self.assignee;
                if regrouped || reassigned {
                    self.reassignment_count += 1;
                }
                if self.acknowledge_time.is_none() && !assignee.is_empty() {
                    self.acknowledge_time = Some(now);
                }
                self.assignment_group = group;
                self.assignee = assignee;
            }
            Action::Hold { reason, note } => {
                self.hold_reason = *reason;
                if !note.trim().is_empty() {
                    journal = Some((JournalKind::WorkNote, note.clone()));
                }
            }
            Action::Resume | Action::CallerReply => self.hold_reason = None,
            Action::Resolve { code, notes } => {
                self.hold_reason = None;
                self.resolution_code = *code;
                self.resolution_notes.clone_from(notes);
                self.resolve_time = Some(now);
                self.first_contact_resolution =
                    self.reassignment_count == 0 && self.reopen_count == 0;
            }
            Action::Close => self.close_time = Some(now),
            Action::Cancel { reason } => {
                self.hold_reason = None;
                self.cancel_reason.clone_from(reason);
            }
            Action::Reopen { reason } => {
                self.reopen_count += 1;
                self.reopened_by = Some(by.clone());
                self.reopen_time = Some(now);
                self.resolution_code = None;
                self.resolution_notes.clear();
                self.resolve_time = None;
                self.first_contact_resolution = false;
                extra.push(FieldChange::new("reopen_reason", "", reason));
                journal = Some((JournalKind::Comment, format!("Reopened: {reason}")));
            }
        }
        // An escalation is over once the incident is resolved or canceled; a
        // reopened incident starts unescalated (its escalations stay as history).
        if matches!(
            action,
            Action::Resolve { .. } | Action::Cancel { .. } | Action::Reopen { .. }
        ) {
            self.escalated = false;
        }
        self.state = transition.to;
        let mut changes = before.changes_to(self);
        if changes.is_empty() && journal.is_none() {
            return Ok(Applied {
                transition,
                changes,
                journal,
            });
        }
        changes.extend(extra);
        self.touch(now);
        Ok(Applied {
            transition,
            changes,
            journal,
        })
    }
}

#[cfg(test)]
mod tests;
