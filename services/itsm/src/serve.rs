//! `itsm serve <practice>`: one practice, as a Kubernetes pod runs it.

use itsm_platform::config::Config;
use itsm_platform::{Drain, GrpcServer, shutdown};

use crate::cli::CliError;
use crate::practice::Practice;

pub async fn run(config: Config, practice: Practice) -> Result<Drain, CliError> {
    let server = practice.add_to(GrpcServer::new(&config)).bind().await?;
    tracing::info!(
        practice = practice.name(),
        addr = %server.local_addr(),
        "practice service started"
    );
    Ok(server.serve(shutdown::signal()).await?)
}
