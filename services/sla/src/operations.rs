//! Long-running recomputations of many task SLAs: what RecomputeTaskSlas and
//! a calendar or definition edit start ([`create`]), and the worker that runs
//! them in batches ([`run_step`], looped by `jobs::run_operations`).
//!
//! An operation selects task SLAs by a filter over `TaskSla` fields and walks
//! them in `task_slas.id` order, a batch per transaction: each batch's
//! tickets are replayed (`Engine::replay_tickets` at now, which saves changed
//! clocks and emits their events; with LATEST_VERSIONS only the selected task
//! SLAs move to the current versions, the other clocks of their tickets keep
//! theirs), then the cursor (the last id processed)
//! and the progress are written in the same transaction. A crash loses at
//! most the batch under way, and the next step resumes after the cursor, so
//! nothing is processed twice. It runs online: each ticket is replayed under
//! its advisory lock, so ticket events and timers keep being applied
//! between batches, and a ticket busy elsewhere is waited for, never
//! skipped. One worker holds an operation at a time (its row is locked for
//! the batch, `FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite serializes
//! writers), so replicas may all run the loop.

use std::collections::{BTreeMap, HashSet};

use itsm_platform::ApiError;
use itsm_proto::itsm::common::v1::Principal;
use itsm_proto::itsm::sla::v1 as pb;
use itsm_store::audit::Actor;
use itsm_store::outbox::{self, NewEvent};
use itsm_store::query::{SqlBuilder, filter_sql};
use itsm_store::{Backend, Db, StoreError};
use pb::OperationState;
use sqlx::{AnyConnection, Row};

use crate::api::call::{self, SOURCE, STREAM};
use crate::engine::{self, Engine};
use crate::store::operations::{self as rows, Stored};
use crate::store::task_slas;

/// The task SLAs an operation recomputes when its filter is empty: the open ones.
pub const DEFAULT_FILTER: &str = "state = IN_PROGRESS OR state = PAUSED";

/// At most this many failures are kept on an operation (`failed_count`
/// counts them all).
pub const MAX_FAILURES: usize = 100;

/// Task SLAs per batch (one transaction) of the worker.
pub const BATCH: usize = 500;

const STARTED: &str = "sla.operation.started";
const FINISHED: &str = "sla.operation.finished";

/// The filter of the open task SLAs that count with calendar `name`
/// ("calendars/<id>").
pub fn open_of_calendar(name: &str) -> String {
    format!("calendar = \"{name}\" AND ({DEFAULT_FILTER})")
}

/// The filter of the open task SLAs of definition `name` ("slaDefinitions/<id>").
pub fn open_of_definition(name: &str) -> String {
    format!("sla_definition = \"{name}\" AND ({DEFAULT_FILTER})")
}

/// The SQL of a task SLA filter (empty: [`DEFAULT_FILTER`]); a bad filter is
/// INVALID_ARGUMENT naming `filter`.
fn filter_of(filter: &str) -> Result<SqlBuilder, ApiError> {
    let filter = if filter.trim().is_empty() {
        DEFAULT_FILTER
    } else {
        filter
    };
    let mut sql = SqlBuilder::default();
    filter_sql(filter, &task_slas::SCHEMA, &mut sql)?;
    Ok(sql)
}

/// Records a new PENDING recomputation in `conn`'s transaction and returns
/// it; the worker picks it up. `filter` over `TaskSla` fields (empty: the
/// open ones; a bad one is INVALID_ARGUMENT naming `filter`); `trigger` says
/// what started it.
pub async fn create(
    conn: &mut AnyConnection,
    filter: &str,
    mode: pb::RecomputeMode,
    trigger: &str,
    requested_by: Principal,
    now: i64,
) -> Result<pb::Operation, ApiError> {
    filter_of(filter)?;
    let filter = match filter.trim() {
        "" => DEFAULT_FILTER,
        f => f,
    };
    let mode = match mode {
        pb::RecomputeMode::Unspecified => pb::RecomputeMode::LatestVersions,
        m => m,
    };
    let uid = uuid::Uuid::now_v7().to_string();
    let op = pb::Operation {
        name: format!("operations/{uid}"),
        kind: pb::OperationKind::Recompute as i32,
        state: OperationState::Pending as i32,
        filter: filter.to_owned(),
        mode: mode as i32,
        trigger: trigger.to_owned(),
        requested_by: Some(requested_by),
        create_time: Some(itsm_store::audit::timestamp(now)),
        ..pb::Operation::default()
    };
    rows::insert(conn, &uid, &op, now).await?;
    Ok(op)
}

/// Runs one step of the oldest operation still to run that no other worker
/// holds: starts it (selects and counts its task SLAs, RUNNING, the started
/// event), or recomputes its next batch of at most `batch` task SLAs, or
/// finishes it (SUCCEEDED when no task SLA is left, CANCELED when asked).
/// Returns false when there was nothing to do.
///
/// The public entry point of benchmarks and tests: loop on it until it
/// answers false to run every pending operation to its end.
pub async fn run_step(db: &Db, engine: &Engine, now: i64, batch: usize) -> Result<bool, ApiError> {
    let batch = batch.max(1);
    let mut tx = db.begin().await?;
    let skip_locked = db.backend() == Backend::Postgres;
    let Some(mut op) = rows::select_next_active(&mut tx, skip_locked).await? else {
        tx.commit().await.map_err(StoreError::from)?;
        return Ok(false);
    };
    if op.cancel_requested {
        finish(
            &mut tx,
            &mut op,
            OperationState::Canceled,
            String::new(),
            now,
        )
        .await?;
    } else if op.doc.state == OperationState::Pending as i32 {
        start(&mut tx, &mut op, now).await?;
    } else {
        let selected = match select_batch(&mut tx, &op, batch).await {
            Ok(selected) => selected,
            Err(error) if error.code() == itsm_platform::ErrorCode::InvalidArgument => {
                // The stored filter no longer reads (a field was removed).
                let error = format!("the filter no longer applies: {}", error.message());
                finish(&mut tx, &mut op, OperationState::Failed, error, now).await?;
                tx.commit().await.map_err(StoreError::from)?;
                return Ok(true);
            }
            Err(error) => return Err(error),
        };
        if selected.is_empty() {
            finish(
                &mut tx,
                &mut op,
                OperationState::Succeeded,
                String::new(),
                now,
            )
            .await?;
        } else {
            let latest = op.doc.mode != pb::RecomputeMode::KeepVersions as i32;
            match process(&mut tx, engine, &selected, latest, now, false).await {
                Ok(outcome) => advance(&mut tx, &mut op, outcome, now).await?,
                Err(error) => {
                    // One ticket failed: redo the batch ticket by ticket, each
                    // under a savepoint, and record the ones that fail.
                    tracing::warn!(%error, operation = %op.doc.name, "a recomputation batch failed: retrying it ticket by ticket");
                    tx.rollback().await.map_err(StoreError::from)?;
                    return retry_batch(db, engine, &op, &selected, latest, now).await;
                }
            }
        }
    }
    tx.commit().await.map_err(StoreError::from)?;
    Ok(true)
}

/// The batch again, one savepoint per ticket, when the fast pass failed.
async fn retry_batch(
    db: &Db,
    engine: &Engine,
    was: &Stored,
    selected: &[Selected],
    latest: bool,
    now: i64,
) -> Result<bool, ApiError> {
    let mut tx = db.begin().await?;
    let lock = db.backend().lock_suffix();
    let Some(mut op) = rows::select(&mut tx, &was.uid, lock).await? else {
        return Ok(true);
    };
    // Someone else moved it on meanwhile: their progress stands.
    if op.cursor != was.cursor || !op.is_active() {
        tx.commit().await.map_err(StoreError::from)?;
        return Ok(true);
    }
    let outcome = process(&mut tx, engine, selected, latest, now, true).await?;
    advance(&mut tx, &mut op, outcome, now).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(true)
}

/// A task SLA a batch selected.
#[derive(Debug, Clone)]
struct Selected {
    id: i64,
    name: String,
    ticket: String,
}

/// The next at most `batch` task SLAs of `op` after its cursor, by id.
async fn select_batch(
    conn: &mut AnyConnection,
    op: &Stored,
    batch: usize,
) -> Result<Vec<Selected>, ApiError> {
    let filter = filter_of(&op.doc.filter)?;
    let mut sql = SqlBuilder::new("SELECT id, uid, ticket FROM task_slas WHERE id > ");
    sql.push_bind(op.cursor);
    sql.push(" AND (");
    sql.append(&filter);
    sql.push(") ORDER BY id LIMIT ")
        .push_bind(i64::try_from(batch).unwrap_or(i64::MAX));
    let rows = itsm_store::db::query(&sql)
        .fetch_all(&mut *conn)
        .await
        .map_err(StoreError::from)?;
    rows.iter()
        .map(|row| {
            let uid: String = row.try_get("uid")?;
            Ok(Selected {
                id: row.try_get("id")?,
                name: format!("taskSlas/{uid}"),
                ticket: row.try_get("ticket")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .map_err(|e| StoreError::from(e).into())
}

/// What a batch did.
#[derive(Debug, Default)]
struct Outcome {
    /// The last id of the batch.
    cursor: i64,
    processed: i64,
    changed: i64,
    failures: Vec<pb::OperationFailure>,
}

/// Replays the tickets of `selected`, each once under its advisory lock
/// (taken in key order, so two workers never wait on each other in a
/// cycle). Fast: the whole batch at once (`Engine::replay_tickets`), the
/// first failure failing it. `careful`: ticket by ticket, each under a
/// savepoint, a failing one rolled back and recorded.
async fn process(
    conn: &mut AnyConnection,
    engine: &Engine,
    selected: &[Selected],
    latest: bool,
    now: i64,
    careful: bool,
) -> Result<Outcome, ApiError> {
    let mut tickets: BTreeMap<(i64, &str), Vec<&Selected>> = BTreeMap::new();
    for s in selected {
        let key = (engine::lock_key(&s.ticket), s.ticket.as_str());
        tickets.entry(key).or_default().push(s);
    }
    let mut outcome = Outcome {
        cursor: selected.iter().map(|s| s.id).max().unwrap_or_default(),
        processed: i64::try_from(selected.len()).unwrap_or(i64::MAX),
        ..Outcome::default()
    };
    // LATEST_VERSIONS moves the selected task SLAs only: the other clocks of
    // their tickets (closed ones, ones on another calendar) keep theirs.
    let selected_names: HashSet<String> = selected.iter().map(|s| s.name.clone()).collect();
    let moved = latest.then_some(&selected_names);
    if !careful {
        let names: Vec<String> = tickets.keys().map(|(_, t)| (*t).to_owned()).collect();
        let changed = engine.replay_tickets(conn, &names, now, moved).await?;
        for ((_, ticket), of_ticket) in &tickets {
            let Some(changed) = changed.get(*ticket) else {
                continue;
            };
            let hits = of_ticket.iter().filter(|s| changed.contains(&s.name));
            outcome.changed += i64::try_from(hits.count()).unwrap_or_default();
        }
        return Ok(outcome);
    }
    for ((_, ticket), of_ticket) in tickets {
        savepoint(conn, "SAVEPOINT sla_operation_ticket").await?;
        let one = [ticket.to_owned()];
        let replayed = engine.replay_tickets(conn, &one, now, moved).await;
        match replayed {
            Ok(mut changed) => {
                let changed = changed.remove(ticket).unwrap_or_default();
                savepoint(conn, "RELEASE SAVEPOINT sla_operation_ticket").await?;
                let hits = of_ticket.iter().filter(|s| changed.contains(&s.name));
                outcome.changed += i64::try_from(hits.count()).unwrap_or_default();
            }
            Err(error) => {
                savepoint(conn, "ROLLBACK TO SAVEPOINT sla_operation_ticket").await?;
                savepoint(conn, "RELEASE SAVEPOINT sla_operation_ticket").await?;
                tracing::warn!(%error, ticket, "recomputing a ticket's task SLAs failed");
                let reason = if error.code() == itsm_platform::ErrorCode::Internal {
                    // The cause was logged where it arose, just before the
                    // warning that names the ticket.
                    "internal error; the SLA service log has the cause, just before the \
                     warning \"recomputing a ticket's task SLAs failed\" naming this ticket"
                        .to_owned()
                } else {
                    error.message().to_owned()
                };
                for s in of_ticket {
                    outcome.failures.push(pb::OperationFailure {
                        task_sla: s.name.clone(),
                        error: format!("recomputing {ticket} failed: {reason}"),
                    });
                }
            }
        }
    }
    Ok(outcome)
}

async fn savepoint(conn: &mut AnyConnection, statement: &'static str) -> Result<(), ApiError> {
    sqlx::query(statement)
        .execute(&mut *conn)
        .await
        .map_err(StoreError::from)?;
    Ok(())
}

/// Counts a batch into the operation and moves its cursor.
async fn advance(
    conn: &mut AnyConnection,
    op: &mut Stored,
    outcome: Outcome,
    now: i64,
) -> Result<(), ApiError> {
    let doc = &mut op.doc;
    doc.processed_count += outcome.processed;
    doc.changed_count += outcome.changed;
    doc.failed_count += i64::try_from(outcome.failures.len()).unwrap_or_default();
    let room = MAX_FAILURES.saturating_sub(doc.failures.len());
    doc.failures.extend(outcome.failures.into_iter().take(room));
    // Task SLAs that came to match after the count make it pass 100.
    doc.total_count = doc.total_count.max(doc.processed_count);
    doc.progress_percent = progress(doc);
    op.cursor = outcome.cursor;
    rows::update(conn, op, now).await?;
    Ok(())
}

fn progress(doc: &pb::Operation) -> f64 {
    if doc.total_count == 0 {
        return 100.0;
    }
    #[allow(clippy::cast_precision_loss)]
    let percent = doc.processed_count as f64 / doc.total_count as f64 * 100.0;
    percent.min(100.0)
}

/// PENDING to RUNNING: counts what the filter selects now, emits the started event.
async fn start(conn: &mut AnyConnection, op: &mut Stored, now: i64) -> Result<(), ApiError> {
    let total = match filter_of(&op.doc.filter) {
        Ok(filter) => {
            let mut sql = SqlBuilder::new("SELECT COUNT(*) AS n FROM task_slas WHERE ");
            sql.append(&filter);
            let row = itsm_store::db::query(&sql)
                .fetch_one(&mut *conn)
                .await
                .map_err(StoreError::from)?;
            row.try_get::<i64, _>("n").map_err(StoreError::from)?
        }
        Err(error) => {
            let error = format!("the filter no longer applies: {}", error.message());
            return finish(conn, op, OperationState::Failed, error, now).await;
        }
    };
    op.doc.state = OperationState::Running as i32;
    op.doc.total_count = total;
    op.doc.start_time = Some(itsm_store::audit::timestamp(now));
    op.doc.progress_percent = if total == 0 { 100.0 } else { 0.0 };
    rows::update(conn, op, now).await?;
    emit(conn, &op.doc, STARTED, 1, now).await
}

/// Ends the operation in `state` and emits the finished event.
async fn finish(
    conn: &mut AnyConnection,
    op: &mut Stored,
    state: OperationState,
    error: String,
    now: i64,
) -> Result<(), ApiError> {
    let started = op.doc.start_time.is_some();
    op.doc.state = state as i32;
    op.doc.error = error;
    op.doc.end_time = Some(itsm_store::audit::timestamp(now));
    if state == OperationState::Succeeded {
        op.doc.progress_percent = 100.0;
    }
    rows::update(conn, op, now).await?;
    // The started event took sequence 1 when there was one.
    let sequence = if started { 2 } else { 1 };
    emit(conn, &op.doc, FINISHED, sequence, now).await
}

async fn emit(
    conn: &mut AnyConnection,
    op: &pb::Operation,
    event_type: &str,
    sequence: u64,
    now: i64,
) -> Result<(), ApiError> {
    let payload = pb::OperationEvent {
        operation: Some(op.clone()),
    };
    let actor = Actor::system("sla");
    outbox::insert(
        conn,
        &NewEvent {
            stream: STREAM,
            source: SOURCE,
            event_type,
            subject: &op.name,
            sequence,
            payload: call::payload("OperationEvent", &payload),
            actor: &actor,
            request_id: "",
            traceparent: "",
            tracestate: "",
            time: now,
        },
    )
    .await?;
    Ok(())
}

/// Cancels operation `uid` (CancelOperation): a PENDING one at once
/// (CANCELED, the finished event); a RUNNING one is flagged and the worker
/// stops it before its next batch. A finished one is FAILED_PRECONDITION.
/// Returns the operation as it is now.
pub async fn cancel(
    conn: &mut AnyConnection,
    backend: Backend,
    name: &str,
    uid: &str,
    now: i64,
) -> Result<pb::Operation, ApiError> {
    let mut op = rows::select(conn, uid, backend.lock_suffix())
        .await?
        .ok_or_else(|| ApiError::not_found(name))?;
    if !op.is_active() {
        let state = OperationState::try_from(op.doc.state)
            .unwrap_or_default()
            .as_str_name()
            .trim_start_matches("OPERATION_STATE_")
            .to_owned();
        return Err(ApiError::failed_precondition(
            "OPERATION_FINISHED",
            name,
            format!("{name} has finished ({state}); there is nothing to cancel"),
        ));
    }
    if op.doc.state == OperationState::Pending as i32 {
        finish(conn, &mut op, OperationState::Canceled, String::new(), now).await?;
    } else {
        rows::request_cancel(conn, uid, now).await?;
    }
    Ok(op.doc)
}

/// Whether a calendar edit changes how clocks count on it (zone, weekly
/// hours, holidays; not its name or description).
pub fn calendar_counts_differently(before: &pb::Calendar, after: &pb::Calendar) -> bool {
    before.time_zone != after.time_zone
        || before.weekly_spans != after.weekly_spans
        || before.holidays != after.holidays
}

/// Starts, in the edit's transaction, the recomputation of the open task
/// SLAs counting with `calendar` at its new version (LATEST_VERSIONS, so
/// they move to it); returns the operation's name for
/// `Calendar.recompute_operation`.
pub async fn after_calendar_change(
    conn: &mut AnyConnection,
    calendar: &pb::Calendar,
    requested_by: Principal,
    now: i64,
) -> Result<String, ApiError> {
    let trigger = format!("{} version {}", calendar.name, calendar.version);
    let filter = open_of_calendar(&calendar.name);
    let mode = pb::RecomputeMode::LatestVersions;
    let op = create(conn, &filter, mode, &trigger, requested_by, now).await?;
    Ok(op.name)
}

/// Starts, in the edit's transaction, the recomputation of the open task
/// SLAs of `definition` at its new version (UpdateSlaDefinition with
/// recompute_open_task_slas); returns the operation's name for
/// `SlaDefinition.recompute_operation`.
pub async fn after_definition_change(
    conn: &mut AnyConnection,
    definition: &pb::SlaDefinition,
    requested_by: Principal,
    now: i64,
) -> Result<String, ApiError> {
    let trigger = format!("{} version {}", definition.name, definition.version);
    let filter = open_of_definition(&definition.name);
    let mode = pb::RecomputeMode::LatestVersions;
    let op = create(conn, &filter, mode, &trigger, requested_by, now).await?;
    Ok(op.name)
}
