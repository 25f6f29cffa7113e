//! Escalation: what an SLA breach does to an incident still open. The
//! incident is flagged `escalated`, the breach is recorded in its escalation
//! list, and the assignment group's manager joins the watchers and is named
//! in the change's event as the subject to notify.
//!
//! One escalation per run of a clock: the SLA service may deliver a breach
//! more than once (a redelivery, a republished outbox row, a recomputation),
//! and each run of a task SLA breaches at most once. A clock restarted by its
//! reset condition is a new run (`TaskSla.reset_count`), so its own breach
//! escalates again. The flag is cleared when the incident is resolved,
//! canceled or reopened (see `lifecycle`); the list stays, as history.

use serde::{Deserialize, Serialize};

use itsm_store::audit::FieldChange;

use super::enums::State;
use super::incident::Incident;

/// One escalation of an incident, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Escalation {
    /// The task SLA that breached, `taskSlas/<uuid>`.
    pub task_sla: String,
    /// Its definition, `slaDefinitions/<id>`, and display name.
    pub sla_definition: String,
    pub sla_display_name: String,
    /// Percentage of the target reached (100 for a breach).
    pub percentage: i32,
    /// When the SLA event happened (the breach instant).
    pub time: i64,
    /// The incident's assignment group then ('' when unassigned).
    pub assignment_group: String,
    /// The subjects notified: the group's manager, when the directory named one.
    pub notified: Vec<String>,
    /// The clock's run: its reset count when it breached.
    #[serde(default)]
    pub run: i32,
}

/// A breach the SLA service reported for an incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Breach {
    pub task_sla: String,
    pub sla_definition: String,
    pub sla_display_name: String,
    /// The task SLA's reset count: which run of the clock breached.
    pub run: i32,
    /// The breach instant, microseconds since the epoch.
    pub time: i64,
}

/// The percentage an escalation by breach records.
pub const BREACH_PERCENTAGE: i32 = 100;

impl Incident {
    /// Whether `breach` escalates this incident: it is still open (not
    /// resolved, closed or canceled) and this run of the clock has not
    /// escalated it yet.
    pub fn escalates(&self, breach: &Breach) -> bool {
        let open = !matches!(
            self.state,
            State::Resolved | State::Closed | State::Canceled
        );
        open && !self
            .escalations
            .iter()
            .any(|e| e.task_sla == breach.task_sla && e.run == breach.run)
    }

    /// Escalates for `breach` at `now`, notifying `manager` (who also starts
    /// watching): the changes, field by field, or `None` (and the incident
    /// untouched) when [`Incident::escalates`] says no.
    pub fn escalate(
        &mut self,
        breach: &Breach,
        manager: Option<&str>,
        now: i64,
    ) -> Option<Vec<FieldChange>> {
        if !self.escalates(breach) {
            return None;
        }
        let mut changes = Vec::new();
        if !self.escalated {
            self.escalated = true;
            changes.push(FieldChange::new("escalated", "", "true"));
        }
        let notified: Vec<String> = manager.map(str::to_owned).into_iter().collect();
        changes.push(FieldChange::new(
            "escalations",
            "",
            format!(
                "{} ({}) breached; group {:?}; notified {:?}",
                breach.task_sla,
                breach.sla_display_name,
                self.assignment_group,
                notified.join(", ")
            ),
        ));
        self.escalations.push(Escalation {
            task_sla: breach.task_sla.clone(),
            sla_definition: breach.sla_definition.clone(),
            sla_display_name: breach.sla_display_name.clone(),
            percentage: BREACH_PERCENTAGE,
            time: breach.time,
            assignment_group: self.assignment_group.clone(),
            notified,
            run: breach.run,
        });
        if let Some(change) = manager.and_then(|m| self.add_watcher(m)) {
            changes.push(change);
        }
        self.touch(now);
        Some(changes)
    }
}

/// Escalations as stored: a JSON array, oldest first.
pub fn to_text(escalations: &[Escalation]) -> String {
    serde_json::to_string(escalations).unwrap_or_else(|_| "[]".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::incident::Draft;
    use crate::domain::lifecycle::Action;
    use crate::domain::matrix::DEFAULT;
    use itsm_store::audit::Actor;

    fn incident() -> Incident {
        let draft = Draft {
            title: "Mail down".into(),
            impact: 1,
            urgency: 1,
            caller: "ada".into(),
            assignment_group: "ops".into(),
            ..Draft::default()
        };
        Incident::open(
            draft,
            "INC0000001".into(),
            &DEFAULT,
            Actor::system("t"),
            100,
        )
    }

    fn breach(task_sla: &str, run: i32) -> Breach {
        Breach {
            task_sla: task_sla.into(),
            sla_definition: "slaDefinitions/p1".into(),
            sla_display_name: "P1 resolution".into(),
            run,
            time: 150,
        }
    }

    #[test]
    fn a_breach_flags_records_and_adds_the_manager_once_per_run() {
        let mut i = incident();
        let changes = i
            .escalate(&breach("taskSlas/a", 0), Some("max"), 200)
            .unwrap();
        let fields: Vec<_> = changes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, ["escalated", "escalations", "watchers"]);
        assert!(i.escalated);
        assert_eq!(i.version, 2);
        assert_eq!(i.watchers, ["max"]);
        assert_eq!(i.escalations[0].assignment_group, "ops");
        assert_eq!(i.escalations[0].notified, ["max"]);
        assert_eq!(i.escalations[0].percentage, 100);

        assert!(
            i.escalate(&breach("taskSlas/a", 0), Some("max"), 300)
                .is_none()
        );
        assert_eq!(i.version, 2, "a repeated breach changes nothing");
        // Another clock, or the same clock after a reset: a new escalation,
        // the flag and the watcher already there.
        let changes = i.escalate(&breach("taskSlas/a", 1), None, 400).unwrap();
        assert_eq!(changes.len(), 1);
        assert_eq!(i.escalations.len(), 2);
        assert!(i.escalations[1].notified.is_empty());
    }

    #[test]
    fn resolved_incidents_do_not_escalate_and_resolving_clears_the_flag() {
        let mut i = incident();
        i.escalate(&breach("taskSlas/a", 0), None, 200).unwrap();
        let by = Actor::system("t");
        let resolve = Action::resolve(1, "fixed".into()).unwrap();
        let applied = i.apply(&resolve, &by, 300).unwrap();
        assert!(!i.escalated);
        assert!(applied.changes.iter().any(|c| c.field == "escalated"));
        assert!(i.escalate(&breach("taskSlas/b", 0), None, 400).is_none());
        assert_eq!(i.escalations.len(), 1, "the history stays");
    }
}
