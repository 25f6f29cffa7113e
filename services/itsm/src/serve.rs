//! `itsm serve <practice>`: one practice, as a Kubernetes pod runs it.

use std::sync::Arc;

use itsm_auth::Guard;
use itsm_auth::apikey::ApiKeyVerifier;
use itsm_auth::remote::RemoteApiKeyVerifier;
use itsm_platform::config::Config;
use itsm_platform::{Drain, GrpcServer, shutdown};

use crate::cli::CliError;
use crate::practice::{Practice, Wiring};

pub async fn run(config: Config, practice: Practice) -> Result<Drain, CliError> {
    let url = config
        .database_url
        .as_ref()
        .ok_or(CliError::NoDatabaseUrl)?;
    let db = practice
        .open_database(url.expose(), config.migrate_on_start)
        .await?;
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
    let wiring = Wiring {
        guard: &guard,
        db: &db,
        directory,
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
    let drain = server.serve(shutdown::signal()).await?;
    db.close().await;
    Ok(drain)
}
