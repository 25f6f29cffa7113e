//! SQL for incidents, one text for PostgreSQL and SQLite (`$N` placeholders,
//! integers, text and bytes only). Functions take a connection; the use case
//! in `api` owns the transaction.
//!
//! Absent times are stored as 0, absent enums as 0, labels as JSON text;
//! `version` is the etag. See `migrations/` for the tables.
//!
//! - [`incidents`]: the incident row, with its watchers and links.
//! - [`list`]: `ListIncidents`' filterable and sortable fields, and its pages.
//! - [`journal`]: work notes and comments.
//! - [`config`]: the priority matrix and the settings.

pub mod alerts;
pub mod automation;
pub mod config;
pub mod hierarchy;
pub mod incidents;
pub mod journal;
pub mod list;

use itsm_store::audit::Actor;
use sqlx::Row;
use sqlx::any::AnyRow;

pub use incidents::StoredIncident;

/// The actor stored in `<prefix>_subject`, `<prefix>_name`, `<prefix>_kind`.
fn actor(row: &AnyRow, prefix: &str) -> Result<Actor, sqlx::Error> {
    Ok(Actor {
        subject: row.try_get(format!("{prefix}_subject").as_str())?,
        display_name: row.try_get(format!("{prefix}_name").as_str())?,
        kind: row.try_get(format!("{prefix}_kind").as_str())?,
    })
}

/// A stored time: 0 means never.
fn time(row: &AnyRow, column: &str) -> Result<Option<i64>, sqlx::Error> {
    let micros: i64 = row.try_get(column)?;
    Ok((micros != 0).then_some(micros))
}
