//! What the gateway tells about each call: one server span per call (gRPC
//! or REST) continuing the caller's W3C trace context, one client span for
//! the hop to the backend whose context goes on as `traceparent` /
//! `tracestate`, and the gateway's metrics (names in [`REQUEST_DURATION`],
//! [`RATE_LIMITED`], [`BACKEND_READY`]).
//!
//! With no OpenTelemetry layer installed the spans carry no context; the hop
//! then gets a `traceparent` made here ([`next_traceparent`]: the caller's
//! trace, a new parent id), so a backend's logs still join the caller's
//! trace id. With no subscriber at all the spans cost next to nothing, and
//! with no metrics recorder the metrics neither.

use std::time::Duration;

use tracing::Span;
use tracing::field::Empty;

/// `itsm_gateway_request_duration_seconds{protocol, service, code}`: every
/// call through the gateway, from its arrival to its last byte (or refusal).
pub const REQUEST_DURATION: &str = "itsm_gateway_request_duration_seconds";
/// `itsm_gateway_rate_limited_total{class}`: calls refused by a rate limit.
pub const RATE_LIMITED: &str = "itsm_gateway_rate_limited_total";
/// `itsm_gateway_backend_ready{backend}`: 1 while a backend answers its health checks.
pub const BACKEND_READY: &str = "itsm_gateway_backend_ready";

/// The `service` label of calls to no known service (never the path: its
/// values would be whatever callers send).
pub const UNKNOWN_SERVICE: &str = "unknown";

/// Describes the gateway's metrics to the installed recorder (once per gateway).
pub fn describe() {
    metrics::describe_histogram!(
        REQUEST_DURATION,
        metrics::Unit::Seconds,
        "Calls through the gateway by protocol (grpc, rest), gRPC service and gRPC code"
    );
    metrics::describe_counter!(
        RATE_LIMITED,
        "Calls refused by the gateway's rate limits, by method class (read, write)"
    );
    metrics::describe_gauge!(
        BACKEND_READY,
        "1 while the backend answered its health check recently, 0 otherwise"
    );
}

/// `grpc` or `rest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Grpc,
    Rest,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Grpc => "grpc",
            Self::Rest => "rest",
        }
    }
}

/// `(service, method)` of a gRPC path, `/pkg.Service/Method`.
pub fn rpc_names(path: &str) -> (&str, &str) {
    let path = path.strip_prefix('/').unwrap_or(path);
    path.split_once('/').unwrap_or((path, ""))
}

/// The server span of a gRPC call through the gateway, a child of the
/// caller's context in `headers`.
pub fn grpc_span(path: &str, headers: &http::HeaderMap) -> Span {
    let (service, method) = rpc_names(path);
    let span = tracing::info_span!(
        "gateway.rpc",
        otel.name = path.strip_prefix('/').unwrap_or(path),
        otel.kind = "server",
        otel.status_code = Empty,
        rpc.system = "grpc",
        rpc.service = service,
        rpc.method = method,
        rpc.grpc.status_code = Empty,
        request_id = Empty,
        enduser.id = Empty,
    );
    itsm_platform::telemetry::propagation::set_parent_from_headers(&span, headers);
    span
}

/// The server span of a REST call mapped to the gRPC method at `grpc_path`.
pub fn rest_span(
    grpc_path: &str,
    route: &str,
    method: &http::Method,
    path: &str,
    headers: &http::HeaderMap,
) -> Span {
    let (service, rpc_method) = rpc_names(grpc_path);
    let span = tracing::info_span!(
        "gateway.rest",
        otel.name = grpc_path.strip_prefix('/').unwrap_or(grpc_path),
        otel.kind = "server",
        otel.status_code = Empty,
        rpc.system = "grpc",
        rpc.service = service,
        rpc.method = rpc_method,
        rpc.grpc.status_code = Empty,
        http.request.method = method.as_str(),
        http.route = route,
        url.path = path,
        http.response.status_code = Empty,
        request_id = Empty,
        enduser.id = Empty,
    );
    itsm_platform::telemetry::propagation::set_parent_from_headers(&span, headers);
    span
}

/// The client span of the hop to `backend` (a child of the current span),
/// its context written into the request's headers: the OpenTelemetry
/// context when there is one, else [`next_traceparent`] of the caller's.
pub fn backend_span(path: &str, backend: &str, headers: &mut http::HeaderMap) -> Span {
    let (service, method) = rpc_names(path);
    let span = tracing::info_span!(
        "gateway.backend",
        otel.name = path.strip_prefix('/').unwrap_or(path),
        otel.kind = "client",
        otel.status_code = Empty,
        rpc.system = "grpc",
        rpc.service = service,
        rpc.method = method,
        rpc.grpc.status_code = Empty,
        peer.service = backend,
    );
    let context = itsm_platform::telemetry::propagation::of(&span);
    if context.is_empty() {
        if let Some(traceparent) = next_traceparent(headers.get("traceparent")) {
            headers.insert("traceparent", traceparent);
        }
    } else {
        for (name, value) in [
            ("traceparent", context.traceparent),
            ("tracestate", context.tracestate),
        ] {
            match http::HeaderValue::try_from(value) {
                Ok(value) if !value.is_empty() => {
                    headers.insert(name, value);
                }
                _ => {
                    headers.remove(name);
                }
            }
        }
    }
    span
}

/// Records the outcome of a call on its span: the gRPC code, and the error
/// status when the code means the server side failed.
pub fn record_code(span: &Span, code: tonic::Code) {
    span.record("rpc.grpc.status_code", code as i32);
    if is_server_fault(code) {
        span.record("otel.status_code", "ERROR");
    }
}

/// One call's duration in [`REQUEST_DURATION`].
pub fn record_duration(
    protocol: Protocol,
    service: metrics::SharedString,
    code: tonic::Code,
    took: Duration,
) {
    metrics::histogram!(
        REQUEST_DURATION,
        "protocol" => protocol.as_str(),
        "service" => service,
        "code" => code_name(code),
    )
    .record(took.as_secs_f64());
}

/// The codes that mean the server side failed (OpenTelemetry's RPC
/// conventions); the others are the caller's doing.
fn is_server_fault(code: tonic::Code) -> bool {
    matches!(
        code,
        tonic::Code::Unknown
            | tonic::Code::DeadlineExceeded
            | tonic::Code::Unimplemented
            | tonic::Code::Internal
            | tonic::Code::Unavailable
            | tonic::Code::DataLoss
    )
}

/// `OK`, `NOT_FOUND`...: the code's name as gRPC spells it.
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code;
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

/// The W3C `traceparent` for the hop to the backend when no OpenTelemetry
/// context exists: the caller's trace with the gateway as parent (a new span
/// id), or a new sampled trace when the caller sent none or a malformed one.
/// `tracestate` passes unchanged.
pub fn next_traceparent(incoming: Option<&http::HeaderValue>) -> Option<http::HeaderValue> {
    let span = format!("{:016x}", rand::random::<u64>().max(1));
    let parsed = incoming.and_then(|v| v.to_str().ok()).and_then(|v| {
        let mut parts = v.split('-');
        let (version, trace, _parent, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
        (version == "00"
            && hex(trace, 32)
            && trace != "00000000000000000000000000000000"
            && hex(flags, 2))
        .then(|| (trace.to_ascii_lowercase(), flags.to_owned()))
    });
    let value = match parsed {
        Some((trace, flags)) => format!("00-{trace}-{span}-{flags}"),
        None => format!("00-{:032x}-{span}-01", rand::random::<u128>().max(1)),
    };
    http::HeaderValue::try_from(value).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_context_continues_the_callers_trace() {
        let incoming = http::HeaderValue::from_static(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        );
        let next = next_traceparent(Some(&incoming)).unwrap();
        let next = next.to_str().unwrap();
        assert!(
            next.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
            "{next}"
        );
        assert!(!next.contains("00f067aa0ba902b7"), "a new parent: {next}");
        assert!(next.ends_with("-01"));
        let fresh = next_traceparent(Some(&http::HeaderValue::from_static("garbage"))).unwrap();
        assert_eq!(fresh.to_str().unwrap().len(), 55);
    }

    #[test]
    fn without_opentelemetry_the_hop_gets_a_traceparent_of_the_callers_trace() {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            "traceparent",
            http::HeaderValue::from_static(
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ),
        );
        let _span = backend_span(
            "/itsm.incidents.v1.IncidentService/GetIncident",
            "incidents",
            &mut headers,
        );
        let sent = headers["traceparent"].to_str().unwrap();
        assert!(
            sent.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
            "{sent}"
        );
        assert!(!sent.contains("00f067aa0ba902b7"), "{sent}");
    }
}
