//! Assignment rules at work: the group, and maybe the assignee, of a new
//! incident that names no group, chosen inside the creating transaction.
//!
//! Rules run in order; the first enabled rule whose condition holds for the
//! inserted row (`SELECT 1 FROM incidents WHERE id = $1 AND (<condition>)`)
//! decides. A rule using the CI's support group asks the CMDB; when the
//! incident has no CI or the CI no support group, that rule cannot decide and
//! the next one is tried. Then the strategy picks a member of the group:
//! round-robin (a cursor per group, moved in the same transaction) or
//! least-loaded (fewest open incidents as assignee).
//!
//! Intake never fails for want of a neighbour: when the CMDB does not answer
//! the incident stays unassigned, and when the directory does not answer it
//! gets the group without an assignee; either way the creation carries an
//! extra event, `incidents.incident.assignment_degraded`, naming the rule
//! and the reason, so someone routes it by hand.
//!
//! Trade-off: the CMDB and the directory are asked while the transaction is
//! open (the condition can only be evaluated on the inserted row), so a slow
//! neighbour holds it for up to its timeout; both clients bound that.

use itsm_platform::ApiError;
use itsm_store::query::{SqlBuilder, parse_filter};
use sqlx::AnyConnection;

use crate::api::IncidentsApi;
use crate::domain::automation::{AssignmentRule, Strategy, least_loaded, next_round_robin};
use crate::domain::group_id;
use crate::domain::incident::Incident;
use crate::store::{automation as store, list};

/// What the assignment rules did to a new incident.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Routed {
    /// The rule that decided, `assignmentRules/7`; `None` when none matched.
    pub rule: Option<String>,
    /// Why the rule could not be applied in full.
    pub degraded: Option<String>,
}

/// Where a matching rule sends the incident.
enum Target {
    Group(String),
    /// The rule cannot decide for this incident (no CI, or no support group).
    Undecided,
    /// The CMDB did not answer.
    Unknown(String),
}

/// The condition of `rule` compiled against the incident list's fields, or
/// `None` (logged) when it no longer compiles: a rule saved under another
/// version of the schema never matches rather than failing intake.
fn predicate(rule: &AssignmentRule) -> Option<SqlBuilder> {
    let mut sql = SqlBuilder::default();
    let compiled = parse_filter(&rule.condition).and_then(|expr| match expr {
        Some(expr) => expr.compile(&list::SCHEMA, &mut sql),
        None => Ok(()),
    });
    match compiled {
        Ok(()) => Some(sql),
        Err(error) => {
            tracing::warn!(rule = %rule.name(), %error, "assignment rule condition no longer compiles; skipped");
            None
        }
    }
}

impl IncidentsApi {
    /// Runs the rules on the new incident `incident` (row `id`, inserted in
    /// the transaction `conn`) and sets its group and assignee as the first
    /// deciding rule says. The caller writes the row if it changed.
    pub(in crate::api) async fn route(
        &self,
        conn: &mut AnyConnection,
        id: i64,
        incident: &mut Incident,
        now: i64,
    ) -> Result<Routed, ApiError> {
        for rule in store::select_enabled_rules(&mut *conn).await? {
            let Some(predicate) = predicate(&rule) else {
                continue;
            };
            if !store::incident_matches(&mut *conn, id, &predicate).await? {
                continue;
            }
            let group = match self.target(&rule, incident).await {
                Target::Group(group) => group,
                Target::Undecided => continue,
                Target::Unknown(reason) => {
                    return Ok(Routed {
                        rule: Some(rule.name()),
                        degraded: Some(reason),
                    });
                }
            };
            let (assignee, degraded) = self.pick(conn, &rule, &group, now).await?;
            incident.assignment_group = group;
            if !assignee.is_empty() {
                // As when an assignee is given at creation: the first assignment to a person.
                incident.acknowledge_time = Some(incident.create_time);
            }
            incident.assignee = assignee;
            return Ok(Routed {
                rule: Some(rule.name()),
                degraded,
            });
        }
        Ok(Routed::default())
    }

    async fn target(&self, rule: &AssignmentRule, incident: &Incident) -> Target {
        if !rule.use_ci_support_group {
            return Target::Group(rule.assignment_group.clone());
        }
        if incident.configuration_item.is_empty() {
            return Target::Undecided;
        }
        match self.cmdb.support_group(&incident.configuration_item).await {
            Ok(Some(group)) if !group_id(&group).is_empty() => {
                Target::Group(group_id(&group).to_owned())
            }
            Ok(_) => Target::Undecided,
            Err(error) => {
                tracing::warn!(rule = %rule.name(), ci = %incident.configuration_item, %error, "cmdb unavailable; incident left unassigned");
                Target::Unknown(format!(
                    "the CMDB did not answer for the support group of {}: {}",
                    incident.configuration_item,
                    error.message()
                ))
            }
        }
    }

    /// The member of `group` the rule's strategy picks (`""` for none), and
    /// why none could be picked when the directory did not answer.
    async fn pick(
        &self,
        conn: &mut AnyConnection,
        rule: &AssignmentRule,
        group: &str,
        now: i64,
    ) -> Result<(String, Option<String>), ApiError> {
        if rule.strategy == Strategy::GroupOnly {
            return Ok((String::new(), None));
        }
        let members = match self.directory.members(group).await {
            Ok(members) => members,
            Err(error) => {
                tracing::warn!(rule = %rule.name(), %group, %error, "directory unavailable; incident assigned to the group only");
                let reason = format!(
                    "the directory did not answer for the members of {group}: {}",
                    error.message()
                );
                return Ok((String::new(), Some(reason)));
            }
        };
        let picked = match rule.strategy {
            Strategy::RoundRobin => {
                let lock = self.db.backend().lock_suffix();
                let last = store::lock_round_robin(&mut *conn, group, lock, now).await?;
                let next = next_round_robin(&members, &last).cloned();
                if let Some(next) = &next {
                    store::update_round_robin(&mut *conn, group, next, now).await?;
                }
                next
            }
            Strategy::LeastLoaded => {
                let loads = store::select_open_loads(&mut *conn, &members).await?;
                least_loaded(&members, &loads).cloned()
            }
            Strategy::GroupOnly => None,
        };
        Ok((picked.unwrap_or_default(), None))
    }
}
