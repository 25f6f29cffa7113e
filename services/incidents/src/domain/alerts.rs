//! Alert intake's rules, free of I/O: what a valid alert is, its
//! fingerprint, and the incident an alert opens. What each alert does to its
//! alert group (counting, resolving, refiring, flapping) is [`group`].
//!
//! Severity -> impact and urgency (the priority is then the matrix's; the
//! seeded matrix gives the last column):
//!
//! | severity    | impact | urgency | seeded priority |
//! |-------------|--------|---------|-----------------|
//! | CRITICAL    | HIGH   | HIGH    | 1 critical      |
//! | MAJOR       | HIGH   | MEDIUM  | 2 high          |
//! | MINOR       | MEDIUM | MEDIUM  | 3 moderate      |
//! | WARNING     | LOW    | MEDIUM  | 4 low           |
//! | INFO        | LOW    | LOW     | 5 planning      |
//! | unspecified | MEDIUM | MEDIUM  | 3 moderate      |

pub mod group;

use std::collections::BTreeMap;

use sha2::{Digest as _, Sha256};

use super::enums::{Channel, Impact, Urgency};
use super::incident::Draft;
use super::{LABELS_MAX, SHORT_MAX, TEXT_MAX, TITLE_MAX};

pub use group::{AlertGroup, FlapRule, IncidentStep, Observed, Outcome};

/// The collection of alert groups: `alertGroups/<fingerprint>`.
pub const COLLECTION: &str = "alertGroups";
/// Most alerts in one `IngestAlerts` call.
pub const BATCH_MAX: usize = 1_000;
/// Longest fingerprint (a derived one is 64 hex digits; Alertmanager's are 16).
pub const FINGERPRINT_MAX: usize = 128;
/// Longest summary, in characters (the incident's title keeps the first 160).
pub const SUMMARY_MAX: usize = 4_000;
/// Longest generator URL, in characters.
pub const URL_MAX: usize = 2_048;
/// Most labels, and most annotations, on one alert.
pub const MAP_MAX: usize = 128;

/// Status of a monitoring alert (`AlertStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlertStatus {
    Firing = 1,
    Resolved = 2,
}

impl AlertStatus {
    /// Names and numbers, as a list filter takes them.
    pub const NAMES: &'static [(&'static str, i64)] = &[("FIRING", 1), ("RESOLVED", 2)];

    pub fn from_number(number: i32) -> Option<Self> {
        match number {
            1 => Some(Self::Firing),
            2 => Some(Self::Resolved),
            _ => None,
        }
    }

    pub fn number(self) -> i32 {
        self as i32
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Firing => "FIRING",
            Self::Resolved => "RESOLVED",
        }
    }
}

/// Severity reported by the monitoring system (`AlertSeverity`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlertSeverity {
    Critical = 1,
    Major = 2,
    Minor = 3,
    Warning = 4,
    Info = 5,
}

impl AlertSeverity {
    /// Names and numbers, as a list filter takes them.
    pub const NAMES: &'static [(&'static str, i64)] = &[
        ("CRITICAL", 1),
        ("MAJOR", 2),
        ("MINOR", 3),
        ("WARNING", 4),
        ("INFO", 5),
    ];

    pub fn from_number(number: i32) -> Option<Self> {
        match number {
            1 => Some(Self::Critical),
            2 => Some(Self::Major),
            3 => Some(Self::Minor),
            4 => Some(Self::Warning),
            5 => Some(Self::Info),
            _ => None,
        }
    }

    pub fn number(self) -> i32 {
        self as i32
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Critical => "CRITICAL",
            Self::Major => "MAJOR",
            Self::Minor => "MINOR",
            Self::Warning => "WARNING",
            Self::Info => "INFO",
        }
    }
}

/// Impact and urgency of the incident an alert of `severity` opens (the
/// table in the module's documentation).
pub fn impact_urgency(severity: Option<AlertSeverity>) -> (Impact, Urgency) {
    match severity {
        Some(AlertSeverity::Critical) => (Impact::High, Urgency::High),
        Some(AlertSeverity::Major) => (Impact::High, Urgency::Medium),
        Some(AlertSeverity::Minor) | None => (Impact::Medium, Urgency::Medium),
        Some(AlertSeverity::Warning) => (Impact::Low, Urgency::Medium),
        Some(AlertSeverity::Info) => (Impact::Low, Urgency::Low),
    }
}

/// An alert as sent, enums as numbers, before any check.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertDraft {
    pub source: String,
    pub fingerprint: String,
    pub status: i32,
    pub severity: i32,
    pub node: String,
    pub resource: String,
    pub metric: String,
    pub summary: String,
    pub description: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub generator_url: String,
}

/// A checked alert with its fingerprint (sent or derived).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub fingerprint: String,
    pub status: AlertStatus,
    pub severity: Option<AlertSeverity>,
    pub source: String,
    pub node: String,
    pub resource: String,
    pub metric: String,
    pub summary: String,
    pub description: String,
    pub labels: BTreeMap<String, String>,
    pub generator_url: String,
}

/// The de-duplication key of an alert without one: SHA-256 over source,
/// node, resource and metric, each preceded by its length in bytes (so
/// `("ab", "c")` and `("a", "bc")` differ), as 64 lowercase hex digits.
pub fn derive_fingerprint(source: &str, node: &str, resource: &str, metric: &str) -> String {
    let mut hash = Sha256::new();
    for part in [source, node, resource, metric] {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part.as_bytes());
    }
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The fingerprint an alert is grouped by: the one sent, else the derived
/// one; `None` when neither exists (no fingerprint and no key field).
pub fn fingerprint_of(draft: &AlertDraft) -> Option<String> {
    if !draft.fingerprint.is_empty() {
        return Some(draft.fingerprint.clone());
    }
    let keys = [&draft.source, &draft.node, &draft.resource, &draft.metric];
    if keys.iter().all(|k| k.is_empty()) {
        return None;
    }
    Some(derive_fingerprint(
        &draft.source,
        &draft.node,
        &draft.resource,
        &draft.metric,
    ))
}

/// Whether `fingerprint` may be one: 1 to [`FINGERPRINT_MAX`] ASCII letters,
/// digits, `-`, `_`, `.` or `:` (it is the id of a resource name).
pub fn is_fingerprint(fingerprint: &str) -> bool {
    (1..=FINGERPRINT_MAX).contains(&fingerprint.len())
        && fingerprint
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
}

/// Checks an alert; the error names every bad field (`field: what`, `; `
/// between), as the alert's REJECTED result carries it.
pub fn check(draft: AlertDraft) -> Result<Alert, String> {
    let mut bad: Vec<String> = Vec::new();
    let mut need = |ok: bool, what: String| {
        if !ok {
            bad.push(what);
        }
    };
    let fingerprint = fingerprint_of(&draft);
    match &fingerprint {
        None => need(
            false,
            "fingerprint: is required when source, node, resource and metric are all empty".into(),
        ),
        Some(f) => need(
            is_fingerprint(f),
            format!(
                "fingerprint: must be 1 to {FINGERPRINT_MAX} letters, digits, '-', '_', '.' or ':'"
            ),
        ),
    }
    let status = AlertStatus::from_number(draft.status);
    need(
        status.is_some(),
        match draft.status {
            0 => "status: is required: FIRING or RESOLVED".into(),
            n => format!("status: unknown value {n}; allowed: FIRING, RESOLVED"),
        },
    );
    let severity = AlertSeverity::from_number(draft.severity);
    need(
        draft.severity == 0 || severity.is_some(),
        format!(
            "severity: unknown value {}; allowed: CRITICAL, MAJOR, MINOR, WARNING, INFO",
            draft.severity
        ),
    );
    need(
        draft
            .summary
            .chars()
            .any(|c| !c.is_whitespace() && !c.is_control()),
        "summary: is required: the incident's title".into(),
    );
    for (field, text, max) in [
        ("source", &draft.source, SHORT_MAX),
        ("node", &draft.node, SHORT_MAX),
        ("resource", &draft.resource, SHORT_MAX),
        ("metric", &draft.metric, SHORT_MAX),
        ("summary", &draft.summary, SUMMARY_MAX),
        ("description", &draft.description, TEXT_MAX),
        ("generator_url", &draft.generator_url, URL_MAX),
    ] {
        let len = text.chars().count();
        need(
            len <= max,
            format!("{field}: must be at most {max} characters, is {len}"),
        );
    }
    for (field, map) in [
        ("labels", &draft.labels),
        ("annotations", &draft.annotations),
    ] {
        need(
            map.len() <= MAP_MAX,
            format!(
                "{field}: must have at most {MAP_MAX} entries, has {}",
                map.len()
            ),
        );
        let longest = map
            .iter()
            .map(|(k, v)| k.chars().count().max(v.chars().count()))
            .max()
            .unwrap_or(0);
        need(
            longest <= SUMMARY_MAX,
            format!("{field}: keys and values must be at most {SUMMARY_MAX} characters"),
        );
    }
    match (fingerprint, status, bad.is_empty()) {
        (Some(fingerprint), Some(status), true) => Ok(Alert {
            fingerprint,
            status,
            severity,
            source: draft.source,
            node: draft.node,
            resource: draft.resource,
            metric: draft.metric,
            summary: draft.summary,
            description: draft.description,
            labels: draft.labels,
            generator_url: draft.generator_url,
        }),
        _ => Err(bad.join("; ")),
    }
}

/// The first `max` characters of `text`.
pub fn truncate(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// The alert's labels as an incident may carry them: keys lower-cased, those
/// still not valid incident label keys dropped (`__name__`), values cut to
/// [`SHORT_MAX`] characters, at most [`LABELS_MAX`] (the first by key). The
/// alert group keeps the alert as sent.
pub fn incident_labels(labels: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    labels
        .iter()
        .map(|(key, value)| (key.to_ascii_lowercase(), value))
        .filter(|(key, _)| {
            (1..=63).contains(&key.len())
                && key.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                && key
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_./".contains(&b))
        })
        .take(LABELS_MAX)
        .map(|(key, value)| (key, truncate(value, SHORT_MAX)))
        .collect()
}

/// The incident a firing alert opens, filed for `caller` (the subject of
/// the principal that sent the alert): title from the summary (one line, cut
/// to 160 characters), description with the alert's details appended,
/// impact and urgency from the severity, channel MONITORING.
pub fn incident_draft(alert: &Alert, caller: &str) -> Draft {
    let title: String = alert
        .summary
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let title = title.trim();
    let mut details = vec![format!("Alert group: {COLLECTION}/{}", alert.fingerprint)];
    let severity = alert.severity.map_or("UNSPECIFIED", AlertSeverity::as_str);
    for (name, value) in [
        ("Source", alert.source.as_str()),
        ("Node", alert.node.as_str()),
        ("Resource", alert.resource.as_str()),
        ("Metric", alert.metric.as_str()),
        ("Severity", severity),
        ("Link", alert.generator_url.as_str()),
    ] {
        if !value.is_empty() {
            details.push(format!("{name}: {value}"));
        }
    }
    let details = details.join("\n");
    let description = if alert.description.trim().is_empty() {
        details
    } else {
        format!("{}\n\n{details}", alert.description.trim_end())
    };
    let (impact, urgency) = impact_urgency(alert.severity);
    Draft {
        title: truncate(title, TITLE_MAX),
        description: truncate(&description, TEXT_MAX),
        impact: impact.number(),
        urgency: urgency.number(),
        caller: caller.to_owned(),
        channel: Channel::Monitoring.number(),
        labels: incident_labels(&alert.labels),
        ..Draft::default()
    }
}

/// How an alert is named in notes and reasons: its summary (cut to 200
/// characters) and group.
pub fn describe(alert: &Alert) -> String {
    format!(
        "{:?} ({COLLECTION}/{})",
        truncate(alert.summary.trim(), 200),
        alert.fingerprint
    )
}

#[cfg(test)]
mod tests;
