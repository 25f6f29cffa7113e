//! The major-incident flag: promoted or demoted by hand (with a reason), or
//! proposed or promoted by trigger rules. Whether a rule's condition matches
//! is the database's to say (the condition is a list filter); what a match
//! does is decided here.
//!
//! Flag states: NONE -> PROPOSED (a rule) -> ACCEPTED (promote) or REJECTED
//! (demote); NONE or REJECTED -> ACCEPTED by hand; ACCEPTED -> NONE (demote).

use itsm_platform::{ApiError, Violations};
use itsm_store::audit::{Actor, FieldChange};

use crate::domain::enums::{MajorState, State};
use crate::domain::incident::Incident;
use crate::domain::transitions::OPEN;
use crate::domain::{self as d, REASON_MAX};

/// The collection of major-incident rules: `majorIncidentRules/7`.
pub const RULES: &str = "majorIncidentRules";
/// The longest children window a rule may have: 30 days, in microseconds.
pub const WINDOW_MAX: i64 = 30 * 24 * 3_600 * 1_000_000;
/// The most children a rule may count.
pub const MIN_CHILDREN_MAX: i32 = 10_000;

/// What a matching rule does (`MajorRuleAction`); the stronger wins when several match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MajorRuleAction {
    Propose = 1,
    Promote = 2,
}

impl MajorRuleAction {
    /// The value with this number, if any.
    pub fn from_number(number: i32) -> Option<Self> {
        match number {
            1 => Some(Self::Propose),
            2 => Some(Self::Promote),
            _ => None,
        }
    }

    /// The protobuf number.
    pub fn number(self) -> i32 {
        self as i32
    }

    /// The name without the type prefix, e.g. `PROPOSE`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Propose => "PROPOSE",
            Self::Promote => "PROMOTE",
        }
    }

    fn allowed() -> String {
        "PROPOSE, PROMOTE".to_owned()
    }
}

/// A major-incident trigger rule as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MajorRule {
    pub id: i64,
    /// A filter over incident fields; empty matches every incident.
    pub condition: String,
    /// When > 0, the rule matches only parents with more than this many children...
    pub min_children: i32,
    /// ...created within this window (microseconds).
    pub children_window: i64,
    pub action: MajorRuleAction,
    pub enabled: bool,
    pub created_by: Actor,
    pub create_time: i64,
    pub version: i64,
}

impl MajorRule {
    /// `majorIncidentRules/<id>`.
    pub fn name(&self) -> String {
        format!("{RULES}/{}", self.id)
    }

    /// The audit trail of its creation.
    pub fn creation_changes(&self) -> Vec<FieldChange> {
        let mut changes = vec![
            FieldChange::new("condition", "", &self.condition),
            FieldChange::new("action", "", self.action.as_str()),
            FieldChange::new("enabled", "", self.enabled),
        ];
        if self.min_children > 0 {
            changes.push(FieldChange::new("min_children", "", self.min_children));
            changes.push(FieldChange::new(
                "children_window",
                "",
                format!("{}s", self.children_window / 1_000_000),
            ));
        }
        changes.retain(|c| !c.new.is_empty());
        changes
    }
}

/// A rule as a caller sends it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleDraft {
    pub condition: String,
    pub min_children: i32,
    /// Seconds and nanos, when set.
    pub children_window: Option<(i64, i32)>,
    pub action: i32,
    pub enabled: bool,
}

impl RuleDraft {
    /// Checks the draft (the condition's syntax is the caller's to check
    /// against the incident list's schema) and returns the rule it makes.
    pub fn validate(self, creator: Actor, now: i64) -> Result<MajorRule, ApiError> {
        let mut v = Violations::new();
        d::check_len(&mut v, "rule.condition", &self.condition, d::SHORT_MAX * 8);
        let action = crate::domain::enums::required(
            &mut v,
            "rule.action",
            self.action,
            MajorRuleAction::from_number,
            MajorRuleAction::allowed,
        );
        v.check(
            (0..=MIN_CHILDREN_MAX).contains(&self.min_children),
            "rule.min_children",
            format!("must be between 0 and {MIN_CHILDREN_MAX}"),
        );
        let window = self
            .children_window
            .map(|(s, n)| {
                s.saturating_mul(1_000_000)
                    .saturating_add(i64::from(n / 1_000))
            })
            .unwrap_or(0);
        if self.min_children > 0 {
            v.check(
                window > 0 && window <= WINDOW_MAX,
                "rule.children_window",
                "is required with min_children: more than 0 and at most 30 days",
            );
        }
        v.check(
            !self.condition.trim().is_empty() || self.min_children > 0,
            "rule.condition",
            "is required unless min_children is set: a rule must not match every incident",
        );
        v.into_result()?;
        Ok(MajorRule {
            id: 0,
            condition: self.condition.trim().to_owned(),
            min_children: self.min_children,
            children_window: if self.min_children > 0 { window } else { 0 },
            action: action.unwrap_or(MajorRuleAction::Propose),
            enabled: self.enabled,
            created_by: creator,
            create_time: now,
            version: 1,
        })
    }
}

/// A promote's or demote's reason, checked.
pub fn check_reason(reason: &str) -> Result<(), ApiError> {
    let mut v = Violations::new();
    v.check(
        !reason.trim().is_empty(),
        "reason",
        "is required: why the flag changes",
    );
    d::check_len(&mut v, "reason", reason, REASON_MAX);
    v.into_result()
}

fn refusal(incident: &Incident, what: &str) -> ApiError {
    let name = incident.name();
    ApiError::failed_precondition(
        "MAJOR_STATE",
        &name,
        format!(
            "{name} is {} with major_state {}: {what}",
            incident.state, incident.major_state
        ),
    )
}

impl Incident {
    /// Raises the flag (or accepts a proposal) by `by` at `now`: the
    /// changes, or FAILED_PRECONDITION when it is raised already or the
    /// incident is no longer open.
    pub fn promote_major(&mut self, by: &Actor, now: i64) -> Result<Vec<FieldChange>, ApiError> {
        if !OPEN.contains(&self.state) {
            return Err(refusal(self, "only an open incident can be promoted"));
        }
        if self.major_state == MajorState::Accepted {
            return Err(refusal(self, "it is a major incident already"));
        }
        Ok(self.set_major(MajorState::Accepted, Some(by), now))
    }

    /// Lowers the flag: ACCEPTED -> NONE, PROPOSED -> REJECTED; otherwise
    /// FAILED_PRECONDITION.
    pub fn demote_major(&mut self, now: i64) -> Result<Vec<FieldChange>, ApiError> {
        if matches!(self.state, State::Closed | State::Canceled) {
            return Err(refusal(self, "a closed or canceled incident is final"));
        }
        let to = match self.major_state {
            MajorState::Accepted => MajorState::NotMajor,
            MajorState::Proposed => MajorState::Rejected,
            MajorState::NotMajor | MajorState::Rejected => {
                return Err(refusal(self, "it is neither major nor proposed"));
            }
        };
        Ok(self.set_major(to, None, now))
    }

    /// What a matching rule's `action` does: PROPOSE turns NONE into
    /// PROPOSED; PROMOTE turns NONE or PROPOSED into ACCEPTED (by `by`). A
    /// rejected proposal or a closed incident is left alone: people decided.
    /// `None` when nothing changes.
    pub fn apply_major_rule(
        &mut self,
        action: MajorRuleAction,
        by: &Actor,
        now: i64,
    ) -> Option<Vec<FieldChange>> {
        if !OPEN.contains(&self.state) {
            return None;
        }
        match (action, self.major_state) {
            (MajorRuleAction::Propose, MajorState::NotMajor) => {
                Some(self.set_major(MajorState::Proposed, None, now))
            }
            (MajorRuleAction::Promote, MajorState::NotMajor | MajorState::Proposed) => {
                Some(self.set_major(MajorState::Accepted, Some(by), now))
            }
            _ => None,
        }
    }

    /// Moves the flag to `to`; `promoter` is recorded on ACCEPTED and
    /// cleared otherwise.
    fn set_major(
        &mut self,
        to: MajorState,
        promoter: Option<&Actor>,
        now: i64,
    ) -> Vec<FieldChange> {
        let old_by = self
            .major_promoted_by
            .as_ref()
            .map(|a| a.subject.clone())
            .unwrap_or_default();
        let before = self.clone();
        self.major_state = to;
        if to == MajorState::Accepted {
            self.major_promoted_by = promoter.cloned();
            self.major_promote_time = Some(now);
        } else if to == MajorState::NotMajor {
            self.major_promoted_by = None;
            self.major_promote_time = None;
        }
        let mut changes = before.changes_to(self);
        let new_by = self
            .major_promoted_by
            .as_ref()
            .map(|a| a.subject.clone())
            .unwrap_or_default();
        if old_by != new_by {
            changes.push(FieldChange::new("major_promoted_by", old_by, new_by));
        }
        self.touch(now);
        changes
    }
}
