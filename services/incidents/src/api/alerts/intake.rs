//! One fingerprint's alerts of a call, in one transaction over the group's
//! locked row, and the group's events.
//!
//! Events (`AlertGroupEvent`, subject `alertGroups/<fingerprint>`, sequence
//! the group's version), each with its audit entry:
//! - `incidents.alert_group.opened`: the group fires, first or again;
//! - `incidents.alert_group.resolved`: it stopped firing;
//! - `incidents.alert_group.flapping`: a refire made it flap;
//! - `incidents.alert_group.deduplicated`: only when a call's repeats carry
//!   the occurrence count across a power of ten (10, 100, 1,000, ...), once
//!   per call: an event per repeat would turn an alert storm into an event
//!   storm, while these still show a group growing, in a handful of events.
//!
//! Repeats write no event and no audit entry, only the group row (once per
//! call). The incident's own events come from its changes ([`super::incident`]).

use itsm_platform::{ApiError, ErrorCode};
use itsm_proto::itsm::incidents::v1 as pb;
use itsm_store::{StoreError, Tx};
use prost::Message as _;

use super::super::IncidentsApi;
use super::super::call::{self, Call, Change};
use super::incident;
use crate::domain;
use crate::domain::alerts::group::{Snapshot, crossed_power_of_ten};
use crate::domain::alerts::{Alert, AlertGroup, AlertStatus, FlapRule, Observed, Outcome};
use crate::store::{alerts as store, incidents};

pub const OPENED: &str = "incidents.alert_group.opened";
pub const RESOLVED: &str = "incidents.alert_group.resolved";
pub const FLAPPING: &str = "incidents.alert_group.flapping";
pub const DEDUPLICATED: &str = "incidents.alert_group.deduplicated";

/// One checked alert, where it was in the call, and as received (encoded).
#[derive(Debug)]
pub struct Received {
    pub index: usize,
    pub alert: Alert,
    pub raw: Vec<u8>,
}

/// A fingerprint's alerts of one call, in the order received.
#[derive(Debug)]
pub struct Batch {
    pub fingerprint: String,
    pub alerts: Vec<Received>,
}

impl IncidentsApi {
    /// Applies `batch` in one transaction; the result of each of its alerts,
    /// with the alert's index in the call. An alert the incident's rules
    /// refuse (INVALID_ARGUMENT, FAILED_PRECONDITION) rejects the batch's
    /// alerts, the transaction rolled back; any other error is the call's.
    pub(in crate::api) async fn intake(
        &self,
        call: &Call,
        batch: &Batch,
        rule: FlapRule,
    ) -> Result<Vec<(usize, pb::AlertResult)>, ApiError> {
        match self.apply(call, batch, rule).await {
            Ok(results) => Ok(results),
            Err(error)
                if matches!(
                    error.code(),
                    ErrorCode::InvalidArgument | ErrorCode::FailedPrecondition
                ) =>
            {
                tracing::warn!(fingerprint = %batch.fingerprint, %error, "alerts refused");
                let refused = batch.alerts.iter().map(|r| {
                    let result = pb::AlertResult {
                        fingerprint: batch.fingerprint.clone(),
                        outcome: pb::AlertOutcome::Rejected as i32,
                        error: error_text(&error),
                        ..pb::AlertResult::default()
                    };
                    (r.index, result)
                });
                Ok(refused.collect())
            }
            Err(error) => Err(error),
        }
    }

    async fn apply(
        &self,
        call: &Call,
        batch: &Batch,
        rule: FlapRule,
    ) -> Result<Vec<(usize, pb::AlertResult)>, ApiError> {
        let now = itsm_store::now_micros();
        let fingerprint = batch.fingerprint.as_str();
        let lock = self.db.backend().lock_suffix();
        let mut tx = self.db.begin().await?;
        // Locking an existing row first spares the INSERT in the usual case;
        // when there is none, INSERT ... ON CONFLICT DO NOTHING waits for a
        // concurrent maker, and the second SELECT locks whichever row won.
        let mut found = store::select_group(&mut tx, fingerprint, lock).await?;
        let fires = batch
            .alerts
            .iter()
            .any(|r| r.alert.status == AlertStatus::Firing);
        if found.is_none() && fires {
            store::insert_group(&mut tx, &AlertGroup::new(fingerprint, now)).await?;
            found = store::select_group(&mut tx, fingerprint, lock).await?;
        }
        let (id, group) = match found {
            Some((id, group)) => (Some(id), group),
            None => (None, AlertGroup::new(fingerprint, now)),
        };
        let results = self
            .apply_locked(&mut tx, call, batch, (id, group), rule, now)
            .await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(results)
    }

    /// The batches among `batches` whose alerts all repeat their group's
    /// status (the steady state of a storm), applied in one transaction: one
    /// statement locks every group of `batches` in fingerprint order (so two
    /// such transactions never deadlock), and a repeat touches only its group
    /// row, never an incident. Returns their results and the other batches,
    /// for [`IncidentsApi::intake`] after this commits.
    pub(in crate::api) async fn intake_repeats(
        &self,
        call: &Call,
        batches: Vec<Batch>,
        rule: FlapRule,
    ) -> Result<(Vec<(usize, pb::AlertResult)>, Vec<Batch>), ApiError> {
        let now = itsm_store::now_micros();
        let lock = self.db.backend().lock_suffix();
        let mut tx = self.db.begin().await?;
        let fingerprints: Vec<&str> = batches.iter().map(|b| b.fingerprint.as_str()).collect();
        let mut groups = store::lock_groups(&mut tx, &fingerprints, lock).await?;
        let (mut results, mut rest) = (Vec::new(), Vec::new());
        for batch in batches {
            match groups.remove(&batch.fingerprint) {
                Some((id, group)) if repeats_only(&group, &batch) => {
                    let applied = self
                        .apply_locked(&mut tx, call, &batch, (Some(id), group), rule, now)
                        .await?;
                    results.extend(applied);
                }
                _ => rest.push(batch),
            }
        }
        tx.commit().await.map_err(StoreError::from)?;
        Ok((results, rest))
    }

    /// Applies `batch`'s alerts to its group (`id` of its row, locked in
    /// `tx`; `None` when it has none yet) and writes what changed, without
    /// committing; each alert's result.
    async fn apply_locked(
        &self,
        tx: &mut Tx,
        call: &Call,
        batch: &Batch,
        (id, mut group): (Option<i64>, AlertGroup),
        rule: FlapRule,
        now: i64,
    ) -> Result<Vec<(usize, pb::AlertResult)>, ApiError> {
        let lock = self.db.backend().lock_suffix();
        let (start_count, start_version) = (group.occurrence_count, group.version);
        let mut results = Vec::with_capacity(batch.alerts.len());
        for received in &batch.alerts {
            // A repeat (same status) records no event: spare it the snapshot.
            let changes = group.status != Some(received.alert.status);
            let before = changes.then(|| group.snapshot());
            let observed = group.observe(&received.alert, &received.raw, rule, now);
            let current = if group.needs_incident(observed) && !group.incident.is_empty() {
                incidents::select_incident(tx, &group.incident, lock).await?
            } else {
                None
            };
            let state = current.as_ref().map(|s| s.incident.state);
            let (step, outcome) = group.plan(observed, state);
            let target = (&mut group, &received.alert);
            incident::run(self, tx, call, target, step, current, now).await?;
            if let Some(before) = &before {
                self.group_events(tx, call, &mut group, observed, before, now)
                    .await?;
            }
            results.push((received.index, result(&group, outcome)));
        }
        let Some(id) = id.filter(|_| group.version != start_version) else {
            // Nothing to write: every alert was a RESOLVED for no group.
            return Ok(results);
        };
        if crossed_power_of_ten(start_count, group.occurrence_count) {
            let before = AlertGroup {
                occurrence_count: start_count,
                ..group.clone()
            }
            .snapshot();
            group.version += 1;
            record(
                tx,
                call,
                &group,
                ("deduplicate", DEDUPLICATED),
                &before,
                now,
            )
            .await?;
        }
        store::update_group(tx, id, &group).await?;
        Ok(results)
    }

    /// The events of one alert's change of `group`, `before` it.
    async fn group_events(
        &self,
        tx: &mut Tx,
        call: &Call,
        group: &mut AlertGroup,
        observed: Observed,
        before: &Snapshot,
        now: i64,
    ) -> Result<(), ApiError> {
        let kind = match observed {
            Observed::Opened | Observed::Refired { .. } => ("open", OPENED),
            Observed::Cleared => ("resolve", RESOLVED),
            Observed::Unknown | Observed::Repeated => return Ok(()),
        };
        record(tx, call, group, kind, before, now).await?;
        if let Observed::Refired {
            became_flapping: true,
        } = observed
        {
            tracing::info!(group = %group.name(), flaps = group.window_flaps, "alert group flapping");
            let before = group.snapshot();
            group.version += 1;
            record(tx, call, group, ("flap", FLAPPING), &before, now).await?;
        }
        Ok(())
    }
}

/// The audit entry and the `AlertGroupEvent` of a change of `group`.
async fn record(
    tx: &mut Tx,
    call: &Call,
    group: &AlertGroup,
    (action, event_type): (&str, &str),
    before: &Snapshot,
    now: i64,
) -> Result<(), ApiError> {
    let name = group.name();
    let event = pb::AlertGroupEvent {
        alert_group: Some(super::alert_group(group)),
    };
    let change = Change {
        resource: &name,
        version: group.version,
        action,
        event_type,
        changes: group.changes_since(before),
        payload: prost_types::Any {
            type_url: "type.googleapis.com/itsm.incidents.v1.AlertGroupEvent".into(),
            value: event.encode_to_vec(),
        },
    };
    call::record(tx, call, change, now).await?;
    Ok(())
}

/// Whether every alert of `batch` has `group`'s status: each is then a
/// repeat, which changes only the group row.
fn repeats_only(group: &AlertGroup, batch: &Batch) -> bool {
    group
        .status
        .is_some_and(|status| batch.alerts.iter().all(|r| r.alert.status == status))
}

/// An error as a REJECTED result words it: every bad field, else the message.
fn error_text(error: &ApiError) -> String {
    let fields = error.field_violations();
    if fields.is_empty() {
        return error.message().to_owned();
    }
    let fields: Vec<String> = fields
        .iter()
        .map(|v| format!("{}: {}", v.field, v.description))
        .collect();
    fields.join("; ")
}

/// An alert's result, after it was applied to `group`.
fn result(group: &AlertGroup, outcome: Outcome) -> pb::AlertResult {
    let incident = if group.incident.is_empty() {
        String::new()
    } else {
        domain::name_of(&group.incident)
    };
    let (outcome, error) = match outcome {
        Outcome::Opened => (pb::AlertOutcome::Opened, String::new()),
        Outcome::Deduplicated => (pb::AlertOutcome::Deduplicated, String::new()),
        Outcome::Resolved => (pb::AlertOutcome::Resolved, String::new()),
        Outcome::Reopened => (pb::AlertOutcome::Reopened, String::new()),
        Outcome::Rejected(error) => {
            return pb::AlertResult {
                fingerprint: group.fingerprint.clone(),
                outcome: pb::AlertOutcome::Rejected as i32,
                error,
                ..pb::AlertResult::default()
            };
        }
    };
    pb::AlertResult {
        fingerprint: group.fingerprint.clone(),
        outcome: outcome as i32,
        alert_group: group.name(),
        incident,
        error,
    }
}
