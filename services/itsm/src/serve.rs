//! `itsm serve <practice>`: one practice, as a Kubernetes pod runs it.

use itsm_platform::config::Config;
use itsm_platform::{Drain, GrpcServer, shutdown};

use crate::cli::CliError;
use crate::practice::Practice;

pub async fn run(config: Config, practice: Practice) -> Result<Drain, CliError> {
    // Services do not keep the pool yet; connecting here still proves the
    // database is reachable and the schema current before taking traffic.
    if let Some(url) = config
        .database_url
        .as_ref()
        .filter(|_| config.migrate_on_start)
    {
        practice.open_database(url.expose()).await?.close().await;
        tracing::info!(practice = practice.name(), "database schema is up to date");
    }
    let server = practice.add_to(GrpcServer::new(&config)).bind().await?;
    tracing::info!(
        practice = practice.name(),
        addr = %server.local_addr(),
        "practice service started"
    );
    Ok(server.serve(shutdown::signal()).await?)
}
