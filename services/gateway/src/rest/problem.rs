//! Errors as JSON: `{"code": "INVALID_ARGUMENT", "status": 400, "message":
//! ..., "details": [...]}`, the gRPC code under its canonical name, the HTTP
//! status of the standard mapping, and the `google.rpc` details of the
//! status (field violations, precondition failures, ...) as JSON objects
//! with an `@type`, in the style of Google's JSON error format.

use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tonic::Code;
use tonic_types::{ErrorDetail, StatusExt};

/// An error answered over REST.
#[derive(Debug)]
pub struct Problem {
    pub code: Code,
    pub message: String,
    pub details: Vec<Value>,
    /// Extra response headers (Retry-After, Allow, WWW-Authenticate).
    pub headers: Vec<(http::HeaderName, http::HeaderValue)>,
    /// Overrides the status of the code (405 and 413 have no gRPC code of their own).
    pub http_status: Option<http::StatusCode>,
}

impl Problem {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            details: Vec::new(),
            headers: Vec::new(),
            http_status: None,
        }
    }

    /// INVALID_ARGUMENT with one field violation.
    pub fn invalid_field(field: &str, description: impl Into<String>) -> Self {
        let description = description.into();
        let mut problem = Self::new(
            Code::InvalidArgument,
            format!("invalid {field}: {description}"),
        );
        problem.details.push(json!({
            "@type": "type.googleapis.com/google.rpc.BadRequest",
            "fieldViolations": [{"field": field, "description": description}],
        }));
        problem
    }

    /// The HTTP status: the standard gRPC -> HTTP mapping.
    pub fn status(&self) -> http::StatusCode {
        self.http_status.unwrap_or_else(|| http_status(self.code))
    }

    /// The JSON body.
    pub fn body(&self) -> Value {
        json!({
            "code": code_name(self.code),
            "status": self.status().as_u16(),
            "message": self.message,
            "details": self.details,
        })
    }
}

impl From<tonic::Status> for Problem {
    fn from(status: tonic::Status) -> Self {
        let mut problem = Self::new(status.code(), status.message());
        if !status.details().is_empty() {
            // Details that do not decode as google.rpc.Status are left out.
            problem.details = status
                .get_error_details_vec()
                .iter()
                .map(detail_json)
                .collect();
        }
        if let Some(seconds) = status.metadata().get("retry-after")
            && let Ok(value) = http::HeaderValue::from_bytes(seconds.as_bytes())
        {
            problem.headers.push((http::header::RETRY_AFTER, value));
        }
        if status.code() == Code::Unauthenticated {
            problem.headers.push((
                http::header::WWW_AUTHENTICATE,
                http::HeaderValue::from_static("Bearer"),
            ));
        }
        problem
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut response = (status, axum::Json(self.body())).into_response();
        for (name, value) in self.headers {
            response.headers_mut().insert(name, value);
        }
        response
    }
}

/// The standard mapping of gRPC codes to HTTP statuses
/// (google.rpc.Code's documentation).
pub fn http_status(code: Code) -> http::StatusCode {
    use http::StatusCode as S;
    match code {
        Code::Ok => S::OK,
        Code::Cancelled => S::from_u16(499).unwrap_or(S::BAD_REQUEST),
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => S::BAD_REQUEST,
        Code::DeadlineExceeded => S::GATEWAY_TIMEOUT,
        Code::NotFound => S::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => S::CONFLICT,
        Code::PermissionDenied => S::FORBIDDEN,
        Code::Unauthenticated => S::UNAUTHORIZED,
        Code::ResourceExhausted => S::TOO_MANY_REQUESTS,
        Code::Unimplemented => S::NOT_IMPLEMENTED,
        Code::Unavailable => S::SERVICE_UNAVAILABLE,
        Code::Unknown | Code::Internal | Code::DataLoss => S::INTERNAL_SERVER_ERROR,
    }
}

/// `INVALID_ARGUMENT`, as google.rpc.Code names it.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// Every code name, for the OpenAPI error schema.
pub const CODE_NAMES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

fn detail_json(detail: &ErrorDetail) -> Value {
    const PREFIX: &str = "type.googleapis.com/google.rpc.";
    match detail {
        ErrorDetail::BadRequest(d) => json!({
            "@type": format!("{PREFIX}BadRequest"),
            "fieldViolations": d.field_violations.iter().map(|v| json!({
                "field": v.field, "description": v.description,
            })).collect::<Vec<_>>(),
        }),
        ErrorDetail::PreconditionFailure(d) => json!({
            "@type": format!("{PREFIX}PreconditionFailure"),
            "violations": d.violations.iter().map(|v| json!({
                "type": v.r#type, "subject": v.subject, "description": v.description,
            })).collect::<Vec<_>>(),
        }),
        ErrorDetail::ErrorInfo(d) => json!({
            "@type": format!("{PREFIX}ErrorInfo"),
            "reason": d.reason, "domain": d.domain, "metadata": d.metadata,
        }),
        ErrorDetail::ResourceInfo(d) => json!({
            "@type": format!("{PREFIX}ResourceInfo"),
            "resourceType": d.resource_type, "resourceName": d.resource_name,
            "owner": d.owner, "description": d.description,
        }),
        ErrorDetail::RetryInfo(d) => json!({
            "@type": format!("{PREFIX}RetryInfo"),
            "retryDelay": d.retry_delay.map(|t| format!("{}s", t.as_secs_f64())),
        }),
        ErrorDetail::QuotaFailure(d) => json!({
            "@type": format!("{PREFIX}QuotaFailure"),
            "violations": d.violations.iter().map(|v| json!({
                "subject": v.subject, "description": v.description,
            })).collect::<Vec<_>>(),
        }),
        ErrorDetail::RequestInfo(d) => json!({
            "@type": format!("{PREFIX}RequestInfo"),
            "requestId": d.request_id, "servingData": d.serving_data,
        }),
        ErrorDetail::Help(d) => json!({
            "@type": format!("{PREFIX}Help"),
            "links": d.links.iter().map(|l| json!({
                "description": l.description, "url": l.url,
            })).collect::<Vec<_>>(),
        }),
        ErrorDetail::LocalizedMessage(d) => json!({
            "@type": format!("{PREFIX}LocalizedMessage"),
            "locale": d.locale, "message": d.message,
        }),
        // Debug info stays inside: stack traces are not for callers.
        ErrorDetail::DebugInfo(_) => json!({"@type": format!("{PREFIX}DebugInfo")}),
        _ => json!({"@type": "unknown"}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic_types::{ErrorDetails, FieldViolation};

    #[test]
    fn statuses_become_json_with_their_details() {
        let details = ErrorDetails::with_bad_request(vec![FieldViolation::new(
            "incident.title",
            "is required",
        )]);
        let status =
            tonic::Status::with_error_details(Code::InvalidArgument, "title missing", details);
        let problem = Problem::from(status);
        assert_eq!(problem.status(), http::StatusCode::BAD_REQUEST);
        assert_eq!(
            problem.body(),
            json!({
                "code": "INVALID_ARGUMENT",
                "status": 400,
                "message": "title missing",
                "details": [{
                    "@type": "type.googleapis.com/google.rpc.BadRequest",
                    "fieldViolations": [{"field": "incident.title", "description": "is required"}],
                }],
            })
        );
        assert_eq!(http_status(Code::Aborted), http::StatusCode::CONFLICT);
        assert_eq!(
            http_status(Code::Unavailable),
            http::StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(http_status(Code::Cancelled).as_u16(), 499);
    }
}
