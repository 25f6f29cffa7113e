//! Tests of the bus and the cache against real Redis and in memory.
//!
//! Redis is `ITSM_TEST_REDIS_URL` or `redis://127.0.0.1:6379`; each test works
//! under a key prefix of its own, so tests run in parallel, and removes its
//! keys when done (even when it fails). The outage tests start redis-server
//! processes of their own on spare ports.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod bus_suite;
mod cache_suite;
mod delivery;
mod outage;
mod support;
mod throughput;
mod traces;
