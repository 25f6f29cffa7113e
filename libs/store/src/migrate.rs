//! Schema migrations: the platform tables every service has (versions below
//! 1000, in this crate's `migrations/`) merged with the service's own
//! (versions 1000 and up), embedded in the binary.
//!
//! Running them is idempotent and safe from several processes at once: on
//! PostgreSQL sqlx holds an advisory lock for the duration, so a second
//! migrator waits and then finds nothing to do.

use std::borrow::Cow;

use sqlx::migrate::{Migration, Migrator};

use crate::db::{Backend, Db};
use crate::error::StoreError;

static PLATFORM_POSTGRES: Migrator = sqlx::migrate!("./migrations/postgres");
static PLATFORM_SQLITE: Migrator = sqlx::migrate!("./migrations/sqlite");

/// First version a service's own migrations may use.
pub const FIRST_SERVICE_VERSION: i64 = 1000;

/// A service's migrations for each backend (`sqlx::migrate!("./migrations/postgres")` ...).
#[derive(Debug, Clone, Copy)]
pub struct Migrations {
    pub postgres: &'static Migrator,
    pub sqlite: &'static Migrator,
}

impl Db {
    /// Brings the schema up to date: platform tables, then the service's
    /// (`None` for a service with no tables of its own yet).
    /// Fails without applying anything when a service migration uses a version
    /// below [`FIRST_SERVICE_VERSION`].
    pub async fn migrate(&self, service: Option<&Migrations>) -> Result<(), StoreError> {
        let (platform, own) = match self.backend() {
            Backend::Postgres => (&PLATFORM_POSTGRES, service.map(|m| m.postgres)),
            Backend::Sqlite => (&PLATFORM_SQLITE, service.map(|m| m.sqlite)),
        };
        let mut migrations: Vec<Migration> = platform.migrations.to_vec();
        if let Some(own) = own {
            if let Some(low) = own
                .migrations
                .iter()
                .find(|m| m.version < FIRST_SERVICE_VERSION)
            {
                return Err(StoreError::Migrate(
                    sqlx::migrate::MigrateError::VersionMismatch(low.version),
                ));
            }
            migrations.extend(own.migrations.iter().cloned());
        }
        let migrator = Migrator {
            migrations: Cow::Owned(migrations),
            ..Migrator::DEFAULT
        };
        migrator.run(self.pool()).await?;
        Ok(())
    }
}
