//! The incident: what a caller may send for one, how it opens, and what
//! changed between two versions of it, field by field (the audit trail and
//! the events' `changes` are this diff, so no change goes unrecorded).

use std::collections::BTreeMap;

use itsm_platform::{ApiError, Violations};
use itsm_store::audit::{Actor, FieldChange};

use super::enums::{self, Channel, HoldReason, Impact, LinkType, MajorState, Priority};
use super::enums::{ResolutionCode, State, Urgency};
use super::escalation::Escalation;
use super::matrix::{self, Cells};
use super::{LABELS_MAX, SHORT_MAX, TEXT_MAX, TITLE_MAX};

/// An incident as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incident {
    pub number: String,
    pub tenant: String,
    pub title: String,
    pub description: String,
    pub state: State,
    pub impact: Impact,
    pub urgency: Urgency,
    pub priority: Priority,
    pub caller: String,
    /// The caller's IANA time zone, as the tz database spells it; '' when unknown.
    pub caller_time_zone: String,
    pub category: String,
    pub subcategory: String,
    pub service: String,
    pub configuration_item: String,
    /// The group's id, without `groups/`.
    pub assignment_group: String,
    pub assignee: String,
    pub channel: Option<Channel>,
    pub hold_reason: Option<HoldReason>,
    pub resolution_code: Option<ResolutionCode>,
    pub resolution_notes: String,
    pub cancel_reason: String,
    pub major_state: MajorState,
    pub major_promoted_by: Option<Actor>,
    pub major_promote_time: Option<i64>,
    /// The parent's number, empty when none.
    pub parent: String,
    pub child_count: i32,
    pub reopen_count: i32,
    /// How often an existing assignment was changed.
    pub reassignment_count: i32,
    pub reopened_by: Option<Actor>,
    pub reopen_time: Option<i64>,
    /// Sorted.
    pub watchers: Vec<String>,
    /// In the order they were added.
    pub links: Vec<Link>,
    pub alert_group: String,
    pub labels: BTreeMap<String, String>,
    pub created_by: Actor,
    pub create_time: i64,
    pub update_time: i64,
    pub acknowledge_time: Option<i64>,
    pub resolve_time: Option<i64>,
    pub close_time: Option<i64>,
    pub first_contact_resolution: bool,
    /// An SLA breached while it was open, and it was not resolved, canceled
    /// or reopened since (see [`super::escalation`]).
    pub escalated: bool,
    /// Every escalation, oldest first.
    pub escalations: Vec<Escalation>,
    /// The etag's version and the sequence of the last event: 1 when opened.
    pub version: i64,
}

/// A link from the incident to another resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub link_type: LinkType,
    pub target: String,
    pub created_by: Actor,
    pub create_time: i64,
}

/// The fields a caller sets, as sent (enums as numbers), before any check.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Draft {
    pub title: String,
    pub description: String,
    pub impact: i32,
    pub urgency: i32,
    pub caller: String,
    pub caller_time_zone: String,
    pub category: String,
    pub subcategory: String,
    pub service: String,
    pub configuration_item: String,
    pub assignment_group: String,
    pub assignee: String,
    pub channel: i32,
    pub labels: BTreeMap<String, String>,
}

/// The fields of a [`Draft`] that `UpdateIncident` may change, by mask path.
pub const EDITABLE: &[&str] = &[
    "title",
    "description",
    "impact",
    "urgency",
    "category",
    "subcategory",
    "service",
    "configuration_item",
    "channel",
    "labels",
    "caller_time_zone",
];

impl Draft {
    /// Checks one field (a name of [`EDITABLE`], or `caller`,
    /// `assignment_group`, `assignee`) under `incident.<field>`.
    pub fn check(&self, v: &mut Violations, field: &str) {
        let path = format!("incident.{field}");
        match field {
            "title" => {
                let len = self.title.chars().count();
                v.check(
                    !self.title.trim().is_empty(),
                    &path,
                    "must not be empty or blank",
                );
                v.check(
                    len <= TITLE_MAX,
                    &path,
                    format!("must be at most {TITLE_MAX} characters, is {len}"),
                );
            }
            "description" => super::check_len(v, &path, &self.description, TEXT_MAX),
            "impact" => {
                enums::required(v, &path, self.impact, Impact::from_number, Impact::allowed);
            }
            "urgency" => {
                enums::required(
                    v,
                    &path,
                    self.urgency,
                    Urgency::from_number,
                    Urgency::allowed,
                );
            }
            "caller" => {
                v.check(
                    !self.caller.is_empty(),
                    &path,
                    "is required: the person affected",
                );
                super::check_identifier(v, &path, &self.caller);
            }
            "category" => super::check_len(v, &path, &self.category, SHORT_MAX),
            "subcategory" => super::check_len(v, &path, &self.subcategory, SHORT_MAX),
            "service" => super::check_reference(v, &path, &self.service, Some("cis")),
            "configuration_item" => {
                super::check_reference(v, &path, &self.configuration_item, Some("cis"));
            }
            "assignment_group" => super::check_identifier(v, &path, &self.assignment_group),
            "assignee" => {
                super::check_identifier(v, &path, &self.assignee);
                v.check(
                    self.assignee.is_empty() || !self.assignment_group.is_empty(),
                    &path,
                    "needs an assignment_group it belongs to",
                );
            }
            "channel" => {
                enums::optional(
                    v,
                    &path,
                    self.channel,
                    Channel::from_number,
                    Channel::allowed,
                );
            }
            "labels" => check_labels(v, &self.labels),
            "caller_time_zone" => {
                v.check(
                    self.caller_time_zone.is_empty()
                        || time_zone_name(&self.caller_time_zone).is_some(),
                    &path,
                    format!(
                        "{:?} is not a time zone of the IANA database; use a name such as \
                         \"Europe/Paris\" or \"America/New_York\", or leave it empty",
                        self.caller_time_zone
                    ),
                );
            }
            _ => v.add(path, "is not a field of an incident"),
        }
    }

    /// Checks everything a new incident needs; every bad field at once.
    pub fn validate_new(&self) -> Result<(), ApiError> {
        let mut v = Violations::new();
        for field in EDITABLE
            .iter()
            .copied()
            .chain(["caller", "assignment_group", "assignee"])
        {
            self.check(&mut v, field);
        }
        v.into_result()
    }
}

/// The tz database's own spelling of the IANA zone `zone`, or `None` when
/// the database has no such zone (or `zone` is too long to be one).
pub fn time_zone_name(zone: &str) -> Option<String> {
    if zone.len() > SHORT_MAX {
        return None;
    }
    let tz = jiff::tz::TimeZone::get(zone).ok()?;
    Some(tz.iana_name().unwrap_or(zone).to_owned())
}

fn check_labels(v: &mut Violations, labels: &BTreeMap<String, String>) {
    v.check(
        labels.len() <= LABELS_MAX,
        "incident.labels",
        format!(
            "must have at most {LABELS_MAX} entries, has {}",
            labels.len()
        ),
    );
    for (key, value) in labels {
        let field = format!("incident.labels[{key:?}]");
        let key_ok = (1..=63).contains(&key.len())
            && key.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && key
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_./".contains(&b));
        v.check(
            key_ok,
            &field,
            "keys are 1 to 63 lowercase letters, digits, '-', '_', '.' or '/', starting with a letter or digit",
        );
        super::check_len(v, &field, value, SHORT_MAX);
    }
}

impl Incident {
    /// A new incident from a checked draft: NEW, its priority from `cells`,
    /// version 1. An assignee given at creation counts as the first assignment.
    pub fn open(draft: Draft, number: String, cells: &Cells, creator: Actor, now: i64) -> Self {
        let impact = Impact::from_number(draft.impact).unwrap_or(Impact::Low);
        let urgency = Urgency::from_number(draft.urgency).unwrap_or(Urgency::Low);
        Self {
            number,
            tenant: String::new(),
            title: draft.title,
            description: draft.description,
            state: State::New,
            impact,
            urgency,
            priority: matrix::priority(cells, impact, urgency),
            caller: draft.caller,
            caller_time_zone: time_zone_name(&draft.caller_time_zone).unwrap_or_default(),
            category: draft.category,
            subcategory: draft.subcategory,
            service: draft.service,
            configuration_item: draft.configuration_item,
            assignment_group: super::group_id(&draft.assignment_group).to_owned(),
            acknowledge_time: (!draft.assignee.is_empty()).then_some(now),
            assignee: draft.assignee,
            channel: Channel::from_number(draft.channel),
            hold_reason: None,
            resolution_code: None,
            resolution_notes: String::new(),
            cancel_reason: String::new(),
            major_state: MajorState::NotMajor,
            major_promoted_by: None,
            major_promote_time: None,
            parent: String::new(),
            child_count: 0,
            reopen_count: 0,
            reassignment_count: 0,
            reopened_by: None,
            reopen_time: None,
            watchers: Vec::new(),
            links: Vec::new(),
            alert_group: String::new(),
            labels: draft.labels,
            created_by: creator,
            create_time: now,
            update_time: now,
            resolve_time: None,
            close_time: None,
            first_contact_resolution: false,
            escalated: false,
            escalations: Vec::new(),
            version: 1,
        }
    }

    /// `incidents/<number>`.
    pub fn name(&self) -> String {
        super::name_of(&self.number)
    }

    /// Every audited field as text, in contract order (empty when unset).
    /// Watchers and links are audited by their own changes.
    pub fn audited_fields(&self) -> Vec<(&'static str, String)> {
        let time = |t: Option<i64>| t.map(super::rfc3339).unwrap_or_default();
        vec![
            ("title", self.title.clone()),
            ("description", self.description.clone()),
            ("state", self.state.to_string()),
            ("impact", self.impact.to_string()),
            ("urgency", self.urgency.to_string()),
            ("priority", self.priority.to_string()),
            ("caller", self.caller.clone()),
            ("caller_time_zone", self.caller_time_zone.clone()),
            ("category", self.category.clone()),
            ("subcategory", self.subcategory.clone()),
            ("service", self.service.clone()),
            ("configuration_item", self.configuration_item.clone()),
            ("assignment_group", self.assignment_group.clone()),
            ("assignee", self.assignee.clone()),
            ("channel", enums::name_or_empty(self.channel)),
            ("hold_reason", enums::name_or_empty(self.hold_reason)),
            (
                "resolution_code",
                enums::name_or_empty(self.resolution_code),
            ),
            ("resolution_notes", self.resolution_notes.clone()),
            ("cancel_reason", self.cancel_reason.clone()),
            ("major_state", self.major_state.to_string()),
            ("parent", self.parent.clone()),
            ("reopen_count", nonzero(self.reopen_count)),
            ("labels", labels_text(&self.labels)),
            ("acknowledge_time", time(self.acknowledge_time)),
            ("resolve_time", time(self.resolve_time)),
            ("close_time", time(self.close_time)),
            (
                "first_contact_resolution",
                if self.first_contact_resolution {
                    "true".into()
                } else {
                    String::new()
                },
            ),
            (
                "escalated",
                if self.escalated {
                    "true".into()
                } else {
                    String::new()
                },
            ),
        ]
    }

    /// The audit trail of the creation: every field that is set.
    pub fn creation_changes(&self) -> Vec<FieldChange> {
        self.audited_fields()
            .into_iter()
            .filter(|(_, value)| !value.is_empty())
            .map(|(field, value)| FieldChange::new(field, "", value))
            .collect()
    }

    /// What changed from `self` to `after`, field by field.
    pub fn changes_to(&self, after: &Incident) -> Vec<FieldChange> {
        self.audited_fields()
            .into_iter()
            .zip(after.audited_fields())
            .filter(|((_, old), (_, new))| old != new)
            .map(|((field, old), (_, new))| FieldChange::new(field, old, new))
            .collect()
    }

    /// Records a change made at `now`: a new version and update time.
    pub fn touch(&mut self, now: i64) {
        self.version += 1;
        self.update_time = now;
    }
}

fn nonzero(n: i32) -> String {
    if n == 0 { String::new() } else { n.to_string() }
}

/// Labels as a JSON object with sorted keys, `""` when there are none.
pub fn labels_text(labels: &BTreeMap<String, String>) -> String {
    if labels.is_empty() {
        String::new()
    } else {
        serde_json::to_string(labels).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests;
