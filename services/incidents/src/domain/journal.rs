//! Journal entries: work notes (internal) and comments (visible to the
//! caller and watchers), and the one entry that moves the lifecycle: the
//! caller's comment on an incident on hold awaiting the caller.

use itsm_platform::{ApiError, Violations};
use itsm_store::audit::{Actor, FieldChange};

use super::TEXT_MAX;
use super::enums::{self, HoldReason, JournalKind, State};
use super::incident::Incident;

/// A journal entry as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalEntry {
    /// Row id: the entry's name is `<incident name>/journal/<id>`.
    pub id: i64,
    pub kind: JournalKind,
    pub body: String,
    pub author: Actor,
    pub create_time: i64,
}

impl JournalEntry {
    /// `incidents/INC0000042/journal/7`.
    pub fn name(&self, incident_number: &str) -> String {
        format!("{}/journal/{}", super::name_of(incident_number), self.id)
    }

    /// The audit change of adding it: the journal field it lands in.
    pub fn change(&self) -> FieldChange {
        FieldChange::new(field_of(self.kind), "", &self.body)
    }
}

/// The journal field an entry of `kind` is audited under.
pub fn field_of(kind: JournalKind) -> &'static str {
    match kind {
        JournalKind::WorkNote => "work_notes",
        JournalKind::Comment => "comments",
    }
}

/// AddJournalEntry's kind and body, checked; every bad field at once.
pub fn check_entry(kind: i32, body: &str) -> Result<JournalKind, ApiError> {
    let mut v = Violations::new();
    let kind = enums::required(
        &mut v,
        "kind",
        kind,
        JournalKind::from_number,
        JournalKind::allowed,
    );
    v.check(
        !body.trim().is_empty(),
        "body",
        "must not be empty or blank",
    );
    super::check_len(&mut v, "body", body, TEXT_MAX);
    v.into_result()?;
    Ok(kind.unwrap_or(JournalKind::Comment))
}

/// Whether an entry of `kind` by `author` is the caller's reply to an
/// incident on hold awaiting the caller, which resumes it.
pub fn is_caller_reply(incident: &Incident, kind: JournalKind, author: &str) -> bool {
    kind == JournalKind::Comment
        && incident.state == State::OnHold
        && incident.hold_reason == Some(HoldReason::AwaitingCaller)
        && incident.caller == author
}

/// The `(incident number, entry id)` of `incidents/<number>/journal/<id>`.
pub fn parse_name(name: &str) -> Option<(&str, i64)> {
    let (incident, id) = name.rsplit_once("/journal/")?;
    let number = super::number_from_name(incident, "name").ok()?;
    Some((number, id.parse().ok().filter(|id| *id > 0)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_need_a_known_kind_and_a_body() {
        assert_eq!(
            check_entry(1, "checked the logs").unwrap(),
            JournalKind::WorkNote
        );
        let error = check_entry(7, " ").unwrap_err();
        let fields: Vec<_> = error
            .field_violations()
            .iter()
            .map(|v| v.field.as_str())
            .collect();
        assert_eq!(fields, ["kind", "body"]);
        let error = check_entry(0, &"x".repeat(TEXT_MAX + 1)).unwrap_err();
        assert!(
            error.message().contains("kind: is required"),
            "{}",
            error.message()
        );
        assert!(
            error.message().contains("at most 32000"),
            "{}",
            error.message()
        );
    }

    #[test]
    fn names_parse_back() {
        assert_eq!(
            parse_name("incidents/INC0000042/journal/7"),
            Some(("INC0000042", 7))
        );
        assert_eq!(parse_name("incidents/INC0000042/journal/x"), None);
        assert_eq!(parse_name("incidents/INC42/journal/7"), None);
    }
}
