//! REST/JSON for every method, from the `google.api.http` options of the
//! descriptor set: no per-method code.
//!
//! A request is matched to its method by HTTP method and path template
//! ([`routes`]), admitted by the [`Edge`](crate::edge::Edge) (credentials,
//! rate limit, request id), turned into the protobuf request (path
//! variables, query parameters and body as the rule says, [`json`]), sent
//! to the backend through [`Backends::unary`](crate::backends::Backends::unary)
//! with the caller's credentials and trace context as gRPC metadata, and
//! the reply comes back as canonical protobuf JSON. Errors are JSON too
//! ([`problem`]): the gRPC code, the HTTP status of the standard mapping,
//! the message and the `google.rpc` details.
//!
//! Timeouts: `grpc-timeout` as gRPC writes it, or `x-request-timeout` in
//! seconds (`2.5`) or with a unit (`250ms`, `3s`); the backends' default
//! deadline otherwise.

pub mod json;
pub mod problem;
pub mod routes;
pub mod template;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use prost::Message;
use tracing::Instrument;

use self::problem::Problem;
use self::routes::{Found, Route, Routes, RoutesError};
use crate::edge::REQUEST_ID;
use crate::server::{AccessNote, State};
use crate::telemetry;

/// Where the OpenAPI document is served.
pub const OPENAPI_PATH: &str = "/openapi.json";

/// Request headers passed on to the backend as gRPC metadata, as they are.
const FORWARDED: [&str; 4] = ["authorization", "x-api-key", "traceparent", "tracestate"];

/// The REST side, shared by its handlers.
#[derive(Debug)]
pub struct Rest {
    routes: Arc<Routes>,
    state: State,
}

/// The gateway's HTTP routes: REST for every method, the OpenAPI document at
/// [`OPENAPI_PATH`] and the Alertmanager webhook at
/// [`crate::alertmanager::WEBHOOK_PATH`]. Fails only when the contracts'
/// HTTP rules are invalid (which the crate's tests rule out).
pub fn router(state: State) -> Result<axum::Router, RoutesError> {
    let routes = Arc::new(Routes::from_contracts()?);
    let document =
        Bytes::from(serde_json::to_vec(&crate::openapi::document(&routes)).unwrap_or_default());
    let rest = Arc::new(Rest { routes, state });
    let webhook = Arc::clone(&rest);
    Ok(axum::Router::new()
        .route(
            OPENAPI_PATH,
            axum::routing::get(move || {
                let document = document.clone();
                async move { ([(http::header::CONTENT_TYPE, "application/json")], document) }
            }),
        )
        .route(
            crate::alertmanager::WEBHOOK_PATH,
            axum::routing::post(move |request: Request| {
                let rest = Arc::clone(&webhook);
                async move { crate::alertmanager::handle(&rest, request).await }
            }),
        )
        .fallback(move |request: Request| {
            let rest = Arc::clone(&rest);
            async move { rest.handle(request).await }
        }))
}

impl Rest {
    /// The routes, with the descriptor pool.
    pub fn routes(&self) -> &Routes {
        &self.routes
    }

    /// Largest request body accepted, in bytes.
    pub fn max_body(&self) -> usize {
        self.state.max_body
    }

    async fn handle(&self, request: Request) -> Response {
        let (parts, body) = request.into_parts();
        let (route, bound) = match self.routes.find(&parts.method, parts.uri.path()) {
            Found::Route(route, bound) => (route, bound),
            Found::WrongMethod(methods) => {
                let allow = methods
                    .iter()
                    .map(http::Method::as_str)
                    .collect::<Vec<_>>()
                    .join(", ");
                let mut problem = Problem::new(
                    tonic::Code::Unimplemented,
                    format!(
                        "{} is not allowed on {}; use {allow}",
                        parts.method,
                        parts.uri.path()
                    ),
                );
                problem.http_status = Some(http::StatusCode::METHOD_NOT_ALLOWED);
                if let Ok(value) = http::HeaderValue::from_str(&allow) {
                    problem.headers.push((http::header::ALLOW, value));
                }
                return problem.into_response();
            }
            Found::NotFound => {
                return self
                    .not_found(&parts.method, parts.uri.path())
                    .into_response();
            }
        };
        let body = match axum::body::to_bytes(body, self.state.max_body).await {
            Ok(body) => body,
            Err(_) => {
                let mut problem = Problem::new(
                    tonic::Code::InvalidArgument,
                    format!(
                        "the request body is larger than {} bytes, or was cut off",
                        self.state.max_body
                    ),
                );
                problem.http_status = Some(http::StatusCode::PAYLOAD_TOO_LARGE);
                return problem.into_response();
            }
        };
        self.call(route, &bound, &parts, &body).await
    }

    /// Admits, transcodes and calls one method; the reply or the error as JSON.
    pub(crate) async fn call(
        &self,
        route: &Route,
        bound: &[(String, String)],
        parts: &http::request::Parts,
        body: &[u8],
    ) -> Response {
        let started = std::time::Instant::now();
        let span = telemetry::rest_span(
            &route.grpc_path,
            route.template.as_str(),
            &parts.method,
            parts.uri.path(),
            &parts.headers,
        );
        let (code, response) = self
            .call_in_span(route, bound, parts, body, &span)
            .instrument(span.clone())
            .await;
        telemetry::record_code(&span, code);
        span.record("http.response.status_code", response.status().as_u16());
        let (service, _) = telemetry::rpc_names(&route.grpc_path);
        telemetry::record_duration(
            telemetry::Protocol::Rest,
            self.state.backends.service_label(service),
            code,
            started.elapsed(),
        );
        response
    }

    /// [`Rest::call`] within its span; the gRPC code of the outcome too.
    async fn call_in_span(
        &self,
        route: &Route,
        bound: &[(String, String)],
        parts: &http::request::Parts,
        body: &[u8],
        span: &tracing::Span,
    ) -> (tonic::Code, Response) {
        let admitted = match self
            .state
            .edge
            .admit(&parts.headers, &route.grpc_path)
            .await
        {
            Ok(admitted) => admitted,
            Err(status) => return (status.code(), Problem::from(status).into_response()),
        };
        span.record("request_id", admitted.request_id.as_str());
        span.record("enduser.id", admitted.principal.subject.as_str());
        let request_id = http::HeaderValue::from_str(&admitted.request_id).ok();
        let note = AccessNote {
            principal: admitted.principal.subject.clone(),
            backend: route.rpc.parent_service().full_name().to_owned(),
        };
        let result = async {
            let message = json::request(route, bound, parts.uri.query(), body)?;
            let metadata = metadata(&parts.headers, request_id.as_ref())?;
            let (_, reply) = self
                .state
                .backends
                .unary(
                    &route.grpc_path,
                    metadata,
                    Bytes::from(message.encode_to_vec()),
                )
                .await?;
            json::reply(route, &reply)
        }
        .await;
        let (code, mut response) = match result {
            Ok(json) => (
                tonic::Code::Ok,
                ([(http::header::CONTENT_TYPE, "application/json")], json).into_response(),
            ),
            Err(problem) => (problem.code, problem.into_response()),
        };
        if let Some(id) = request_id {
            response.headers_mut().insert(REQUEST_ID, id);
        }
        response.extensions_mut().insert(note);
        (code, response)
    }

    /// Sends an already built request message to a method by its gRPC path
    /// (the Alertmanager webhook's way in), after admitting the caller.
    pub(crate) async fn call_message(
        &self,
        grpc_path: &str,
        headers: &http::HeaderMap,
        message: Bytes,
    ) -> Result<(Bytes, http::HeaderValue), Problem> {
        let admitted = self.state.edge.admit(headers, grpc_path).await?;
        let request_id = http::HeaderValue::from_str(&admitted.request_id)
            .map_err(|_| Problem::new(tonic::Code::Internal, "request id is not a header value"))?;
        let metadata = metadata(headers, Some(&request_id))?;
        let (_, reply) = self
            .state
            .backends
            .unary(grpc_path, metadata, message)
            .await?;
        Ok((reply, request_id))
    }

    fn not_found(&self, method: &http::Method, path: &str) -> Problem {
        let mut services = self.state.backends.services();
        if services.is_empty() {
            services = self.routes.services();
        }
        let mut problem = Problem::new(
            tonic::Code::NotFound,
            format!(
                "no REST method at {method} {path}; this gateway serves {} (every path in {OPENAPI_PATH})",
                services.join(", ")
            ),
        );
        problem.details.push(serde_json::json!({
            "@type": "type.googleapis.com/google.rpc.Help",
            "links": [{"description": "the REST API of every service", "url": OPENAPI_PATH}],
        }));
        problem.details.push(serde_json::json!({
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "UNKNOWN_PATH",
            "domain": "itsm.gateway",
            "metadata": {"services": services.join(",")},
        }));
        problem
    }
}

/// The gRPC metadata of a REST call: credentials and trace context as
/// given, the request id of the edge, and the deadline.
fn metadata(
    headers: &http::HeaderMap,
    request_id: Option<&http::HeaderValue>,
) -> Result<http::HeaderMap, Problem> {
    let mut metadata = http::HeaderMap::new();
    for name in FORWARDED {
        for value in headers.get_all(name) {
            metadata.append(name, value.clone());
        }
    }
    if let Some(id) = request_id {
        metadata.insert(REQUEST_ID, id.clone());
    }
    if let Some(value) = headers.get("grpc-timeout") {
        if crate::backends::parse_grpc_timeout(value).is_none() {
            return Err(Problem::invalid_field(
                "grpc-timeout",
                "is not a gRPC timeout (digits and a unit H, M, S, m, u or n, e.g. 500m)",
            ));
        }
        metadata.insert("grpc-timeout", value.clone());
    } else if let Some(value) = headers.get("x-request-timeout") {
        let timeout = value.to_str().ok().and_then(parse_timeout).ok_or_else(|| {
            Problem::invalid_field(
                "x-request-timeout",
                "is not a timeout: give seconds (2.5) or a number with ms or s (250ms, 3s)",
            )
        })?;
        let millis = timeout.as_millis().clamp(1, 99_999_999);
        let value = http::HeaderValue::from_str(&format!("{millis}m"))
            .map_err(|_| Problem::new(tonic::Code::Internal, "timeout header"))?;
        metadata.insert("grpc-timeout", value);
    }
    Ok(metadata)
}

/// `2.5`, `2.5s`, `250ms`.
fn parse_timeout(text: &str) -> Option<Duration> {
    let text = text.trim();
    let (number, scale) = if let Some(ms) = text.strip_suffix("ms") {
        (ms, 0.001)
    } else if let Some(s) = text.strip_suffix('s') {
        (s, 1.0)
    } else {
        (text, 1.0)
    };
    let seconds: f64 = number.trim().parse().ok()?;
    (seconds.is_finite() && seconds > 0.0)
        .then(|| Duration::from_secs_f64((seconds * scale).min(86_400.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_become_metadata() {
        let mut headers = http::HeaderMap::new();
        headers.insert("authorization", "Bearer t".parse().unwrap());
        headers.insert(
            "traceparent",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
                .parse()
                .unwrap(),
        );
        headers.insert("cookie", "secret".parse().unwrap());
        headers.insert("x-request-timeout", "250ms".parse().unwrap());
        let id = http::HeaderValue::from_static("req-1");
        let forwarded = metadata(&headers, Some(&id)).unwrap();
        assert_eq!(forwarded["authorization"], "Bearer t");
        assert_eq!(forwarded["x-request-id"], "req-1");
        assert_eq!(forwarded["grpc-timeout"], "250m");
        assert!(forwarded.get("traceparent").is_some());
        assert!(forwarded.get("cookie").is_none());
        assert_eq!(parse_timeout("2.5"), Some(Duration::from_millis(2500)));
        assert_eq!(parse_timeout("3s"), Some(Duration::from_secs(3)));
        assert_eq!(parse_timeout("soon"), None);
        headers.insert("x-request-timeout", "soon".parse().unwrap());
        assert_eq!(
            metadata(&headers, None).unwrap_err().status(),
            http::StatusCode::BAD_REQUEST
        );
    }
}
