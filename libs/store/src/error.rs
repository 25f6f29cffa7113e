//! What can go wrong in storage, and what the caller is told.

use itsm_platform::{ApiError, ErrorCode};

use crate::db::Backend;

/// A storage failure. Converts into an [`ApiError`] in one place.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database URL must start with postgres://, postgresql:// or sqlite:")]
    UnsupportedUrl,
    #[error("cannot connect to {backend:?}: {source}")]
    Connect {
        backend: Backend,
        source: sqlx::Error,
    },
    #[error("migrations failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0} was changed since it was read")]
    StaleEtag(String),
    #[error("malformed etag {0:?}")]
    BadEtag(String),
    #[error("request_id {request_id:?} was already used for a different {method} request")]
    RequestIdReused { method: String, request_id: String },
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl StoreError {
    /// True when a unique constraint refused the write: the resource exists already.
    pub fn is_unique_violation(&self) -> bool {
        match self {
            Self::Database(sqlx::Error::Database(db)) => {
                db.kind() == sqlx::error::ErrorKind::UniqueViolation
            }
            _ => false,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound(resource) => ApiError::not_found(resource),
            StoreError::StaleEtag(resource) => ApiError::stale_etag(resource),
            StoreError::BadEtag(etag) => ApiError::invalid_field(
                "etag",
                format!("{etag:?} is not an etag this service issued; read the resource again"),
            ),
            StoreError::RequestIdReused { .. } => {
                ApiError::new(ErrorCode::AlreadyExists, error.to_string())
            }
            StoreError::Database(sqlx::Error::PoolTimedOut) => ApiError::new(
                ErrorCode::Unavailable,
                "the database is overloaded or unreachable; retry with backoff",
            ),
            StoreError::Database(sqlx::Error::Io(_)) | StoreError::Connect { .. } => {
                tracing::error!(%error, "database unreachable");
                ApiError::new(
                    ErrorCode::Unavailable,
                    "the database is unreachable; retry with backoff",
                )
            }
            other => ApiError::internal(other),
        }
    }
}
