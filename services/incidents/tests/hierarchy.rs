//! Incident tasks, parent/child links with their propagation, and major
//! incidents, over a real socket behind the real auth guard and policy
//! table, on PostgreSQL and SQLite (the harness of `tests/api.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

// Shared with tests/api.rs, which uses all of it; this binary does not.
#[allow(dead_code)]
#[path = "api/support.rs"]
mod support;

#[path = "hierarchy/calls.rs"]
mod calls;
#[path = "hierarchy/major.rs"]
mod major;
#[path = "hierarchy/parents.rs"]
mod parents;
#[path = "hierarchy/tasks.rs"]
mod tasks;
