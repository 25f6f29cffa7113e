//! The listener: gRPC and HTTP (REST/JSON, health) on one port, HTTP/1.1 and
//! HTTP/2 (cleartext, prior knowledge) alike.
//!
//! A request whose content type is `application/grpc*` is a gRPC call:
//! `grpc.health.v1` and server reflection are answered here (health reflects
//! the backends); every other call is admitted by the [`Edge`] (401/limit),
//! its message size checked from the frame headers, its request id and trace
//! context settled, and it is passed to [`Backends::forward`] untouched.
//! One access log line per call (target `itsm_gateway::access`).
//!
//! Everything else goes to the HTTP router: `/healthz` (the gateway takes
//! calls; 503 once it drains: what load balancers follow), `/readyz` (every
//! backend answered its health check recently; 503 with each backend's state
//! otherwise: for people and monitoring), and the routes given to
//! [`Gateway::with_http`]: the REST mapping, OpenAPI and the Alertmanager
//! webhook, built over [`State`].
//!
//! Shutdown is staged as the services' own: readiness and health turn
//! NOT_SERVING, the gateway keeps serving for `shutdown_delay`, then stops
//! accepting and gives in-flight calls `shutdown_grace`.

mod body;

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use itsm_platform::{Config, Drain};
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;
use tower::ServiceExt;
use tower::util::BoxCloneSyncService;
use tracing::Instrument;

use self::body::{AccessLog, Limited, Observed};
use crate::backends::Backends;
use crate::edge::{Edge, REQUEST_ID};
use crate::telemetry;

/// What the HTTP side shares with its handlers (`rest::router(state)`):
/// the backends to call ([`Backends::unary`]), the edge to admit each call
/// ([`Edge::admit`]) and the body limit to enforce.
#[derive(Debug, Clone)]
pub struct State {
    pub backends: Backends,
    pub edge: Edge,
    /// Largest request body accepted, in bytes (413 above it).
    pub max_body: usize,
}

/// A note a REST handler may put in its response's extensions so that the
/// HTTP access log line names the caller and the backend.
#[derive(Debug, Clone)]
pub struct AccessNote {
    pub principal: String,
    pub backend: String,
}

type GrpcService = BoxCloneSyncService<
    http::Request<axum::body::Body>,
    http::Response<tonic::body::Body>,
    Infallible,
>;

/// The gateway being assembled.
#[derive(Debug)]
pub struct Gateway {
    state: State,
    addr: SocketAddr,
    http: Option<axum::Router>,
    shutdown_delay: Duration,
    shutdown_grace: Duration,
    probe_every: Duration,
    health: HealthReporter,
    local: Arc<HashMap<&'static str, GrpcService>>,
    draining: Arc<AtomicBool>,
}

impl Gateway {
    /// A gateway over `backends`, admitting calls through `edge`, with the
    /// address, body limit and timings of `config`.
    pub fn new(config: &Config, backends: Backends, edge: Edge) -> Self {
        telemetry::describe();
        let (health, health_service) = tonic_health::server::health_reporter();
        let mut local: HashMap<&'static str, GrpcService> = HashMap::new();
        local.insert(
            "grpc.health.v1.Health",
            BoxCloneSyncService::new(health_service),
        );
        let services = backends.services();
        // A backend given explicitly for one of these (tests) takes its calls.
        local.retain(|name, _| !services.iter().any(|s| s == name));
        let reflection = || {
            let mut builder = tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(itsm_proto::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
                .with_service_name("grpc.health.v1.Health");
            for name in &services {
                builder = builder.with_service_name(name.clone());
            }
            builder
        };
        match (reflection().build_v1(), reflection().build_v1alpha()) {
            (Ok(v1), Ok(v1alpha)) => {
                local.insert(
                    "grpc.reflection.v1.ServerReflection",
                    BoxCloneSyncService::new(v1),
                );
                local.insert(
                    "grpc.reflection.v1alpha.ServerReflection",
                    BoxCloneSyncService::new(v1alpha),
                );
            }
            (Err(error), _) | (_, Err(error)) => {
                tracing::warn!(%error, "server reflection is off: the descriptor set cannot be read");
            }
        }
        Self {
            state: State {
                backends,
                edge,
                max_body: config.gateway.max_body,
            },
            addr: config.gateway.addr,
            http: None,
            shutdown_delay: config.shutdown_delay,
            shutdown_grace: config.shutdown_grace,
            probe_every: config.gateway.probe_every,
            health,
            local: Arc::new(local),
            draining: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Listens on `addr` instead of the configured address (port 0 picks a free one).
    pub fn with_addr(mut self, addr: SocketAddr) -> Self {
        self.addr = addr;
        self
    }

    /// What HTTP handlers are built over.
    pub fn state(&self) -> State {
        self.state.clone()
    }

    /// Adds HTTP routes (REST, OpenAPI, webhooks). They are merged with the
    /// gateway's `/healthz` and `/readyz`, so they must not define those;
    /// their fallback (if any) answers unknown paths. Without one, unknown
    /// HTTP paths get a 404 naming the services.
    pub fn with_http(mut self, router: axum::Router) -> Self {
        self.http = Some(router);
        self
    }

    /// Everything the gateway answers, as one router (gRPC and HTTP).
    pub fn into_router(self) -> axum::Router {
        axum::Router::new().fallback_service(self.split())
    }

    fn split(&self) -> Split {
        let probes = Probes {
            backends: self.state.backends.clone(),
            draining: Arc::clone(&self.draining),
        };
        let draining = Arc::clone(&self.draining);
        let own = axum::Router::new()
            .route(
                "/healthz",
                axum::routing::get(move || {
                    let draining = draining.load(Ordering::Relaxed);
                    async move { healthz(draining) }
                }),
            )
            .route(
                "/readyz",
                axum::routing::get(move || {
                    let probes = probes.clone();
                    async move { probes.readyz() }
                }),
            );
        let http = match &self.http {
            Some(router) => own.merge(router.clone()),
            None => {
                let backends = self.state.backends.clone();
                own.fallback(move |uri: http::Uri| {
                    let backends = backends.clone();
                    async move { not_found(&backends, uri.path()) }
                })
            }
        };
        Split {
            http,
            grpc: Arc::new(Grpc {
                state: self.state.clone(),
                local: Arc::clone(&self.local),
            }),
        }
    }

    /// Binds the listening socket. A port in use is reported as such.
    pub async fn bind(self) -> Result<BoundGateway, GatewayError> {
        let addr = self.addr;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| match source.kind() {
                std::io::ErrorKind::AddrInUse => GatewayError::PortInUse { addr },
                _ => GatewayError::Bind { addr, source },
            })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| GatewayError::Bind { addr, source })?;
        Ok(BoundGateway {
            gateway: self,
            listener,
            local_addr,
        })
    }
}

/// A gateway whose socket is bound.
#[derive(Debug)]
pub struct BoundGateway {
    gateway: Gateway,
    listener: tokio::net::TcpListener,
    local_addr: SocketAddr,
}

impl BoundGateway {
    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `shutdown` completes, then drains (see the module docs).
    /// Checks the backends' health every probe interval meanwhile.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) -> Result<Drain, GatewayError> {
        let Self {
            gateway,
            listener,
            local_addr,
        } = self;
        let split = gateway.split();
        let stop_probes = tokio_util::sync::CancellationToken::new();
        let probes = tokio::spawn(run_probes(
            gateway.state.backends.clone(),
            gateway.health.clone(),
            gateway.probe_every,
            Arc::clone(&gateway.draining),
            stop_probes.clone(),
        ));
        let _stop_probes = stop_probes.clone().drop_guard();
        tracing::info!(
            addr = %local_addr,
            services = ?gateway.state.backends.services(),
            "gateway serving gRPC and HTTP"
        );

        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        let mut accept = Box::pin(async {
            loop {
                let (stream, _) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // Out of file descriptors and the like: wait, do not spin.
                        tracing::warn!(%error, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let service = TowerToHyperService::new(split.clone().map_request(
                    |r: http::Request<hyper::body::Incoming>| r.map(axum::body::Body::new),
                ));
                let connection = builder
                    .serve_connection(TokioIo::new(stream), service)
                    .into_owned();
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    if let Err(error) = connection.await {
                        tracing::debug!(%error, "connection ended with an error");
                    }
                });
            }
        });
        tokio::select! {
            () = &mut accept => {}
            () = shutdown => {}
        }

        gateway.draining.store(true, Ordering::Relaxed);
        set_all(
            &gateway.health,
            &gateway.state.backends,
            ServingStatus::NotServing,
        )
        .await;
        if !gateway.shutdown_delay.is_zero() {
            tracing::info!(delay = ?gateway.shutdown_delay, "readiness is off; still accepting calls while load balancers catch up");
            tokio::select! {
                () = &mut accept => {}
                () = tokio::time::sleep(gateway.shutdown_delay) => {}
            }
        }
        drop(accept);
        drop(listener);
        stop_probes.cancel();
        let _ = probes.await;
        tracing::info!(grace = ?gateway.shutdown_grace, "refusing new connections; draining in-flight calls");
        match tokio::time::timeout(gateway.shutdown_grace, graceful.shutdown()).await {
            Ok(()) => {
                tracing::info!("every in-flight call completed; stopped");
                Ok(Drain::Complete)
            }
            Err(_) => {
                tracing::warn!(grace = ?gateway.shutdown_grace, "calls still in flight when the grace period ran out; abandoning them");
                Ok(Drain::Abandoned)
            }
        }
    }
}

/// Checks the backends every `every` and mirrors the result on grpc.health.v1:
/// each backend service SERVING when its backend is ready, "" when all are.
async fn run_probes(
    backends: Backends,
    health: HealthReporter,
    every: Duration,
    draining: Arc<AtomicBool>,
    stop: tokio_util::sync::CancellationToken,
) {
    let mut was_ready: Option<bool> = None;
    loop {
        tokio::select! {
            () = backends.probe() => {}
            () = stop.cancelled() => return,
        }
        if draining.load(Ordering::Relaxed) {
            return;
        }
        let statuses = backends.status();
        for status in &statuses {
            metrics::gauge!(telemetry::BACKEND_READY, "backend" => status.name.clone())
                .set(if status.ready { 1.0 } else { 0.0 });
            let serving = if status.ready {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            };
            for service in &status.services {
                health.set_service_status(service, serving).await;
            }
        }
        let ready = statuses.iter().all(|s| s.ready);
        health
            .set_service_status(
                "",
                if ready {
                    ServingStatus::Serving
                } else {
                    ServingStatus::NotServing
                },
            )
            .await;
        if was_ready != Some(ready) {
            let down: Vec<&str> = statuses
                .iter()
                .filter(|s| !s.ready)
                .map(|s| s.name.as_str())
                .collect();
            if ready {
                tracing::info!("gateway ready: every backend answers its health check");
            } else {
                tracing::warn!(
                    ?down,
                    "gateway not ready: backends not answering their health check"
                );
            }
            was_ready = Some(ready);
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = stop.cancelled() => return,
        }
    }
}

async fn set_all(health: &HealthReporter, backends: &Backends, status: ServingStatus) {
    for service in backends.services() {
        health.set_service_status(service, status).await;
    }
    health.set_service_status("", status).await;
}

#[derive(Debug, Clone)]
struct Probes {
    backends: Backends,
    draining: Arc<AtomicBool>,
}

impl Probes {
    fn readyz(&self) -> Response {
        let backends = self.backends.status();
        let draining = self.draining.load(Ordering::Relaxed);
        let ready = !draining && backends.iter().all(|b| b.ready);
        let code = if ready {
            http::StatusCode::OK
        } else {
            http::StatusCode::SERVICE_UNAVAILABLE
        };
        let body = serde_json::json!({
            "ready": ready,
            "draining": draining,
            "backends": backends,
        });
        (code, axum::Json(body)).into_response()
    }
}

/// The gateway itself: 200 while it takes calls, 503 once it drains. This is
/// what a load balancer's readiness should follow: `/readyz` fails when any
/// one backend is down, and taking every gateway out of rotation for that
/// would cut off the practices that work too.
fn healthz(draining: bool) -> Response {
    if draining {
        let body = serde_json::json!({"status": "draining"});
        (http::StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response()
    } else {
        axum::Json(serde_json::json!({"status": "ok"})).into_response()
    }
}

fn not_found(backends: &Backends, path: &str) -> Response {
    let body = serde_json::json!({
        "code": "NOT_FOUND",
        "message": format!(
            "no route for {path}: this gateway serves {}",
            backends.services().join(", ")
        ),
        "services": backends.services(),
    });
    (http::StatusCode::NOT_FOUND, axum::Json(body)).into_response()
}

/// Sends gRPC calls one way and everything else the other.
#[derive(Debug, Clone)]
struct Split {
    http: axum::Router,
    grpc: Arc<Grpc>,
}

impl tower::Service<http::Request<axum::body::Body>> for Split {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<axum::body::Body>) -> Self::Future {
        if is_grpc(request.headers()) {
            let grpc = Arc::clone(&self.grpc);
            Box::pin(async move { Ok(grpc.call(request).await) })
        } else {
            let http = self.http.clone();
            Box::pin(async move {
                let method = request.method().clone();
                let path = request.uri().path().to_owned();
                let started = Instant::now();
                let response = http.oneshot(request).await;
                if let Ok(response) = &response
                    && path != "/healthz"
                    && path != "/readyz"
                {
                    let note = response.extensions().get::<AccessNote>();
                    tracing::info!(
                        target: "itsm_gateway::access",
                        method = %method,
                        path = %path,
                        principal = note.map_or("-", |n| n.principal.as_str()),
                        status = response.status().as_u16(),
                        duration_ms = started.elapsed().as_secs_f64() * 1000.0,
                        backend = note.map_or("-", |n| n.backend.as_str()),
                        "http call"
                    );
                }
                response
            })
        }
    }
}

fn is_grpc(headers: &http::HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.starts_with("application/grpc") && !ct.starts_with("application/grpc-web")
        })
}

#[derive(Debug)]
struct Grpc {
    state: State,
    local: Arc<HashMap<&'static str, GrpcService>>,
}

impl Grpc {
    async fn call(&self, request: http::Request<axum::body::Body>) -> Response {
        let started = Instant::now();
        let path = request.uri().path().to_owned();
        let (service, _) = telemetry::rpc_names(&path);
        if let Some(local) = self.local.get(service) {
            return match local.clone().oneshot(request).await {
                Ok(response) => response.map(axum::body::Body::new),
                Err(never) => match never {},
            };
        }
        let span = telemetry::grpc_span(&path, request.headers());
        let log = AccessLog {
            service: self.state.backends.service_label(service),
            method: path,
            principal: "-".to_owned(),
            backend: "-".to_owned(),
            request_id: String::new(),
            started,
            status: None,
            span: span.clone(),
            hop: tracing::Span::none(),
        };
        self.proxy(request, log).instrument(span).await
    }

    /// Admits the call and passes it to its backend; the response streams
    /// back through [`Observed`], which tells about the call when it ends.
    async fn proxy(
        &self,
        mut request: http::Request<axum::body::Body>,
        mut log: AccessLog,
    ) -> Response {
        let admitted = match self.state.edge.admit(request.headers(), &log.method).await {
            Ok(admitted) => admitted,
            Err(status) => return refuse(status, log),
        };
        log.span.record("request_id", admitted.request_id.as_str());
        log.span
            .record("enduser.id", admitted.principal.subject.as_str());
        log.principal = admitted.principal.subject;
        log.request_id = admitted.request_id;
        let request_id = http::HeaderValue::try_from(log.request_id.as_str()).ok();
        if let Some(id) = &request_id {
            request.headers_mut().insert(REQUEST_ID, id.clone());
        }

        let (parts, body) = request.into_parts();
        let limit = self.state.max_body;
        let body = if self.state.backends.is_client_streaming(&log.method) {
            Limited::streaming(body, limit)
        } else {
            match Limited::new(body, limit).await {
                Ok(body) => body,
                Err(status) => return refuse(status, log),
            }
        };
        let request = http::Request::from_parts(parts, tonic::body::Body::new(body));
        let forwarded = self.state.backends.forward(request).await;
        if let Some(backend) = forwarded.backend {
            log.backend = backend;
        }
        log.hop = forwarded.hop;
        let mut response = match forwarded.result {
            Ok(response) => response,
            Err(status) => return refuse(status, log),
        };
        if let Some(id) = request_id {
            response.headers_mut().insert(REQUEST_ID, id);
        }
        // Trailers-only responses carry the status in the headers.
        log.status = response
            .headers()
            .get("grpc-status")
            .map(|code| tonic::Code::from_bytes(code.as_bytes()));
        response.map(|body| axum::body::Body::new(Observed::new(body, log)))
    }
}

/// The gateway answers in the backend's place (trailers-only), and logs it.
fn refuse(status: tonic::Status, mut log: AccessLog) -> Response {
    let code = status.code();
    log.status = Some(code);
    let request_id = std::mem::take(&mut log.request_id);
    let mut response = status.into_http::<tonic::body::Body>();
    if !request_id.is_empty()
        && let Ok(id) = http::HeaderValue::try_from(request_id.as_str())
    {
        response.headers_mut().insert(REQUEST_ID, id);
    }
    log.request_id = request_id;
    log.emit("refused", code);
    response.map(axum::body::Body::new)
}

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("port {} is already in use (address {addr}): stop the other process or set ITSM_GATEWAY_ADDR", addr.port())]
    PortInUse { addr: SocketAddr },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}
