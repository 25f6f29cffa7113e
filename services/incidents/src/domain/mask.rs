//! Update masks, as every `Update*` method of this service checks them.

use itsm_platform::{ApiError, Violations};

/// The mask's paths, checked against `editable`: not empty, each path once,
/// each one of `editable`; every bad path at once. `unknown_note` follows
/// the list of updatable fields in the message of an unknown path (empty,
/// or starting with a space).
pub fn check(
    paths: &[String],
    editable: &[&'static str],
    unknown_note: &str,
) -> Result<Vec<&'static str>, ApiError> {
    let mut v = Violations::new();
    v.check(
        !paths.is_empty(),
        "update_mask",
        format!(
            "must name the fields to change, among: {}",
            editable.join(", ")
        ),
    );
    let mut fields = Vec::new();
    for (i, path) in paths.iter().enumerate() {
        match editable.iter().find(|f| **f == path.as_str()) {
            Some(field) if !fields.contains(field) => fields.push(*field),
            Some(_) => v.add(
                format!("update_mask.paths[{i}]"),
                format!("repeats {path:?}"),
            ),
            None => v.add(
                format!("update_mask.paths[{i}]"),
                format!(
                    "{path:?} cannot be updated; updatable: {}{unknown_note}",
                    editable.join(", ")
                ),
            ),
        }
    }
    v.into_result()?;
    Ok(fields)
}
