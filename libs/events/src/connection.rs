//! Connections to Redis, shared by the bus and the cache.
//!
//! A [`ConnectionManager`] reconnects by itself after Redis restarts. The
//! timeouts set here make a call against a dead or unreachable Redis fail in
//! a second or two instead of hanging the relay, a consumer or a request.
//! Errors name the server as `host:port`, never the URL: it may hold a password.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, RedisError};

use crate::error::BusError;

/// A parsed Redis URL and the name errors give it.
#[derive(Clone)]
pub(crate) struct Endpoint {
    client: Client,
    target: Arc<str>,
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

impl Endpoint {
    /// Parses `url` without connecting.
    pub(crate) fn parse(url: &str) -> Result<Self, BusError> {
        let client = Client::open(url).map_err(|error| BusError::InvalidUrl {
            reason: error.to_string(),
        })?;
        let target = client.get_connection_info().addr().to_string().into();
        Ok(Self { client, target })
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
