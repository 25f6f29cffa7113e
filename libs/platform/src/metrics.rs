//! Prometheus metrics: one recorder per process, served as text on its own
//! port (`metrics_addr`), away from the gRPC port so scraping needs no token
//! and a flood of calls cannot starve the scrape.
//!
//! Code records through the `metrics` facade (`counter!`, `gauge!`,
//! `histogram!`) wherever the event happens; [`install`] makes those calls
//! land in the Prometheus recorder, and [`MetricsServer`] serves what it
//! holds at `GET /metrics` in the text format 0.0.4. Before [`install`] (in
//! unit tests, or with `metrics_addr = "off"`) the calls cost next to nothing.
//!
//! Names are `itsm_*`, in base units (`_seconds`, `_total`); labels stay
//! bounded (practice, service, method, code, state — never ids).

mod exposition;
pub mod rpc;
pub mod sampler;

use std::sync::Mutex;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub use exposition::{BoundMetricsServer, MetricsServer};

/// Gauge `{version, practice}`, always 1: which build runs where.
pub const BUILD_INFO: &str = "itsm_build_info";

/// Upper bounds (seconds) of latency histograms: half a millisecond (a cached
/// read) to ten seconds (past every sensible deadline).
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Upper bounds (seconds) of lag histograms (names ending `_lag_seconds` or
/// `_lateness_seconds`): ten milliseconds to fifteen minutes, since a backlog
/// or a stopped worker shows as minutes, not milliseconds.
pub const LAG_BUCKETS: &[f64] = &[
    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0,
];

/// The recorder of this process, once installed.
static INSTALLED: Mutex<Option<PrometheusHandle>> = Mutex::new(None);

/// Installs the Prometheus recorder as the process's `metrics` recorder and
/// sets [`BUILD_INFO`] for `practice` (`incidents`, `gateway`, `dev`, ...).
/// Installing again returns the same recorder (`itsm dev` has one for every
/// practice it runs).
pub fn install(practice: &'static str) -> Result<PrometheusHandle, MetricsError> {
    let mut installed = INSTALLED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let handle = match installed.as_ref() {
        Some(handle) => handle.clone(),
        None => {
            let handle = PrometheusBuilder::new()
                .set_buckets(LATENCY_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Suffix("_lag_seconds".into()), LAG_BUCKETS)
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Suffix("_lateness_seconds".into()),
                        LAG_BUCKETS,
                    )
                })
                .map_err(|e| MetricsError::Install(e.to_string()))?
                .install_recorder()
                .map_err(|e| MetricsError::Install(e.to_string()))?;
            describe();
            *installed = Some(handle.clone());
            handle
        }
    };
    metrics::gauge!(
        BUILD_INFO,
        "version" => env!("CARGO_PKG_VERSION"),
        "practice" => practice
    )
    .set(1.0);
    Ok(handle)
}

/// Describes the metrics this crate records (the others describe their own).
fn describe() {
    metrics::describe_gauge!(
        BUILD_INFO,
        "1, labelled with the version and what the process runs"
    );
    rpc::describe();
}

/// Why metrics could not be set up; each stops start-up with one line.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("the metrics recorder cannot be installed: {0}")]
    Install(String),
    #[error(
        "metrics port {} is already in use (address {addr}): stop the other process, or set ITSM_METRICS_ADDR (\"off\" turns metrics off)",
        addr.port()
    )]
    PortInUse { addr: std::net::SocketAddr },
    #[error("cannot listen for metrics scrapes on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
}
