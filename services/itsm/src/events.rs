//! Where a practice's events go: the outbox relay publishing each
//! practice's committed events to the bus (Redis Streams in `serve`, an
//! in-process bus shared by every practice in `dev`).

use std::sync::Arc;

use itsm_events::bus::{MemoryBus, MemoryBusConfig, RedisBus, RedisBusConfig};
use itsm_events::{EventBus, OutboxRelay, RelayConfig};
use itsm_platform::config::Config;
use itsm_store::Db;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::cli::CliError;
use crate::practice::Practice;

/// The in-process bus of `itsm dev`.
pub fn for_dev() -> Arc<dyn EventBus> {
    Arc::new(MemoryBus::new(MemoryBusConfig::default()))
}

/// Redis Streams at `ITSM_REDIS_URL`, under `ITSM_REDIS_PREFIX`; without a
/// URL, no bus: events are kept in the practice's outbox (nothing is lost)
/// until a bus is configured.
pub async fn for_serve(config: &Config) -> Result<Option<Arc<dyn EventBus>>, CliError> {
    match &config.redis_url {
        Some(url) => {
            let bus = RedisBusConfig {
                key_prefix: config.redis_prefix.clone(),
                ..RedisBusConfig::default()
            };
            Ok(Some(Arc::new(RedisBus::open(url.expose(), bus).await?)))
        }
        None => {
            tracing::warn!(
                "ITSM_REDIS_URL is not set: events stay in the outbox table until a bus is configured"
            );
            Ok(None)
        }
    }
}

/// Starts the relay of `practice`'s outbox to `bus` (every replica runs one;
/// a lease picks the one that publishes), stopped by `cancel`.
pub fn spawn_relay(
    practice: Practice,
    db: &Db,
    bus: Arc<dyn EventBus>,
    cancel: &CancellationToken,
) -> JoinHandle<()> {
    let config = RelayConfig {
        holder: format!(
            "{}-{}-{}",
            practice.name(),
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ),
        ..RelayConfig::default()
    };
    let relay = OutboxRelay::new(db.clone(), bus, config);
    tokio::spawn(relay.run(cancel.clone()))
}

/// Keeps the CMDB's shared cache right across replicas: a consumer of the
/// `cmdb` stream deleting what each event makes stale (the writer already
/// did after its commit; this covers a writer that died in between).
pub fn spawn_cmdb_invalidation(
    db: &Db,
    bus: Arc<dyn EventBus>,
    cache: Arc<dyn itsm_events::Cache>,
    cancel: &CancellationToken,
) -> JoinHandle<()> {
    let handler = itsm_events::InvalidateOnEvents::new(cache, itsm_cmdb::stale_keys);
    let config = itsm_events::ConsumerConfig::new("cmdb.cache", &["cmdb"]);
    let consumer = itsm_events::Consumer::new(db.clone(), bus, Arc::new(handler), config);
    tokio::spawn(consumer.run(cancel.clone()))
}

/// Drives the SLA clocks from the ticket events on the bus (consumer group
/// `sla.ticket-clocks`: each event applied once, in the SLA database).
pub fn spawn_ticket_clocks(
    db: &Db,
    bus: Arc<dyn EventBus>,
    engine: itsm_sla::engine::Engine,
    cancel: &CancellationToken,
) -> JoinHandle<()> {
    let consumer = itsm_sla::engine::consumer(db.clone(), bus, engine);
    tokio::spawn(consumer.run(cancel.clone()))
}

/// Escalates incidents whose SLA breached, from the SLA events on the bus
/// (consumer group `incidents.sla-escalations` on the `sla` stream, in the
/// incidents database), asking `directory` for the group's manager.
pub fn spawn_escalations(
    db: &Db,
    bus: Arc<dyn EventBus>,
    directory: Arc<dyn itsm_incidents::Directory>,
    cancel: &CancellationToken,
) -> JoinHandle<()> {
    let consumer = itsm_incidents::escalation::consumer(db.clone(), bus, directory);
    tokio::spawn(consumer.run(cancel.clone()))
}
