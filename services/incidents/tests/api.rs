//! The incidents service over a real socket, behind the real auth guard and
//! policy table, on PostgreSQL and SQLite: creation (idempotent, gap-free
//! numbers), the lifecycle table, updates with etags, lists and the
//! requester's scope, the journal, watchers and links, configuration, and
//! every change leaving its audit entry and event.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "api/support.rs"]
mod support;

#[path = "api/assignment.rs"]
mod assignment;
#[path = "api/config.rs"]
mod config;
#[path = "api/create.rs"]
mod create;
#[path = "api/journal.rs"]
mod journal;
#[path = "api/lifecycle.rs"]
mod lifecycle;
#[path = "api/lists.rs"]
mod lists;
#[path = "api/related.rs"]
mod related;
#[path = "api/update.rs"]
mod update;
