//! `itsm dev`: the whole platform in one process, for a laptop.
//!
//! Every practice is served on one port (one address to remember); services
//! that call each other use that address too. Each practice keeps its own
//! SQLite file under the data directory, so nothing outside this process is
//! needed. Calls are authenticated as in production: with tokens signed by a
//! development key kept in the data directory (`itsm token` mints more).
//!
//! The API gateway runs in front of that server on its own port (gRPC and
//! REST/JSON, `ITSM_GATEWAY_ADDR`), as it does in production: clients and
//! `curl` are pointed there; rate limits are kept in this process.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use itsm_auth::Guard;
use itsm_platform::config::{Config, Mode};
use itsm_platform::{Drain, GrpcServer, shutdown};
use tokio_util::sync::CancellationToken;

use crate::cli::CliError;
use crate::metrics::Metrics;
use crate::practice::{Practice, Wiring};

pub async fn run(mut config: Config, data_dir: PathBuf) -> Result<Drain, CliError> {
    std::fs::create_dir_all(&data_dir).map_err(|source| CliError::DataDir {
        path: data_dir.clone(),
        source,
    })?;
    if config.auth_jwks.is_none() && config.auth_hs256_secret.is_none() {
        config.auth_hs256_secret = Some(crate::token::dev_signing_key(&data_dir)?);
    }
    let mut databases = Vec::new();
    for practice in Practice::ALL {
        let file = data_dir.join(format!("{}.db", practice.name()));
        let db = practice
            .open_database(&format!("sqlite://{}", file.display()), true)
            .await?;
        databases.push((practice, db));
    }
    // One recorder and one scrape port for every practice of the process.
    let metrics_addr = crate::metrics::addr_for(&config, Mode::Dev, config.grpc_addr);
    let mut metrics = Metrics::start(&config, metrics_addr, "dev").await?;
    for (practice, db) in &databases {
        metrics.sample(*practice, db);
    }
    let identity = databases
        .iter()
        .find(|(practice, _)| *practice == Practice::Identity)
        .map(|(_, db)| db.clone());
    let directory: Arc<dyn itsm_incidents::Directory> = match &identity {
        Some(db) => Arc::new(crate::directory::LocalDirectory::new(db.clone())),
        None => Arc::new(itsm_incidents::NoDirectory),
    };
    // One process: an in-process cache (invalidated by the writer itself).
    let cache: Arc<dyn itsm_events::cache::Cache> =
        Arc::new(itsm_events::cache::MemoryCache::new(100_000));
    let local_cmdb = databases
        .iter()
        .find(|(practice, _)| *practice == Practice::Cmdb)
        .map(|(_, db)| {
            Arc::new(crate::directory::LocalCmdb::new(
                db.clone(),
                Arc::clone(&cache),
            ))
        });
    let (cmdb, zones): (
        Arc<dyn itsm_incidents::Cmdb>,
        Arc<dyn itsm_sla::zones::ZoneSource>,
    ) = match local_cmdb {
        Some(local) => (local.clone(), local),
        None => (
            Arc::new(itsm_incidents::NoCmdb),
            Arc::new(itsm_sla::zones::NoZones),
        ),
    };
    let sla = itsm_sla::engine::Engine::new(zones);
    let api_keys = identity.map(|db| {
        Arc::new(itsm_identity::LocalApiKeyVerifier::new(db))
            as Arc<dyn itsm_auth::apikey::ApiKeyVerifier>
    });
    let authn = Arc::new(itsm_auth::config::authenticator(&config, api_keys)?);
    let guard = Guard::new(Arc::clone(&authn));
    let mut server = GrpcServer::new(&config);
    for (practice, db) in &databases {
        let wiring = Wiring {
            guard: &guard,
            db,
            directory: Arc::clone(&directory),
            cmdb: Arc::clone(&cmdb),
            cache: Arc::clone(&cache),
            sla: sla.clone(),
        };
        server = practice.add_to(server, &wiring)?;
    }
    let server = server.bind().await?;
    let gateway = crate::gateway::for_dev(&config, server.local_addr(), authn)?
        .bind()
        .await
        .map_err(crate::gateway::GatewayStartError::from)?;
    let admin = match &config.auth_hs256_secret {
        Some(secret) => Some(crate::token::mint(
            &config,
            secret,
            "dev-admin",
            "Dev Admin",
            &["admin".to_owned()],
            &[],
            Duration::from_secs(12 * 3600),
        )?),
        None => None,
    };
    print_banner(
        &server.local_addr().to_string(),
        &gateway.local_addr().to_string(),
        metrics.local_addr(),
        &data_dir,
        admin.as_deref(),
    );
    let stop_gateway = CancellationToken::new();
    let gateway = tokio::spawn(gateway.serve(stop_gateway.clone().cancelled_owned()));
    let jobs = CancellationToken::new();
    // One in-process bus: every practice's relay publishes its outbox to it.
    let bus = crate::events::for_dev();
    let mut workers = Vec::new();
    for (practice, db) in &databases {
        workers.extend(crate::serve::spawn_jobs(*practice, db, &sla, &jobs));
        if *practice == Practice::Sla {
            workers.push(crate::events::spawn_ticket_clocks(
                db,
                Arc::clone(&bus),
                sla.clone(),
                &jobs,
            ));
        }
        if *practice == Practice::Incidents {
            workers.push(crate::events::spawn_escalations(
                db,
                Arc::clone(&bus),
                Arc::clone(&directory),
                &jobs,
            ));
        }
        workers.push(crate::events::spawn_relay(
            *practice,
            db,
            Arc::clone(&bus),
            &jobs,
        ));
    }
    let drain = server
        .serve(async {
            shutdown::signal().await;
            stop_gateway.cancel();
            jobs.cancel();
        })
        .await;
    // Stopped before the databases close, also when serving failed.
    stop_gateway.cancel();
    jobs.cancel();
    match gateway.await {
        Ok(Ok(_)) => {}
        Ok(Err(error)) => tracing::warn!(%error, "the gateway stopped with an error"),
        Err(error) => tracing::warn!(%error, "the gateway task failed"),
    }
    for worker in workers {
        let _ = worker.await;
    }
    metrics.stop().await;
    for (_, db) in databases {
        db.close().await;
    }
    Ok(drain?)
}

/// What a newcomer needs to call the platform, on stdout.
fn print_banner(
    addr: &str,
    gateway: &str,
    metrics: Option<std::net::SocketAddr>,
    data_dir: &std::path::Path,
    admin_token: Option<&str>,
) {
    println!("ITSM dev is running: every practice in this one process, embedded storage.");
    println!();
    println!("  gRPC       {addr}  (plaintext; health and reflection need no token)");
    println!(
        "  gateway    {gateway}  (point clients and curl here: the same calls plus REST/JSON, rate limits, one port)"
    );
    match metrics {
        Some(metrics) => {
            println!("  metrics    http://{metrics}/metrics  (Prometheus text format)")
        }
        None => println!("  metrics    off (ITSM_METRICS_ADDR=off)"),
    }
    println!("  data dir   {}", data_dir.display());
    println!();
    for practice in Practice::ALL {
        println!("  {:<10} {}", practice.name(), practice.service_name());
    }
    println!();
    if let Some(token) = admin_token {
        println!("Admin token (12 h; `itsm token --role agent` mints others):");
        println!("  export ITSM_TOKEN={token}");
        println!();
    }
    println!("Try it:");
    println!("  grpcurl -plaintext {gateway} list");
    println!("  curl -s http://{gateway}/readyz");
    println!(
        "  grpcurl -plaintext -H \"authorization: Bearer $ITSM_TOKEN\" {gateway} itsm.identity.v1.IdentityService/ListApiKeys"
    );
    println!("  grpcurl -plaintext {gateway} describe itsm.incidents.v1.IncidentService");
    println!();
    println!("Methods not built yet answer UNIMPLEMENTED. Stop with Ctrl-C.");
}
