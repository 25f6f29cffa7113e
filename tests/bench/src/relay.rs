//! Outbox relay throughput: rows already in the outbox, published to Redis
//! Streams and marked sent, batch after batch, as the relay does.

use std::sync::Arc;
use std::time::Instant;

use itsm_events::relay::{OutboxRelay, RelayConfig};
use itsm_events::{EventBus, RedisBus, RedisBusConfig};
use itsm_store::Db;

use crate::pg::BenchDb;

#[derive(Debug, Clone, Copy, clap::Args)]
pub struct Args {
    /// Events in the outbox before the relay starts
    #[arg(long, default_value_t = 200_000)]
    pub events: i64,
    /// Rows per relay round trip
    #[arg(long, default_value_t = 1_000)]
    pub batch: usize,
}

impl Default for Args {
    fn default() -> Self {
        Self {
            events: 200_000,
            batch: 1_000,
        }
    }
}

pub async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let bench = BenchDb::create().await?;
    let result = run_on(&bench, args).await;
    bench.drop_now().await?;
    result
}

async fn run_on(bench: &BenchDb, args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let db = Db::connect(&bench.url).await?;
    db.migrate(None).await?;
    // Envelope-sized payloads (about what an incident event encodes to).
    sqlx::query(
        "INSERT INTO outbox (event_id, stream, event_type, subject, payload, created_at) \
         SELECT gen_random_uuid()::text, 'incidents', 'incidents.incident.updated', \
         'incidents/INC' || lpad((g % 5000)::text, 7, '0'), decode(repeat('ab', 400), 'hex'), 1700000000000000 \
         FROM generate_series(1, $1) AS g",
    )
    .bind(args.events)
    .execute(db.pool())
    .await?;

    let url = std::env::var("ITSM_BENCH_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let prefix = format!("itsm-bench-{}:", uuid::Uuid::new_v4().simple());
    let bus = RedisBus::open(
        &url,
        RedisBusConfig {
            key_prefix: prefix,
            ..RedisBusConfig::default()
        },
    )
    .await?;
    let stream_key = bus.stream_key("incidents");
    let bus: Arc<dyn EventBus> = Arc::new(bus);
    let relay = OutboxRelay::new(
        db.clone(),
        Arc::clone(&bus),
        RelayConfig {
            batch_size: args.batch,
            ..RelayConfig::default()
        },
    );

    println!(
        "== relay: {} outbox rows (800-byte payloads) into Redis Streams, batches of {}",
        args.events, args.batch
    );
    let started = Instant::now();
    let mut relayed = 0_usize;
    loop {
        let n = relay.relay_once().await?;
        if n == 0 {
            break;
        }
        relayed += n;
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "  {relayed} events in {elapsed:.2} s: {:.0} events/s   (target: at least 20,000)",
        relayed as f64 / elapsed
    );

    let client = redis_client(&url)?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let _: () = redis::cmd("DEL")
        .arg(&stream_key)
        .query_async(&mut conn)
        .await?;
    db.close().await;
    Ok(())
}

fn redis_client(url: &str) -> Result<redis::Client, redis::RedisError> {
    redis::Client::open(url)
}
