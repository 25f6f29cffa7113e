//! The API gateway: one address for every practice service.
//!
//! - gRPC is passed through by service path, with no per-method code: a new
//!   method in a proto needs no gateway change.
//! - REST/JSON for every method, from the HTTP mappings declared on the protos
//!   and the descriptor set, with an OpenAPI 3 document generated from the same.
//! - Authentication at the edge (the credentials go on to the backends, which
//!   check them again), rate limits per principal and method class, deadlines,
//!   circuit breakers, health and readiness that reflect the backends.
//!
//! Modules:
//! - [`backends`]: where each gRPC service is served, balanced, guarded by a
//!   circuit breaker; the one way a request reaches a backend.
//! - [`edge`]: authentication, rate limits and request ids at the door.
//! - [`rest`]: the REST/JSON mapping; [`openapi`]: the OpenAPI document;
//!   [`alertmanager`]: the Prometheus Alertmanager webhook.
//! - [`server`]: the listener serving all of it; [`telemetry`]: its spans
//!   and metrics.

pub mod alertmanager;
pub mod backends;
pub mod edge;
pub mod openapi;
pub mod rest;
pub mod server;
pub mod telemetry;
