//! The scrape endpoint: `GET /metrics` answers the recorder's contents in the
//! Prometheus text format 0.0.4; every other path is 404. Plain HTTP/1.1 on
//! its own port, no authentication (what Prometheus and its Kubernetes
//! service discovery expect; the port is not exposed outside the cluster).

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;

use super::MetricsError;

/// The content type of the text exposition format.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// How often the recorder folds pending histogram samples and drops idle
/// series, whether or not anyone scrapes (keeps memory bounded).
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// A metrics server about to bind.
#[derive(Debug)]
pub struct MetricsServer {
    addr: SocketAddr,
    handle: PrometheusHandle,
}

impl MetricsServer {
    /// A server of `handle`'s metrics on `addr` (port 0 picks a free one).
    pub fn new(addr: SocketAddr, handle: PrometheusHandle) -> Self {
        Self { addr, handle }
    }

    /// Binds the socket; a port in use is reported by number.
    pub async fn bind(self) -> Result<BoundMetricsServer, MetricsError> {
        let addr = self.addr;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| match source.kind() {
                std::io::ErrorKind::AddrInUse => MetricsError::PortInUse { addr },
                _ => MetricsError::Bind { addr, source },
            })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| MetricsError::Bind { addr, source })?;
        Ok(BoundMetricsServer {
            listener,
            local_addr,
            handle: self.handle,
        })
    }
}

/// A bound metrics server; [`BoundMetricsServer::serve`] answers scrapes.
#[derive(Debug)]
pub struct BoundMetricsServer {
    listener: tokio::net::TcpListener,
    local_addr: SocketAddr,
    handle: PrometheusHandle,
}

impl BoundMetricsServer {
    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Answers scrapes until `shutdown` completes; a scrape under way finishes.
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send + 'static) {
        let Self {
            listener,
            local_addr,
            handle,
        } = self;
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let upkeep = tokio::spawn({
            let handle = handle.clone();
            let mut stopped = stopped.clone();
            async move {
                let mut every = tokio::time::interval(UPKEEP_EVERY);
                loop {
                    tokio::select! {
                        _ = every.tick() => handle.run_upkeep(),
                        _ = stopped.changed() => return,
                    }
                }
            }
        });
        let router = Router::new()
            .route("/metrics", get(scrape))
            .with_state(handle);
        tracing::info!(addr = %local_addr, "serving metrics");
        let served = axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await;
        if let Err(error) = served {
            tracing::warn!(%error, addr = %local_addr, "the metrics server stopped with an error");
        }
        let _ = stop.send(true);
        let _ = upkeep.await;
    }
}

async fn scrape(State(handle): State<PrometheusHandle>) -> impl IntoResponse {
    ([(CONTENT_TYPE, TEXT_FORMAT)], handle.render())
}
