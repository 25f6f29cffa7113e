//! Logging and tracing: human lines in `itsm dev`, one JSON object per line
//! in production, and OpenTelemetry traces over OTLP/gRPC when the standard
//! `OTEL_*` environment asks for them.
//!
//! Filters are per layer: the log layer keeps the `log` setting, while the
//! OpenTelemetry layers see our own crates at `info` and every SQL statement
//! (`sqlx::query` at `debug`), whatever the log level. With no exporter
//! configured no OpenTelemetry layer is installed at all: spans then cost
//! what logging costs and carry no trace context.

mod export;
mod json;
pub mod propagation;
mod sql;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use tracing::Level;
use tracing::dispatcher::WeakDispatch;
use tracing_subscriber::filter::{LevelFilter, Targets, filter_fn};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::{Config, LogFormat};

pub use export::ExportSettings;

/// How long shutting telemetry down may take: spans still queued are sent
/// within this, or dropped.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// Keeps telemetry alive; dropping it flushes the spans still queued and
/// shuts the exporter down. Hold it in `main` until the server has drained.
#[derive(Debug)]
#[must_use = "telemetry is flushed when the guard drops"]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl TelemetryGuard {
    /// True when spans are exported (an OpenTelemetry layer is installed).
    pub fn exporting(&self) -> bool {
        self.provider.is_some()
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            // The batch processor exports from its own thread; this waits for
            // it, so the runtime driving the exporter's channel must have
            // another worker free (the `itsm` runtime is multi-threaded).
            if let Err(error) = provider.shutdown_with_timeout(SHUTDOWN_TIMEOUT) {
                eprintln!("itsm: could not flush traces on shutdown: {error}");
            }
        }
    }
}

/// Installs the global subscriber, exporting traces when the process
/// environment says so (see [`ExportSettings::from_env`]). `service` is the
/// `service.name` used when `OTEL_SERVICE_NAME` (or `service.name` in
/// `OTEL_RESOURCE_ATTRIBUTES`) does not set one, e.g. `itsm-incidents`.
/// Must run inside the Tokio runtime (the exporter's channel lives there).
/// Fails when a subscriber is installed already, or on a bad `OTEL_*` setting.
pub fn init(config: &Config, service: &str) -> Result<TelemetryGuard, TelemetryError> {
    init_with_env(config, service, |name| std::env::var(name).ok())
}

/// [`init`] reading the `OTEL_*` variables that decide whether and where to
/// export from `env` instead of the process environment (tests). Finer
/// settings the OpenTelemetry SDK reads itself (`OTEL_BSP_*`,
/// `OTEL_TRACES_SAMPLER`, `OTEL_RESOURCE_ATTRIBUTES`, headers, timeouts) still
/// come from the process environment.
pub fn init_with_env(
    config: &Config,
    service: &str,
    env: impl Fn(&str) -> Option<String>,
) -> Result<TelemetryGuard, TelemetryError> {
    let settings = ExportSettings::from_env(env)?;
    let provider = settings
        .map(|settings| export::provider(&settings, service))
        .transpose()?;
    let tracer = provider.as_ref().map(|provider| Tracing {
        tracer: provider.tracer("itsm"),
        database: DbSystem::of(config),
    });
    subscriber(config, tracer, std::io::stdout)?
        .try_init()
        .map_err(|e| TelemetryError(format!("cannot install the subscriber: {e}")))?;
    Ok(TelemetryGuard { provider })
}

/// What the OpenTelemetry layers need: where spans go and which database
/// this process talks to (for SQL spans).
#[derive(Debug, Clone)]
pub(crate) struct Tracing {
    pub(crate) tracer: SdkTracer,
    pub(crate) database: DbSystem,
}

/// The `db.system.name` of this process's database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DbSystem {
    Postgresql,
    Sqlite,
}

impl DbSystem {
    /// From `database_url`; without one the process is `itsm dev` (SQLite
    /// under its data directory) or has no database at all.
    fn of(config: &Config) -> Self {
        match &config.database_url {
            Some(url) if url.expose().starts_with("postgres") => Self::Postgresql,
            _ => Self::Sqlite,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Postgresql => "postgresql",
            Self::Sqlite => "sqlite",
        }
    }
}

/// The subscriber [`init`] installs, writing logs to `writer`.
pub(crate) fn subscriber<W>(
    config: &Config,
    tracing: Option<Tracing>,
    writer: W,
) -> Result<impl tracing::Subscriber + Send + Sync + 'static, TelemetryError>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    // The filter was validated when the config was loaded.
    let log_filter =
        EnvFilter::try_new(&config.log).map_err(|e| TelemetryError(format!("log: {e}")))?;
    let dispatch = DispatchCell::default();
    // Sees nothing; only learns the dispatcher (`Option` layers do not pass it on).
    let capture = dispatch
        .clone()
        .with_filter(filter_fn(|_| false).with_max_level_hint(LevelFilter::OFF));
    let log_layer = match config.log_format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_target(false)
            .with_writer(writer)
            .with_filter(log_filter)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(writer)
            .map_event_format(|inner| json::WithTraceIds::new(inner, dispatch.clone()))
            .with_filter(log_filter)
            .boxed(),
    };
    let (otel_layer, sql_layer) = match tracing {
        Some(Tracing { tracer, database }) => (
            Some(
                tracing_opentelemetry::layer()
                    .with_tracer(tracer.clone())
                    .with_filter(own_crates()),
            ),
            Some(
                sql::SqlSpans::new(tracer, database, dispatch)
                    .with_filter(own_crates().with_target("sqlx::query", Level::DEBUG)),
            ),
        ),
        None => (None, None),
    };
    Ok(tracing_subscriber::registry()
        .with(otel_layer)
        .with(sql_layer)
        .with(log_layer)
        .with(capture))
}

/// Our crates (`itsm_*`) at `info`: what becomes a span, whatever the log level.
fn own_crates() -> Targets {
    Targets::new().with_target("itsm", Level::INFO)
}

/// The dispatcher the subscriber ends up in, known once it is installed:
/// what reads a span's OpenTelemetry context from outside the OpenTelemetry
/// layer (log lines, SQL spans).
#[derive(Debug, Clone, Default)]
pub(crate) struct DispatchCell(Arc<OnceLock<WeakDispatch>>);

impl DispatchCell {
    /// The OpenTelemetry context of span `id`, if it has a valid one.
    pub(crate) fn context_of(&self, id: &tracing::span::Id) -> Option<opentelemetry::Context> {
        use opentelemetry::trace::TraceContextExt as _;
        let dispatch = self.0.get()?.upgrade()?;
        tracing_opentelemetry::get_otel_context(id, &dispatch)
            .filter(|context| context.span().span_context().is_valid())
    }
}

impl<S: tracing::Subscriber> Layer<S> for DispatchCell {
    fn on_register_dispatch(&self, subscriber: &tracing::Dispatch) {
        let _ = self.0.set(subscriber.downgrade());
    }
}

/// Telemetry could not be set up; says which setting is wrong.
#[derive(Debug, thiserror::Error)]
#[error("cannot start telemetry: {0}")]
pub struct TelemetryError(String);
