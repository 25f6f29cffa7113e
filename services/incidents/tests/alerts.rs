//! Alert intake over a real socket, behind the real auth guard and policy
//! table, on PostgreSQL and SQLite: alerts open, deduplicate, resolve and
//! reopen incidents with the right counts and events; a flapping group keeps
//! one incident; invalid alerts are rejected alone; a storm of identical
//! alerts from concurrent callers opens exactly one incident; alert groups
//! are read and listed; Alertmanager's webhook maps onto alerts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

// The API tests' harness; this binary uses part of it.
#[allow(dead_code)]
#[path = "api/support.rs"]
mod support;

#[path = "alerts/helpers.rs"]
mod helpers;

#[path = "alerts/alertmanager.rs"]
mod alertmanager;
#[path = "alerts/flapping.rs"]
mod flapping;
#[path = "alerts/intake.rs"]
mod intake;
#[path = "alerts/lists.rs"]
mod lists;
#[path = "alerts/storm.rs"]
mod storm;
