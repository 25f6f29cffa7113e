//! `UpdateIncident`: the descriptive fields named in the mask, checked and
//! applied; impact and urgency recompute the priority. State never changes
//! here: that is what the lifecycle methods are for.

use itsm_platform::{ApiError, Violations};

use super::enums::{Channel, Impact, State, Urgency};
use super::incident::{Draft, EDITABLE, Incident};
use super::matrix::{self, Cells};

/// States whose incidents are final: nothing about them changes any more.
pub const FINAL: &[State] = &[State::Closed, State::Canceled];

/// The mask's paths, checked: each one once, each an [`EDITABLE`] field.
pub fn check_mask(paths: &[String]) -> Result<Vec<&'static str>, ApiError> {
    let note = " (state, assignment and resolution change through the lifecycle methods)";
    super::mask::check(paths, EDITABLE, note)
}

/// The editable fields a mask names, each once, ignoring the rest (to
/// check their values while the mask's other paths are refused).
pub fn known_fields(paths: &[String]) -> Vec<&'static str> {
    let mut fields = Vec::new();
    for path in paths {
        if let Some(field) = EDITABLE.iter().find(|f| **f == path.as_str())
            && !fields.contains(field)
        {
            fields.push(*field);
        }
    }
    fields
}

/// Checks the masked fields of `draft`; every bad one at once.
pub fn check_fields(draft: &Draft, fields: &[&'static str]) -> Result<(), ApiError> {
    let mut v = Violations::new();
    for field in fields {
        draft.check(&mut v, field);
    }
    v.into_result()
}

/// FAILED_PRECONDITION when the incident is closed or canceled.
pub fn check_editable(incident: &Incident) -> Result<(), ApiError> {
    if FINAL.contains(&incident.state) {
        let name = incident.name();
        return Err(ApiError::failed_precondition(
            "STATE",
            &name,
            format!(
                "{name} is {}: a closed or canceled incident is final; open a new incident \
                 and link it instead",
                incident.state
            ),
        ));
    }
    Ok(())
}

/// Writes the masked fields of a checked `draft` into `incident`; a changed
/// impact or urgency recomputes the priority through `cells`.
pub fn apply(incident: &mut Incident, draft: Draft, fields: &[&'static str], cells: &Cells) {
    for field in fields {
        match *field {
            "title" => incident.title.clone_from(&draft.title),
            "description" => incident.description.clone_from(&draft.description),
            "impact" => {
                if let Some(impact) = Impact::from_number(draft.impact) {
                    incident.impact = impact;
                }
            }
            "urgency" => {
                if let Some(urgency) = Urgency::from_number(draft.urgency) {
                    incident.urgency = urgency;
                }
            }
            "category" => incident.category.clone_from(&draft.category),
            "subcategory" => incident.subcategory.clone_from(&draft.subcategory),
            "service" => incident.service.clone_from(&draft.service),
            "configuration_item" => {
                incident
                    .configuration_item
                    .clone_from(&draft.configuration_item);
            }
            "channel" => incident.channel = Channel::from_number(draft.channel),
            "labels" => incident.labels.clone_from(&draft.labels),
            "caller_time_zone" => {
                incident.caller_time_zone =
                    super::incident::time_zone_name(&draft.caller_time_zone).unwrap_or_default();
            }
            _ => {}
        }
    }
    // Only a change of its inputs re-reads the matrix: a title edit must not
    // move an old incident to a priority the matrix gained since.
    if fields.contains(&"impact") || fields.contains(&"urgency") {
        incident.priority = matrix::priority(cells, incident.impact, incident.urgency);
    }
}
