//! What can go wrong on the bus, worded for the person on call.
//!
//! The cache has no error type on purpose: a cache failure is a miss.

use std::time::Duration;

/// A bus operation failed. The relay and consumers retry with backoff on
/// [`BusError::is_unavailable`]; anything else is a bug or a misconfiguration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BusError {
    /// The Redis URL could not be parsed. The URL itself is never echoed: it may hold a password.
    #[error(
        "the redis url is not valid ({reason}); expected redis://[user:password@]host:port[/db]"
    )]
    InvalidUrl {
        /// What the parser objected to.
        reason: String,
    },
    /// Redis refused the connection or dropped it.
    #[error("redis at {target} is unreachable ({operation}): {reason}")]
    Unavailable {
        /// `host:port` (never the password).
        target: String,
        /// The command or step that failed, e.g. `publish`.
        operation: &'static str,
        /// The transport error.
        reason: String,
    },
    /// Redis did not answer in time: overloaded, paused, or the network drops packets.
    #[error("redis at {target} did not answer {operation} within {}", format_duration(*.after))]
    Timeout {
        /// `host:port` (never the password).
        target: String,
        /// The command or step that timed out.
        operation: &'static str,
        /// The limit that was exceeded.
        after: Duration,
    },
    /// Redis answered with an error (wrong key type, out of memory, ...).
    #[error("redis at {target} rejected {operation}: {source}")]
    Redis {
        /// `host:port` (never the password).
        target: String,
        /// The command that was rejected.
        operation: &'static str,
        /// The error Redis returned.
        source: redis::RedisError,
    },
    /// The consumer group was never created on the stream (see `EventBus::ensure_group`).
    #[error("consumer group {group:?} does not exist on stream {stream:?}")]
    NoGroup {
        /// The stream asked about.
        stream: String,
        /// The group that is missing.
        group: String,
    },
    /// A delivery id that this bus never issued was passed to `ack` or `dead_letter`.
    #[error("{0:?} is not a delivery id this bus issued")]
    InvalidDeliveryId(String),
}

impl BusError {
    /// True when the backend is down or slow: retry later, the data is safe where it is.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable { .. } | Self::Timeout { .. })
    }
}

/// `2s`, `250ms`: how people write timeouts in configuration.
pub(crate) fn format_duration(duration: Duration) -> String {
    if duration.subsec_millis() == 0 && duration.as_secs() > 0 {
        format!("{}s", duration.as_secs())
    } else {
        format!("{}ms", duration.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_read_like_configuration() {
        let error = BusError::Timeout {
            target: "10.0.0.7:6379".into(),
            operation: "publish",
            after: Duration::from_secs(2),
        };
        assert_eq!(
            error.to_string(),
            "redis at 10.0.0.7:6379 did not answer publish within 2s"
        );
        assert!(error.is_unavailable());
        assert_eq!(format_duration(Duration::from_millis(250)), "250ms");
    }
}
