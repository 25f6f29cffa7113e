//! What every ITSM service runs on: layered configuration, logging, the gRPC
//! server (health, reflection, request ids, timeouts, graceful shutdown) and
//! the error model every API speaks.
//!
//! It may use the generated contracts (`itsm-proto`) but knows no practice:
//! services depend on it, never the reverse.

pub mod client;
pub mod config;
mod deadline;
pub mod error;
pub mod metrics;
pub mod server;
pub mod shutdown;
pub mod telemetry;

pub use config::{Config, ConfigError, Mode};
pub use error::{ApiError, ErrorCode, FieldViolation, Violations};
pub use server::{BoundServer, Drain, GrpcServer, ServerError};
