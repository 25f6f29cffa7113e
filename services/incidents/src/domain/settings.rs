//! Practice-wide settings: when resolved incidents close on their own, and
//! when an alert group counts as flapping. One record, seeded by the migration.

use itsm_platform::{ApiError, Violations};
use itsm_store::audit::{Actor, FieldChange};

/// The singleton's resource name.
pub const NAME: &str = "incidentSettings";
/// Fields `UpdateIncidentSettings` may change.
pub const EDITABLE: &[&str] = &["auto_close_after", "flap_threshold", "flap_window"];

const MINUTE: i64 = 60 * 1_000_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

/// The stored settings; durations in microseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub auto_close_after: i64,
    pub flap_threshold: i32,
    pub flap_window: i64,
    pub version: i64,
    /// 0 while the seed was never changed.
    pub update_time: i64,
    pub updated_by: Actor,
}

/// What a caller sent, durations as protobuf (seconds, nanos) when set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SettingsDraft {
    pub auto_close_after: Option<(i64, i32)>,
    pub flap_threshold: i32,
    pub flap_window: Option<(i64, i32)>,
}

fn duration(
    v: &mut Violations,
    field: &str,
    sent: Option<(i64, i32)>,
    (min, max): (i64, i64),
    range: &str,
) -> i64 {
    let micros = sent.and_then(|(seconds, nanos)| {
        if !(0..1_000_000_000).contains(&nanos) {
            return None;
        }
        seconds
            .checked_mul(1_000_000)?
            .checked_add(i64::from(nanos / 1_000))
    });
    match micros {
        None if sent.is_none() => v.add(field, format!("is required: {range}")),
        None => v.add(field, "is not a valid duration"),
        Some(m) => v.check((min..=max).contains(&m), field, format!("must be {range}")),
    }
    micros.unwrap_or_default()
}

/// The masked fields of an update, checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Patch {
    pub auto_close_after: Option<i64>,
    pub flap_threshold: Option<i32>,
    pub flap_window: Option<i64>,
}

/// Checks the mask and the masked fields of `draft`; every bad one at once.
pub fn check(draft: &SettingsDraft, paths: &[String]) -> Result<Patch, ApiError> {
    let mut v = Violations::new();
    v.check(
        !paths.is_empty(),
        "update_mask",
        format!(
            "must name the fields to change, among: {}",
            EDITABLE.join(", ")
        ),
    );
    let mut patch = Patch::default();
    for (i, path) in paths.iter().enumerate() {
        match path.as_str() {
            "auto_close_after" => {
                patch.auto_close_after = Some(duration(
                    &mut v,
                    "settings.auto_close_after",
                    draft.auto_close_after,
                    (HOUR, 365 * DAY),
                    "between 1 hour and 365 days",
                ));
            }
            "flap_threshold" => {
                patch.flap_threshold = Some(draft.flap_threshold);
                v.check(
                    (1..=100).contains(&draft.flap_threshold),
                    "settings.flap_threshold",
                    "must be between 1 and 100",
                );
            }
            "flap_window" => {
                patch.flap_window = Some(duration(
                    &mut v,
                    "settings.flap_window",
                    draft.flap_window,
                    (MINUTE, 7 * DAY),
                    "between 1 minute and 7 days",
                ));
            }
            other => v.add(
                format!("update_mask.paths[{i}]"),
                format!(
                    "{other:?} cannot be updated; updatable: {}",
                    EDITABLE.join(", ")
                ),
            ),
        }
    }
    v.into_result()?;
    Ok(patch)
}

impl Patch {
    /// `current` with the patch applied, and what changed.
    pub fn apply(&self, current: &Settings) -> (Settings, Vec<FieldChange>) {
        let mut next = current.clone();
        next.auto_close_after = self.auto_close_after.unwrap_or(next.auto_close_after);
        next.flap_threshold = self.flap_threshold.unwrap_or(next.flap_threshold);
        next.flap_window = self.flap_window.unwrap_or(next.flap_window);
        let text = |us: i64| format!("{}s", us / 1_000_000);
        let changes = [
            (
                "auto_close_after",
                text(current.auto_close_after),
                text(next.auto_close_after),
            ),
            (
                "flap_threshold",
                current.flap_threshold.to_string(),
                next.flap_threshold.to_string(),
            ),
            (
                "flap_window",
                text(current.flap_window),
                text(next.flap_window),
            ),
        ]
        .into_iter()
        .filter(|(_, old, new)| old != new)
        .map(|(field, old, new)| FieldChange::new(field, old, new))
        .collect();
        (next, changes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed() -> Settings {
        Settings {
            auto_close_after: 7 * DAY,
            flap_threshold: 3,
            flap_window: HOUR,
            version: 1,
            update_time: 0,
            updated_by: Actor::system("seed"),
        }
    }

    #[test]
    fn masked_fields_change_and_are_reported() {
        let draft = SettingsDraft {
            auto_close_after: Some((3 * 24 * 3600, 0)),
            flap_threshold: 99,
            flap_window: None,
        };
        let patch = check(&draft, &["auto_close_after".into()]).unwrap();
        let (next, changes) = patch.apply(&seed());
        assert_eq!(next.auto_close_after, 3 * DAY);
        assert_eq!(next.flap_threshold, 3, "not in the mask");
        assert_eq!(
            changes,
            [FieldChange::new("auto_close_after", "604800s", "259200s")]
        );
    }

    #[test]
    fn bad_values_and_paths_are_named() {
        let draft = SettingsDraft {
            auto_close_after: Some((-5, 0)),
            flap_threshold: 0,
            flap_window: None,
        };
        let paths: Vec<String> = ["auto_close_after", "flap_threshold", "flap_window", "name"]
            .map(String::from)
            .to_vec();
        let error = check(&draft, &paths).unwrap_err();
        let fields: Vec<_> = error
            .field_violations()
            .iter()
            .map(|v| v.field.as_str())
            .collect();
        assert_eq!(
            fields,
            [
                "settings.auto_close_after",
                "settings.flap_threshold",
                "settings.flap_window",
                "update_mask.paths[3]"
            ]
        );
        assert!(check(&draft, &[]).is_err());
    }
}
