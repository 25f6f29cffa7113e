//! `itsm serve <practice>`: one practice, as a Kubernetes pod runs it.

use std::sync::Arc;
use std::time::Duration;

use itsm_auth::Guard;
use itsm_auth::apikey::ApiKeyVerifier;
use itsm_auth::remote::RemoteApiKeyVerifier;
use itsm_platform::config::{Config, Mode};
use itsm_platform::{Drain, GrpcServer, shutdown};
use itsm_store::Db;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::cli::CliError;
use crate::metrics::Metrics;
use crate::practice::{Practice, Wiring};

pub async fn run(config: Config, practice: Practice) -> Result<Drain, CliError> {
    let url = config
        .database_url
        .as_ref()
        .ok_or(CliError::NoDatabaseUrl)?;
    let db = practice
        .open_database(url.expose(), config.migrate_on_start)
        .await?;
    let metrics_addr = crate::metrics::addr_for(&config, Mode::Serve, config.grpc_addr);
    let mut metrics = Metrics::start(&config, metrics_addr, practice.name()).await?;
    metrics.sample(practice, &db);
    // The identity service checks API keys against its own table; every other
    // service asks it.
    let api_keys: Option<Arc<dyn ApiKeyVerifier>> = match (practice, &config.identity_addr) {
        (Practice::Identity, _) => Some(Arc::new(itsm_identity::LocalApiKeyVerifier::new(
            db.clone(),
        ))),
        (_, Some(addr)) => Some(Arc::new(RemoteApiKeyVerifier::new(addr)?)),
        (_, None) => None,
    };
    let guard = Guard::new(Arc::new(itsm_auth::config::authenticator(
        &config, api_keys,
    )?));
    let directory = crate::directory::for_serve(&config, practice)?;
    let cache = crate::cache::for_serve(&config).await?;
    let bus = crate::events::for_serve(&config).await?;
    let cmdb = crate::directory::cmdb_for_serve(&config, practice)?;
    let sla = itsm_sla::engine::Engine::new(crate::directory::zones_for_serve(&config, practice)?);
    let wiring = Wiring {
        guard: &guard,
        db: &db,
        directory,
        cmdb,
        cache,
        sla: sla.clone(),
    };
    let server = practice
        .add_to(GrpcServer::new(&config), &wiring)?
        .bind()
        .await?;
    tracing::info!(
        practice = practice.name(),
        addr = %server.local_addr(),
        "practice service started"
    );
    // The practice's background work (every replica runs it; leases pick one
    // to do it) stops when the server begins to drain.
    let jobs = CancellationToken::new();
    let mut workers = spawn_jobs(practice, &db, &sla, &jobs);
    if let Some(bus) = bus {
        if practice == Practice::Sla {
            workers.push(crate::events::spawn_ticket_clocks(
                &db,
                Arc::clone(&bus),
                sla.clone(),
                &jobs,
            ));
        }
        if practice == Practice::Incidents {
            workers.push(crate::events::spawn_escalations(
                &db,
                Arc::clone(&bus),
                Arc::clone(&wiring.directory),
                &jobs,
            ));
        }
        if practice == Practice::Cmdb {
            workers.push(crate::events::spawn_cmdb_invalidation(
                &db,
                Arc::clone(&bus),
                Arc::clone(&wiring.cache),
                &jobs,
            ));
        }
        workers.push(crate::events::spawn_relay(practice, &db, bus, &jobs));
    }
    let drain = server
        .serve(async {
            shutdown::signal().await;
            jobs.cancel();
        })
        .await;
    jobs.cancel();
    for worker in workers {
        let _ = worker.await;
    }
    // Scrapes were answered until every call drained.
    metrics.stop().await;
    db.close().await;
    Ok(drain?)
}

/// How often the incidents auto-closer looks for resolved incidents to close.
const AUTO_CLOSE_EVERY: Duration = Duration::from_secs(60);

/// Starts the background work of `practice` over its database (besides the
/// outbox relay), stopped by `cancel`.
pub fn spawn_jobs(
    practice: Practice,
    db: &Db,
    sla: &itsm_sla::engine::Engine,
    cancel: &CancellationToken,
) -> Vec<JoinHandle<()>> {
    match practice {
        Practice::Incidents => vec![tokio::spawn(itsm_incidents::jobs::run_auto_close(
            db.clone(),
            cancel.clone(),
            AUTO_CLOSE_EVERY,
        ))],
        Practice::Cmdb => vec![tokio::spawn(itsm_cmdb::jobs::run_health(
            db.clone(),
            cancel.clone(),
        ))],
        // Fires warning and breach timers from their durable deadlines, and
        // runs recomputation operations batch by batch.
        Practice::Sla => vec![
            tokio::spawn(itsm_sla::jobs::run_timers(
                db.clone(),
                sla.clone(),
                cancel.clone(),
            )),
            tokio::spawn(itsm_sla::jobs::run_operations(
                db.clone(),
                sla.clone(),
                cancel.clone(),
            )),
        ],
        _ => Vec::new(),
    }
}
