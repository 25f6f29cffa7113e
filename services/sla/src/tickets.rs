//! What SLA conditions can name, per ticket type, and ticket events decoded
//! into the snapshots the clock evaluates them over.
//!
//! Conditions use the shared filter language (`itsm_query`) over the fields
//! listed here; enum values are named as in the API without their prefix
//! (`state = ON_HOLD`, `hold_reason = AWAITING_CALLER`), like the incidents
//! service's own list filter.

use std::collections::BTreeMap;

use itsm_proto::itsm::common::v1::FieldChange;
use itsm_proto::itsm::events::v1::Event;
use itsm_proto::itsm::incidents::v1::{Incident, IncidentEvent};
use itsm_store::query::{Field, FieldKind, Record, RecordValue, Schema};
use prost::Message;

/// The ticket collections SLA definitions may name as `ticket_type`.
pub const TICKET_TYPES: &[&str] = &["incidents", "problems", "changes", "requestItems", "tasks"];

/// The fields conditions on tickets of `ticket_type` may name: `None` when
/// that type is not supported (yet): only "incidents" is.
pub fn schema(ticket_type: &str) -> Option<&'static Schema> {
    match ticket_type {
        "incidents" => Some(&INCIDENT),
        _ => None,
    }
}

/// The value of each field a condition may name, for one ticket at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TicketSnapshot {
    /// By field name (as in the schema).
    pub fields: BTreeMap<String, RecordValue>,
}

impl Record for TicketSnapshot {
    fn get(&self, field: &Field) -> Option<RecordValue> {
        self.fields.get(field.name).cloned()
    }
}

impl TicketSnapshot {
    /// A text field, "" when unset.
    pub fn text(&self, name: &str) -> &str {
        match self.fields.get(name) {
            Some(RecordValue::Text(text)) => text,
            _ => "",
        }
    }

    /// An integer, enum or timestamp field, 0 when unset.
    pub fn number(&self, name: &str) -> i64 {
        match self.fields.get(name) {
            Some(RecordValue::Int(n) | RecordValue::Enum(n) | RecordValue::Timestamp(n)) => *n,
            _ => 0,
        }
    }
}

/// One ticket event, decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct TicketEvent {
    /// "incidents/INC0000042".
    pub ticket: String,
    /// The event's id (UUID).
    pub id: String,
    /// "incidents.incident.updated".
    pub event_type: String,
    /// Per-ticket sequence, from 1.
    pub sequence: u64,
    /// When the change was committed, microseconds since the epoch.
    pub time: i64,
    /// The ticket after the change.
    pub snapshot: TicketSnapshot,
    /// What the event changed.
    pub changes: Vec<FieldChange>,
}

/// Decodes an incident event (`incidents.incident.*`, payload
/// `itsm.incidents.v1.IncidentEvent`). `None` for any other event, or one whose
/// payload does not decode or carries no incident.
pub fn from_event(event: &Event) -> Option<TicketEvent> {
    if !event.r#type.starts_with("incidents.incident.") {
        return None;
    }
    let payload = event.payload.as_ref()?;
    if !payload
        .type_url
        .ends_with("/itsm.incidents.v1.IncidentEvent")
        && payload.type_url != "itsm.incidents.v1.IncidentEvent"
    {
        return None;
    }
    let decoded = IncidentEvent::decode(payload.value.as_slice()).ok()?;
    let incident = decoded.incident?;
    let ticket = if event.subject.is_empty() {
        incident.name.clone()
    } else {
        event.subject.clone()
    };
    if !ticket.starts_with("incidents/") {
        return None;
    }
    Some(TicketEvent {
        ticket,
        id: event.id.clone(),
        event_type: event.r#type.clone(),
        sequence: event.sequence,
        time: event.time.as_ref().map_or(0, micros),
        snapshot: incident_snapshot(&incident),
        changes: decoded.changes,
    })
}

/// Microseconds since the epoch of a protobuf timestamp (saturating).
pub fn micros(t: &prost_types::Timestamp) -> i64 {
    t.seconds
        .saturating_mul(1_000_000)
        .saturating_add(i64::from(t.nanos) / 1_000)
}

/// The fields of [`schema`]`("incidents")` read from an incident.
pub fn incident_snapshot(incident: &Incident) -> TicketSnapshot {
    let mut fields = BTreeMap::new();
    let mut text = |name: &str, value: &str| {
        fields.insert(name.to_owned(), RecordValue::Text(value.to_owned()));
    };
    text("number", &incident.number);
    text("title", &incident.title);
    text("caller", &incident.caller);
    text("caller_time_zone", &incident.caller_time_zone);
    text("category", &incident.category);
    text("subcategory", &incident.subcategory);
    text("service", &incident.service);
    text("configuration_item", &incident.configuration_item);
    text("assignment_group", &incident.assignment_group);
    text("assignee", &incident.assignee);
    text("parent", &incident.parent);
    text("alert_group", &incident.alert_group);
    for (name, value) in [
        ("state", incident.state),
        ("impact", incident.impact),
        ("urgency", incident.urgency),
        ("priority", incident.priority),
        ("channel", incident.channel),
        ("hold_reason", incident.hold_reason),
        ("resolution_code", incident.resolution_code),
        ("major_state", incident.major_state),
    ] {
        fields.insert(name.to_owned(), RecordValue::Enum(i64::from(value)));
    }
    fields.insert(
        "reopen_count".to_owned(),
        RecordValue::Int(i64::from(incident.reopen_count)),
    );
    fields.insert(
        "child_count".to_owned(),
        RecordValue::Int(i64::from(incident.child_count)),
    );
    fields.insert(
        "first_contact_resolution".to_owned(),
        RecordValue::Bool(incident.first_contact_resolution),
    );
    for (name, value) in [
        ("create_time", &incident.create_time),
        ("update_time", &incident.update_time),
        ("acknowledge_time", &incident.acknowledge_time),
        ("resolve_time", &incident.resolve_time),
        ("close_time", &incident.close_time),
        ("major_promote_time", &incident.major_promote_time),
    ] {
        fields.insert(
            name.to_owned(),
            RecordValue::Timestamp(value.as_ref().map_or(0, micros)),
        );
    }
    TicketSnapshot { fields }
}

const STATES: &[(&str, i64)] = &[
    ("NEW", 1),
    ("IN_PROGRESS", 2),
    ("ON_HOLD", 3),
    ("RESOLVED", 4),
    ("CLOSED", 5),
    ("CANCELED", 6),
];
const LEVELS: &[(&str, i64)] = &[("HIGH", 1), ("MEDIUM", 2), ("LOW", 3)];
const PRIORITIES: &[(&str, i64)] = &[
    ("CRITICAL", 1),
    ("HIGH", 2),
    ("MODERATE", 3),
    ("LOW", 4),
    ("PLANNING", 5),
];
const CHANNELS: &[(&str, i64)] = &[
    ("PORTAL", 1),
    ("EMAIL", 2),
    ("PHONE", 3),
    ("CHAT", 4),
    ("MONITORING", 5),
    ("API", 6),
];
const HOLD_REASONS: &[(&str, i64)] = &[
    ("AWAITING_CALLER", 1),
    ("AWAITING_CHANGE", 2),
    ("AWAITING_PROBLEM", 3),
    ("AWAITING_VENDOR", 4),
];
const RESOLUTION_CODES: &[(&str, i64)] = &[
    ("SOLVED_PERMANENTLY", 1),
    ("SOLVED_WORKAROUND", 2),
    ("SOLVED_REMOTELY", 3),
    ("NOT_SOLVED_NOT_REPRODUCIBLE", 4),
    ("NOT_SOLVED_TOO_COSTLY", 5),
    ("CLOSED_BY_CALLER", 6),
    ("RESOLVED_BY_PROBLEM", 7),
    ("RESOLVED_BY_PARENT", 8),
    ("ALERT_CLEARED", 9),
];
const MAJOR_STATES: &[(&str, i64)] = &[
    ("NONE", 1),
    ("PROPOSED", 2),
    ("ACCEPTED", 3),
    ("REJECTED", 4),
];

const fn field(name: &'static str, kind: FieldKind) -> Field {
    Field {
        name,
        column: name,
        kind,
        sortable: false,
    }
}

/// What conditions on incidents may name (column = name: these are read from
/// a snapshot, never from SQL).
pub static INCIDENT: Schema = Schema {
    resource: "incident",
    fields: &[
        field("number", FieldKind::Text),
        field("title", FieldKind::Text),
        field("state", FieldKind::Enum(STATES)),
        field("impact", FieldKind::Enum(LEVELS)),
        field("urgency", FieldKind::Enum(LEVELS)),
        field("priority", FieldKind::Enum(PRIORITIES)),
        field("caller", FieldKind::Text),
        field("caller_time_zone", FieldKind::Text),
        field("category", FieldKind::Text),
        field("subcategory", FieldKind::Text),
        field("service", FieldKind::Text),
        field("configuration_item", FieldKind::Text),
        field("assignment_group", FieldKind::Text),
        field("assignee", FieldKind::Text),
        field("channel", FieldKind::Enum(CHANNELS)),
        field("hold_reason", FieldKind::Enum(HOLD_REASONS)),
        field("resolution_code", FieldKind::Enum(RESOLUTION_CODES)),
        field("major_state", FieldKind::Enum(MAJOR_STATES)),
        field("parent", FieldKind::Text),
        field("child_count", FieldKind::Int),
        field("reopen_count", FieldKind::Int),
        field("alert_group", FieldKind::Text),
        field("first_contact_resolution", FieldKind::Bool),
        field("create_time", FieldKind::Timestamp),
        field("update_time", FieldKind::Timestamp),
        field("acknowledge_time", FieldKind::Timestamp),
        field("resolve_time", FieldKind::Timestamp),
        field("close_time", FieldKind::Timestamp),
        field("major_promote_time", FieldKind::Timestamp),
    ],
};

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use itsm_proto::itsm::incidents::v1::{HoldReason, IncidentState};
    use itsm_store::query::parse_filter;

    fn incident() -> Incident {
        Incident {
            name: "incidents/INC0000042".into(),
            number: "INC0000042".into(),
            title: "VPN down".into(),
            state: IncidentState::OnHold as i32,
            hold_reason: HoldReason::AwaitingCaller as i32,
            priority: 2,
            assignment_group: "network".into(),
            reopen_count: 1,
            create_time: Some(prost_types::Timestamp {
                seconds: 1_767_225_600,
                nanos: 5_000,
            }),
            ..Incident::default()
        }
    }

    #[test]
    fn enum_lists_match_the_generated_enums() {
        use itsm_proto::itsm::common::v1::{Impact, Priority, Urgency};
        use itsm_proto::itsm::incidents::v1::{Channel, MajorState, ResolutionCode};
        let check = |values: &[(&str, i64)], prefix: &str, name: &dyn Fn(i32) -> Option<String>| {
            for (listed, number) in values {
                assert_eq!(
                    name(i32::try_from(*number).unwrap()).as_deref(),
                    Some(format!("{prefix}{listed}").as_str())
                );
            }
        };
        let n = |f: fn(i32) -> Option<&'static str>| move |v: i32| f(v).map(str::to_owned);
        check(
            STATES,
            "INCIDENT_STATE_",
            &n(|v| IncidentState::try_from(v).ok().map(|e| e.as_str_name())),
        );
        check(
            LEVELS,
            "IMPACT_",
            &n(|v| Impact::try_from(v).ok().map(|e| e.as_str_name())),
        );
        check(
            LEVELS,
            "URGENCY_",
            &n(|v| Urgency::try_from(v).ok().map(|e| e.as_str_name())),
        );
        check(
            PRIORITIES,
            "PRIORITY_",
            &n(|v| Priority::try_from(v).ok().map(|e| e.as_str_name())),
        );
        check(
            CHANNELS,
            "CHANNEL_",
            &n(|v| Channel::try_from(v).ok().map(|e| e.as_str_name())),
        );
        check(
            HOLD_REASONS,
            "HOLD_REASON_",
            &n(|v| HoldReason::try_from(v).ok().map(|e| e.as_str_name())),
        );
        check(
            RESOLUTION_CODES,
            "RESOLUTION_CODE_",
            &n(|v| ResolutionCode::try_from(v).ok().map(|e| e.as_str_name())),
        );
        check(
            MAJOR_STATES,
            "MAJOR_STATE_",
            &n(|v| MajorState::try_from(v).ok().map(|e| e.as_str_name())),
        );
    }

    #[test]
    fn snapshot_answers_conditions() {
        let snapshot = incident_snapshot(&incident());
        let schema = schema("incidents").unwrap();
        for (filter, expected) in [
            ("state = ON_HOLD AND hold_reason = AWAITING_CALLER", true),
            ("priority <= HIGH", true),
            ("assignment_group = network", true),
            ("assignee:*", false),
            ("reopen_count > 0", true),
            (r#"create_time > "2026-01-01T00:00:00Z""#, true),
            ("resolve_time:*", false),
        ] {
            let expr = parse_filter(filter).unwrap().unwrap();
            expr.check(schema).unwrap();
            assert_eq!(expr.matches(schema, &snapshot), expected, "{filter}");
        }
        assert_eq!(snapshot.number("create_time"), 1_767_225_600_000_005);
        assert_eq!(snapshot.text("assignment_group"), "network");
        assert!(super::schema("problems").is_none());
    }

    #[test]
    fn decodes_incident_events_only() {
        let payload = IncidentEvent {
            incident: Some(incident()),
            changes: vec![FieldChange {
                field: "state".into(),
                old_value: "IN_PROGRESS".into(),
                new_value: "ON_HOLD".into(),
            }],
            journal_entry: None,
            notify: Vec::new(),
        };
        let mut event = Event {
            id: "e1".into(),
            r#type: "incidents.incident.state_changed".into(),
            subject: "incidents/INC0000042".into(),
            sequence: 7,
            time: Some(prost_types::Timestamp {
                seconds: 10,
                nanos: 1_500,
            }),
            payload: Some(prost_types::Any {
                type_url: "type.googleapis.com/itsm.incidents.v1.IncidentEvent".into(),
                value: payload.encode_to_vec(),
            }),
            ..Event::default()
        };
        let decoded = from_event(&event).unwrap();
        assert_eq!(decoded.ticket, "incidents/INC0000042");
        assert_eq!((decoded.sequence, decoded.time), (7, 10_000_001));
        assert_eq!(decoded.changes.len(), 1);
        assert_eq!(decoded.snapshot.number("state"), 3);
        event.r#type = "incidents.incident_task.created".into();
        assert!(from_event(&event).is_none());
        event.r#type = "incidents.incident.updated".into();
        event.payload.as_mut().unwrap().value = vec![0xff, 0xff];
        assert!(from_event(&event).is_none());
    }
}
