//! Connections to Redis, shared by the bus and the cache.
//!
//! A [`ConnectionManager`] reconnects by itself after Redis restarts. The
//! timeouts set here make a call against a dead or unreachable Redis fail in
//! a second or two instead of hanging the relay, a consumer or a request.
//! Errors name the server as `host:port`, never the URL: it may hold a password.
//!
//! Every command goes through [`Endpoint::observe`]: a client span with the
//! attributes the OpenTelemetry database conventions name for Redis, and the
//! `itsm_redis_command_*` metrics.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, ConnectionAddr, RedisError};
use tracing::Instrument as _;

use crate::error::BusError;
use crate::metrics;

/// A parsed Redis URL and the name errors give it.
#[derive(Clone)]
pub(crate) struct Endpoint {
    client: Client,
    target: Arc<str>,
    /// `server.address` and `server.port` of the spans.
    host: Arc<str>,
    port: u16,
}

/// One Redis command (or pipeline) as spans and metrics name it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Command {
    /// The Redis command, `XADD`: the span's name, `db.operation.name` and
    /// the `command` label. A pipeline of one command is named after it; a
    /// transaction of several, `MULTI`.
    pub name: &'static str,
    /// A command a consumer sends on every poll whether or not anything
    /// arrived (twice a second, forever): its span is at DEBUG, so the trace
    /// store is not flooded with one-span traces of idle polling. Its metrics
    /// are recorded all the same.
    pub polling: bool,
}

/// How long one connection may take to connect and to answer.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Timeouts {
    pub connect: Duration,
    pub response: Duration,
    /// Connection attempts after the first when (re)connecting. Each costs up
    /// to `connect`, so this stays small: fail fast, let the caller retry.
    pub retries: usize,
}

/// The span of one command; the fields are static strings and numbers, so an
/// unexported span costs no allocation of its own.
macro_rules! redis_span {
    ($level:expr, $endpoint:expr, $command:expr) => {
        tracing::span!(
            $level,
            "redis",
            otel.name = $command.name,
            otel.kind = "client",
            otel.status_code = tracing::field::Empty,
            db.system.name = "redis",
            db.operation.name = $command.name,
            db.operation.batch.size = tracing::field::Empty,
            server.address = &*$endpoint.host,
            server.port = i64::from($endpoint.port),
            error.type = tracing::field::Empty,
        )
    };
}

impl Endpoint {
    /// Parses `url` without connecting.
    pub(crate) fn parse(url: &str) -> Result<Self, BusError> {
        let client = Client::open(url).map_err(|error| BusError::InvalidUrl {
            reason: error.to_string(),
        })?;
        let addr = client.get_connection_info().addr();
        let target = addr.to_string().into();
        let (host, port) = match addr {
            ConnectionAddr::Tcp(host, port) | ConnectionAddr::TcpTls { host, port, .. } => {
                (host.as_str().into(), *port)
            }
            ConnectionAddr::Unix(path) => (path.to_string_lossy().into(), 0),
            // A future transport: name it as Redis formats it.
            _ => (Arc::clone(&target), 0),
        };
        Ok(Self {
            client,
            target,
            host,
            port,
        })
    }

    /// Runs `call`, one `command` to this server, in a client span, and
    /// records its duration and whether it failed. `expected` names the
    /// error codes the caller treats as an answer rather than a failure (the
    /// `BUSYGROUP` of creating a group that exists).
    pub(crate) async fn observe<T>(
        &self,
        command: Command,
        batch: usize,
        expected: &[&str],
        call: impl Future<Output = Result<T, RedisError>>,
    ) -> Result<T, RedisError> {
        let span = if command.polling {
            redis_span!(tracing::Level::DEBUG, self, command)
        } else {
            redis_span!(tracing::Level::INFO, self, command)
        };
        if batch > 1 {
            span.record("db.operation.batch.size", batch);
        }
        let started = Instant::now();
        let result = call.instrument(span.clone()).await;
        let failed = match &result {
            Err(error) if !error.code().is_some_and(|code| expected.contains(&code)) => {
                span.record("error.type", error_type(error));
                span.record("otel.status_code", "ERROR");
                true
            }
            _ => false,
        };
        metrics::redis_command(command.name, started.elapsed(), failed);
        result
    }

    /// `host:port`, for messages and logs.
    pub(crate) fn target(&self) -> &str {
        &self.target
    }

    /// A connection that connects on first use, so a service starts while
    /// Redis is down and catches up when it returns. Must run inside Tokio.
    pub(crate) fn manager(&self, timeouts: Timeouts) -> Result<ConnectionManager, BusError> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeouts.connect))
            .set_response_timeout(Some(timeouts.response))
            .set_number_of_retries(timeouts.retries)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(200));
        ConnectionManager::new_lazy_with_config(self.client.clone(), config)
            .map_err(|error| self.error("connect", timeouts.response, error))
    }

    /// Classifies a Redis error for the person on call.
    pub(crate) fn error(
        &self,
        operation: &'static str,
        after: Duration,
        error: RedisError,
    ) -> BusError {
        let target = self.target.to_string();
        if error.is_timeout() {
            BusError::Timeout {
                target,
                operation,
                after,
            }
        } else if is_transport(&error) || is_transient_refusal(&error) {
            BusError::Unavailable {
                target,
                operation,
                reason: error.to_string(),
            }
        } else {
            BusError::Redis {
                target,
                operation,
                source: error,
            }
        }
    }
}

impl std::fmt::Debug for Endpoint {
    // The client's own Debug would print the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("target", &self.target)
            .finish()
    }
}

/// The `error.type` of a failed command: Redis's error code (`NOGROUP`,
/// `LOADING`), or what went wrong on the way.
fn error_type(error: &RedisError) -> &str {
    if let Some(code) = error.code() {
        code
    } else if error.is_timeout() {
        "timeout"
    } else if is_transport(error) {
        "connection"
    } else {
        "response"
    }
}

/// True for errors that mean "the connection is gone or slow", as opposed to
/// Redis answering with an error.
pub(crate) fn is_transport(error: &RedisError) -> bool {
    error.is_timeout()
        || error.is_io_error()
        || error.is_connection_refusal()
        || error.is_connection_dropped()
}

/// Redis answering "not now": loading its data after a restart, or a replica
/// mid-failover. As good as unreachable for the caller: retry later.
fn is_transient_refusal(error: &RedisError) -> bool {
    matches!(
        error.code(),
        Some("LOADING" | "TRYAGAIN" | "MASTERDOWN" | "READONLY" | "CLUSTERDOWN")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_never_shows() {
        let endpoint = Endpoint::parse("redis://:hunter2@cache.internal:6380/1").unwrap();
        assert_eq!(endpoint.target(), "cache.internal:6380");
        assert!(!format!("{endpoint:?}").contains("hunter2"));

        let error = Endpoint::parse("redis://:hunter2@cache.internal:port").unwrap_err();
        assert!(matches!(error, BusError::InvalidUrl { .. }), "{error}");
        assert!(!error.to_string().contains("hunter2"), "{error}");
    }
}
