//! Between the contract's messages and the domain: requests in, resources
//! and event payloads out.

use itsm_proto::itsm::common::v1 as common;
use itsm_proto::itsm::incidents::v1 as pb;
use itsm_store::audit::{FieldChange, timestamp};
use itsm_store::etag;
use prost::Message as _;

use crate::domain::escalation::Escalation;
use crate::domain::incident::{Draft, Incident};
use crate::domain::journal::JournalEntry;
use crate::domain::matrix::{self, PriorityMatrix};
use crate::domain::settings::{self, Settings, SettingsDraft};
use crate::domain::transitions;

/// The fields of a sent incident a caller may set; output-only ones are ignored.
pub fn draft(incident: pb::Incident) -> Draft {
    Draft {
        title: incident.title,
        description: incident.description,
        impact: incident.impact,
        urgency: incident.urgency,
        caller: incident.caller,
        caller_time_zone: incident.caller_time_zone,
        category: incident.category,
        subcategory: incident.subcategory,
        service: incident.service,
        configuration_item: incident.configuration_item,
        assignment_group: incident.assignment_group,
        assignee: incident.assignee,
        channel: incident.channel,
        labels: incident.labels.into_iter().collect(),
    }
}

/// An incident as the API returns it.
pub fn incident(i: &Incident) -> pb::Incident {
    pb::Incident {
        name: i.name(),
        number: i.number.clone(),
        title: i.title.clone(),
        description: i.description.clone(),
        state: i.state.number(),
        impact: i.impact.number(),
        urgency: i.urgency.number(),
        priority: i.priority.number(),
        caller: i.caller.clone(),
        category: i.category.clone(),
        subcategory: i.subcategory.clone(),
        service: i.service.clone(),
        configuration_item: i.configuration_item.clone(),
        assignment_group: i.assignment_group.clone(),
        assignee: i.assignee.clone(),
        channel: i.channel.map_or(0, |c| c.number()),
        hold_reason: i.hold_reason.map_or(0, |r| r.number()),
        resolution_code: i.resolution_code.map_or(0, |c| c.number()),
        resolution_notes: i.resolution_notes.clone(),
        cancel_reason: i.cancel_reason.clone(),
        major_state: i.major_state.number(),
        major_promoted_by: i.major_promoted_by.as_ref().map(|a| a.to_proto()),
        major_promote_time: i.major_promote_time.map(timestamp),
        parent: if i.parent.is_empty() {
            String::new()
        } else {
            crate::domain::name_of(&i.parent)
        },
        child_count: i.child_count,
        reopen_count: i.reopen_count,
        watchers: i.watchers.clone(),
        links: i
            .links
            .iter()
            .map(|l| common::Link {
                r#type: l.link_type.number(),
                target: l.target.clone(),
                created_by: Some(l.created_by.to_proto()),
                create_time: Some(timestamp(l.create_time)),
            })
            .collect(),
        alert_group: if i.alert_group.is_empty() {
            String::new()
        } else {
            format!("alertGroups/{}", i.alert_group)
        },
        labels: i.labels.clone().into_iter().collect(),
        created_by: Some(i.created_by.to_proto()),
        create_time: Some(timestamp(i.create_time)),
        update_time: Some(timestamp(i.update_time)),
        acknowledge_time: i.acknowledge_time.map(timestamp),
        resolve_time: i.resolve_time.map(timestamp),
        close_time: i.close_time.map(timestamp),
        first_contact_resolution: i.first_contact_resolution,
        etag: etag::from_version(i.version),
        tenant: i.tenant.clone(),
        caller_time_zone: i.caller_time_zone.clone(),
        escalated: i.escalated,
        escalations: i.escalations.iter().map(escalation).collect(),
    }
}

/// An escalation as the API returns it.
fn escalation(e: &Escalation) -> pb::Escalation {
    pb::Escalation {
        task_sla: e.task_sla.clone(),
        sla_definition: e.sla_definition.clone(),
        sla_display_name: e.sla_display_name.clone(),
        percentage: e.percentage,
        time: Some(timestamp(e.time)),
        assignment_group: e.assignment_group.clone(),
        notified: e.notified.clone(),
    }
}

/// A journal entry of incident `number`, as the API returns it.
pub fn journal_entry(entry: &JournalEntry, number: &str) -> common::JournalEntry {
    common::JournalEntry {
        name: entry.name(number),
        kind: entry.kind.number(),
        body: entry.body.clone(),
        author: Some(entry.author.to_proto()),
        create_time: Some(timestamp(entry.create_time)),
    }
}

fn field_changes(changes: &[FieldChange]) -> Vec<common::FieldChange> {
    changes
        .iter()
        .map(|c| common::FieldChange {
            field: c.field.clone(),
            old_value: c.old.clone(),
            new_value: c.new.clone(),
        })
        .collect()
}

fn any(type_name: &str, value: Vec<u8>) -> prost_types::Any {
    prost_types::Any {
        type_url: format!("type.googleapis.com/{type_name}"),
        value,
    }
}

/// The `IncidentEvent` payload of an event about `incident`.
pub fn event_payload(
    incident: &Incident,
    changes: &[FieldChange],
    journal_entry: Option<common::JournalEntry>,
) -> prost_types::Any {
    notifying_payload(incident, changes, journal_entry, Vec::new())
}

/// [`event_payload`], naming the subjects a notifier should tell beyond
/// the watchers (`notify`).
pub fn notifying_payload(
    incident: &Incident,
    changes: &[FieldChange],
    journal_entry: Option<common::JournalEntry>,
    notify: Vec<String>,
) -> prost_types::Any {
    let event = pb::IncidentEvent {
        incident: Some(self::incident(incident)),
        changes: field_changes(changes),
        journal_entry,
        notify,
    };
    any("itsm.incidents.v1.IncidentEvent", event.encode_to_vec())
}

/// The priority matrix as the API returns it.
pub fn priority_matrix(m: &PriorityMatrix) -> common::PriorityMatrix {
    common::PriorityMatrix {
        name: matrix::NAME.to_owned(),
        cells: matrix::cells(&m.cells)
            .map(|(impact, urgency, priority)| common::PriorityMatrixCell {
                impact: impact.number(),
                urgency: urgency.number(),
                priority: priority.number(),
            })
            .collect(),
        etag: etag::from_version(m.version),
        update_time: (m.update_time != 0).then(|| timestamp(m.update_time)),
        updated_by: Some(m.updated_by.to_proto()),
    }
}

/// The payload of a priority matrix event: the matrix itself.
pub fn matrix_payload(m: &PriorityMatrix) -> prost_types::Any {
    any(
        "itsm.common.v1.PriorityMatrix",
        priority_matrix(m).encode_to_vec(),
    )
}

/// The cells a caller sent, as numbers.
pub fn sent_cells(m: &common::PriorityMatrix) -> Vec<(i32, i32, i32)> {
    m.cells
        .iter()
        .map(|c| (c.impact, c.urgency, c.priority))
        .collect()
}

fn duration(micros: i64) -> prost_types::Duration {
    prost_types::Duration {
        seconds: micros.div_euclid(1_000_000),
        nanos: i32::try_from(micros.rem_euclid(1_000_000) * 1_000).unwrap_or(0),
    }
}

/// The settings as the API returns them.
pub fn settings(s: &Settings) -> pb::IncidentSettings {
    pb::IncidentSettings {
        name: settings::NAME.to_owned(),
        auto_close_after: Some(duration(s.auto_close_after)),
        flap_threshold: s.flap_threshold,
        flap_window: Some(duration(s.flap_window)),
        etag: etag::from_version(s.version),
    }
}

/// The payload of a settings event: the settings themselves.
pub fn settings_payload(s: &Settings) -> prost_types::Any {
    any(
        "itsm.incidents.v1.IncidentSettings",
        settings(s).encode_to_vec(),
    )
}

/// The settings a caller sent.
pub fn settings_draft(s: &pb::IncidentSettings) -> SettingsDraft {
    SettingsDraft {
        auto_close_after: s.auto_close_after.map(|d| (d.seconds, d.nanos)),
        flap_threshold: s.flap_threshold,
        flap_window: s.flap_window.map(|d| (d.seconds, d.nanos)),
    }
}

/// The transition table, one row per from-state.
pub fn transitions() -> Vec<pb::Transition> {
    transitions::rows()
        .map(|(from, t)| pb::Transition {
            from: from.number(),
            to: t.to.number(),
            method: t.method.rpc().to_owned(),
            permission: t.method.permission().to_owned(),
            required_fields: t.required.iter().map(|f| (*f).to_owned()).collect(),
        })
        .collect()
}
