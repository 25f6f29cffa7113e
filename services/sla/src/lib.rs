//! Service level management: business-hours calendars and SLA clocks.
//!
//! The gRPC contract is `itsm.sla.v1.SlaService` in `proto/itsm/sla/v1`; who
//! may call what is `policy.toml`. It may use the libs; it knows other
//! practices only through `itsm-proto`.
//!
//! - [`calendar`]: business-hours calendars compiled for arithmetic; [`ics`]:
//!   iCalendar holiday import.
//! - [`clock`]: definition conditions and the replay engine; [`tickets`]: the
//!   fields of each ticket type the conditions may use.
//! - [`store`]: the tables (see the migration for the layout: resources keep
//!   their protobuf message whole, with copies of the columns queries need).
//! - [`api`]: the handlers; [`reports`]: compliance buckets and tallies,
//!   and where a breached clock's time went.
//! - [`engine`]: ticket events applied to the clocks (the bus consumer) and
//!   the durable timers; [`jobs`]: the timer worker loop; [`zones`]: where a
//!   clock's time zone comes from (the CMDB for a CI's location).
//! - [`operations`]: long-running recomputations of many task SLAs (after
//!   a calendar or definition edit, or RecomputeTaskSlas) and their worker.

pub mod api;
pub mod calendar;
pub mod clock;
pub mod engine;
pub mod gauges;
pub mod ics;
pub mod jobs;
pub mod operations;
pub mod reports;
pub mod store;
pub mod tickets;
pub mod zones;

use itsm_proto::itsm::sla::v1::sla_service_server::SlaServiceServer;
use itsm_store::Db;
use sqlx::migrate::Migrator;

pub use api::SlaApi;

static POSTGRES: Migrator = sqlx::migrate!("./migrations/postgres");
static SQLITE: Migrator = sqlx::migrate!("./migrations/sqlite");

/// This practice's own schema, applied after the platform tables.
pub const MIGRATIONS: Option<itsm_store::migrate::Migrations> =
    Some(itsm_store::migrate::Migrations {
        postgres: &POSTGRES,
        sqlite: &SQLITE,
    });

/// Who may call which method of this service (see `policy.toml` beside
/// `Cargo.toml`; format in `itsm_auth::policy`). Default deny.
pub const POLICY: &str = include_str!("../policy.toml");

/// The tonic service to add to a server, over a database migrated with
/// [`MIGRATIONS`].
pub fn service(db: Db, engine: engine::Engine) -> SlaServiceServer<SlaApi> {
    SlaServiceServer::new(SlaApi::with_engine(db, engine))
}
