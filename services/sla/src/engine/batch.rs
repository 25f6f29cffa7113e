//! Replays of many tickets in one transaction (recomputation operations):
//! what `Engine::replay_ticket` reads per ticket (the history, the task SLAs
//! and their timelines) is read for the whole batch in a few statements, and
//! the definitions and calendar versions once; each ticket is then replayed
//! and saved as `replay_ticket` would.

use std::collections::{HashMap, HashSet};

use itsm_platform::ApiError;
use itsm_proto::itsm::events::v1::Event;
use itsm_store::{SqlBuilder, StoreError};
use sqlx::{AnyConnection, Row};

use super::{Engine, Moved, RowUpdate, Shared, Stored, TicketState, Until, lock_key};
use crate::store::decode;
use crate::tickets;

/// Values per `IN (...)` list: well under the bind limits of both backends.
const CHUNK: usize = 500;

impl Engine {
    /// Replays the clocks of `tickets` at `now` in `conn`'s transaction,
    /// each as `replay_ticket(conn, ticket, now, Until::Now, .., false)`
    /// would, and returns the names of the task SLAs whose values changed,
    /// per ticket. The task SLAs named in `moved` move to the current
    /// definition and calendar versions; every other clock of these tickets
    /// (a closed one, one on another calendar) replays on the versions it
    /// recorded. Every ticket's advisory lock is taken
    /// first (waiting for busy ones), in key order, so ticket events and
    /// timers on them wait for this transaction and two batches never
    /// deadlock each other. The first error fails the batch (and leaves the
    /// transaction to roll back).
    pub async fn replay_tickets(
        &self,
        conn: &mut AnyConnection,
        tickets: &[String],
        now: i64,
        moved: Option<&HashSet<String>>,
    ) -> Result<HashMap<String, Vec<String>>, ApiError> {
        let moved = moved.map_or(Moved::None, Moved::Only);
        lock_all(conn, tickets).await?;
        let mut states = load(conn, tickets).await?;
        let mut shared = Shared {
            deferred: Some(Vec::new()),
            ..Shared::default()
        };
        let mut changed = HashMap::with_capacity(tickets.len());
        for ticket in tickets {
            let state = states.remove(ticket.as_str()).unwrap_or_default();
            let names = self
                .replay_state(
                    conn,
                    ticket,
                    state,
                    &mut shared,
                    now,
                    Until::Now,
                    moved,
                    false,
                )
                .await?;
            changed.insert(ticket.clone(), names);
        }
        flush(conn, shared.deferred.take().unwrap_or_default()).await?;
        Ok(changed)
    }
}

/// Takes the advisory lock of every ticket, in key order (PostgreSQL; SQLite
/// writers are serialized already).
async fn lock_all(conn: &mut AnyConnection, tickets: &[String]) -> Result<(), ApiError> {
    if conn.backend_name() != "PostgreSQL" {
        return Ok(());
    }
    let mut keys: Vec<i64> = tickets.iter().map(|t| lock_key(t)).collect();
    keys.sort_unstable();
    keys.dedup();
    for chunk in keys.chunks(CHUNK) {
        // VALUES are scanned in the order written: the locks are taken in key order.
        let mut sql = SqlBuilder::new("SELECT pg_advisory_xact_lock(k) FROM (VALUES ");
        for (i, key) in chunk.iter().enumerate() {
            sql.push(if i == 0 { "(" } else { ", (" });
            sql.push_bind(*key).push(")");
        }
        sql.push(") AS keys (k)");
        itsm_store::db::query(&sql)
            .execute(&mut *conn)
            .await
            .map_err(StoreError::from)?;
    }
    Ok(())
}

/// `head` followed by ` IN (v1, v2, ...)` over `values`, then `tail`.
fn in_list<V: Clone + Into<itsm_store::SqlValue>>(
    head: &str,
    values: &[V],
    tail: &str,
) -> SqlBuilder {
    let mut sql = SqlBuilder::new(head);
    sql.push(" IN ").push_bind_list(values.iter().cloned());
    sql.push(tail);
    sql
}

/// What the replays of `tickets` read, by ticket.
async fn load(
    conn: &mut AnyConnection,
    tickets: &[String],
) -> Result<HashMap<String, TicketState>, ApiError> {
    let mut states: HashMap<String, TicketState> = HashMap::with_capacity(tickets.len());
    for chunk in tickets.chunks(CHUNK) {
        let sql = in_list(
            "SELECT ticket, received_at, doc FROM ticket_events WHERE ticket",
            chunk,
            " ORDER BY ticket, sequence",
        );
        let rows = itsm_store::db::query(&sql)
            .fetch_all(&mut *conn)
            .await
            .map_err(StoreError::from)?;
        for row in rows {
            let ticket: String = row.try_get("ticket").map_err(StoreError::from)?;
            let received: i64 = row.try_get("received_at").map_err(StoreError::from)?;
            let doc: Vec<u8> = row.try_get("doc").map_err(StoreError::from)?;
            let event: Event = decode("ticket_events", &doc)?;
            let state = states.entry(ticket).or_default();
            state.oldest_received =
                Some(state.oldest_received.map_or(received, |r| r.min(received)));
            if let Some(e) = tickets::from_event(&event) {
                state.events.push(e);
            }
        }

        let sql = in_list(
            "SELECT id, ticket, version, doc FROM task_slas WHERE ticket",
            chunk,
            " ORDER BY id",
        );
        let rows = itsm_store::db::query(&sql)
            .fetch_all(&mut *conn)
            .await
            .map_err(StoreError::from)?;
        let mut ids = Vec::with_capacity(rows.len());
        let mut owner: HashMap<i64, String> = HashMap::with_capacity(rows.len());
        for row in rows {
            let id: i64 = row.try_get("id").map_err(StoreError::from)?;
            let ticket: String = row.try_get("ticket").map_err(StoreError::from)?;
            let version: i64 = row.try_get("version").map_err(StoreError::from)?;
            let doc: Vec<u8> = row.try_get("doc").map_err(StoreError::from)?;
            ids.push(id);
            owner.insert(id, ticket.clone());
            states.entry(ticket).or_default().stored.push(Stored {
                id,
                version,
                doc: decode("task_slas", &doc)?,
                timeline: Vec::new(),
            });
        }

        let mut timelines: HashMap<i64, Vec<_>> = HashMap::with_capacity(ids.len());
        for ids in ids.chunks(CHUNK) {
            let sql = in_list(
                "SELECT task_sla_id, doc FROM task_sla_timeline WHERE task_sla_id",
                ids,
                " ORDER BY task_sla_id, seq",
            );
            let rows = itsm_store::db::query(&sql)
                .fetch_all(&mut *conn)
                .await
                .map_err(StoreError::from)?;
            for row in rows {
                let id: i64 = row.try_get("task_sla_id").map_err(StoreError::from)?;
                let doc: Vec<u8> = row.try_get("doc").map_err(StoreError::from)?;
                timelines
                    .entry(id)
                    .or_default()
                    .push(decode("task_sla_timeline", &doc)?);
            }
        }
        for (id, timeline) in timelines {
            let Some(ticket) = owner.get(&id) else {
                continue;
            };
            if let Some(stored) = states
                .get_mut(ticket)
                .and_then(|s| s.stored.iter_mut().find(|s| s.id == id))
            {
                stored.timeline = timeline;
            }
        }
    }
    Ok(states)
}

/// The columns `RowUpdate::values` sets, in order (the id first).
const UPDATED: &[&str] = &[
    "id",
    "sla_definition_version",
    "calendar_id",
    "calendar_version",
    "state",
    "breached",
    "next_deadline_at",
    "breach_at",
    "stop_at",
    "start_at",
    "assignment_group",
    "priority",
    "service",
    "ticket_sequence",
    "updated_at",
    "doc",
    "version",
    "elapsed",
    "target",
    "breached_at",
];

/// A timeline entry to write: its time and its encoded document.
type TimelineRow = (i64, Vec<u8>);

/// Rows per multi-row statement: 20 values each for the update, 4 per
/// timeline entry.
const WRITE_ROWS: usize = 200;

/// Writes the collected changes of existing task SLAs: their rows in one
/// `UPDATE ... FROM (VALUES ...)` per 200, their timelines replaced (one
/// DELETE and multi-row INSERTs per 200 task SLAs).
async fn flush(conn: &mut AnyConnection, updates: Vec<RowUpdate>) -> Result<(), ApiError> {
    for chunk in updates.chunks(WRITE_ROWS) {
        let mut sql = SqlBuilder::new("WITH v (");
        sql.push(&UPDATED.join(", "));
        sql.push(") AS (VALUES ");
        for (i, update) in chunk.iter().enumerate() {
            sql.push(if i == 0 { "(" } else { ", (" });
            for (j, value) in update.values.iter().enumerate() {
                if j > 0 {
                    sql.push(", ");
                }
                sql.push_bind(value.clone());
            }
            sql.push(")");
        }
        sql.push(") UPDATE task_slas SET ");
        for (j, column) in UPDATED.iter().skip(1).enumerate() {
            if j > 0 {
                sql.push(", ");
            }
            sql.push(column).push(" = v.").push(column);
        }
        sql.push(" FROM v WHERE task_slas.id = v.id");
        itsm_store::db::query(&sql)
            .execute(&mut *conn)
            .await
            .map_err(StoreError::from)?;

        let ids: Vec<i64> = chunk
            .iter()
            .filter_map(|u| match u.values.first() {
                Some(itsm_store::SqlValue::Int(id)) => Some(*id),
                _ => None,
            })
            .collect();
        let sql = in_list("DELETE FROM task_sla_timeline WHERE task_sla_id", &ids, "");
        itsm_store::db::query(&sql)
            .execute(&mut *conn)
            .await
            .map_err(StoreError::from)?;
        // (task SLA id, seq, (time, doc)) of every entry.
        let entries: Vec<(i64, i64, &TimelineRow)> = chunk
            .iter()
            .zip(&ids)
            .flat_map(|(u, id)| {
                (1_i64..)
                    .zip(&u.timeline)
                    .map(move |(seq, e)| (*id, seq, e))
            })
            .collect();
        for rows in entries.chunks(WRITE_ROWS) {
            let mut sql = SqlBuilder::new(
                "INSERT INTO task_sla_timeline (task_sla_id, seq, time, doc) VALUES ",
            );
            for (i, (id, seq, (time, doc))) in rows.iter().enumerate() {
                sql.push(if i == 0 { "(" } else { ", (" });
                sql.push_bind(*id).push(", ").push_bind(*seq).push(", ");
                sql.push_bind(*time)
                    .push(", ")
                    .push_bind(doc.clone())
                    .push(")");
            }
            itsm_store::db::query(&sql)
                .execute(&mut *conn)
                .await
                .map_err(StoreError::from)?;
        }
    }
    Ok(())
}
