//! Incident tasks: work under an incident, possibly for another group.
//! Named `incidents/INC0000042/tasks/TASK0000007`; numbered gap-free from
//! their own counter. States OPEN -> IN_PROGRESS -> DONE, and CANCELED from
//! any open state; DONE and CANCELED are final.

use itsm_platform::{ApiError, Violations};
use itsm_store::audit::{Actor, FieldChange};

use crate::domain::{self as d, TEXT_MAX, TITLE_MAX};

/// The prefix of task numbers.
pub const NUMBER_PREFIX: &str = "TASK";
/// The counter task numbers are drawn from (`itsm_store::counter`).
pub const COUNTER: &str = "incident_tasks";
/// The fields `UpdateIncidentTask` may change, by mask path.
pub const EDITABLE: &[&str] = &[
    "title",
    "description",
    "state",
    "assignment_group",
    "assignee",
    "due_time",
];
/// The latest due time accepted: the end of year 9999, in seconds.
const MAX_SECONDS: i64 = 253_402_300_799;

/// Lifecycle state of a task (`IncidentTaskState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TaskState {
    Open = 1,
    InProgress = 2,
    Done = 3,
    Canceled = 4,
}

impl TaskState {
    /// Names and numbers, as a list filter takes them.
    pub const NAMES: &'static [(&'static str, i64)] = &[
        ("OPEN", 1),
        ("IN_PROGRESS", 2),
        ("DONE", 3),
        ("CANCELED", 4),
    ];

    /// The value with this number, if any (0, unspecified, is none).
    pub fn from_number(number: i32) -> Option<Self> {
        match number {
            1 => Some(Self::Open),
            2 => Some(Self::InProgress),
            3 => Some(Self::Done),
            4 => Some(Self::Canceled),
            _ => None,
        }
    }

    /// The protobuf number.
    pub fn number(self) -> i32 {
        self as i32
    }

    /// The name without the type prefix, e.g. `IN_PROGRESS`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "OPEN",
            Self::InProgress => "IN_PROGRESS",
            Self::Done => "DONE",
            Self::Canceled => "CANCELED",
        }
    }

    fn allowed() -> String {
        "OPEN, IN_PROGRESS, DONE, CANCELED".to_owned()
    }

    /// Whether nothing about a task in this state changes any more.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Done | Self::Canceled)
    }

    /// The states a task in this state may move to.
    pub fn next(self) -> &'static [TaskState] {
        match self {
            Self::Open => &[Self::InProgress, Self::Canceled],
            Self::InProgress => &[Self::Done, Self::Canceled],
            Self::Done | Self::Canceled => &[],
        }
    }
}

impl std::fmt::Display for TaskState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A task as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    pub number: String,
    /// The incident's number.
    pub incident: String,
    pub title: String,
    pub description: String,
    pub state: TaskState,
    /// The group's id, without `groups/`.
    pub assignment_group: String,
    pub assignee: String,
    pub due_time: Option<i64>,
    pub created_by: Actor,
    pub create_time: i64,
    pub update_time: i64,
    /// The etag's version and the sequence of its events: 1 when created.
    pub version: i64,
}

/// The fields of a task a caller sends, as sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskDraft {
    pub title: String,
    pub description: String,
    pub state: i32,
    pub assignment_group: String,
    pub assignee: String,
    /// Seconds and nanos, when set.
    pub due_time: Option<(i64, i32)>,
}

/// `incidents/<incident>/tasks/<task>`.
pub fn name_of(incident: &str, number: &str) -> String {
    format!("{}/tasks/{number}", d::name_of(incident))
}

/// The incident's and the task's numbers in a task's name; INVALID_ARGUMENT on `field` otherwise.
pub fn numbers_from_name<'a>(name: &'a str, field: &str) -> Result<(&'a str, &'a str), ApiError> {
    let numbered = |n: &str, prefix: &str| {
        n.strip_prefix(prefix).is_some_and(|digits| {
            (7..=18).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
        })
    };
    name.strip_prefix("incidents/")
        .and_then(|rest| rest.split_once("/tasks/"))
        .filter(|(incident, task)| {
            numbered(incident, d::NUMBER_PREFIX) && numbered(task, NUMBER_PREFIX)
        })
        .ok_or_else(|| {
            ApiError::invalid_field(
                field,
                "must be incidents/INC<7 or more digits>/tasks/TASK<7 or more digits>, \
                 e.g. incidents/INC0000042/tasks/TASK0000007",
            )
        })
}

/// A due time in microseconds, or why not.
fn due_micros((seconds, nanos): (i64, i32)) -> Option<i64> {
    ((0..=MAX_SECONDS).contains(&seconds) && (0..1_000_000_000).contains(&nanos))
        .then(|| seconds * 1_000_000 + i64::from(nanos / 1_000))
}

impl TaskDraft {
    /// Checks one field of [`EDITABLE`] under `task.<field>`.
    pub fn check(&self, v: &mut Violations, field: &str) {
        let path = format!("task.{field}");
        match field {
            "title" => {
                v.check(
                    !self.title.trim().is_empty(),
                    &path,
                    "must not be empty or blank",
                );
                d::check_len(v, &path, &self.title, TITLE_MAX);
            }
            "description" => d::check_len(v, &path, &self.description, TEXT_MAX),
            "state" => {
                crate::domain::enums::required(
                    v,
                    &path,
                    self.state,
                    TaskState::from_number,
                    TaskState::allowed,
                );
            }
            "assignment_group" => d::check_identifier(v, &path, &self.assignment_group),
            "assignee" => d::check_identifier(v, &path, &self.assignee),
            "due_time" => v.check(
                self.due_time.is_none_or(|t| due_micros(t).is_some()),
                &path,
                "must be a time between 1970 and 9999",
            ),
            _ => v.add(path, "is not a field of an incident task"),
        }
    }

    /// Checks everything a new task needs; every bad field at once. Its state is not sent: a new task is OPEN.
    pub fn validate_new(&self) -> Result<(), ApiError> {
        let mut v = Violations::new();
        for field in [
            "title",
            "description",
            "assignment_group",
            "assignee",
            "due_time",
        ] {
            self.check(&mut v, field);
        }
        v.check(
            self.assignee.is_empty() || !self.assignment_group.is_empty(),
            "task.assignee",
            "needs an assignment_group it belongs to",
        );
        v.into_result()
    }
}

/// The mask's paths, checked: each one once, each an [`EDITABLE`] field.
pub fn check_mask(paths: &[String]) -> Result<Vec<&'static str>, ApiError> {
    d::mask::check(paths, EDITABLE, "")
}

impl Task {
    /// A new, OPEN task from a checked draft.
    pub fn open(
        draft: TaskDraft,
        number: String,
        incident: String,
        creator: Actor,
        now: i64,
    ) -> Self {
        Self {
            number,
            incident,
            title: draft.title,
            description: draft.description,
            state: TaskState::Open,
            assignment_group: d::group_id(&draft.assignment_group).to_owned(),
            assignee: draft.assignee,
            due_time: draft.due_time.and_then(due_micros),
            created_by: creator,
            create_time: now,
            update_time: now,
            version: 1,
        }
    }

    /// `incidents/<incident>/tasks/<number>`.
    pub fn name(&self) -> String {
        name_of(&self.incident, &self.number)
    }

    /// Every audited field as text (empty when unset).
    fn audited_fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("title", self.title.clone()),
            ("description", self.description.clone()),
            ("state", self.state.to_string()),
            ("assignment_group", self.assignment_group.clone()),
            ("assignee", self.assignee.clone()),
            (
                "due_time",
                self.due_time.map(d::rfc3339).unwrap_or_default(),
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
    pub fn changes_to(&self, after: &Task) -> Vec<FieldChange> {
        self.audited_fields()
            .into_iter()
            .zip(after.audited_fields())
            .filter(|((_, old), (_, new))| old != new)
            .map(|((field, old), (_, new))| FieldChange::new(field, old, new))
            .collect()
    }

    /// The group and assignee the masked `fields` of `draft` leave: a new
    /// group without an assignee leaves the task unassigned within it.
    pub fn assignment_target(&self, draft: &TaskDraft, fields: &[&str]) -> (String, String) {
        let group = if fields.contains(&"assignment_group") {
            d::group_id(&draft.assignment_group).to_owned()
        } else {
            self.assignment_group.clone()
        };
        let assignee = if fields.contains(&"assignee") {
            draft.assignee.clone()
        } else if group == self.assignment_group {
            self.assignee.clone()
        } else {
            String::new()
        };
        (group, assignee)
    }

    /// Applies the masked `fields` of a checked `draft`: FAILED_PRECONDITION
    /// for a final task or a state it may not move to. Returns the changes
    /// (the task is touched only when there are some).
    pub fn update(
        &mut self,
        draft: &TaskDraft,
        fields: &[&str],
        now: i64,
    ) -> Result<Vec<FieldChange>, ApiError> {
        let name = self.name();
        if self.state.is_final() {
            return Err(ApiError::failed_precondition(
                "STATE",
                &name,
                format!("{name} is {}: a done or canceled task is final", self.state),
            ));
        }
        let to = if fields.contains(&"state") {
            TaskState::from_number(draft.state).unwrap_or(self.state)
        } else {
            self.state
        };
        if to != self.state && !self.state.next().contains(&to) {
            let allowed: Vec<&str> = self.state.next().iter().map(|s| s.as_str()).collect();
            return Err(ApiError::failed_precondition(
                "STATE",
                &name,
                format!(
                    "{name} is {}: it may move to {} only, not {to}",
                    self.state,
                    allowed.join(" or ")
                ),
            ));
        }
        let (group, assignee) = self.assignment_target(draft, fields);
        if !assignee.is_empty() && group.is_empty() {
            return Err(ApiError::invalid_field(
                "task.assignee",
                "needs an assignment_group it belongs to",
            ));
        }
        let before = self.clone();
        self.state = to;
        self.assignment_group = group;
        self.assignee = assignee;
        for field in fields {
            match *field {
                "title" => self.title.clone_from(&draft.title),
                "description" => self.description.clone_from(&draft.description),
                "due_time" => self.due_time = draft.due_time.and_then(due_micros),
                _ => {}
            }
        }
        let changes = before.changes_to(self);
        if !changes.is_empty() {
            self.version += 1;
            self.update_time = now;
        }
        Ok(changes)
    }
}
