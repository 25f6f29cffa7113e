//! Automation of the incident practice over a real socket, behind the real
//! auth guard and policy table, on PostgreSQL and SQLite: assignment rules
//! (their CRUD, their order, round-robin and least-loaded picks, the CMDB and
//! directory degrading instead of failing intake), the auto-close job, and
//! the KPIs on a crafted data set.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

// The API tests' harness; this binary uses part of it.
#[allow(dead_code)]
#[path = "api/support.rs"]
mod support;

#[path = "automation/helpers.rs"]
mod helpers;

#[path = "automation/auto_close.rs"]
mod auto_close;
#[path = "automation/kpis.rs"]
mod kpis;
#[path = "automation/routing.rs"]
mod routing;
#[path = "automation/rules.rs"]
mod rules;
