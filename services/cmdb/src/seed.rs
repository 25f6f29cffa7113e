//! PLACEHOLDER: the default model (classes and relationship types), written
//! into an empty database on first use.

use itsm_platform::ApiError;
use itsm_store::Db;

/// Seeds the default model when it is missing. Idempotent, safe to race.
pub async fn ensure(_db: &Db) -> Result<(), ApiError> {
    Ok(())
}
