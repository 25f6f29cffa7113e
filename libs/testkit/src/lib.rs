//! Test helpers shared by every crate's tests: start a set of services
//! in-process on a free loopback port, call them over a real socket, stop them
//! the way a signal would.
//!
//! Only tests depend on this crate. It fails loudly (panics) when the test
//! environment is broken: a test cannot go on without its database.
#![allow(clippy::expect_used, clippy::panic)]

mod db;
pub mod otlp;

pub use db::{TestDb, redis_url, unique_prefix};

use std::net::SocketAddr;
use std::time::Duration;

use itsm_platform::config::{Config, Mode};
use itsm_platform::{Drain, GrpcServer, ServerError};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::{Channel, Endpoint};

/// Configuration for a test server: production defaults, a free loopback
/// port, and a short grace period so a stuck drain fails fast.
pub fn test_config() -> Config {
    Config {
        grpc_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        shutdown_grace: Duration::from_secs(5),
        ..Config::defaults(Mode::Serve)
    }
}

/// A server running on a background task, stopped by [`TestServer::begin_shutdown`]
/// as SIGTERM would stop it.
#[derive(Debug)]
pub struct TestServer {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<Drain, ServerError>>,
}

impl TestServer {
    /// Binds `server` and serves it until shutdown is asked for.
    pub async fn start(server: GrpcServer) -> Result<Self, ServerError> {
        let bound = server.bind().await?;
        let addr = bound.local_addr();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(bound.serve(async {
            let _ = stopped.await;
        }));
        Ok(Self {
            addr,
            stop: Some(stop),
            task,
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A new connection to the server (each call opens its own HTTP/2 connection).
    pub async fn connect(&self) -> Result<Channel, tonic::transport::Error> {
        Endpoint::from_shared(format!("http://{}", self.addr))?
            .connect_timeout(Duration::from_secs(5))
            .connect()
            .await
    }

    /// Starts the shutdown sequence, as a signal would. Idempotent.
    pub fn begin_shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Waits for the server to stop after [`TestServer::begin_shutdown`].
    pub async fn stopped(self) -> Result<Drain, ServerError> {
        match self.task.await {
            Ok(result) => result,
            Err(join) => std::panic::resume_unwind(join.into_panic()),
        }
    }

    /// Begins shutdown and waits for the server to stop.
    pub async fn shutdown(mut self) -> Result<Drain, ServerError> {
        self.begin_shutdown();
        self.stopped().await
    }
}
