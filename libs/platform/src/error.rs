//! The error model: one small code enum that maps to gRPC codes and HTTP
//! statuses, and [`ApiError`], which carries `google.rpc` details (field
//! violations, precondition failures) to the caller.
//!
//! Each crate keeps its own error enum and converts it into an [`ApiError`] in
//! one place; this module is where that becomes a `tonic::Status`.

use std::fmt;
use std::time::Duration;

use tonic_types::{ErrorDetails, StatusExt};

/// The outcomes an API reports. Deliberately fewer than gRPC's codes: each one
/// tells the caller something different to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The request is wrong and will stay wrong: fix the named fields.
    InvalidArgument,
    /// The named resource does not exist (or the caller may not know it does).
    NotFound,
    /// A resource with that identity exists already.
    AlreadyExists,
    /// The request is valid but the resource is not in a state that allows it.
    FailedPrecondition,
    /// A concurrent change won (stale etag): read again and retry.
    Aborted,
    /// No valid credentials.
    Unauthenticated,
    /// Valid credentials without the needed permission.
    PermissionDenied,
    /// A quota or rate limit was hit: retry later.
    ResourceExhausted,
    /// A dependency is down: retry with backoff.
    Unavailable,
    /// The deadline passed before the work completed.
    DeadlineExceeded,
    /// The method is not built (yet).
    Unimplemented,
    /// A bug or an unexpected failure; details are in the service log only.
    Internal,
}

impl ErrorCode {
    /// The gRPC status code.
    pub fn grpc(self) -> tonic::Code {
        match self {
            Self::InvalidArgument => tonic::Code::InvalidArgument,
            Self::NotFound => tonic::Code::NotFound,
            Self::AlreadyExists => tonic::Code::AlreadyExists,
            Self::FailedPrecondition => tonic::Code::FailedPrecondition,
            Self::Aborted => tonic::Code::Aborted,
            Self::Unauthenticated => tonic::Code::Unauthenticated,
            Self::PermissionDenied => tonic::Code::PermissionDenied,
            Self::ResourceExhausted => tonic::Code::ResourceExhausted,
            Self::Unavailable => tonic::Code::Unavailable,
            Self::DeadlineExceeded => tonic::Code::DeadlineExceeded,
            Self::Unimplemented => tonic::Code::Unimplemented,
            Self::Internal => tonic::Code::Internal,
        }
    }

    /// The HTTP status the REST mapping answers with (as google.rpc.Code documents it).
    pub fn http_status(self) -> http::StatusCode {
        use http::StatusCode as S;
        match self {
            Self::InvalidArgument | Self::FailedPrecondition => S::BAD_REQUEST,
            Self::Unauthenticated => S::UNAUTHORIZED,
            Self::PermissionDenied => S::FORBIDDEN,
            Self::NotFound => S::NOT_FOUND,
            Self::AlreadyExists | Self::Aborted => S::CONFLICT,
            Self::ResourceExhausted => S::TOO_MANY_REQUESTS,
            Self::Internal => S::INTERNAL_SERVER_ERROR,
            Self::Unimplemented => S::NOT_IMPLEMENTED,
            Self::Unavailable => S::SERVICE_UNAVAILABLE,
            Self::DeadlineExceeded => S::GATEWAY_TIMEOUT,
        }
    }

    /// The code for a gRPC status received from another service. Codes we do
    /// not use ourselves fold into the nearest one.
    pub fn from_grpc(code: tonic::Code) -> Self {
        use tonic::Code as C;
        match code {
            C::InvalidArgument | C::OutOfRange => Self::InvalidArgument,
            C::NotFound => Self::NotFound,
            C::AlreadyExists => Self::AlreadyExists,
            C::FailedPrecondition => Self::FailedPrecondition,
            C::Aborted => Self::Aborted,
            C::Unauthenticated => Self::Unauthenticated,
            C::PermissionDenied => Self::PermissionDenied,
            C::ResourceExhausted => Self::ResourceExhausted,
            C::Unavailable | C::Cancelled => Self::Unavailable,
            C::DeadlineExceeded => Self::DeadlineExceeded,
            C::Unimplemented => Self::Unimplemented,
            C::Ok | C::Unknown | C::Internal | C::DataLoss => Self::Internal,
        }
    }

    /// The canonical name, as in gRPC ("INVALID_ARGUMENT").
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidArgument => "INVALID_ARGUMENT",
            Self::NotFound => "NOT_FOUND",
            Self::AlreadyExists => "ALREADY_EXISTS",
            Self::FailedPrecondition => "FAILED_PRECONDITION",
            Self::Aborted => "ABORTED",
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::PermissionDenied => "PERMISSION_DENIED",
            Self::ResourceExhausted => "RESOURCE_EXHAUSTED",
            Self::Unavailable => "UNAVAILABLE",
            Self::DeadlineExceeded => "DEADLINE_EXCEEDED",
            Self::Unimplemented => "UNIMPLEMENTED",
            Self::Internal => "INTERNAL",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One bad field of a request: its path (e.g. `incident.title`) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    pub field: String,
    pub description: String,
}

/// One unmet precondition, as google.rpc.PreconditionFailure describes it:
/// a kind (e.g. `STATE`, `ETAG`), the subject it is about, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreconditionViolation {
    pub kind: String,
    pub subject: String,
    pub description: String,
}

/// An error as the caller sees it: code, message and machine-readable details.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    code: ErrorCode,
    message: String,
    field_violations: Vec<FieldViolation>,
    precondition_violations: Vec<PreconditionViolation>,
    retry_after: Option<Duration>,
}

impl ApiError {
    /// An error with a code and a message for the caller.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            field_violations: Vec::new(),
            precondition_violations: Vec::new(),
            retry_after: None,
        }
    }

    /// INVALID_ARGUMENT for one field.
    pub fn invalid_field(field: impl Into<String>, description: impl Into<String>) -> Self {
        let violations = vec![FieldViolation {
            field: field.into(),
            description: description.into(),
        }];
        Self::invalid_fields(violations)
    }

    /// INVALID_ARGUMENT naming every bad field. The message lists them too, so
    /// a client that ignores details still sees which fields to fix.
    pub fn invalid_fields(violations: Vec<FieldViolation>) -> Self {
        let message = violations
            .iter()
            .map(|v| format!("{}: {}", v.field, v.description))
            .collect::<Vec<_>>()
            .join("; ");
        Self {
            field_violations: violations,
            ..Self::new(ErrorCode::InvalidArgument, message)
        }
    }

    /// NOT_FOUND for a resource name.
    pub fn not_found(resource: impl fmt::Display) -> Self {
        Self::new(ErrorCode::NotFound, format!("{resource} not found"))
    }

    /// FAILED_PRECONDITION with one precondition violation.
    pub fn failed_precondition(
        kind: impl Into<String>,
        subject: impl Into<String>,
        description: impl Into<String>,
    ) -> Self {
        let description = description.into();
        Self {
            precondition_violations: vec![PreconditionViolation {
                kind: kind.into(),
                subject: subject.into(),
                description: description.clone(),
            }],
            ..Self::new(ErrorCode::FailedPrecondition, description)
        }
    }

    /// ABORTED because the etag sent is not the resource's current one.
    pub fn stale_etag(resource: impl fmt::Display) -> Self {
        Self::new(
            ErrorCode::Aborted,
            format!(
                "{resource} was changed by someone else since it was read: read it again and retry"
            ),
        )
    }

    /// PERMISSION_DENIED naming the permission that is missing.
    pub fn permission_denied(permission: impl fmt::Display) -> Self {
        Self::new(
            ErrorCode::PermissionDenied,
            format!("the caller lacks the permission {permission}"),
        )
    }

    /// INTERNAL. The cause is logged here with its detail and never sent to
    /// the caller, who gets a generic message to quote to the on-call engineer.
    pub fn internal(cause: impl fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            ErrorCode::Internal,
            "internal error; the service log has the details under this request's id",
        )
    }

    /// Asks the caller to wait this long before retrying (RESOURCE_EXHAUSTED, UNAVAILABLE).
    pub fn with_retry_after(mut self, delay: Duration) -> Self {
        self.retry_after = Some(delay);
        self
    }

    pub fn code(&self) -> ErrorCode {
        self.code
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn field_violations(&self) -> &[FieldViolation] {
        &self.field_violations
    }

    pub fn precondition_violations(&self) -> &[PreconditionViolation] {
        &self.precondition_violations
    }

    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// Reads an error back from a status another service returned, details included.
    pub fn from_status(status: &tonic::Status) -> Self {
        let details = status.get_error_details();
        let mut error = Self::new(ErrorCode::from_grpc(status.code()), status.message());
        if let Some(bad_request) = details.bad_request() {
            error.field_violations = bad_request
                .field_violations
                .iter()
                .map(|v| FieldViolation {
                    field: v.field.clone(),
                    description: v.description.clone(),
                })
                .collect();
        }
        if let Some(failure) = details.precondition_failure() {
            error.precondition_violations = failure
                .violations
                .iter()
                .map(|v| PreconditionViolation {
                    kind: v.r#type.clone(),
                    subject: v.subject.clone(),
                    description: v.description.clone(),
                })
                .collect();
        }
        error.retry_after = details
            .retry_info()
            .and_then(|info| info.retry_delay)
            .filter(|delay| !delay.is_zero());
        error
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

impl From<ApiError> for tonic::Status {
    fn from(error: ApiError) -> Self {
        let mut details = ErrorDetails::new();
        for v in &error.field_violations {
            details.add_bad_request_violation(v.field.clone(), v.description.clone());
        }
        for v in &error.precondition_violations {
            details.add_precondition_failure_violation(
                v.kind.clone(),
                v.subject.clone(),
                v.description.clone(),
            );
        }
        if let Some(delay) = error.retry_after {
            details.set_retry_info(Some(delay));
        }
        let has_details = !error.field_violations.is_empty()
            || !error.precondition_violations.is_empty()
            || error.retry_after.is_some();
        if !has_details {
            tonic::Status::new(error.code.grpc(), error.message)
        } else {
            tonic::Status::with_error_details(error.code.grpc(), error.message, details)
        }
    }
}

/// Collects every bad field of a request so the caller learns all of them at
/// once, not one per round trip.
#[derive(Debug, Default)]
pub struct Violations(Vec<FieldViolation>);

impl Violations {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a violation of `field`.
    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push(FieldViolation {
            field: field.into(),
            description: description.into(),
        });
    }

    /// Records a violation of `field` unless `ok`.
    pub fn check(&mut self, ok: bool, field: impl Into<String>, description: impl Into<String>) {
        if !ok {
            self.add(field, description);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(())` when nothing was recorded, INVALID_ARGUMENT naming every field otherwise.
    pub fn into_result(self) -> Result<(), ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::invalid_fields(self.0))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [ErrorCode; 12] = [
        ErrorCode::InvalidArgument,
        ErrorCode::NotFound,
        ErrorCode::AlreadyExists,
        ErrorCode::FailedPrecondition,
        ErrorCode::Aborted,
        ErrorCode::Unauthenticated,
        ErrorCode::PermissionDenied,
        ErrorCode::ResourceExhausted,
        ErrorCode::Unavailable,
        ErrorCode::DeadlineExceeded,
        ErrorCode::Unimplemented,
        ErrorCode::Internal,
    ];

    #[test]
    fn every_code_round_trips_through_grpc() {
        for code in ALL {
            assert_eq!(ErrorCode::from_grpc(code.grpc()), code, "{code}");
        }
    }

    #[test]
    fn http_statuses_follow_google_rpc_code_mapping() {
        let expected = [
            (ErrorCode::InvalidArgument, 400),
            (ErrorCode::FailedPrecondition, 400),
            (ErrorCode::Unauthenticated, 401),
            (ErrorCode::PermissionDenied, 403),
            (ErrorCode::NotFound, 404),
            (ErrorCode::AlreadyExists, 409),
            (ErrorCode::Aborted, 409),
            (ErrorCode::ResourceExhausted, 429),
            (ErrorCode::Internal, 500),
            (ErrorCode::Unimplemented, 501),
            (ErrorCode::Unavailable, 503),
            (ErrorCode::DeadlineExceeded, 504),
        ];
        for (code, status) in expected {
            assert_eq!(code.http_status().as_u16(), status, "{code}");
        }
        assert_eq!(expected.len(), ALL.len(), "every code has an HTTP status");
    }

    #[test]
    fn names_match_grpc_canonical_names() {
        assert_eq!(ErrorCode::InvalidArgument.to_string(), "INVALID_ARGUMENT");
        assert_eq!(
            ErrorCode::FailedPrecondition.as_str(),
            "FAILED_PRECONDITION"
        );
    }

    #[test]
    fn field_violations_travel_as_bad_request_details() {
        let mut v = Violations::new();
        v.check(false, "incident.title", "must not be empty");
        v.check(true, "incident.caller", "never recorded");
        v.add("incident.impact", "must be one of HIGH, MEDIUM, LOW");
        let error = v.into_result().unwrap_err();
        assert_eq!(error.code(), ErrorCode::InvalidArgument);
        assert_eq!(
            error.message(),
            "incident.title: must not be empty; incident.impact: must be one of HIGH, MEDIUM, LOW"
        );

        let status = tonic::Status::from(error.clone());
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        let details = status.get_error_details();
        let fields: Vec<_> = details
            .bad_request()
            .unwrap()
            .field_violations
            .iter()
            .map(|f| f.field.as_str())
            .collect();
        assert_eq!(fields, ["incident.title", "incident.impact"]);
        assert_eq!(ApiError::from_status(&status), error);
    }

    #[test]
    fn precondition_failures_and_retry_info_round_trip() {
        let error = ApiError::failed_precondition(
            "STATE",
            "incidents/INC0000001",
            "state is CLOSED; allowed from: RESOLVED",
        );
        let status = tonic::Status::from(error.clone());
        assert_eq!(status.code(), tonic::Code::FailedPrecondition);
        assert_eq!(ApiError::from_status(&status), error);

        let limited = ApiError::new(ErrorCode::ResourceExhausted, "rate limit")
            .with_retry_after(Duration::from_secs(2));
        let back = ApiError::from_status(&tonic::Status::from(limited));
        assert_eq!(back.retry_after(), Some(Duration::from_secs(2)));
    }

    #[test]
    fn no_violations_is_ok() {
        assert!(Violations::new().into_result().is_ok());
    }

    #[test]
    fn internal_errors_hide_their_cause() {
        let status = tonic::Status::from(ApiError::internal("connection refused to 10.0.0.7:5432"));
        assert_eq!(status.code(), tonic::Code::Internal);
        assert!(!status.message().contains("10.0.0.7"));
    }
}
