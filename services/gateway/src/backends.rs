//! Where each gRPC service is served, and the one way a request reaches it.
//!
//! A backend is a practice (`incidents`) with the gRPC services it serves
//! (found in the descriptor set: every service of package `itsm.incidents.v1`)
//! and its replicas ([`pool`]), guarded by a circuit breaker ([`breaker`]).
//!
//! Two ways in, one path to the backend ([`Backends::forward`]):
//! - gRPC pass-through: the caller's HTTP/2 request is sent on as it is (its
//!   body frames are not decoded, so streaming calls work and a new method
//!   needs no gateway change);
//! - [`Backends::unary`], for the REST mapping: one encoded message in, one out.
//!
//! Every call carries a deadline: the caller's `grpc-timeout`, or the
//! configured request timeout when it sent none, and the gateway stops
//! waiting for the backend's answer at that deadline too.

pub mod breaker;
pub mod pool;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use http_body_util::BodyExt;
use itsm_platform::Config;
use tonic::Code;
use tracing::{Instrument, Span};

use self::breaker::{Breaker, Circuit};
use self::pool::{Pool, Replica, SendError, Target};
use crate::telemetry;

/// How backends are reached: timings and breaker settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The deadline of a call that sent no `grpc-timeout`.
    pub default_timeout: Duration,
    /// Consecutive failures that open a backend's circuit.
    pub breaker_failures: u32,
    /// How long an open circuit refuses calls.
    pub breaker_cooldown: Duration,
    /// How long connecting to a replica may take.
    pub connect_timeout: Duration,
    /// HTTP/2 connections to each replica, used in turn.
    pub connections_per_replica: usize,
    /// A backend is ready when one of its replicas answered its health check within this.
    pub ready_within: Duration,
}

impl Settings {
    /// The settings of a configuration.
    pub fn from_config(config: &Config) -> Self {
        Self {
            default_timeout: config.request_timeout,
            breaker_failures: config.gateway.breaker_failures,
            breaker_cooldown: config.gateway.breaker_cooldown,
            connect_timeout: Duration::from_secs(2),
            // A connection's frames are written by one task (one core);
            // fewer connections coalesce concurrent calls into fewer
            // writes. Half the cores, 1 to 4: on 2 cores one connection
            // gave 10–20 % more calls/s at 32 clients than four.
            connections_per_replica: std::thread::available_parallelism()
                .map_or(1, |n| n.get() / 2)
                .clamp(1, 4),
            ready_within: config.gateway.probe_every * 3,
        }
    }
}

/// One backend to build: a name, the services it serves and where.
#[derive(Debug, Clone)]
pub struct BackendSpec {
    /// The practice name (`incidents`), for logs and readiness.
    pub name: String,
    /// Full gRPC service names (`itsm.incidents.v1.IncidentService`).
    pub services: Vec<String>,
    pub target: Target,
}

/// Why the backends could not be built. Printed at start-up.
#[derive(Debug, thiserror::Error)]
pub enum BackendsError {
    #[error(
        "ITSM_GATEWAY_BACKENDS: {name:?} is neither a practice with services in the contracts nor a gRPC service name (known: {known})"
    )]
    UnknownName { name: String, known: String },
    #[error(
        "ITSM_GATEWAY_BACKENDS: {name}: bad target {target:?}: expected http://host:port (several joined by |) or dns://name:port"
    )]
    BadTarget { name: String, target: String },
    #[error("ITSM_GATEWAY_BACKENDS: {service} is served by both {first} and {second}")]
    Duplicate {
        service: String,
        first: String,
        second: String,
    },
    #[error(
        "ITSM_GATEWAY_BACKENDS is empty: name at least one backend, e.g. incidents=http://incidents:50051"
    )]
    Empty,
    #[error("the descriptor set cannot be read: {0}")]
    Descriptors(#[from] prost::DecodeError),
}

/// One backend: its services, replicas, breaker and health.
#[derive(Debug)]
pub struct Backend {
    pub name: String,
    pub services: Vec<String>,
    pub pool: Pool,
    pub breaker: Breaker,
    probe: std::sync::Mutex<Probe>,
}

#[derive(Debug, Default, Clone)]
struct Probe {
    last_ok: Option<Instant>,
    last_error: Option<String>,
}

/// How a backend is doing, for readiness and the gateway's health service.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BackendStatus {
    pub name: String,
    pub services: Vec<String>,
    pub target: String,
    /// Replicas known (resolved).
    pub endpoints: usize,
    /// Replicas whose last health check passed.
    pub healthy_endpoints: usize,
    /// `closed`, `open` or `half-open`.
    pub circuit: &'static str,
    /// Whether a replica answered SERVING recently.
    pub ready: bool,
    /// Seconds since a replica last answered SERVING.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_ok_seconds_ago: Option<f64>,
    /// Why the last health check failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Every backend of the gateway. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Backends {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    backends: Vec<Arc<Backend>>,
    by_service: HashMap<String, Arc<Backend>>,
    /// `/pkg.Service/Method` of the contracts' client-streaming methods.
    client_streaming: std::collections::HashSet<String>,
    /// The `service` metric label of each service, shared (not copied per call).
    labels: HashMap<String, Arc<str>>,
    /// `grpc-timeout` of the default deadline, made once.
    default_grpc_timeout: Option<http::HeaderValue>,
    settings: Settings,
}

/// What a forwarded call came to: the backend's response, or the status
/// the gateway answered in its place, and which backend it was.
#[derive(Debug)]
pub struct Forwarded {
    /// The backend's name; none when no backend serves the path.
    pub backend: Option<String>,
    /// The client span of the hop (ended when dropped): record the call's
    /// outcome on it once known ([`telemetry::record_code`]).
    pub hop: Span,
    pub result: Result<http::Response<tonic::body::Body>, tonic::Status>,
}

impl Backends {
    /// The backends named by `gateway_backends`: each name is a practice
    /// (its services are those of package `itsm.<name>.v1`) or a full
    /// service name.
    pub fn from_config(config: &Config) -> Result<Self, BackendsError> {
        if config.gateway.backends.is_empty() {
            return Err(BackendsError::Empty);
        }
        let known = contract_services()?;
        let mut specs = Vec::new();
        for backend in &config.gateway.backends {
            let package = format!("itsm.{}.v1.", backend.name);
            let mut services: Vec<String> = known
                .iter()
                .filter(|s| {
                    s.strip_prefix(&package)
                        .is_some_and(|rest| !rest.contains('.'))
                        || **s == backend.name
                })
                .cloned()
                .collect();
            services.sort();
            if services.is_empty() {
                return Err(BackendsError::UnknownName {
                    name: backend.name.clone(),
                    known: known.join(", "),
                });
            }
            let target =
                Target::parse(&backend.target).ok_or_else(|| BackendsError::BadTarget {
                    name: backend.name.clone(),
                    target: backend.target.clone(),
                })?;
            specs.push(BackendSpec {
                name: backend.name.clone(),
                services,
                target,
            });
        }
        Self::new(specs, Settings::from_config(config))
    }

    /// Backends from explicit specs (`itsm dev` and tests).
    pub fn new(specs: Vec<BackendSpec>, settings: Settings) -> Result<Self, BackendsError> {
        let mut backends = Vec::new();
        let mut by_service: HashMap<String, Arc<Backend>> = HashMap::new();
        for spec in specs {
            let backend = Arc::new(Backend {
                pool: Pool::new(
                    spec.target,
                    settings.connect_timeout,
                    settings.connections_per_replica,
                ),
                breaker: Breaker::new(settings.breaker_failures, settings.breaker_cooldown),
                name: spec.name,
                services: spec.services,
                probe: std::sync::Mutex::new(Probe::default()),
            });
            for service in &backend.services {
                if let Some(first) = by_service.insert(service.clone(), Arc::clone(&backend)) {
                    return Err(BackendsError::Duplicate {
                        service: service.clone(),
                        first: first.name.clone(),
                        second: backend.name.clone(),
                    });
                }
            }
            backends.push(backend);
        }
        let labels = by_service
            .keys()
            .map(|service| (service.clone(), Arc::from(service.as_str())))
            .collect();
        Ok(Self {
            inner: Arc::new(Inner {
                labels,
                backends,
                by_service,
                client_streaming: client_streaming_methods(),
                default_grpc_timeout: http::HeaderValue::try_from(format!(
                    "{}m",
                    settings.default_timeout.as_millis().min(99_999_999)
                ))
                .ok(),
                settings,
            }),
        })
    }

    /// The full gRPC service names served, sorted.
    pub fn services(&self) -> Vec<String> {
        let mut names: Vec<String> = self.inner.by_service.keys().cloned().collect();
        names.sort();
        names
    }

    /// The backends, in configuration order.
    pub fn backends(&self) -> &[Arc<Backend>] {
        &self.inner.backends
    }

    /// Whether the method at `path` takes a stream of messages from the
    /// caller (whose first message may come only after the reply starts).
    pub fn is_client_streaming(&self, path: &str) -> bool {
        self.inner.client_streaming.contains(path)
    }

    /// The `service` label of the gRPC `service` in metrics: itself when the
    /// gateway serves it, [`telemetry::UNKNOWN_SERVICE`] otherwise.
    pub fn service_label(&self, service: &str) -> metrics::SharedString {
        match self.inner.labels.get(service) {
            Some(label) => metrics::SharedString::from(Arc::clone(label)),
            None => metrics::SharedString::const_str(telemetry::UNKNOWN_SERVICE),
        }
    }

    /// The deadline of a call without `grpc-timeout`.
    pub fn default_timeout(&self) -> Duration {
        self.inner.settings.default_timeout
    }

    /// Sends ONE encoded request message (unframed) to the backend serving
    /// the gRPC `path` (`/itsm.incidents.v1.IncidentService/GetIncident`) with
    /// `metadata` (authorization, x-request-id, traceparent, grpc-timeout...
    /// are forwarded as they are) and returns the response metadata and the
    /// encoded reply message.
    ///
    /// Errors: UNIMPLEMENTED naming the known services for an unknown
    /// service; UNAVAILABLE at once when the backend's circuit is open or it
    /// cannot be reached; DEADLINE_EXCEEDED at the deadline; otherwise the
    /// backend's own status, details included.
    pub async fn unary(
        &self,
        path: &str,
        metadata: http::HeaderMap,
        message: Bytes,
    ) -> Result<(http::HeaderMap, Bytes), tonic::Status> {
        let mut framed = BytesMut::with_capacity(message.len() + 5);
        framed.put_u8(0);
        framed.put_u32(u32::try_from(message.len()).map_err(|_| {
            tonic::Status::resource_exhausted("the request message is larger than 4 GiB")
        })?);
        framed.put_slice(&message);
        let mut request = http::Request::new(tonic::body::Body::new(http_body_util::Full::new(
            framed.freeze(),
        )));
        *request.method_mut() = http::Method::POST;
        *request.uri_mut() = http::Uri::try_from(path).map_err(|_| {
            tonic::Status::unimplemented(format!("{path:?} is not a gRPC method path"))
        })?;
        let headers = request.headers_mut();
        for (name, value) in &metadata {
            if !is_connection_header(name) {
                headers.append(name.clone(), value.clone());
            }
        }
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/grpc"),
        );
        headers.insert(http::header::TE, http::HeaderValue::from_static("trailers"));

        let forwarded = self.forward(request).await;
        let reply = match forwarded.result {
            Ok(response) => Self::unary_reply(response).await,
            Err(status) => Err(status),
        };
        telemetry::record_code(
            &forwarded.hop,
            reply
                .as_ref()
                .map_or_else(tonic::Status::code, |_| Code::Ok),
        );
        reply
    }

    /// The metadata and the one message of a unary reply, or its status.
    async fn unary_reply(
        response: http::Response<tonic::body::Body>,
    ) -> Result<(http::HeaderMap, Bytes), tonic::Status> {
        let (parts, body) = response.into_parts();
        if let Some(status) = tonic::Status::from_header_map(&parts.headers)
            && status.code() != Code::Ok
        {
            // Trailers-only: the backend refused before any message.
            return Err(status);
        }
        if parts.status != http::StatusCode::OK {
            return Err(tonic::Status::unavailable(format!(
                "the backend answered HTTP {} instead of gRPC",
                parts.status
            )));
        }
        let collected = body.collect().await.map_err(|error| {
            let status = tonic::Status::from_error(error.into());
            if status.code() == Code::Unknown {
                tonic::Status::unavailable(format!(
                    "the backend's reply was cut off: {}",
                    status.message()
                ))
            } else {
                status
            }
        })?;
        let trailers = collected.trailers().cloned().unwrap_or_default();
        match tonic::Status::from_header_map(&trailers) {
            Some(status) if status.code() != Code::Ok => return Err(status),
            Some(_) => {}
            None => {
                return Err(tonic::Status::internal(
                    "the backend's reply ended without a gRPC status",
                ));
            }
        }
        let data = collected.to_bytes();
        let reply = single_message(data)?;
        let mut metadata = parts.headers;
        for name in [http::header::CONTENT_TYPE, http::header::CONTENT_LENGTH] {
            metadata.remove(name);
        }
        Ok((metadata, reply))
    }

    /// Sends a gRPC request to the backend serving its path, as it is. The
    /// request's `grpc-timeout` is kept, or set to the default. The response
    /// (whose body streams from the backend) or the status the gateway
    /// answers instead: see [`Backends::unary`] for which.
    pub async fn forward(&self, mut request: http::Request<tonic::body::Body>) -> Forwarded {
        let path = request.uri().path();
        let service = path.trim_start_matches('/').split('/').next().unwrap_or("");
        let Some(backend) = self.inner.by_service.get(service).cloned() else {
            return Forwarded {
                backend: None,
                hop: Span::none(),
                result: Err(self.unknown_service(service)),
            };
        };
        let deadline = match request
            .headers()
            .get("grpc-timeout")
            .and_then(parse_grpc_timeout)
        {
            Some(deadline) => deadline,
            None => {
                if let Some(value) = &self.inner.default_grpc_timeout {
                    request.headers_mut().insert("grpc-timeout", value.clone());
                }
                self.inner.settings.default_timeout
            }
        };
        let (mut parts, body) = request.into_parts();
        let hop = telemetry::backend_span(parts.uri.path(), &backend.name, &mut parts.headers);
        let request = http::Request::from_parts(parts, body);
        // The replica's connection puts its scheme and authority on the URI.
        let result = backend
            .call(request, deadline)
            .instrument(hop.clone())
            .await;
        if let Err(status) = &result {
            telemetry::record_code(&hop, status.code());
        }
        Forwarded {
            backend: Some(backend.name.clone()),
            hop,
            result,
        }
    }

    /// UNIMPLEMENTED naming the services this gateway serves.
    pub fn unknown_service(&self, service: &str) -> tonic::Status {
        tonic::Status::unimplemented(format!(
            "unknown service {service:?}: this gateway serves {}",
            self.services().join(", ")
        ))
    }

    /// Checks every backend's health once (and re-resolves DNS targets).
    pub async fn probe(&self) {
        let probes = self.inner.backends.iter().map(|backend| backend.probe());
        futures_util::future::join_all(probes).await;
    }

    /// How each backend is doing.
    pub fn status(&self) -> Vec<BackendStatus> {
        self.inner
            .backends
            .iter()
            .map(|backend| backend.status(self.inner.settings.ready_within))
            .collect()
    }

    /// Whether every backend answered its health check recently.
    pub fn ready(&self) -> bool {
        self.status().iter().all(|status| status.ready)
    }
}

impl Backend {
    /// Sends the call to a replica. When a replica cannot be reached and
    /// nothing was sent to it (connection refused, a connection closed
    /// before the request was written), the call is tried on another replica
    /// not yet tried: it cannot have had any effect. A failure after the
    /// request left is answered as UNAVAILABLE, never retried (the backend
    /// may have acted on it).
    async fn call(
        &self,
        request: http::Request<tonic::body::Body>,
        deadline: Duration,
    ) -> Result<http::Response<tonic::body::Body>, tonic::Status> {
        if let Err(refused) = self.breaker.admit() {
            return Err(tonic::Status::unavailable(format!(
                "backend {} is failing (circuit open after {} consecutive failures): refused without trying; retry in {}s",
                self.name,
                self.breaker.threshold(),
                refused.retry_after.as_secs().max(1)
            )));
        }
        match tokio::time::timeout(deadline, self.attempts(request)).await {
            Ok(result) => result,
            Err(_) => {
                // A caller's own short deadline says nothing about the backend.
                if deadline >= Duration::from_secs(1) {
                    self.failed("timed out");
                }
                Err(tonic::Status::deadline_exceeded(format!(
                    "backend {} did not answer within the deadline ({deadline:?})",
                    self.name
                )))
            }
        }
    }

    async fn attempts(
        &self,
        mut request: http::Request<tonic::body::Body>,
    ) -> Result<http::Response<tonic::body::Body>, tonic::Status> {
        // A DNS target not resolved yet (the first calls after start) or
        // resolved to nothing: look again now rather than fail the call.
        let mut replica = self.pool.pick();
        if replica.is_none() && matches!(self.pool.target, Target::Dns { .. }) {
            if let Err(error) = self.pool.refresh().await {
                tracing::debug!(backend = %self.name, %error, "resolving the backend failed");
            }
            replica = self.pool.pick();
        }
        let Some(mut replica) = replica else {
            self.failed("no replicas");
            return Err(tonic::Status::unavailable(format!(
                "backend {} has no replicas: {} resolved to no address",
                self.name, self.pool.target
            )));
        };
        let mut tried: Vec<Arc<Replica>> = Vec::new();
        loop {
            let in_flight = replica.start();
            let sent = replica.connection().send(request).await;
            drop(in_flight);
            let (returned, reason) = match sent {
                Ok(response) => {
                    let unavailable = response
                        .headers()
                        .get("grpc-status")
                        .is_some_and(|code| code.as_bytes() == b"14");
                    if unavailable {
                        self.failed("answered UNAVAILABLE");
                    } else {
                        self.breaker.success();
                    }
                    return Ok(response.map(tonic::body::Body::new));
                }
                Err(SendError::Failed(reason)) => {
                    replica.set_healthy(false);
                    self.failed(&reason);
                    return Err(tonic::Status::unavailable(format!(
                        "backend {} at {} failed during the call: {reason}",
                        self.name, replica.uri
                    )));
                }
                Err(SendError::NotSent { request, reason }) => (request, reason),
            };
            replica.set_healthy(false);
            tried.push(replica);
            match self.pool.pick_other(&tried) {
                Some(next) => {
                    tracing::debug!(
                        backend = %self.name,
                        failed = %tried[tried.len() - 1].uri,
                        %reason,
                        next = %next.uri,
                        "replica cannot be reached; trying another"
                    );
                    request = *returned;
                    replica = next;
                }
                None => {
                    self.failed(&reason);
                    let uris: Vec<&str> = tried.iter().map(|r| r.uri.as_str()).collect();
                    return Err(tonic::Status::unavailable(format!(
                        "backend {} cannot be reached (tried {}): {reason}",
                        self.name,
                        uris.join(", ")
                    )));
                }
            }
        }
    }

    fn failed(&self, reason: &str) {
        if self.breaker.failure() {
            tracing::warn!(backend = %self.name, %reason, "circuit opened: calls to this backend are refused until the cool-down ends");
        }
    }

    async fn probe(&self) {
        let mut error = self.pool.refresh().await.err();
        let service = match self.services.as_slice() {
            [one] => one.clone(),
            // A server of many practices (itsm dev): its overall status.
            _ => String::new(),
        };
        let replicas = self.pool.replicas();
        let checks = replicas.iter().map(|replica| {
            let service = service.clone();
            async move {
                let mut client =
                    tonic_health::pb::health_client::HealthClient::new(replica.probe_channel());
                let mut request =
                    tonic::Request::new(tonic_health::pb::HealthCheckRequest { service });
                request.set_timeout(Duration::from_secs(2));
                let answer =
                    tokio::time::timeout(Duration::from_secs(3), client.check(request)).await;
                let outcome = match answer {
                    Ok(Ok(reply))
                        if reply.get_ref().status
                            == tonic_health::ServingStatus::Serving as i32 =>
                    {
                        Ok(())
                    }
                    Ok(Ok(reply)) => Err(format!(
                        "{} reports status {}",
                        replica.uri,
                        reply.get_ref().status
                    )),
                    Ok(Err(status)) => Err(format!("{}: {}", replica.uri, status.message())),
                    Err(_) => Err(format!("{}: health check timed out", replica.uri)),
                };
                replica.set_healthy(outcome.is_ok());
                outcome
            }
        });
        let outcomes = futures_util::future::join_all(checks).await;
        let any_ok = outcomes.iter().any(Result::is_ok);
        if error.is_none() {
            error = outcomes.into_iter().find_map(Result::err);
        }
        if replicas.is_empty() && error.is_none() {
            error = Some(format!("{} resolved to no address", self.pool.target));
        }
        let mut probe = self.probe.lock().unwrap_or_else(|e| e.into_inner());
        if any_ok {
            probe.last_ok = Some(Instant::now());
        }
        probe.last_error = if any_ok { None } else { error };
    }

    fn status(&self, ready_within: Duration) -> BackendStatus {
        let probe = self.probe.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let replicas = self.pool.replicas();
        let circuit = self.breaker.circuit();
        let since = probe.last_ok.map(|at| at.elapsed());
        BackendStatus {
            name: self.name.clone(),
            services: self.services.clone(),
            target: self.pool.target.to_string(),
            endpoints: replicas.len(),
            healthy_endpoints: replicas.iter().filter(|r| r.is_healthy()).count(),
            circuit: circuit.as_str(),
            ready: since.is_some_and(|since| since <= ready_within) && circuit != Circuit::Open,
            last_ok_seconds_ago: since.map(|d| (d.as_millis() as f64) / 1000.0),
            error: probe
                .last_error
                .or_else(|| since.is_none().then(|| "not checked yet".to_owned())),
        }
    }
}

/// Every gRPC service in the contracts.
fn contract_services() -> Result<Vec<String>, prost::DecodeError> {
    use prost::Message;
    let set = prost_types::FileDescriptorSet::decode(itsm_proto::FILE_DESCRIPTOR_SET)?;
    let mut names = Vec::new();
    for file in set.file {
        let package = file.package.unwrap_or_default();
        for service in file.service {
            names.push(format!("{package}.{}", service.name.unwrap_or_default()));
        }
    }
    names.sort();
    Ok(names)
}

/// The paths of the contracts' client-streaming methods (none when the
/// descriptor set cannot be read: then every call is treated as unary-in).
fn client_streaming_methods() -> std::collections::HashSet<String> {
    use prost::Message;
    let Ok(set) = prost_types::FileDescriptorSet::decode(itsm_proto::FILE_DESCRIPTOR_SET) else {
        return std::collections::HashSet::new();
    };
    let mut paths = std::collections::HashSet::new();
    for file in set.file {
        let package = file.package.unwrap_or_default();
        for service in file.service {
            let service_name = service.name.unwrap_or_default();
            for method in service.method {
                if method.client_streaming == Some(true) {
                    paths.insert(format!(
                        "/{package}.{service_name}/{}",
                        method.name.unwrap_or_default()
                    ));
                }
            }
        }
    }
    paths
}

/// The message of a unary reply: exactly one uncompressed frame.
fn single_message(mut data: Bytes) -> Result<Bytes, tonic::Status> {
    if data.len() < 5 {
        return Err(tonic::Status::internal(
            "the backend's reply holds no message",
        ));
    }
    if data[0] != 0 {
        return Err(tonic::Status::internal(
            "the backend's reply is compressed, which the gateway did not ask for",
        ));
    }
    let len = u32::from_be_bytes([data[1], data[2], data[3], data[4]]) as usize;
    if data.len() != 5 + len {
        return Err(tonic::Status::internal(
            "the backend's reply is not exactly one message",
        ));
    }
    Ok(data.split_off(5))
}

/// Headers that describe one HTTP hop, not the call.
fn is_connection_header(name: &http::HeaderName) -> bool {
    matches!(
        name.as_str(),
        "host"
            | "connection"
            | "keep-alive"
            | "transfer-encoding"
            | "upgrade"
            | "content-length"
            | "content-type"
            | "te"
            | "accept-encoding"
            | "grpc-encoding"
            | "grpc-accept-encoding"
    )
}

/// `grpc-timeout`: up to 8 digits and a unit (H, M, S, m, u, n).
pub fn parse_grpc_timeout(value: &http::HeaderValue) -> Option<Duration> {
    let value = value.to_str().ok()?;
    if value.len() < 2 || value.len() > 9 {
        return None;
    }
    let (digits, unit) = value.split_at(value.len() - 1);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.checked_mul(3600)?),
        "M" => Duration::from_secs(n.checked_mul(60)?),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_parse() {
        let parse = |s: &'static str| parse_grpc_timeout(&http::HeaderValue::from_static(s));
        assert_eq!(parse("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse("2S"), Some(Duration::from_secs(2)));
        assert_eq!(parse("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse("5x"), None);
        assert_eq!(parse("123456789m"), None);
    }

    #[test]
    fn every_practice_of_the_contracts_is_found() {
        let services = contract_services().unwrap();
        assert!(services.contains(&"itsm.incidents.v1.IncidentService".to_owned()));
        assert!(services.contains(&"itsm.cmdb.v1.CmdbService".to_owned()));
    }
}
