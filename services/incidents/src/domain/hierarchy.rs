//! Parent/child incidents and what a parent's change does to its children,
//! as data ([`PROPAGATIONS`]); incident tasks ([`task`]); the major flag and
//! its trigger rules ([`major`]).
//!
//! Propagation never fails the parent: a child that is not in a state a row
//! applies to is skipped (left as it is), so one odd child cannot block the
//! parent's hold or resolution. Each change it does make is the child's own
//! audited change with its own event, written in the parent's transaction,
//! so a failure to write any of them rolls back the parent's change too.
//! It runs down the whole tree: a changed child passes the same change on to
//! its own children (the tree is kept acyclic, see [`cycle`]).

pub mod major;
pub mod task;

use itsm_platform::ApiError;
use itsm_store::audit::{Actor, FieldChange};

use super::enums::HoldReason::{self, AwaitingChange, AwaitingProblem, AwaitingVendor};
use super::enums::ResolutionCode;
use super::enums::State::{self, InProgress, New, OnHold};
use super::incident::Incident;
use super::lifecycle::Action;
use super::transitions::Method;

/// How deep a parent/child tree may grow (levels above a child). The walk
/// that looks for cycles is bounded by it.
pub const MAX_DEPTH: usize = 64;

/// What a parent's change does to one child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// On hold with the parent's hold reason.
    Hold,
    /// Back to IN_PROGRESS, the hold reason cleared.
    Resume,
    /// RESOLVED with RESOLVED_BY_PARENT and the parent's resolution notes.
    Resolve,
}

/// One row of the propagation table: when a parent goes through `method`
/// (for holds and resumes: for one of `reasons`), each child in one of
/// `children` gets `effect`. Children in other states are skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Propagation {
    pub method: Method,
    /// The parent's hold reason: the new one for a hold, the one it was on
    /// hold for when resumed. Empty: any (or none).
    pub reasons: &'static [HoldReason],
    pub children: &'static [State],
    /// Only children on hold for the parent's reason (a resume undoes only
    /// the holds the parent's hold could have made).
    pub same_reason: bool,
    pub effect: Effect,
}

/// Parent/child propagation (ITSM.md). A method without a row changes no
/// child: closing, canceling or reopening a parent leaves its children as
/// they are, and so does a hold awaiting the caller (whose caller it is).
///
/// | parent's change | parent's hold reason | children changed | what they get |
/// |---|---|---|---|
/// | HoldIncident | change, problem, vendor | NEW, IN_PROGRESS | ON_HOLD, same reason |
/// | ResumeIncident | change, problem, vendor | ON_HOLD for that reason | IN_PROGRESS |
/// | ResolveIncident | any | NEW, IN_PROGRESS, ON_HOLD | RESOLVED_BY_PARENT, parent's notes |
///
/// This table, not the lifecycle's, decides what a child may go through: a
/// NEW child is put on hold with its parent (a person could not hold it
/// before work starts), and resumes to IN_PROGRESS with it.
pub static PROPAGATIONS: &[Propagation] = &[
    Propagation {
        method: Method::Hold,
        reasons: &[AwaitingChange, AwaitingProblem, AwaitingVendor],
        children: &[New, InProgress],
        same_reason: false,
        effect: Effect::Hold,
    },
    Propagation {
        method: Method::Resume,
        reasons: &[AwaitingChange, AwaitingProblem, AwaitingVendor],
        children: &[OnHold],
        same_reason: true,
        effect: Effect::Resume,
    },
    Propagation {
        method: Method::Resolve,
        reasons: &[],
        children: &[New, InProgress, OnHold],
        same_reason: false,
        effect: Effect::Resolve,
    },
];

/// A parent's change that propagates, with what it carries to the children.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trigger {
    pub rule: &'static Propagation,
    pub reason: Option<HoldReason>,
    pub notes: String,
}

/// The propagation a parent's `method` from `before` to `after` sets off, if any.
pub fn trigger(method: Method, before: &Incident, after: &Incident) -> Option<Trigger> {
    if before.state == after.state {
        return None;
    }
    let reason = match method {
        Method::Resume => before.hold_reason,
        _ => after.hold_reason,
    };
    let rule = PROPAGATIONS.iter().find(|p| {
        p.method == method
            && (p.reasons.is_empty() || reason.is_some_and(|r| p.reasons.contains(&r)))
    })?;
    Some(Trigger {
        rule,
        reason,
        notes: after.resolution_notes.clone(),
    })
}

impl Trigger {
    /// Applies the propagation to `child` by `by` at `now`: its changes, or
    /// `None` (the child untouched) when the row does not apply to it.
    pub fn apply_to(&self, child: &mut Incident, by: &Actor, now: i64) -> Option<Vec<FieldChange>> {
        if !self.rule.children.contains(&child.state)
            || (self.rule.same_reason && child.hold_reason != self.reason)
        {
            return None;
        }
        let before = child.clone();
        match self.rule.effect {
            Effect::Hold => {
                child.state = OnHold;
                child.hold_reason = self.reason;
            }
            Effect::Resume => {
                child.state = InProgress;
                child.hold_reason = None;
            }
            Effect::Resolve => {
                let action = Action::Resolve {
                    code: Some(ResolutionCode::ResolvedByParent),
                    notes: self.notes.clone(),
                };
                // The lifecycle's own bookkeeping (resolve time, first contact).
                return child.apply(&action, by, now).ok().map(|a| a.changes);
            }
        }
        let changes = before.changes_to(child);
        if changes.is_empty() {
            return None;
        }
        child.touch(now);
        Some(changes)
    }
}

/// The audit action of a change propagated from `parent`: `hold propagated from incidents/INC0000001`.
pub fn propagated_action(method: Method, parent: &str) -> String {
    format!("{} propagated from {parent}", method.action())
}

/// SetParentIncident's names, checked: the child's number and the parent's
/// (`None` to detach); every bad field at once.
pub fn check_set_parent<'a>(
    name: &'a str,
    parent: &'a str,
) -> Result<(&'a str, Option<&'a str>), ApiError> {
    let child = super::number_from_name(name, "name");
    let parent = (!parent.is_empty())
        .then(|| super::number_from_name(parent, "parent"))
        .transpose();
    match (child, parent) {
        (Ok(child), Ok(Some(parent))) if child == parent => Err(ApiError::invalid_field(
            "parent",
            "an incident cannot be its own parent",
        )),
        (Ok(child), Ok(parent)) => Ok((child, parent)),
        (child, parent) => {
            let violations = [child.err(), parent.err()]
                .into_iter()
                .flatten()
                .flat_map(|e| e.field_violations().to_vec())
                .collect();
            Err(ApiError::invalid_fields(violations))
        }
    }
}

/// The cycle that making `parent` the parent of `child` would close, as
/// `INC1 -> INC3 -> INC2 -> INC1`: `ancestors` are the parent's own
/// ancestors, nearest first (as far as the walk went).
pub fn cycle(child: &str, parent: &str, ancestors: &[String]) -> Option<String> {
    let at = ancestors.iter().position(|a| a == child)?;
    let mut path = vec![child, parent];
    path.extend(ancestors[..=at].iter().map(String::as_str));
    Some(path.join(" -> "))
}

/// FAILED_PRECONDITION for a parent that would close a cycle, naming it.
pub fn cycle_refusal(child_name: &str, parent_name: &str, cycle: &str) -> ApiError {
    ApiError::failed_precondition(
        "CYCLE",
        child_name,
        format!(
            "{parent_name} cannot become the parent of {child_name}: it descends from it, \
             and the link would close the cycle {cycle}"
        ),
    )
}

#[cfg(test)]
mod tests;
