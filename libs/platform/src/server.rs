//! The gRPC server every service runs.
//!
//! Besides the practice's own service it always serves `grpc.health.v1` (so
//! Kubernetes gRPC probes and load balancers work) and server reflection (so
//! grpcurl works with no proto files), gives every call a request id
//! (`x-request-id`, generated when the caller sent none, echoed on the
//! response) and a tracing span, and bounds every call with a timeout.
//!
//! Shutdown is staged so that no accepted call is lost: health flips to
//! NOT_SERVING first and the server keeps serving for `shutdown_delay` (load
//! balancers stop routing here); then new calls are refused and in-flight ones
//! get `shutdown_grace` to finish.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tonic::server::NamedService;
use tonic::service::RoutesBuilder;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnFailure, MakeSpan, TraceLayer};
use tracing::{Level, Span};

use crate::config::Config;
use crate::deadline::DeadlineLayer;

/// The header carrying the request id on every call and response.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The timing settings of a server, taken from [`Config`].
#[derive(Debug, Clone)]
struct Settings {
    addr: SocketAddr,
    request_timeout: Duration,
    shutdown_delay: Duration,
    shutdown_grace: Duration,
}

/// A gRPC server being assembled: the services it will serve and its settings.
#[derive(Debug)]
pub struct GrpcServer {
    settings: Settings,
    routes: RoutesBuilder,
    names: Vec<&'static str>,
}

impl GrpcServer {
    /// A server with the address and timings of `config` and no services yet.
    pub fn new(config: &Config) -> Self {
        Self {
            settings: Settings {
                addr: config.grpc_addr,
                request_timeout: config.request_timeout,
                shutdown_delay: config.shutdown_delay,
                shutdown_grace: config.shutdown_grace,
            },
            routes: RoutesBuilder::default(),
            names: Vec::new(),
        }
    }

    /// Listens on `addr` instead of the configured address (port 0 picks a free one).
    pub fn with_addr(mut self, addr: SocketAddr) -> Self {
        self.settings.addr = addr;
        self
    }

    /// Adds a generated tonic service. Its name is reported on health and reflection.
    pub fn add_service<S>(mut self, service: S) -> Self
    where
        S: tower::Service<
                http::Request<tonic::body::Body>,
                Response = http::Response<tonic::body::Body>,
                Error = Infallible,
            > + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        self.names.push(S::NAME);
        self.routes.add_service(service);
        self
    }

    /// The fully-qualified names of the services added so far.
    pub fn service_names(&self) -> &[&'static str] {
        &self.names
    }

    /// Binds the listening socket. A port in use is reported as such, by number.
    pub async fn bind(self) -> Result<BoundServer, ServerError> {
        let addr = self.settings.addr;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| match source.kind() {
                std::io::ErrorKind::AddrInUse => ServerError::PortInUse { addr },
                _ => ServerError::Bind { addr, source },
            })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| ServerError::Bind { addr, source })?;
        Ok(BoundServer {
            server: self,
            listener,
            local_addr,
        })
    }
}

/// A server whose socket is bound: calls are queued by the kernel until [`BoundServer::serve`].
#[derive(Debug)]
pub struct BoundServer {
    server: GrpcServer,
    listener: tokio::net::TcpListener,
    local_addr: SocketAddr,
}

/// How a shutdown ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drain {
    /// Every in-flight call completed within the grace period.
    Complete,
    /// The grace period ran out with calls still in flight; they were abandoned.
    Abandoned,
}

impl BoundServer {
    /// The address actually bound (the port is known here when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `shutdown` completes, then drains as the module docs describe.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) -> Result<Drain, ServerError> {
        let Self {
            server,
            listener,
            local_addr,
        } = self;
        let GrpcServer {
            settings,
            mut routes,
            names,
        } = server;

        let (health, health_service) = tonic_health::server::health_reporter();
        set_health(&health, &names, ServingStatus::Serving).await;

        let reflection = || {
            let mut builder = tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(itsm_proto::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
                .with_service_name(HEALTH_SERVICE);
            for name in &names {
                builder = builder.with_service_name(*name);
            }
            builder
        };
        routes
            .add_service(health_service)
            .add_service(reflection().build_v1()?)
            .add_service(reflection().build_v1alpha()?);

        let layers = tower::ServiceBuilder::new()
            .layer(crate::metrics::rpc::RpcMetricsLayer::new(
                names.iter().copied().chain(INTERNAL_SERVICES),
            ))
            .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
            .layer(PropagateRequestIdLayer::x_request_id())
            .layer(
                TraceLayer::new_for_grpc()
                    .make_span_with(RpcSpan)
                    .on_response(|response: &http::Response<_>, _latency, span: &Span| {
                        record_grpc_status(response.headers(), span);
                    })
                    .on_eos(
                        |trailers: Option<&http::HeaderMap>, _duration, span: &Span| {
                            if let Some(trailers) = trailers {
                                record_grpc_status(trailers, span);
                            }
                        },
                    )
                    // Client errors (NOT_FOUND, INVALID_ARGUMENT...) are not the
                    // operator's problem; real faults are logged where they happen.
                    .on_failure(DefaultOnFailure::new().level(Level::DEBUG)),
            )
            .layer(DeadlineLayer::new(settings.request_timeout));

        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
        let serving = Server::builder()
            .layer(layers)
            .add_routes(routes.routes())
            .serve_with_incoming_shutdown(incoming, async {
                // A dropped sender means the same as a sent stop.
                let _ = stopped.await;
            });
        tokio::pin!(serving);
        tracing::info!(addr = %local_addr, services = ?names, "serving gRPC");

        tokio::select! {
            result = &mut serving => {
                result?;
                return Ok(Drain::Complete);
            }
            () = shutdown => {}
        }

        set_health(&health, &names, ServingStatus::NotServing).await;
        if !settings.shutdown_delay.is_zero() {
            tracing::info!(
                delay = ?settings.shutdown_delay,
                "health is NOT_SERVING; still accepting calls while load balancers catch up"
            );
            tokio::select! {
                result = &mut serving => {
                    result?;
                    return Ok(Drain::Complete);
                }
                () = tokio::time::sleep(settings.shutdown_delay) => {}
            }
        }

        tracing::info!(grace = ?settings.shutdown_grace, "refusing new calls; draining in-flight ones");
        let _ = stop.send(());
        match tokio::time::timeout(settings.shutdown_grace, &mut serving).await {
            Ok(result) => {
                result?;
                tracing::info!("every in-flight call completed; stopped");
                Ok(Drain::Complete)
            }
            Err(_) => {
                tracing::warn!(
                    grace = ?settings.shutdown_grace,
                    "calls still in flight when the grace period ran out; abandoning them"
                );
                Ok(Drain::Abandoned)
            }
        }
    }
}

const HEALTH_SERVICE: &str = "grpc.health.v1.Health";

/// What every server serves besides the practice's services.
const INTERNAL_SERVICES: [&str; 3] = [
    HEALTH_SERVICE,
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
];

/// Sets every service's status and the overall one ("").
async fn set_health(health: &HealthReporter, names: &[&'static str], status: ServingStatus) {
    for name in names {
        health.set_service_status(*name, status).await;
    }
    health.set_service_status("", status).await;
}

/// One span per call, carrying the request id, the OpenTelemetry RPC
/// attributes and the caller's trace: the span continues the W3C context the
/// request arrived with (`traceparent`), so a call made from a traced process
/// joins its trace.
#[derive(Debug, Clone, Copy)]
struct RpcSpan;

impl<B> MakeSpan<B> for RpcSpan {
    fn make_span(&mut self, request: &http::Request<B>) -> Span {
        let request_id = request
            .headers()
            .get(REQUEST_ID_HEADER)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default();
        let (service, method) = rpc_names(request.uri().path());
        if service == HEALTH_SERVICE {
            // Probes every few seconds: below `info`, so neither logged nor
            // exported as traces of their own.
            return tracing::debug_span!(
                "rpc",
                rpc.system = "grpc",
                rpc.service = %service,
                rpc.method = %method,
                request_id = %request_id,
            );
        }
        let span = tracing::info_span!(
            "rpc",
            otel.name = %format_args!("{service}/{method}"),
            otel.kind = "server",
            otel.status_code = tracing::field::Empty,
            rpc.system = "grpc",
            rpc.service = %service,
            rpc.method = %method,
            rpc.grpc.status_code = tracing::field::Empty,
            server.address = tracing::field::Empty,
            server.port = tracing::field::Empty,
            client.address = tracing::field::Empty,
            client.port = tracing::field::Empty,
            request_id = %request_id,
        );
        if let Some(authority) = request.uri().authority() {
            span.record("server.address", authority.host());
            if let Some(port) = authority.port_u16() {
                span.record("server.port", port);
            }
        }
        if let Some(peer) = request
            .extensions()
            .get::<tonic::transport::server::TcpConnectInfo>()
            .and_then(tonic::transport::server::TcpConnectInfo::remote_addr)
        {
            span.record("client.address", tracing::field::display(peer.ip()));
            span.record("client.port", peer.port());
        }
        crate::telemetry::propagation::set_parent_from_headers(&span, request.headers());
        span
    }
}

/// `(service, method)` from a gRPC path, `/pkg.Service/Method`.
pub(crate) fn rpc_names(path: &str) -> (&str, &str) {
    let path = path.strip_prefix('/').unwrap_or(path);
    path.split_once('/').unwrap_or((path, ""))
}

/// Records the call's gRPC status on its span: from the response headers
/// when the call failed before any message (tonic sends `grpc-status` there),
/// from the trailers otherwise.
fn record_grpc_status(headers: &http::HeaderMap, span: &Span) {
    let Some(code) = headers
        .get("grpc-status")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<i32>().ok())
    else {
        return;
    };
    span.record("rpc.grpc.status_code", code);
    if is_server_fault(tonic::Code::from_i32(code)) {
        span.record("otel.status_code", "ERROR");
    }
}

/// The codes that mean the server failed (OpenTelemetry's RPC conventions);
/// the others are the caller's doing and leave the span's status unset.
pub(crate) fn is_server_fault(code: tonic::Code) -> bool {
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

/// Why a server could not start or stopped on its own.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("port {} is already in use (address {addr}): stop the other process or set ITSM_GRPC_ADDR", addr.port())]
    PortInUse { addr: SocketAddr },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("server reflection cannot be built from the descriptor set: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}
