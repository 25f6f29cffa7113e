//! Assignment rules as data, and the arithmetic of automation: what a valid
//! rule is and what an update changes, which member of a group the next
//! incident goes to (round-robin, least-loaded), and the KPI ratios. No I/O:
//! the store evaluates conditions and counts loads, this module decides.

use std::collections::HashMap;

use itsm_platform::{ApiError, Violations};
use itsm_store::audit::{Actor, FieldChange};
use itsm_store::query::{Schema, SqlBuilder, parse_filter};

/// The collection of assignment rules: `assignmentRules/42`.
pub const COLLECTION: &str = "assignmentRules";
/// Fields `UpdateAssignmentRule` may change, by mask path.
pub const EDITABLE: &[&str] = &[
    "order",
    "condition",
    "use_ci_support_group",
    "assignment_group",
    "strategy",
    "enabled",
];

/// How a member of the chosen group is picked (`AssignmentStrategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// The group only: its members pick from the queue.
    GroupOnly = 1,
    /// The member after the one who got the group's last incident.
    RoundRobin = 2,
    /// The member with the fewest open incidents.
    LeastLoaded = 3,
}

impl Strategy {
    const NAMES: [(Strategy, &'static str); 3] = [
        (Self::GroupOnly, "GROUP_ONLY"),
        (Self::RoundRobin, "ROUND_ROBIN"),
        (Self::LeastLoaded, "LEAST_LOADED"),
    ];

    /// The value with this protobuf number (0, unspecified, is none).
    pub fn from_number(number: i32) -> Option<Self> {
        Self::NAMES
            .iter()
            .map(|(s, _)| *s)
            .find(|s| s.number() == number)
    }

    pub fn number(self) -> i32 {
        self as i32
    }

    /// The name without the type prefix, `ROUND_ROBIN`.
    pub fn as_str(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(s, _)| *s == self)
            .map_or("", |(_, name)| name)
    }
}

/// An assignment rule as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssignmentRule {
    pub id: i64,
    /// Lower runs first; ties run in creation order.
    pub order: i32,
    /// A filter over incident fields (`ListIncidents`' language); empty matches every incident.
    pub condition: String,
    pub use_ci_support_group: bool,
    /// The group's id, without `groups/`; empty when the CI's support group is used.
    pub assignment_group: String,
    pub strategy: Strategy,
    pub enabled: bool,
    pub created_by: Actor,
    pub create_time: i64,
    pub update_time: i64,
    /// The etag's version: 1 when created.
    pub version: i64,
}

/// The fields of a rule as a caller sent them (the strategy as a number).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleDraft {
    pub order: i32,
    pub condition: String,
    pub use_ci_support_group: bool,
    pub assignment_group: String,
    pub strategy: i32,
    pub enabled: bool,
}

/// `assignmentRules/<id>`.
pub fn name_of(id: i64) -> String {
    format!("{COLLECTION}/{id}")
}

/// The id in a rule's name; INVALID_ARGUMENT on `field` otherwise.
pub fn id_from_name(name: &str, field: &str) -> Result<i64, ApiError> {
    name.strip_prefix(COLLECTION)
        .and_then(|rest| rest.strip_prefix('/'))
        .filter(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|id| id.parse::<i64>().ok())
        .filter(|id| *id > 0)
        .ok_or_else(|| {
            ApiError::invalid_field(
                field,
                format!("must be {COLLECTION}/<id>, e.g. {COLLECTION}/7"),
            )
        })
}

/// Records a violation on `field` unless `condition` compiles against
/// `schema` (the incident list's fields). The description carries the
/// position at fault: `at position 11: unknown field "colour"; ...`.
pub fn check_condition(v: &mut Violations, field: &str, condition: &str, schema: &Schema) {
    let compiled = parse_filter(condition).and_then(|expr| match expr {
        Some(expr) => expr.compile(schema, &mut SqlBuilder::default()),
        None => Ok(()),
    });
    if let Err(error) = compiled {
        v.add(field, error.description());
    }
}

impl RuleDraft {
    /// Checks a whole rule; every bad field at once, under `rule.<field>`.
    /// A strategy left unspecified means GROUP_ONLY.
    pub fn validate(&self, schema: &Schema) -> Result<Strategy, ApiError> {
        let mut v = Violations::new();
        check_condition(&mut v, "rule.condition", &self.condition, schema);
        let group = super::group_id(&self.assignment_group);
        super::check_identifier(&mut v, "rule.assignment_group", group);
        if self.use_ci_support_group {
            v.check(
                group.is_empty(),
                "rule.assignment_group",
                "must be empty when use_ci_support_group is set: the CI's support group is used instead",
            );
        } else {
            v.check(
                !group.is_empty(),
                "rule.assignment_group",
                "is required unless use_ci_support_group is set",
            );
        }
        let strategy = match (self.strategy, Strategy::from_number(self.strategy)) {
            (0, _) => Some(Strategy::GroupOnly),
            (_, Some(strategy)) => Some(strategy),
            (other, None) => {
                v.add(
                    "rule.strategy",
                    format!(
                        "unknown value {other}; allowed: GROUP_ONLY, ROUND_ROBIN, LEAST_LOADED"
                    ),
                );
                None
            }
        };
        v.into_result()?;
        Ok(strategy.unwrap_or(Strategy::GroupOnly))
    }
}

/// The fields an update mask names, checked: known, not repeated, not empty.
pub fn check_mask(paths: &[String]) -> Result<Vec<&'static str>, ApiError> {
    super::mask::check(paths, EDITABLE, "")
}

impl AssignmentRule {
    /// `assignmentRules/<id>`.
    pub fn name(&self) -> String {
        name_of(self.id)
    }

    /// The rule as a draft, to patch and check again as a whole.
    pub fn draft(&self) -> RuleDraft {
        RuleDraft {
            order: self.order,
            condition: self.condition.clone(),
            use_ci_support_group: self.use_ci_support_group,
            assignment_group: self.assignment_group.clone(),
            strategy: self.strategy.number(),
            enabled: self.enabled,
        }
    }

    /// Takes the checked `draft`'s fields (the group stored by id).
    pub fn set(&mut self, draft: RuleDraft, strategy: Strategy) {
        self.order = draft.order;
        self.condition = draft.condition;
        self.use_ci_support_group = draft.use_ci_support_group;
        self.assignment_group = super::group_id(&draft.assignment_group).to_owned();
        self.strategy = strategy;
        self.enabled = draft.enabled;
    }

    /// Every audited field as text.
    fn audited_fields(&self) -> [(&'static str, String); 6] {
        [
            ("order", self.order.to_string()),
            ("condition", self.condition.clone()),
            (
                "use_ci_support_group",
                self.use_ci_support_group.to_string(),
            ),
            ("assignment_group", self.assignment_group.clone()),
            ("strategy", self.strategy.as_str().to_owned()),
            ("enabled", self.enabled.to_string()),
        ]
    }

    /// The audit trail of the creation: every field, from nothing.
    pub fn creation_changes(&self) -> Vec<FieldChange> {
        self.audited_fields()
            .into_iter()
            .map(|(field, value)| FieldChange::new(field, "", value))
            .collect()
    }

    /// What changed from `self` to `after`, field by field.
    pub fn changes_to(&self, after: &AssignmentRule) -> Vec<FieldChange> {
        self.audited_fields()
            .into_iter()
            .zip(after.audited_fields())
            .filter(|((_, old), (_, new))| old != new)
            .map(|((field, old), (_, new))| FieldChange::new(field, old, new))
            .collect()
    }

    /// The audit trail of the deletion: every field, to nothing.
    pub fn deletion_changes(&self) -> Vec<FieldChange> {
        self.audited_fields()
            .into_iter()
            .map(|(field, value)| FieldChange::new(field, value, ""))
            .collect()
    }
}

/// Round-robin: the first member (in byte order) after `last`, the one who
/// got the group's previous incident, wrapping around. Members who joined or
/// left since keep their place in the order, so nobody is skipped twice.
pub fn next_round_robin<'a>(members: &'a [String], last: &str) -> Option<&'a String> {
    let mut sorted: Vec<&String> = members.iter().collect();
    sorted.sort();
    sorted
        .iter()
        .find(|m| m.as_str() > last)
        .or_else(|| sorted.first())
        .copied()
}

/// Least-loaded: the member with the fewest open incidents (`loads`, absent
/// meaning none), ties going to the first in byte order.
pub fn least_loaded<'a>(members: &'a [String], loads: &HashMap<String, i64>) -> Option<&'a String> {
    members.iter().min_by(|a, b| {
        let load = |m: &String| loads.get(m).copied().unwrap_or(0);
        load(a).cmp(&load(b)).then_with(|| a.cmp(b))
    })
}

/// The mean of `count` durations summing to `total` microseconds, `None` without any.
pub fn mean(total: i64, count: i64) -> Option<i64> {
    (count > 0).then(|| total / count)
}

/// `part / whole` in 0..=1, 0 when `whole` is 0.
pub fn rate(part: i64, whole: i64) -> f64 {
    if whole <= 0 {
        return 0.0;
    }
    // Counts of incidents stay far below 2^52: exact as floats.
    let ratio = part as f64 / whole as f64;
    ratio.clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests;
