//! `itsm-bench`: measures the platform on this machine and prints figures
//! beside a reference measured in the same run (pgbench for the database).
//!
//! ```sh
//! cargo run --release -p itsm-bench -- store     # inserts vs pgbench, keyset pages over 1M rows
//! cargo run --release -p itsm-bench -- relay     # outbox -> Redis Streams throughput
//! cargo run --release -p itsm-bench -- incidents # the incident practice through gRPC
//! cargo run --release -p itsm-bench -- cmdb      # the CMDB over 1M CIs / 5M relationships
//! cargo run --release -p itsm-bench -- sla       # SLA timers over 1M open task SLAs
//! cargo run --release -p itsm-bench -- gateway   # gRPC through the gateway against direct
//! cargo run --release -p itsm-bench -- all
//! ```
//! PostgreSQL from `ITSM_BENCH_DATABASE_URL` (default the test server), Redis
//! from `ITSM_BENCH_REDIS_URL`. Each run uses a database and key prefix of its
//! own and removes them afterwards.

mod cmdb;
mod gateway;
mod incidents;
mod pg;
mod relay;
mod sla;
mod sla_data;
mod store;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "itsm-bench", about = "Benchmarks that print figures")]
struct Cli {
    #[command(subcommand)]
    what: What,
}

#[derive(Debug, Clone, Copy, Subcommand)]
enum What {
    /// Insert (row + audit + outbox) against pgbench, and keyset pages over 1M rows
    Store(store::Args),
    /// Outbox relay throughput into Redis Streams
    Relay(relay::Args),
    /// The incident practice through its gRPC server: create, get, list, alert intake
    Incidents(incidents::Args),
    /// The CMDB over 1M CIs and 5M relationships: impact, reconciliation, get
    Cmdb(cmdb::Args),
    /// SLA clocks over 1M open task SLAs: timers fired on time
    Sla(sla::Args),
    /// gRPC through the gateway against calling the service directly: p50 and 32-client rate
    Gateway(gateway::Args),
    /// Everything, with default sizes
    All,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cli = Cli::parse();
    match cli.what {
        What::Store(args) => store::run(args).await?,
        What::Relay(args) => relay::run(args).await?,
        What::Incidents(args) => incidents::run(args).await?,
        What::Cmdb(args) => cmdb::run(args).await?,
        What::Sla(args) => sla::run(args).await?,
        What::Gateway(args) => gateway::run(args).await?,
        What::All => {
            store::run(store::Args::default()).await?;
            relay::run(relay::Args::default()).await?;
            incidents::run(incidents::Args::default()).await?;
            cmdb::run(cmdb::Args::default()).await?;
            sla::run(sla::Args::default()).await?;
            gateway::run(gateway::Args::default()).await?;
        }
    }
    Ok(())
}
