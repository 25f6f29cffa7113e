//! The rules of incidents, free of I/O (no tonic, no sqlx): the contract's
//! enums, the lifecycle table, the priority matrix, what a valid incident,
//! update, journal entry, link or setting is, and what each change changes,
//! field by field. Times are microseconds since the Unix epoch, as stored.
//!
//! - [`enums`]: states, impact, urgency, priority and the other enums.
//! - [`transitions`]: the lifecycle as data.
//! - [`matrix`]: impact x urgency -> priority.
//! - [`incident`]: the incident, its creation and its field-level diff.
//! - [`update`]: `UpdateIncident`'s mask.
//! - [`mask`]: the check of every update mask.
//! - [`lifecycle`]: what each lifecycle method does to an incident.
//! - [`journal`], [`related`]: journal entries, watchers and links.
//! - [`settings`]: practice-wide settings.
//! - [`escalation`]: what an SLA breach does to an open incident.

pub mod alerts;
pub mod automation;
pub mod enums;
pub mod escalation;
pub mod hierarchy;
pub mod incident;
pub mod journal;
pub mod lifecycle;
pub mod mask;
pub mod matrix;
pub mod related;
pub mod settings;
pub mod transitions;
pub mod update;

use itsm_platform::{ApiError, Violations};

pub use enums::{
    Channel, HoldReason, Impact, JournalKind, LinkType, MajorState, Priority, ResolutionCode,
    State, Urgency,
};
pub use incident::Incident;

/// The collection of every incident's resource name: `incidents/INC0000042`.
pub const COLLECTION: &str = "incidents";
/// The prefix of incident numbers, and the name of their counter.
pub const NUMBER_PREFIX: &str = "INC";
/// The counter incident numbers are drawn from (`itsm_store::counter`).
pub const COUNTER: &str = "incidents";
/// Longest title, in characters.
pub const TITLE_MAX: usize = 160;
/// Longest description, resolution notes, note or journal entry, in characters.
pub const TEXT_MAX: usize = 32_000;
/// Longest reason (cancel, reopen), in characters.
pub const REASON_MAX: usize = 4_000;
/// Longest subject, group, category or resource reference, in characters.
pub const SHORT_MAX: usize = 256;
/// Most labels on one incident.
pub const LABELS_MAX: usize = 64;

/// `incidents/<number>`.
pub fn name_of(number: &str) -> String {
    format!("{COLLECTION}/{number}")
}

/// The number in a resource name, `incidents/INC0000042`; INVALID_ARGUMENT on `field` otherwise.
pub fn number_from_name<'a>(name: &'a str, field: &str) -> Result<&'a str, ApiError> {
    name.strip_prefix(COLLECTION)
        .and_then(|rest| rest.strip_prefix('/'))
        .filter(|number| {
            number.strip_prefix(NUMBER_PREFIX).is_some_and(|digits| {
                digits.len() >= 7 && digits.len() <= 18 && digits.bytes().all(|b| b.is_ascii_digit())
            })
        })
        .ok_or_else(|| {
            ApiError::invalid_field(
                field,
                format!("must be {COLLECTION}/{NUMBER_PREFIX}<7 or more digits>, e.g. incidents/INC0000042"),
            )
        })
}

/// A time as RFC 3339 in UTC, for audit entries and messages people read.
pub fn rfc3339(micros: i64) -> String {
    use time::format_description::well_known::Rfc3339;
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| micros.to_string())
}

/// Records a violation unless `text` has at most `max` characters.
pub fn check_len(v: &mut Violations, field: &str, text: &str, max: usize) {
    let len = text.chars().count();
    v.check(
        len <= max,
        field,
        format!("must be at most {max} characters, is {len}"),
    );
}

/// Records a violation unless `text` is a plausible identifier (a subject,
/// a group): at most [`SHORT_MAX`] characters, no whitespace or control characters.
pub fn check_identifier(v: &mut Violations, field: &str, text: &str) {
    check_len(v, field, text, SHORT_MAX);
    v.check(
        !text.chars().any(|c| c.is_whitespace() || c.is_control()),
        field,
        "must not contain whitespace or control characters",
    );
}

/// Records a violation unless `text` is empty or a resource name `<collection>/<id>`
/// whose collection is `collection` (any collection when `None`).
pub fn check_reference(v: &mut Violations, field: &str, text: &str, collection: Option<&str>) {
    if text.is_empty() {
        return;
    }
    check_identifier(v, field, text);
    let well_formed = text.split_once('/').is_some_and(|(c, id)| {
        !c.is_empty() && !id.is_empty() && collection.is_none_or(|w| w == c)
    });
    let shape = collection.map_or("<collection>/<id>".to_owned(), |c| format!("{c}/<id>"));
    v.check(
        well_formed,
        field,
        format!("must be a resource name, {shape}"),
    );
}

/// An assignment group as stored: its id, without identity's `groups/` prefix
/// (callers may write either).
pub fn group_id(group: &str) -> &str {
    group.strip_prefix("groups/").unwrap_or(group)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_a_number() {
        assert_eq!(
            number_from_name("incidents/INC0000042", "name").unwrap(),
            "INC0000042"
        );
        assert_eq!(
            number_from_name("incidents/INC123456789", "name").unwrap(),
            "INC123456789"
        );
        for bad in [
            "",
            "incidents/",
            "INC0000042",
            "incidents/INC42",
            "incidents/PRB0000042",
            "incidents/INC00000x2",
        ] {
            let error = number_from_name(bad, "name").unwrap_err();
            assert_eq!(error.field_violations()[0].field, "name", "{bad:?}");
        }
    }

    #[test]
    fn references_must_be_resource_names() {
        let mut v = Violations::new();
        check_reference(&mut v, "a", "", Some("cis"));
        check_reference(&mut v, "b", "cis/8a1f", Some("cis"));
        check_reference(&mut v, "c", "problems/PRB1", None);
        assert!(v.is_empty());
        check_reference(&mut v, "d", "web-01", Some("cis"));
        check_reference(&mut v, "e", "changes/CHG1", Some("cis"));
        check_reference(&mut v, "f", "cis/", None);
        let error = v.into_result().unwrap_err();
        let fields: Vec<_> = error
            .field_violations()
            .iter()
            .map(|f| f.field.as_str())
            .collect();
        assert_eq!(fields, ["d", "e", "f"]);
    }

    #[test]
    fn groups_are_stored_by_id() {
        assert_eq!(group_id("groups/network"), "network");
        assert_eq!(group_id("network"), "network");
    }
}
