//! What each alert does to its alert group, and what the group's incident
//! must then undergo.
//!
//! Per alert, in the order received:
//! - FIRING, no group yet: the group opens, and so does a new incident.
//! - FIRING while the group fires, or RESOLVED while it is resolved: a
//!   repeat, counted; the incident is not touched (not even looked at).
//! - RESOLVED while the group fires: the group resolves, and its incident
//!   is resolved (ALERT_CLEARED) unless it is no longer open.
//! - FIRING while the group is resolved (a refire, counted in `flap_count`):
//!   a RESOLVED incident is reopened; a CLOSED or CANCELED one (final) is
//!   followed by a new incident linked to it; an open one is kept.
//! - RESOLVED with no group: nothing to resolve; the alert is rejected.
//!
//! Flapping: refires are counted in windows of `flap_window` that start at
//! the first refire after the previous window ended (tumbling windows, so
//! one counter and one start time per group suffice). The refire that makes
//! `flap_threshold` in one window marks the group flapping. While it flaps
//! the group keeps ONE open incident: clears no longer resolve it, refires
//! find it open, so every alert is deduplicated into it and the incident
//! does not churn through resolve/reopen on every cycle; a person decides
//! when it is over. The group stops flapping at its first alert after a
//! whole `flap_window` without a refire; from then on clears resolve again.

use itsm_store::audit::FieldChange;

use super::{Alert, AlertSeverity, AlertStatus, COLLECTION};
use crate::domain::enums::State;
use crate::domain::transitions::OPEN;

/// The flapping settings (`IncidentSettings`), the window in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlapRule {
    pub threshold: i32,
    pub window: i64,
}

/// All alerts sharing one fingerprint, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertGroup {
    pub fingerprint: String,
    /// `None` for a group row made for this alert and not yet applied.
    pub status: Option<AlertStatus>,
    /// The latest alert's.
    pub severity: Option<AlertSeverity>,
    pub source: String,
    pub node: String,
    pub resource: String,
    pub metric: String,
    pub summary: String,
    /// The latest alert as received (an encoded `itsm.incidents.v1.Alert`).
    pub last_alert: Vec<u8>,
    pub occurrence_count: i64,
    /// Refires (resolved -> firing) ever.
    pub flap_count: i32,
    pub flapping: bool,
    /// Start of the current flap window, 0 before the first refire.
    pub flap_window_started_at: i64,
    /// Refires in the current flap window.
    pub window_flaps: i32,
    /// The last time the group went firing (opened or refired).
    pub last_fired_at: i64,
    /// The current incident's number, empty when none.
    pub incident: String,
    pub first_seen_at: i64,
    pub last_seen_at: i64,
    pub last_resolved_at: i64,
    /// One more per alert applied, and per flapping or deduplicated event
    /// (each its own change): the sequence of the group's events.
    pub version: i64,
}

/// What an alert did to its group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observed {
    /// RESOLVED for a fingerprint with no group: nothing changed.
    Unknown,
    /// The group's first alert: it fires.
    Opened,
    /// The same status again: counted.
    Repeated,
    /// Firing -> resolved.
    Cleared,
    /// Resolved -> firing; `became_flapping` when this refire made it flap.
    Refired { became_flapping: bool },
}

/// What the group's incident must undergo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IncidentStep {
    Keep,
    /// A new incident, linked (RELATED) to the number given, when any.
    Open {
        related: Option<String>,
    },
    Resolve,
    Reopen,
}

/// An alert's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Opened,
    Deduplicated,
    Resolved,
    Reopened,
    Rejected(String),
}

impl AlertGroup {
    /// A group row about to receive its first alert.
    pub fn new(fingerprint: &str, now: i64) -> Self {
        Self {
            fingerprint: fingerprint.to_owned(),
            status: None,
            severity: None,
            source: String::new(),
            node: String::new(),
            resource: String::new(),
            metric: String::new(),
            summary: String::new(),
            last_alert: Vec::new(),
            occurrence_count: 0,
            flap_count: 0,
            flapping: false,
            flap_window_started_at: 0,
            window_flaps: 0,
            last_fired_at: 0,
            incident: String::new(),
            first_seen_at: now,
            last_seen_at: now,
            last_resolved_at: 0,
            version: 0,
        }
    }

    /// `alertGroups/<fingerprint>`.
    pub fn name(&self) -> String {
        format!("{COLLECTION}/{}", self.fingerprint)
    }

    /// Applies `alert` (received as `raw`) at `now`.
    pub fn observe(&mut self, alert: &Alert, raw: &[u8], rule: FlapRule, now: i64) -> Observed {
        let Some(status) = self.status else {
            if alert.status == AlertStatus::Resolved {
                return Observed::Unknown;
            }
            self.record(alert, raw, now);
            self.status = Some(AlertStatus::Firing);
            self.first_seen_at = now;
            self.last_fired_at = now;
            return Observed::Opened;
        };
        self.record(alert, raw, now);
        if self.flapping && now.saturating_sub(self.last_fired_at) >= rule.window {
            self.flapping = false;
        }
        match (status, alert.status) {
            (AlertStatus::Firing, AlertStatus::Firing)
            | (AlertStatus::Resolved, AlertStatus::Resolved) => Observed::Repeated,
            (AlertStatus::Firing, AlertStatus::Resolved) => {
                self.status = Some(AlertStatus::Resolved);
                self.last_resolved_at = now;
                Observed::Cleared
            }
            (AlertStatus::Resolved, AlertStatus::Firing) => {
                self.status = Some(AlertStatus::Firing);
                self.flap_count = self.flap_count.saturating_add(1);
                let window_over = now.saturating_sub(self.flap_window_started_at) >= rule.window;
                if self.flap_window_started_at == 0 || window_over {
                    self.flap_window_started_at = now;
                    self.window_flaps = 1;
                } else {
                    self.window_flaps = self.window_flaps.saturating_add(1);
                }
                self.last_fired_at = now;
                let became_flapping = !self.flapping && self.window_flaps >= rule.threshold;
                self.flapping |= became_flapping;
                Observed::Refired { became_flapping }
            }
        }
    }

    fn record(&mut self, alert: &Alert, raw: &[u8], now: i64) {
        self.version += 1;
        self.occurrence_count = self.occurrence_count.saturating_add(1);
        self.last_seen_at = now;
        self.last_alert = raw.to_vec();
        self.severity = alert.severity;
        self.source.clone_from(&alert.source);
        self.node.clone_from(&alert.node);
        self.resource.clone_from(&alert.resource);
        self.metric.clone_from(&alert.metric);
        self.summary = super::truncate(&alert.summary, super::SUMMARY_MAX);
    }

    /// Whether [`plan`] needs the state of the group's incident after `observed`.
    pub fn needs_incident(&self, observed: Observed) -> bool {
        match observed {
            Observed::Cleared => !self.flapping,
            Observed::Refired { .. } => true,
            Observed::Unknown | Observed::Opened | Observed::Repeated => false,
        }
    }

    /// What the incident (in `incident`, when the group has one) undergoes
    /// after `observed`, and the alert's result.
    pub fn plan(&self, observed: Observed, incident: Option<State>) -> (IncidentStep, Outcome) {
        let open = incident.is_some_and(|s| OPEN.contains(&s));
        match observed {
            Observed::Unknown => (
                IncidentStep::Keep,
                Outcome::Rejected(format!(
                    "no alert group {} has fired: there is nothing to resolve",
                    self.name()
                )),
            ),
            Observed::Opened => (IncidentStep::Open { related: None }, Outcome::Opened),
            Observed::Repeated => (IncidentStep::Keep, Outcome::Deduplicated),
            Observed::Cleared if self.flapping => (IncidentStep::Keep, Outcome::Deduplicated),
            Observed::Cleared if open => (IncidentStep::Resolve, Outcome::Resolved),
            Observed::Cleared => (IncidentStep::Keep, Outcome::Resolved),
            Observed::Refired { .. } => match incident {
                _ if open => (IncidentStep::Keep, Outcome::Deduplicated),
                Some(State::Resolved) => (IncidentStep::Reopen, Outcome::Reopened),
                Some(_) => (
                    IncidentStep::Open {
                        related: Some(self.incident.clone()),
                    },
                    Outcome::Opened,
                ),
                None => (IncidentStep::Open { related: None }, Outcome::Opened),
            },
        }
    }

    /// The audited fields now, to diff against later with [`Self::changes_since`].
    pub fn snapshot(&self) -> Snapshot {
        Snapshot([
            ("status", self.status.map_or("", AlertStatus::as_str).into()),
            ("occurrence_count", self.occurrence_count.to_string()),
            ("flap_count", self.flap_count.to_string()),
            ("flapping", self.flapping.to_string()),
            ("incident", self.incident.clone()),
        ])
    }

    /// What changed since `before` was taken, field by field.
    pub fn changes_since(&self, before: &Snapshot) -> Vec<FieldChange> {
        let Snapshot(old) = before;
        old.iter()
            .zip(self.snapshot().0)
            .filter(|((_, old), (_, new))| old != new)
            .map(|((field, old), (_, new))| FieldChange::new(field, old, new))
            .collect()
    }
}

/// The audited fields of a group at one moment (status, occurrence_count,
/// flap_count, flapping, incident), as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot([(&'static str, String); 5]);

/// Whether a count going from `before` to `after` reached a power of ten
/// (10, 100, 1000, ...): when the `deduplicated` event is worth sending, so
/// a storm of repeats makes a handful of events, not one per alert.
pub fn crossed_power_of_ten(before: i64, after: i64) -> bool {
    let mut power: i64 = 10;
    while power <= after {
        if power > before {
            return true;
        }
        match power.checked_mul(10) {
            Some(next) => power = next,
            None => break,
        }
    }
    false
}
