//! The API gateway as this binary runs it: `itsm serve gateway` (one pod of
//! the gateway Deployment, backends from ITSM_GATEWAY_BACKENDS, rate limits
//! in Redis when ITSM_REDIS_URL is set) and the gateway of `itsm dev` (in
//! front of the dev server, in-process rate limits).

use std::net::SocketAddr;
use std::sync::Arc;

use clap::ValueEnum;
use clap::builder::PossibleValue;
use itsm_auth::Authenticator;
use itsm_auth::apikey::ApiKeyVerifier;
use itsm_auth::remote::RemoteApiKeyVerifier;
use itsm_gateway::backends::pool::Target;
use itsm_gateway::backends::{BackendSpec, Backends, BackendsError, Settings};
use itsm_gateway::edge::Edge;
use itsm_gateway::edge::ratelimit::{RateLimitError, RateLimiter};
use itsm_gateway::server::{Gateway, GatewayError};
use itsm_platform::config::{Config, Mode};
use itsm_platform::{Drain, shutdown};

use crate::cli::CliError;
use crate::practice::Practice;

/// What `itsm serve` runs: a practice, or the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServeTarget {
    Practice(Practice),
    Gateway,
}

const TARGETS: [ServeTarget; 9] = [
    ServeTarget::Practice(Practice::ALL[0]),
    ServeTarget::Practice(Practice::ALL[1]),
    ServeTarget::Practice(Practice::ALL[2]),
    ServeTarget::Practice(Practice::ALL[3]),
    ServeTarget::Practice(Practice::ALL[4]),
    ServeTarget::Practice(Practice::ALL[5]),
    ServeTarget::Practice(Practice::ALL[6]),
    ServeTarget::Practice(Practice::ALL[7]),
    ServeTarget::Gateway,
];

impl ValueEnum for ServeTarget {
    fn value_variants<'a>() -> &'a [Self] {
        &TARGETS
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        match self {
            Self::Practice(practice) => practice.to_possible_value(),
            Self::Gateway => Some(PossibleValue::new("gateway").help(
                "The API gateway: gRPC and REST/JSON in front of the practices (ITSM_GATEWAY_BACKENDS)",
            )),
        }
    }
}

/// `itsm serve`'s arguments.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The practice to run, or `gateway`
    #[arg(value_enum)]
    pub target: ServeTarget,
}

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum GatewayStartError {
    #[error("{0}")]
    Backends(#[from] BackendsError),
    #[error("{0}")]
    RateLimit(#[from] RateLimitError),
    #[error("{0}")]
    Server(#[from] GatewayError),
    #[error("the REST mapping cannot be built from the contracts: {0}")]
    Rest(#[from] itsm_gateway::rest::routes::RoutesError),
}

impl GatewayStartError {
    /// Whether fixing the configuration is the cure (exit code 2).
    pub fn is_config(&self) -> bool {
        !matches!(
            self,
            Self::Server(GatewayError::Bind { .. }) | Self::Rest(_)
        )
    }
}

/// `itsm serve gateway`: serves until SIGTERM, then drains.
pub async fn serve(config: Config) -> Result<Drain, CliError> {
    let api_keys: Option<Arc<dyn ApiKeyVerifier>> = match &config.identity_addr {
        Some(addr) => Some(Arc::new(RemoteApiKeyVerifier::new(addr)?)),
        None => None,
    };
    let authn = Arc::new(itsm_auth::config::authenticator(&config, api_keys)?);
    let backends = Backends::from_config(&config).map_err(GatewayStartError::from)?;
    let edge = Edge::from_config(&config, authn).map_err(GatewayStartError::from)?;
    if config.redis_url.is_none() {
        tracing::warn!(
            "ITSM_REDIS_URL is not set: rate limits hold per gateway replica, not across them"
        );
    }
    let metrics_addr = crate::metrics::addr_for(&config, Mode::Serve, config.gateway.addr);
    let metrics = crate::metrics::Metrics::start(&config, metrics_addr, "gateway").await?;
    let gateway = with_http(Gateway::new(&config, backends, edge))?
        .bind()
        .await
        .map_err(GatewayStartError::from)?;
    tracing::info!(addr = %gateway.local_addr(), "gateway started");
    let drain = gateway
        .serve(shutdown::signal())
        .await
        .map_err(GatewayStartError::from);
    metrics.stop().await;
    Ok(drain?)
}

/// The gateway of `itsm dev`, in front of the dev server at `server`: every
/// practice is a service of that one backend; rate limits in this process.
/// Listens on ITSM_GATEWAY_ADDR; when that is the default and the dev server
/// asked for a free port (`--listen 127.0.0.1:0`), on a free port too.
pub fn for_dev(
    config: &Config,
    server: SocketAddr,
    authn: Arc<Authenticator>,
) -> Result<Gateway, CliError> {
    let spec = BackendSpec {
        name: "dev".to_owned(),
        services: Practice::ALL
            .iter()
            .map(|p| p.service_name().to_owned())
            .collect(),
        target: Target::Static(vec![format!("http://{server}")]),
    };
    let backends = Backends::new(vec![spec], Settings::from_config(config))
        .map_err(GatewayStartError::from)?;
    let limiter = RateLimiter::in_process(config.gateway.rate_read, config.gateway.rate_write);
    let edge = Edge::new(authn, limiter);
    let mut gateway = with_http(Gateway::new(config, backends, edge))?;
    if config.grpc_addr.port() == 0
        && config.gateway.addr == Config::defaults(Mode::Dev).gateway.addr
    {
        gateway = gateway.with_addr(SocketAddr::new(config.grpc_addr.ip(), 0));
    }
    Ok(gateway)
}

/// Adds the HTTP routes (REST/JSON, OpenAPI, the Alertmanager webhook) to `gateway`.
fn with_http(gateway: Gateway) -> Result<Gateway, GatewayStartError> {
    let router = itsm_gateway::rest::router(gateway.state())?;
    Ok(gateway.with_http(router))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serve_targets_are_the_practices_and_the_gateway() {
        let names: Vec<String> = ServeTarget::value_variants()
            .iter()
            .filter_map(|t| t.to_possible_value())
            .map(|v| v.get_name().to_owned())
            .collect();
        let mut expected: Vec<String> = Practice::ALL.iter().map(|p| p.name().to_owned()).collect();
        expected.push("gateway".to_owned());
        assert_eq!(names, expected);
    }
}
