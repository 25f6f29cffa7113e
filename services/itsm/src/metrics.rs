//! Metrics of this process: the Prometheus recorder, its scrape server on
//! `ITSM_METRICS_ADDR`, and the samplers reading gauges from each practice's
//! database every `ITSM_METRICS_SAMPLE_EVERY`. One of each per process: `itsm
//! dev` serves every practice's metrics on one port, labelled by practice.

use std::net::SocketAddr;
use std::time::Duration;

use itsm_platform::config::{Config, Mode};
use itsm_platform::metrics::{self, MetricsServer, sampler};
use itsm_store::{Db, StoreError};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::cli::CliError;
use crate::practice::Practice;

/// The running metrics of the process; [`Metrics::stop`] ends them.
#[derive(Debug)]
pub struct Metrics {
    /// `None` when `metrics_addr = off`: nothing is recorded or sampled.
    addr: Option<SocketAddr>,
    every: Duration,
    stop: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

/// Where metrics are served: `metrics_addr`, except that when it is the
/// default and the process's own server asked for a free port (`--listen
/// 127.0.0.1:0`, `ITSM_GRPC_ADDR=127.0.0.1:0`, as tests do), metrics take a
/// free port too, on the same interface, so several processes can run side by side.
pub fn addr_for(config: &Config, mode: Mode, serving: SocketAddr) -> Option<SocketAddr> {
    let configured = config.metrics_addr?;
    if serving.port() == 0 && configured == Config::defaults(mode).metrics_addr? {
        Some(SocketAddr::new(serving.ip(), 0))
    } else {
        Some(configured)
    }
}

impl Metrics {
    /// Installs the recorder, labelled `practice` in `itsm_build_info`, and
    /// serves it on `addr` (no recorder, server or samplers when `None`).
    /// Binds before returning: a port in use stops start-up.
    pub async fn start(
        config: &Config,
        addr: Option<SocketAddr>,
        practice: &'static str,
    ) -> Result<Self, CliError> {
        let mut started = Self {
            addr: None,
            every: config.metrics_sample_every,
            stop: CancellationToken::new(),
            tasks: Vec::new(),
        };
        let Some(addr) = addr else {
            tracing::info!("metrics are off (ITSM_METRICS_ADDR=off)");
            return Ok(started);
        };
        let handle = metrics::install(practice)?;
        itsm_events::metrics::describe();
        itsm_store::metrics::describe();
        itsm_incidents::gauges::describe();
        itsm_sla::gauges::describe();
        let server = MetricsServer::new(addr, handle).bind().await?;
        started.addr = Some(server.local_addr());
        started.tasks.push(tokio::spawn(
            server.serve(started.stop.clone().cancelled_owned()),
        ));
        Ok(started)
    }

    /// Where scrapes are answered, when metrics are on.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.addr
    }

    /// Samples `practice`'s gauges from `db` every period: its pool and
    /// outbox, and its business gauges (incidents open, SLA timers...).
    pub fn sample(&mut self, practice: Practice, db: &Db) {
        if self.addr.is_none() {
            return;
        }
        let db = db.clone();
        let name = practice.name();
        let what = format!("{name} gauges");
        let (every, stop) = (self.every, self.stop.clone().cancelled_owned());
        self.tasks.push(tokio::spawn(async move {
            sampler::run(&what, every, stop, || sample(practice, &db)).await;
        }));
    }

    /// Stops the samplers and the scrape server (a scrape under way finishes).
    pub async fn stop(self) {
        self.stop.cancel();
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// One sample of `practice`: the pool first (no I/O, so it is current even
/// when the database is down), then one or two grouped counts.
async fn sample(practice: Practice, db: &Db) -> Result<(), StoreError> {
    itsm_store::metrics::sample_pool(practice.name(), db);
    itsm_store::metrics::sample_outbox(practice.name(), db).await?;
    match practice {
        Practice::Incidents => itsm_incidents::gauges::sample(db).await,
        Practice::Sla => itsm_sla::gauges::sample(db).await,
        // Problems, changes and requests keep no records yet: their gauges
        // (itsm_problems_open, itsm_changes_in_flight, itsm_requests_open)
        // come with their tables.
        _ => Ok(()),
    }
}
