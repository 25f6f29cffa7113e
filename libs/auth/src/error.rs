//! Why a call was refused. Messages say which check failed, never any key
//! material or the credential itself.

use itsm_platform::{ApiError, ErrorCode};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Missing, malformed, expired, wrongly signed, wrong issuer or audience,
    /// unknown or revoked key.
    #[error("{0}")]
    Unauthenticated(String),
    /// Authenticated, without the permission the method needs.
    #[error("the caller lacks the permission {permission} needed for {method}")]
    PermissionDenied { permission: String, method: String },
    /// The credential could not be checked now (JWKS or identity service down).
    #[error("{0}")]
    Unavailable(String),
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::Unauthenticated(reason) => ApiError::new(ErrorCode::Unauthenticated, reason),
            AuthError::PermissionDenied { .. } => {
                ApiError::new(ErrorCode::PermissionDenied, error.to_string())
            }
            AuthError::Unavailable(reason) => ApiError::new(ErrorCode::Unavailable, reason),
        }
    }
}

impl From<AuthError> for tonic::Status {
    fn from(error: AuthError) -> Self {
        ApiError::from(error).into()
    }
}
