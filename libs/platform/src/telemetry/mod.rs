//! Logging: human lines in `itsm dev`, one JSON object per line in production.

pub mod propagation;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::{Config, LogFormat};

/// Keeps telemetry alive; dropping it flushes what is buffered. Hold it in
/// `main` until the process exits.
#[derive(Debug)]
#[must_use = "telemetry is flushed when the guard drops"]
pub struct TelemetryGuard(());

/// Installs the global subscriber. Fails when one is installed already.
pub fn init(config: &Config) -> Result<TelemetryGuard, TelemetryError> {
    // The filter was validated when the config was loaded.
    let filter = EnvFilter::try_new(&config.log).map_err(|e| TelemetryError(e.to_string()))?;
    let registry = tracing_subscriber::registry().with(filter);
    let result = match config.log_format {
        LogFormat::Text => registry
            .with(tracing_subscriber::fmt::layer().with_target(false))
            .try_init(),
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_current_span(true)
                    .with_span_list(false),
            )
            .try_init(),
    };
    result.map_err(|e| TelemetryError(e.to_string()))?;
    Ok(TelemetryGuard(()))
}

/// The subscriber could not be installed.
#[derive(Debug, thiserror::Error)]
#[error("cannot start logging: {0}")]
pub struct TelemetryError(String);
