//! Incident tasks, parent/child links with propagation, and the major flag
//! with its trigger rules.
//!
//! - [`tasks`]: CreateIncidentTask, GetIncidentTask, ListIncidentTasks,
//!   UpdateIncidentTask. A task's change is audited and published on the
//!   task (`incidents.incident_task.*`) and noted in its incident's audit trail.
//! - [`parents`]: SetParentIncident, and `IncidentsApi::propagate`, which the lifecycle
//!   runs in the parent's transaction (the table is
//!   [`crate::domain::hierarchy::PROPAGATIONS`]).
//! - [`major`]: Promote/DemoteMajorIncident, the rules' List/Create/Delete,
//!   and [`apply_major_rules`], which evaluates the rules on one incident and
//!   applies what they say, for any change that may make an incident major.

mod major;
mod parents;
mod tasks;

use itsm_proto::itsm::incidents::v1 as pb;
use itsm_store::audit::timestamp;
use itsm_store::etag;
use prost::Message as _;

use crate::domain::hierarchy::major::MajorRule;
use crate::domain::hierarchy::task::Task;

// For the use cases that may make an incident major: creation
// (api/incidents.rs) and SetParentIncident.
pub(super) use major::apply_major_rules;

/// Event types of this module's changes (events.proto).
const TASK_CREATED: &str = "incidents.incident_task.created";
const TASK_UPDATED: &str = "incidents.incident_task.updated";
const MAJOR_PROPOSED: &str = "incidents.incident.major_proposed";
const MAJOR_PROMOTED: &str = "incidents.incident.major_promoted";
const MAJOR_DEMOTED: &str = "incidents.incident.major_demoted";
const RULE_CREATED: &str = "incidents.major_incident_rule.created";
const RULE_DELETED: &str = "incidents.major_incident_rule.deleted";

fn any(type_name: &str, value: Vec<u8>) -> prost_types::Any {
    prost_types::Any {
        type_url: format!("type.googleapis.com/{type_name}"),
        value,
    }
}

/// A task as the API returns it.
fn task(t: &Task) -> pb::IncidentTask {
    pb::IncidentTask {
        name: t.name(),
        number: t.number.clone(),
        title: t.title.clone(),
        description: t.description.clone(),
        state: t.state.number(),
        assignment_group: t.assignment_group.clone(),
        assignee: t.assignee.clone(),
        due_time: t.due_time.map(timestamp),
        create_time: Some(timestamp(t.create_time)),
        update_time: Some(timestamp(t.update_time)),
        etag: etag::from_version(t.version),
    }
}

/// The payload of a task event: the task itself.
fn task_payload(t: &Task) -> prost_types::Any {
    any("itsm.incidents.v1.IncidentTask", task(t).encode_to_vec())
}

/// A rule as the API returns it.
fn rule(r: &MajorRule) -> pb::MajorIncidentRule {
    pb::MajorIncidentRule {
        name: r.name(),
        condition: r.condition.clone(),
        min_children: r.min_children,
        children_window: (r.children_window > 0).then(|| prost_types::Duration {
            seconds: r.children_window / 1_000_000,
            nanos: i32::try_from((r.children_window % 1_000_000) * 1_000).unwrap_or(0),
        }),
        action: r.action.number(),
        enabled: r.enabled,
    }
}

/// The payload of a rule event: the rule itself.
fn rule_payload(r: &MajorRule) -> prost_types::Any {
    any(
        "itsm.incidents.v1.MajorIncidentRule",
        rule(r).encode_to_vec(),
    )
}
